"""Keeps PHI out of everything the process leaves behind: log lines, tracebacks, crash dumps, files.

Start-up order: ``harden_process()``, then ``configure_logging(settings)``, then everything else; open
``known_names()`` for each call so the names it learns are scrubbed from that call's log lines.
"""

from voice_agent.privacy.log_setup import (
    CALLER_SPEECH,
    LoggingSettings,
    RedactingFilter,
    RedactingFormatter,
    caller_speech_logger,
    configure_logging,
    is_caller_speech,
)
from voice_agent.privacy.process import HardeningReport, harden_process
from voice_agent.privacy.redaction import (
    PHI_KINDS,
    NameRegistry,
    Redactor,
    current_names,
    known_names,
    redact,
    remember_name,
)

__all__ = [
    "CALLER_SPEECH",
    "PHI_KINDS",
    "HardeningReport",
    "LoggingSettings",
    "NameRegistry",
    "RedactingFilter",
    "RedactingFormatter",
    "Redactor",
    "caller_speech_logger",
    "configure_logging",
    "current_names",
    "harden_process",
    "is_caller_speech",
    "known_names",
    "redact",
    "remember_name",
]
