"""The test harness: what the tests and the benchmarks (``bench/``) both drive the agent with.

Callers' audio (``caller_audio``), the Twilio-protocol caller (``twilio_caller``), scripted conversations
over it (``scripted``), the browser driver (``browser``), SIPp, the kamailio edge and RTP captures
(``sip``), a running ``voice-agent serve`` (``voice_server``), the private FHIR sandbox (``sandbox``), the
text-channel conversation runner and its simulated callers (``conversations``, ``simulator``,
``generator``), canary patients (``canary``), FHIR transport faults (``faults``), throwaway PostgreSQL
servers (``postgres``) and the list of real parts the suite drives (``real_parts``).

Not part of the product: the wheel ships ``voice_agent`` and ``fhir_adapters`` only. ``tests/`` holds the
tests and their ``conftest.py`` fixtures, which import from here; nothing imports from a ``conftest.py``.
"""
