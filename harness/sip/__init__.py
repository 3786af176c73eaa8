"""SIP callers and the edge: SIPp (``sipp``), kamailio running ``deploy/sip/kamailio.cfg`` (``edge``), the
agent's RTP read from tcpdump captures (``rtp``), calls placed and heard (``calls``), several workers behind
one edge and nginx (``cluster``), and a baresip caller for TLS and SRTP (``baresip_caller``)."""
