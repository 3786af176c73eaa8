"""Self-hosted clinic voice agent: books, cancels and reschedules appointments in the clinic's FHIR server."""

__version__ = "0.1.0"

import os as _os

# onnxruntime (under Silero VAD, smart-turn and piper) ships Microsoft's 1DS telemetry, on by default on
# Linux: on import it writes a session file to TMPDIR and queues usage events for
# mobile.events.data.microsoft.com. "No telemetry" means off before anything can import it, so here.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
