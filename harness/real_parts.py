"""The real parts the suite drives instead of fakes, in one list: each with the check for it and how to get
it (a Debian package, or a ``voice-agent`` command that installs from pinned PyPI packages).

Two users, so they cannot drift apart: ``python -m tests.prepare`` (in README's test command, which
``.ci/run`` runs verbatim) installs whatever is absent; and the tests, which ask for parts with the
``needs(...)`` marker or ``require(...)`` in a fixture. An absent part skips its tests on a developer's
machine, and pytest's summary names every one that was absent; under CI (``CI`` set to anything but
empty, 0 or false, as CI services and ``.ci/run`` do) it fails them instead, since there it means the
preparation is broken and the green run would be a lie.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import pytest

#: The mark, the skip reason and the summary agree on this shape: ``[absent: a, b] how; how``.
ABSENT = re.compile(r"\[absent: ([^\]]+)\]")


@dataclass(frozen=True)
class Part:
    name: str
    present: Callable[[], bool]
    #: Why the suite needs it (for whoever wonders what a package is doing on their machine).
    why: str
    #: The Debian package that provides it...
    apt: str | None = None
    #: ...or the command (run from the project's virtualenv) that installs it.
    command: tuple[str, ...] | None = None
    #: False where it cannot exist (no build for this platform): then neither installed nor demanded.
    available: bool = True

    @property
    def how(self) -> str:
        if self.apt is not None:
            return f"apt-get install {self.apt}"
        return " ".join(self.command or ("(no installer)",))


def _program(name: str, *elsewhere: str) -> Callable[[], bool]:
    """On PATH, or in a directory a non-root PATH leaves out (kamailio, nginx live in /usr/sbin)."""
    return lambda: (
        shutil.which(name) is not None or any(os.access(Path(d) / name, os.X_OK) for d in elsewhere)
    )


def _postgres() -> bool:
    from harness.postgres import find_bindir

    return find_bindir() is not None


def _chromium() -> bool:
    chromium = Path("/usr/bin/chromium")  # harness/browser.py's: Playwright drives Debian's build
    return chromium.is_file() and os.access(chromium, os.X_OK)


def _llama_cpp(*modules: str) -> Callable[[], bool]:
    return lambda: all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", *modules))


def _models_dir() -> Path:
    """Where the agent (and so the tests' agents) looks for models: VOICE_AGENT_MODELS_DIR or its default."""
    from voice_agent.settings import Settings

    try:
        return Settings().models_dir
    except ValueError:  # settings the suite itself sets per test; the default is what they leave
        return Path.home() / ".cache" / "voice-agent" / "models"


def _model(kind: Literal["dialogue", "speech"], name: str) -> Callable[[], bool]:
    """A model verified in the models directory. A speech model is joined in there from the stt extra's
    packages, offline, where tests/voice/test_recognisers.py finds it instead of joining a copy of its
    own each run. A damaged file counts as absent: the installer replaces it."""

    def present() -> bool:
        from voice_agent import model_packages

        find: Callable[[Any, Path], Path | None] = (
            model_packages.find_dialogue_model if kind == "dialogue" else model_packages.find_speech_model
        )
        try:
            return find(name, _models_dir()) is not None
        except model_packages.ModelVerificationError:
            return False

    return present


RUNTIME = ("voice-agent", "models", "install", "--runtime", "--server")  # also the default 1.5B model
PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        # Debian packages (what .ci/run used to list itself)
        Part("openssl", _program("openssl"), "checks the development certificates", apt="openssl"),
        Part("postgresql", _postgres, "a real server for the audit trail and the workers", apt="postgresql"),
        Part(
            "chromium",
            _chromium,
            "the browser calls over WebRTC and the staff console, driven by Playwright (its own browser "
            "download is not used)",
            apt="chromium",
        ),
        Part("espeak-ng", _program("espeak-ng"), "synthetic caller voices", apt="espeak-ng"),
        Part("flite", _program("flite"), "more synthetic caller voices", apt="flite"),
        Part("sipp", _program("sipp", "/usr/sbin"), "the PBX's callers in the SIP tests", apt="sip-tester"),
        Part("kamailio", _program("kamailio", "/usr/sbin"), "deploy/sip's edge proxy", apt="kamailio"),
        Part("kamcmd", _program("kamcmd", "/usr/sbin"), "the edge proxy's control tool", apt="kamailio"),
        Part("tcpdump", _program("tcpdump", "/usr/sbin"), "what the SIP callers heard", apt="tcpdump"),
        Part("nginx", _program("nginx", "/usr/sbin"), "deploy/nginx in front of the workers", apt="nginx"),
        Part(
            "turnserver", _program("turnserver"), "coturn, judging the minted TURN credentials", apt="coturn"
        ),
        Part(
            "npm",
            _program("npm"),
            "installs Medplum's FHIR engine, the second test server (tests/fhir_engines)",
            apt="npm",
        ),
        Part(
            "systemd-analyze",
            _program("systemd-analyze"),
            "checks deploy/systemd's units offline",
            apt="systemd",
        ),
        # From pinned PyPI packages, by the agent's own installer (llama.cpp compiles once, ~7 min)
        Part("llama-cpp-python", _llama_cpp(), "the local dialogue model's runtime", command=RUNTIME),
        Part(
            "llama-cpp-python[server]",
            _llama_cpp("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"),
            "llama.cpp's OpenAI-compatible server, for the endpoint client",
            command=RUNTIME,
        ),
        Part(
            "qwen2.5-coder-1.5b",
            _model("dialogue", "qwen2.5-coder-1.5b"),
            "the default dialogue model (the hybrid conversations)",
            command=("voice-agent", "models", "install", "--model", "qwen2.5-coder-1.5b"),
        ),
        Part(
            "qwen2.5-coder-0.5b",
            _model("dialogue", "qwen2.5-coder-0.5b"),
            "the fast model the LLM plumbing tests use",
            command=("voice-agent", "models", "install", "--model", "qwen2.5-coder-0.5b"),
        ),
        Part(
            "whisper-base",
            _model("speech", "whisper-base"),
            "an optional speech-to-text engine",
            command=("voice-agent", "models", "install", "--stt", "whisper-base"),
        ),
        Part(
            "moonshine-base",
            _model("speech", "moonshine-base"),
            "an optional speech-to-text engine (its only wheel is for Linux x86-64)",
            command=("voice-agent", "models", "install", "--stt", "moonshine-base"),
            available=sys.platform == "linux" and platform.machine() == "x86_64",
        ),
    )
}


