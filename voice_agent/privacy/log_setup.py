"""The one logging set-up of the process: every log line, from any library, leaves through a redactor.

Why one set-up: PHI leaks through the side doors of logging, not the front. uvicorn installs its own
handlers, pipecat logs through loguru (including what the caller said, at DEBUG), loguru's ``diagnose``
prints local variable values in tracebacks, an uncaught exception prints a raw traceback, and a
formatting error makes ``logging`` print the message arguments. :func:`configure_logging` closes each:

* the root logger gets a single stderr handler whose filter formats, redacts and then clears the
  arguments, and whose formatter redacts exception text and stack info;
* uvicorn's loggers (and any other logger with a handler of its own) lose their handlers and propagate;
* loguru gets one sink, forwarding into stdlib logging, with ``diagnose`` and ``backtrace`` off;
* records that carry caller speech (pipecat's transcription / LLM context lines, or ours marked with
  ``extra={"caller_speech": True}``) are dropped unless ``log_caller_speech`` is on, and then redacted;
* ``sys.excepthook``, ``threading.excepthook`` and ``sys.unraisablehook`` log through the same path.

uvicorn must be started with ``log_config=None`` so it does not re-install its own handlers.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
import types
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, Protocol, TextIO

from loguru import logger as _loguru

from voice_agent.privacy.redaction import Redactor

__all__ = [
    "CALLER_SPEECH",
    "LoggingSettings",
    "RedactingFilter",
    "RedactingFormatter",
    "caller_speech_logger",
    "configure_logging",
    "is_caller_speech",
]

#: ``extra=CALLER_SPEECH`` (stdlib) or ``logger.bind(**CALLER_SPEECH)`` (loguru) marks a record that
#: carries what a caller said; it is dropped unless ``log_caller_speech`` is on.
CALLER_SPEECH: Final[Mapping[str, bool]] = types.MappingProxyType({"caller_speech": True})

UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
#: Libraries whose DEBUG lines carry call data: WebSocket frames (carrier handshakes hold the calling
#: number), SDP and ICE candidates (client IP addresses), per-turn Whisper chatter.
QUIET_LIBRARIES: Final = {
    "httpx": logging.WARNING,
    "httpcore": logging.INFO,
    "uvicorn.error": logging.INFO,
    "websockets": logging.INFO,
    "aiortc": logging.INFO,
    "aioice": logging.INFO,
    "faster_whisper": logging.WARNING,
    # the SIP stack: its DEBUG names calls by their peer URI (a phone number); the native stack's
    # own lines (and, at DEBUG, whole SIP messages) stay out below WARNING
    "baresip": logging.INFO,
    "baresip.native": logging.WARNING,
}
_FORMAT: Final = "%(asctime)s.%(msecs)03dZ %(levelname)-8s %(name)s: %(message)s"
_DATEFMT: Final = "%Y-%m-%dT%H:%M:%S"
_LOGURU_LEVELS: Final = {"TRACE": 5, "SUCCESS": 25}

#: pipecat lines that carry caller or bot words at any level: transcriptions, frames with text, LLM
#: context dumps, TTS input (shapes from pipecat's STT/LLM/TTS services, FrameLogger and observers).
_PIPECAT_SPEECH: Final = re.compile(
    r"Transcription|TRANSCRIPTION|TranscriptionFrame|TextFrame|text: [\['\"]|Generating (?:chat|TTS)|DTMF"
    r"|LLM (?:GENERATING|MESSAGES|CONTEXT)|LLMMessages|LLMContext|'role':|\"role\":|'content':|\"content\":"
)
#: At DEBUG and below, pipecat lines that merely mention context or messages are dropped too.
_PIPECAT_DEBUG_SPEECH: Final = re.compile(
    r"context|messages|transcri|aggregat|interim|user said|bot said|utterance", re.IGNORECASE
)


class LoggingSettings(Protocol):
    """The two settings logging needs (``voice_agent.settings.Settings`` satisfies it)."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_caller_speech(self) -> bool: ...


def _is_pipecat(name: str) -> bool:
    return name == "pipecat" or name.startswith("pipecat.")


def is_caller_speech(record: logging.LogRecord, message: str) -> bool:
    """True for records that carry what a caller said (or what the bot said back, which echoes it)."""
    if getattr(record, "caller_speech", False) is True:
        return True
    if not _is_pipecat(record.name):
        return False
    if _PIPECAT_SPEECH.search(message):
        return True
    return record.levelno <= logging.DEBUG and _PIPECAT_DEBUG_SPEECH.search(message) is not None


