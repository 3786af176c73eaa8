"""What actually reaches stderr once ``configure_logging`` ran: no PHI, from any logging path."""

from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from collections.abc import Callable

import pytest
from loguru import logger

from voice_agent.privacy import CALLER_SPEECH, caller_speech_logger, known_names
from voice_agent.settings import Settings

Configure = Callable[..., Settings]  # the ``configure`` fixture (conftest.py)

NAME = "Zebulon Quixote-Marsh"
DOB = "02/29/1988"
PHONE = "(555) 867-5309"

#: kind -> (a log message holding PHI of that kind, fragments that must never be written)
CANARIES = {
    "name": (f"caller {NAME} verified", ("Zebulon", "Quixote", "Marsh")),
    "date": ("dob March 3rd, 1985 and 1988-02-29 and 29.02.1988", ("March 3rd", "1985", "02-29", "29.02")),
    "phone": (f"callback {PHONE} or +1 555 201 7788", ("867-5309", "201 7788")),
    "email": ("email zeb.quixote@example.org", ("zeb.quixote", "example.org")),
    "mrn": ("chart MRN-0012345 / A7654321", ("0012345", "7654321")),
    "address": ("home 742 Evergreen Terrace Apt 5, PO Box 99", ("Evergreen", "Box 99")),
    "ssn": ("ssn 123-45-6789", ("123-45-6789",)),
}
PATHS = ["stdlib", "uvicorn", "loguru"]


def emit(path: str, message: str) -> None:
    if path == "stdlib":
        logging.getLogger("voice_agent.test").debug("%s", message)
    elif path == "uvicorn":
        logging.getLogger("uvicorn.error").info(message)  # DEBUG there is quieted: WebSocket frames
    else:
        logger.debug(message)


def install_uvicorn_defaults() -> None:
    """What uvicorn's own LOGGING_CONFIG does: a private stderr handler and no propagation."""
    for name in ("uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.addHandler(logging.StreamHandler(sys.stderr))
        lg.propagate = False


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", sorted(CANARIES))
def test_each_phi_kind_is_redacted_on_every_logging_path(
    configure: Configure, capsys: pytest.CaptureFixture[str], kind: str, path: str
) -> None:
    install_uvicorn_defaults()
    configure(log_level="DEBUG")
    message, forbidden = CANARIES[kind]
    with known_names(NAME):
        emit(path, message)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # exactly one line: no second, raw copy from another handler
    assert f"[redacted:{kind}]" in err
    for fragment in forbidden:
        assert fragment not in err


def test_uvicorn_access_log_arguments_are_redacted_and_status_kept(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    install_uvicorn_defaults()
    configure(log_level="INFO")
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:51234",
        "GET",
        "/fhir/Patient?family=Quixote&phone=555-867-5309",
        "1.1",
        412,
    )
    err = capsys.readouterr().err
    assert "Quixote" not in err and "867" not in err
    assert (
        '127.0.0.1:51234 - "GET /fhir/Patient?family=[redacted:name]&phone=[redacted:phone] HTTP/1.1" 412'
        in err
    )


def test_technical_tokens_survive_logging(configure: Configure, capsys: pytest.CaptureFixture[str]) -> None:
    configure(log_level="DEBUG")
    line = (
        "session 123e4567-e89b-12d3-a456-426614174000 booked Slot/slot-okafor-20261124-0900 "
        "for Patient/pat-001: 412 Precondition Failed in 12.5 ms"
    )
    with known_names("Okafor"):
        logging.getLogger("voice_agent.test").info(line)
        logger.info(line)
    err = capsys.readouterr().err
    assert err.count(line) == 2


def test_exception_message_and_traceback_are_scrubbed(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="DEBUG")
    with known_names(NAME):
        try:
            try:
                raise KeyError(f"no record for {PHONE}")
            except KeyError as inner:
                raise ValueError(f"lookup failed for {NAME} born {DOB} phone {PHONE}") from inner
        except ValueError:
            logging.getLogger("voice_agent.test").exception("verification of %s failed", NAME)
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: lookup failed for [redacted:name]" in err
    assert "KeyError" in err  # the chained cause is there, scrubbed too
    for fragment in ("Zebulon", "Quixote", "1988", "867-5309"):
        assert fragment not in err


def test_loguru_exception_never_shows_local_variables(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="DEBUG")
    canary = "Ottoline Vandersloot"  # deliberately not a known name: only diagnose=False keeps it out

    def verify(spoken_name: str) -> None:
        raise ValueError("name mismatch" if spoken_name else "empty")

    # Control: with diagnose on, loguru prints the local's value, so the canary would leak.
    control = io.StringIO()
    control_id = logger.add(control, diagnose=True, backtrace=True, colorize=False)
    try:
        verify(canary)
    except ValueError:
        logger.exception("verification failed")
    logger.remove(control_id)
    assert canary in control.getvalue()

    err = capsys.readouterr().err
    assert "ValueError: name mismatch" in err and "Traceback" in err
    assert "Ottoline" not in err and "Vandersloot" not in err


# --- caller speech -------------------------------------------------------------------------------

#: Log lines in the shapes pipecat really emits (module, level, message).
PIPECAT_SPEECH = [
    ("pipecat.services.whisper.stt", "DEBUG", f"Transcription: [ my name is {NAME} born {DOB} ]"),
    (
        "pipecat.processors.logger",
        "DEBUG",
        f"> Frame: TranscriptionFrame#3(user: , text: [{NAME}], language: en, timestamp: 2026-11-24T09:00)",
    ),
    (
        "pipecat.observers.loggers.transcription_log_observer",
        "DEBUG",
        f"WhisperSTTService#0 → TRANSCRIPTION: '{NAME} {DOB}' from 'caller' at 3.21s",
    ),
    (
        "pipecat.services.openai.base_llm",
        "DEBUG",
        f"OpenAILLMService#0: Generating chat from context [{{'role': 'user', 'content': '{NAME} {PHONE}'}}]",
    ),
    (
        "pipecat.services.piper.tts",
        "DEBUG",
        f"PiperTTSService#0: Generating TTS [Thanks {NAME}, you're booked]",
    ),
    (
        "pipecat.observers.loggers.llm_log_observer",
        "DEBUG",
        f"→ OpenAILLMService#0 LLM MESSAGES FRAME: [{{'content': '{NAME}'}}] at 1.00s",
    ),
    ("pipecat.processors.frame_processor", "DEBUG", f"LLMTextFrame#9(pts: None, text: [{NAME}])"),
]


def pipecat_log(module: str, level: str, message: str) -> None:
    """Log through loguru from code whose ``__name__`` is a pipecat module, as pipecat itself does."""
    code = compile("logger.log(level, message)", f"<{module}>", "exec")
    exec(code, {"__name__": module, "logger": logger, "level": level, "message": message})


@pytest.mark.parametrize(("module", "level", "message"), PIPECAT_SPEECH)
def test_pipecat_caller_speech_is_dropped_by_default(
    configure: Configure, capsys: pytest.CaptureFixture[str], module: str, level: str, message: str
) -> None:
    configure(log_level="DEBUG")
    pipecat_log(module, level, message)
    pipecat_log("pipecat.services.whisper.stt", "DEBUG", "Loading Whisper model...")
    err = capsys.readouterr().err
    assert "Loading Whisper model..." in err  # other pipecat debug lines still flow
    assert "Zebulon" not in err and err.count("\n") == 1


@pytest.mark.parametrize(("module", "level", "message"), PIPECAT_SPEECH)
def test_pipecat_caller_speech_appears_redacted_only_when_enabled(
    configure: Configure, capsys: pytest.CaptureFixture[str], module: str, level: str, message: str
) -> None:
    configure(log_level="DEBUG", log_caller_speech=True)
    with known_names(NAME):
        pipecat_log(module, level, message)
    err = capsys.readouterr().err
    assert "[redacted:name]" in err
    for fragment in ("Zebulon", "Quixote", "1988", "867-5309"):
        assert fragment not in err


def test_our_caller_speech_convention_is_dropped_by_default(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="DEBUG")
    caller_speech_logger("voice_agent.dialogue").info("caller said %r", "I need to move my appointment")
    logging.getLogger("voice_agent.dialogue").info("heard: %s", "cancel it", extra=dict(CALLER_SPEECH))
    logger.bind(**CALLER_SPEECH).info("caller said: cancel it")
    logging.getLogger("voice_agent.dialogue").info("turn 3 handled")
    err = capsys.readouterr().err
    assert "appointment" not in err and "cancel" not in err
    assert "turn 3 handled" in err


def test_our_caller_speech_is_redacted_when_enabled(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="DEBUG", log_caller_speech=True)
    with known_names(NAME):
        caller_speech_logger("voice_agent.dialogue").info("caller said %r", f"I am {NAME}, {DOB}")
        logger.bind(**CALLER_SPEECH).info(f"caller said: my number is {PHONE}")
    err = capsys.readouterr().err
    assert "caller said 'I am [redacted:name], [redacted:date]'" in err
    assert "caller said: my number is [redacted:phone]" in err


# --- set-up mechanics ------------------------------------------------------------------------------


def test_configure_twice_leaves_one_handler_and_one_line(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="DEBUG")
    configure(log_level="INFO")
    assert len(logging.getLogger().handlers) == 1
    assert logging.getLogger().level == logging.INFO
    logging.getLogger("voice_agent.test").info("once")
    logging.getLogger("voice_agent.test").debug("hidden at INFO")
    logger.info("loguru once")
    logger.debug("loguru hidden at INFO")
    err = capsys.readouterr().err
    assert err.count("once") == 2 and err.count("\n") == 2
    assert "hidden" not in err


def test_uvicorn_loggers_propagate_without_handlers(configure: Configure) -> None:
    install_uvicorn_defaults()
    configure(log_level="INFO")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        assert lg.handlers == [] and lg.propagate


def test_uncaught_exceptions_go_through_the_redactor(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="INFO")
    try:
        raise RuntimeError(f"crash while calling {PHONE}")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())

    def worker() -> None:
        raise RuntimeError(f"thread crash, dob {DOB}")

    thread = threading.Thread(target=worker, name="stt")
    thread.start()
    thread.join()
    err = capsys.readouterr().err
    assert "uncaught exception" in err and "uncaught exception in thread stt" in err
    assert "crash while calling [redacted:phone]" in err and "thread crash, dob [redacted:date]" in err
    assert "867-5309" not in err and "1988" not in err


def test_unformattable_arguments_are_withheld(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_level="INFO")
    logging.getLogger("voice_agent.test").info("patient %s %s", "Zebulon")  # one argument short
    err = capsys.readouterr().err
    assert "log arguments withheld" in err and "Zebulon" not in err


def test_warnings_are_logged_redacted(configure: Configure, capsys: pytest.CaptureFixture[str]) -> None:
    configure(log_level="INFO")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"odd value {PHONE}", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "odd value [redacted:phone]" in err and "867-5309" not in err
