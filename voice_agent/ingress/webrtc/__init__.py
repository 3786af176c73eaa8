"""Calls from a browser over WebRTC: pipecat's SmallWebRTC signalling (``signalling``) and the short-lived
TURN credentials handed to the page and to each call (``turn_credentials``)."""
