"""SIPp as the PBX's callers: N simultaneous calls of ``scenarios/caller.xml`` through the edge, each with
its own voice (a WAV) and calling number, and what happened to each call read back from SIPp's logs.

SIPp (Debian's ``sip-tester``) reads a scenario's ``rtp_stream`` files when it loads it, so the caller
WAVs are ``caller1.wav`` .. ``caller8.wav`` in the run's directory and the injection file picks one per
call (field0), with the calling number (field1) and the dialled user (field2).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import caller_audio

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "caller.xml"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
MAX_CALLS = 8  # caller1.wav .. caller8.wav in the scenario


@dataclass(frozen=True)
class Caller:
    """One call: who calls (the From user part: a patient's number), what they say (16 kHz PCM, the
    whole call's timeline from the moment it is answered), and what they dial."""

    number: str
    speech: bytes
    dial: str = "clinic"


@dataclass
class CallOutcome:
    """What SIPp's <log> lines say about one call."""

    answered: bool = False
    agent_rtp_port: int | None = None
    reinvites: int = 0
    refer_to: str | None = None
    refer_answer: str | None = None
    transfer_reported: str | None = None
    bye_from_agent: bool = False
    ended: bool = False


@dataclass
class SippRun:
    returncode: int
    calls: list[CallOutcome]
    directory: Path
    media_port: int
    errors: str = ""
    timed_out: bool = False
    log_lines: list[str] = field(default_factory=list)

    def messages(self) -> str:
        """Every SIP message SIPp sent and received (-trace_msg), for a failure's message."""
        path = self.directory / "messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def report(self) -> str:
        return (
            f"sipp exit {self.returncode}{' (timed out)' if self.timed_out else ''}\n"
            + "\n".join(self.log_lines)
            + "\n--- errors ---\n"
            + self.errors[-4000:]
        )


def write_ulaw_wav(path: Path, ulaw: bytes) -> None:
    """A G.711 μ-law 8 kHz mono WAV (format 7, as SIPp's rtp_stream wants; Python's ``wave`` writes PCM
    only)."""
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)
    fact = struct.pack("<I", len(ulaw))
    pad = b"\0" if len(ulaw) % 2 else b""
    chunks = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(ulaw))
        + ulaw
        + pad
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(chunks)) + chunks)


def run_calls(
    directory: Path,
    edge: str,
    callers: Sequence[Caller],
    *,
    sip_port: int,
    media_port: int,
    refer_reply: int = 202,
    transfer_result: str = "200 OK",
    timeout: float = 300,
    give_up_after: float | None = None,
) -> SippRun:
    """All ``callers`` at once through ``edge`` ("host:port"): ``-m N -l N``; returns when every call has
    ended, or kills SIPp after ``timeout`` seconds. A REFER from the agent is answered ``refer_reply``
    (202 or 603) and, when accepted, reported done with ``transfer_result`` (a sipfrag status line). A
    call waits ``give_up_after`` seconds (default: ``timeout``) for any one message, the agent's BYE
    included, before it is abandoned as failed (as a phone gives up on a dead line)."""
    if not 1 <= len(callers) <= MAX_CALLS:
        raise ValueError(f"1 to {MAX_CALLS} calls at once")
    directory.mkdir(parents=True, exist_ok=True)
    for slot in range(1, MAX_CALLS + 1):  # SIPp loads every rtp_stream file of the scenario
        speech = callers[slot - 1].speech if slot <= len(callers) else caller_audio.silence(0.2)
        write_ulaw_wav(directory / f"caller{slot}.wav", caller_audio.to_ulaw_8k(speech))
    injection = directory / "callers.csv"
    injection.write_text(
        "SEQUENTIAL\n" + "".join(f"{i};{c.number};{c.dial}\n" for i, c in enumerate(callers, start=1))
    )
    n = str(len(callers))
    # fmt: off
    command = [
        SIPP, edge, "-sf", str(SCENARIO), "-inf", str(injection),
        "-i", "127.0.0.1", "-p", str(sip_port), "-mi", "127.0.0.1", "-mp", str(media_port),
        "-m", n, "-l", n, "-r", "10", "-nostdin",
        "-set", "refer_reply", str(refer_reply), "-set", "transfer_result", transfer_result,
        "-trace_err", "-error_file", str(directory / "errors.log"),
        "-trace_msg", "-message_file", str(directory / "messages.log"),
        "-trace_logs", "-log_file", str(directory / "calls.log"),
        "-timeout", f"{int(timeout)}s", "-timeout_error",
        "-recv_timeout", str(int((give_up_after or timeout) * 1000)),
    ]
    # fmt: on
    timed_out = False
    with (directory / "sipp.out").open("wb") as out:
        process = subprocess.Popen(command, cwd=directory, stdout=out, stderr=subprocess.STDOUT)
        try:
            returncode = process.wait(timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            timed_out = True
            process.kill()
            returncode = process.wait()
    log_lines = _read(directory / "calls.log").splitlines()
    return SippRun(
        returncode,
        outcomes(log_lines, len(callers)),
        directory,
        media_port,
        errors=_read(directory / "errors.log"),
        timed_out=timed_out,
        log_lines=log_lines,
    )


_LINE = re.compile(r"call (\d+) (\S+) ?(.*)$")


def outcomes(log_lines: Sequence[str], calls: int) -> list[CallOutcome]:
    """Each call's outcome, in injection-file order (SIPp numbers calls 1, 2, ... in that order)."""
    found = [CallOutcome() for _ in range(calls)]
    for line in log_lines:
        match = _LINE.search(line)
        if match is None or not 1 <= int(match[1]) <= calls:
            continue
        call, event, rest = found[int(match[1]) - 1], match[2], match[3].strip()
        if event == "answered":
            call.answered = True
            port = re.search(r"m=audio (\d+)", rest)
            call.agent_rtp_port = int(port[1]) if port else None
        elif event == "re-invite":
            call.reinvites += 1
        elif event == "refer-to":
            call.refer_to = rest.strip("<> ")
        elif event == "refer-answered":
            call.refer_answer = rest
        elif event == "transfer-reported":
            call.transfer_reported = rest
        elif event == "bye-from-agent":
            call.bye_from_agent = True
        elif event == "ended":
            call.ended = True
    return found


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
