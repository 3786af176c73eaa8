"""How calls arrive: a browser over WebRTC (``webrtc``), a carrier's media-stream WebSocket (``telephony``),
SIP from the clinic's own phone system (``sip``), and lines of text (``text``), the same dialogue without
audio. Shared by the audio doors: the app and its server, call admission and draining (``calls``), the
readiness probe and per-source rate limits."""
