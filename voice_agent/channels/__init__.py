"""Ways a caller reaches the dialogue: the text channel today; WebRTC, carrier media streams and SIP later."""
