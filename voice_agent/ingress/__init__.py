"""Where calls come in: a browser over WebRTC, a carrier's media-stream WebSocket, SIP from the
clinic's own phone system."""
