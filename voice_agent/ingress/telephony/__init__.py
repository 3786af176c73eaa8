"""Calls from a carrier's media-stream WebSocket (``/telephony/{carrier}``): who may open one
(``carrier_auth``), its messages checked for shape (``carrier_messages``), each signed call's stream opened
once across workers (``spent_tokens``), and the route that runs the call (``media_stream``)."""