class RedactingFilter(logging.Filter):
    """Drops caller speech (unless allowed) and replaces the record's message with a redacted one.

    The message is formatted first (so PHI in ``%s`` arguments is seen), redacted, and the arguments
    cleared, so no later formatter or handler can re-insert the raw values.
    """

    def __init__(self, redactor: Redactor, *, log_caller_speech: bool) -> None:
        super().__init__()
        self.redactor = redactor
        self.log_caller_speech = log_caller_speech

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # Never show the arguments: they are exactly what may hold PHI.
            message = f"{record.msg!s} [log arguments withheld: they did not format]"
        if is_caller_speech(record, message) and not self.log_caller_speech:
            return False
        record.msg = self.redactor.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """UTC ISO timestamps; exception text and stack info are redacted like messages.

    An exception's message often holds the very value that failed (a name, a date of birth), and the
    traceback shows it; both are scrubbed here, after the filter redacted the message itself.
    """

    converter = staticmethod(time.gmtime)

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(_FORMAT, _DATEFMT)
        self.redactor = redactor

    def formatException(self, ei: Any) -> str:
        return self.redactor.redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return self.redactor.redact(super().formatStack(stack_info))

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info:
            record.exc_text = None  # re-render through our formatException, never a cached raw text
        elif record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        return super().format(record)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is now (test capture, a supervisor's pipe), never to a file."""

    _voice_agent_privacy = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:
        """The stdlib version prints the record's message and arguments: report only the failure."""
        error = sys.exc_info()[1]
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"--- logging error in {record.name} ({type(error).__name__}); "
                "details withheld: they may hold PHI ---\n"
            )


class _CallerSpeechAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), **CALLER_SPEECH}
        return msg, kwargs


def caller_speech_logger(name: str) -> logging.LoggerAdapter[logging.Logger]:
    """A logger for lines that contain caller words: dropped unless ``log_caller_speech`` is on."""
    return _CallerSpeechAdapter(logging.getLogger(name), dict(CALLER_SPEECH))


# --------------------------------------------------------------------------------------------------
# loguru -> stdlib
# --------------------------------------------------------------------------------------------------


def _forward_loguru(message: Any) -> None:
    """loguru sink: re-emit the record through stdlib logging, so the same filter applies.

    Only the bare message goes across (never loguru's formatted text); an exception travels as
    ``exc_info`` and is rendered by :class:`RedactingFormatter` (no local variables).
    """
    try:
        record = message.record
        level = record["level"]
        std = logging.getLogger(record["name"] or "loguru")
        if not std.isEnabledFor(level.no):
            return
        exception = record["exception"]
        exc_info = None
        if exception is not None and exception.type is not None:
            exc_info = (exception.type, exception.value, exception.traceback)
        extra = {"caller_speech": True} if record["extra"].get("caller_speech") is True else None
        std_record = std.makeRecord(
            std.name,
            level.no,
            record["file"].path,
            record["line"],
            record["message"],
            (),
            exc_info,
            record["function"],
            extra,
        )
        std_record.levelname = level.name
        std.handle(std_record)
    except Exception as error:  # a sink must not raise into pipecat, nor print the record
        sys.stderr.write(f"--- loguru forwarding error ({type(error).__name__}); details withheld ---\n")


# --------------------------------------------------------------------------------------------------
# uncaught exceptions
# --------------------------------------------------------------------------------------------------

_UNCAUGHT = logging.getLogger("voice_agent.uncaught")


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
    _UNCAUGHT.critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    _UNCAUGHT.critical("uncaught exception in thread %s", thread, exc_info=exc_info)


def _unraisablehook(args: Any) -> None:
    # The default prints repr(args.object), which may be a PHI-holding object: only its type goes out.
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    what = args.err_msg or "exception ignored"
    _UNCAUGHT.error("%s in %s", what, type(args.object).__name__, exc_info=exc_info)


# --------------------------------------------------------------------------------------------------
# the set-up
# --------------------------------------------------------------------------------------------------


def configure_logging(settings: LoggingSettings, *, redactor: Redactor | None = None) -> None:
    """Route every log record of the process through one redacting stderr handler. Idempotent.

    Call it first thing at start-up (before pipecat or uvicorn log anything), and start uvicorn with
    ``log_config=None``. Calling it again replaces the previous set-up instead of adding to it.
    """
    redactor = redactor or Redactor()
    level = logging.getLevelName(settings.log_level)
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {settings.log_level!r}")

    handler = _StderrHandler()
    handler.addFilter(RedactingFilter(redactor, log_caller_speech=settings.log_caller_speech))
    handler.setFormatter(RedactingFormatter(redactor))

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    # uvicorn (and any library that attached a handler of its own) would bypass the redactor: their
    # handlers go and their records propagate to root. A logger silenced without handlers stays silent.
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    # httpx logs every request URL at INFO and httpcore every header at DEBUG: noise that carries ids and
    # dates. The FHIR gateway's own DEBUG line says method, type, status and time, with no URL.
    for name, quiet in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(quiet, level))
    for existing in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(existing, logging.Logger):
            continue
        removed = False
        for old in list(existing.handlers):
            if not isinstance(old, logging.NullHandler):
                existing.removeHandler(old)
                removed = True
        if removed or existing.name in UVICORN_LOGGERS:
            existing.propagate = True

    for name, number in _LOGURU_LEVELS.items():
        logging.addLevelName(number, name)
    _loguru.remove()
    _loguru.add(
        _forward_loguru,
        level=level,
        format="{message}",
        colorize=False,
        diagnose=False,
        backtrace=False,
        catch=False,
        enqueue=False,
    )

    logging.captureWarnings(True)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisablehook
