"""``voice-agent chat`` as outside tools drive it: a real process, stdin in, one line out per turn."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness.sandbox import Sandbox
from voice_agent.audit import generate_key_file
from voice_agent.sandbox.private import VOICE_AGENT


@pytest.fixture
def chat_env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "audit.key"
    generate_key_file(key)
    return {
        **sandbox.env,
        "VOICE_AGENT_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "VOICE_AGENT_AUDIT_KEY_FILE": str(key),
        "VOICE_AGENT_UNDERSTANDING": "rules",  # the hybrid's 30 s model warm-up is covered elsewhere
    }


def test_one_line_per_turn_and_exit_zero_on_goodbye(sandbox: Sandbox, chat_env: dict[str, str]) -> None:
    caller = sandbox.clinic.patient("hyphenated")
    turns = [
        "when is my next appointment",
        f"{caller.given} {caller.family}",
        caller.birth_date.strftime("%B %d %Y"),
        "no, that's all",
    ]
    done = subprocess.run(
        [VOICE_AGENT, "chat", "--caller-id", caller.phone, "--understanding", "rules"],
        input="\n".join(turns) + "\n",
        env=chat_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(turns) + 1  # the greeting, then exactly one line per caller turn
    assert lines[0].startswith("Thank you for calling")
    assert "upcoming appointment" in lines[3] and lines[-1].endswith("Goodbye.")
    assert caller.birth_date.isoformat() not in done.stderr


def test_end_of_input_is_a_hang_up(chat_env: dict[str, str]) -> None:
    done = subprocess.run(
        [VOICE_AGENT, "chat"],
        input="I want to book an appointment\n",
        env=chat_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2


def test_a_silent_caller_is_logged_off(chat_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [VOICE_AGENT, "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**chat_env, "VOICE_AGENT_SESSION_IDLE_TIMEOUT_SECONDS": "1"},
    )
    started = time.monotonic()
    try:
        process.wait(timeout=60)  # stdin stays open: nobody says anything, nobody hangs up
    finally:
        process.kill()
    assert process.stdout is not None and process.stdin is not None
    out = process.stdout.read()
    process.stdin.close()
    assert process.returncode == 0
    assert out.splitlines()[-1].startswith("I haven't heard anything for a while")
    assert time.monotonic() - started < 30


def test_a_bad_understanding_mode_is_refused(chat_env: dict[str, str]) -> None:
    done = subprocess.run(
        [VOICE_AGENT, "chat", "--understanding", "psychic"],
        input="",
        env=chat_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "rules, llm or hybrid" in done.stderr
