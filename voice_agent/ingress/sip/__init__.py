"""Calls over SIP from the clinic's own phone system: the baresip stack that answers INVITEs (``stack``),
the kernel-enforced allow-list of who may reach it (``source_filter``), and the pipecat transport over one
baresip call (``transport``; pipecat ships none for SIP)."""
