"""pipecat transports the project writes itself (pipecat ships none for SIP)."""