@functools.cache
def is_present(name: str) -> bool:
    """Checked once per process: none of these comes or goes during a run."""
    return PARTS[name].present()


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def absent(*names: str) -> list[str]:
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise KeyError(f"not a part in harness/real_parts.py: {', '.join(unknown)}")
    return [n for n in dict.fromkeys(names) if not is_present(n)]


def report_absent(*names: str) -> NoReturn:
    """Skip (locally) or fail (under CI) the current test for these absent parts."""
    hows = "; ".join(dict.fromkeys(PARTS[n].how for n in names if n in PARTS))
    text = f"[absent: {', '.join(names)}] {hows}"
    if under_ci() and all(PARTS[n].available for n in names if n in PARTS):
        pytest.fail(f"{text} (CI prepares every part: python -m tests.prepare)", pytrace=False)
    pytest.skip(text)


def require(*names: str) -> None:
    """In a fixture or test: go on only with these parts present."""
    missing = absent(*names)
    if missing:
        report_absent(*missing)


def needs(*names: str) -> pytest.MarkDecorator:
    """The marker form (also as a module's ``pytestmark``); checked when each test is set up."""
    for name in names:  # a misspelt name fails at import, not as a skip
        if name not in PARTS:
            raise KeyError(f"not a part in harness/real_parts.py: {name}")
    return pytest.mark.needs(*names)


# ------------------------------------------------------------------------------------- pytest hooks
# Registered by tests/conftest.py (which imports them).


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*parts): real parts (harness/real_parts.py) the test drives")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture starts: a fixture would fail on the missing part with a less useful message."""
    names = [name for mark in item.iter_markers("needs") for name in mark.args]
    if names:
        require(*names)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Every part that was absent in this run, with how many tests it cost and how to get it."""
    skipped: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        found = ABSENT.search(reason)
        if found:
            skipped.update(found.group(1).split(", "))
    if not skipped:
        return
    terminalreporter.section("real parts absent: their tests were skipped", sep="=", yellow=True)
    for name, count in sorted(skipped.items()):
        how = PARTS[name].how if name in PARTS else ""
        terminalreporter.line(f"{name}: {count} skipped ({how})")
    terminalreporter.line(
        "install them all: .venv/bin/python -m tests.prepare (README's test command runs it)"
    )
