"""The ``voice-agent`` command."""
