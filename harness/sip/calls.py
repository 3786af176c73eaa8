"""Phone calls through the SIP edge for the tests: the caller's side as a timeline (SIPp speaks, it cannot
listen), the calls placed with SIPp while tcpdump records the agent's RTP, and what each caller heard."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from harness import caller_audio
from harness.browser import Line, speaking_seconds, timeline
from harness.browser import said_at as script_said_at
from harness.scripted import PLAIN_NAMES, hear
from harness.sip import rtp
from harness.sip.edge import Edge, free_udp_port
from harness.sip.sipp import Caller, SippRun, run_calls
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.understanding import spoken
from voice_agent.pipeline.stt import Vocabulary, transcribe
from voice_agent.sandbox.clinic import SyntheticPatient
from voice_agent.settings import Settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: The greeting, from the moment the call is answered (a SIP call starts its pipeline at once): 8.5 s
#: of speech, which ``speaking_seconds`` puts at 11.
LEAD_SECONDS = 1 + speaking_seconds(templates.GREETING.format(clinic="the clinic"))
#: From the end of the caller's words to the agent's first audio (end of turn, Whisper, FHIR, the first
#: sentence from piper): 1.5-3 s for one call on two cores, 6 s before a list of free times.
TURN_SECONDS = 3.0
#: An appointment or a free time as the agent says it, to size the waits for replies that name one.
APPOINTMENT = "your annual physical with Dr. Sofía Hernández-Ruiz on Wednesday, December 30th at 10:30 AM"
OPENING = "Tuesday, December 29th at 10:30 AM with Dr. Sofía Hernández-Ruiz"
#: Silence before a caller's line as the server's turn may begin it (its voice detector's pre-roll).
PRE_ROLLS = (0.0, 0.25, 0.45)


def answered_within(reply: str, *, turn: float = TURN_SECONDS) -> float:
    """How long the caller waits after a line: the turn, the agent's reply, and a margin. Waiting too
    long only makes the call longer (no silence prompt: the tests' server waits 45 s); too short talks
    over the agent (barge-in) and the script and the call part ways."""
    return turn + speaking_seconds(reply) + 1.0


def spoken_birth_date(born: date) -> str:
    """ "July 14th 1962": without the comma, which piper turns into a pause long enough to end the turn."""
    return f"{born:%B} {speech.ordinal(born.day)} {born.year}"


def hearable_patients(
    patients: Sequence[SyntheticPatient],
    whisper: WhisperModel,
    vocabulary: Vocabulary,
    today: date,
    *,
    wanted: int,
) -> list[SyntheticPatient]:
    """The first ``wanted`` of ``patients`` whose name and spoken birth date the product's own Whisper
    hears exactly over G.711 (piper, to μ-law and back): a SIPp caller cannot repeat itself, so a misheard
    name would turn a booking into a failed verification. Plain English names come first
    (``PLAIN_NAMES``); over the telephone even some of those are not heard right ("Brandi Young")."""
    ordered = sorted(
        (p for p in patients if f"{p.given}{p.family}".isascii()),
        key=lambda p: f"{p.given} {p.family}" not in PLAIN_NAMES,
    )
    window = Settings().stt_window_seconds

    def heard(pcm: bytes) -> Iterator[str]:
        """As the server may get the line: after a turn's pre-roll of one length or another (lazily:
        the first mishearing settles it)."""
        for lead in PRE_ROLLS:
            phone = caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(caller_audio.silence(lead) + pcm))
            yield transcribe(whisper, phone, beam_size=1, vocabulary=vocabulary, window_seconds=window)

    found: list[SyntheticPatient] = []
    for start in range(0, len(ordered), 8):  # piper costs a process start: eight patients at a time
        batch = ordered[start : start + 8]
        lines = [f"{p.given} {p.family}." for p in batch] + [spoken_birth_date(p.birth_date) for p in batch]
        spoken_lines = caller_audio.piper_many(lines)
        names, dates = spoken_lines[: len(batch)], spoken_lines[len(batch) :]
        for patient, name, born in zip(batch, names, dates, strict=True):
            if any(_words(h) != _words(f"{patient.given} {patient.family}") for h in heard(name)):
                continue
            said = (spoken.spoken_numbers(spoken.fold(h)) for h in heard(born))
            if all(spoken.parse_birth_date(h, today)[0] == patient.birth_date for h in said):
                found.append(patient)
                if len(found) == wanted:
                    return found
    return found


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", " ", text.lower()).split()


def caller_speech(lines: Sequence[Line], *, lead_seconds: float = LEAD_SECONDS) -> bytes:
    return timeline(list(lines), lead_seconds=lead_seconds)


def said_at(lines: Sequence[Line], index: int, *, lead_seconds: float = LEAD_SECONDS) -> float:
    """When, from the answer, the caller of ``caller_speech(lines)`` starts saying ``lines[index]``."""
    return script_said_at(list(lines), index, lead_seconds=lead_seconds)


def after(pcm16k: bytes, seconds: float) -> bytes:
    """What the caller heard from ``seconds`` after the answer on (the capture starts at the answer)."""
    start = max(0, int(seconds * caller_audio.SAMPLE_RATE)) * 2
    return pcm16k[start:]


@dataclass
class PlacedCalls:
    run: SippRun
    heard: list[bytes]  # per call, in the callers' order: the agent's voice as the caller got it, 16 kHz

    def report(self) -> str:
        return self.run.report()


async def place_calls(
    directory: Path,
    edge: Edge,
    callers: Sequence[Caller],
    *,
    refer_reply: int = 202,
    transfer_result: str = "200 OK",
    timeout: float = 300,
    give_up_after: float | None = None,
) -> PlacedCalls:
    """Every caller at once through ``edge``; returns when all calls have ended (or SIPp timed out)."""
    directory.mkdir(parents=True, exist_ok=True)
    media_port = free_udp_port(even=True)
    pcap = directory / "agent-rtp.pcap"
    with rtp.Capture(pcap, media_port):
        run = await asyncio.to_thread(
            run_calls,
            directory / "sipp",
            edge.address,
            callers,
            sip_port=free_udp_port(),
            media_port=media_port,
            refer_reply=refer_reply,
            transfer_result=transfer_result,
            timeout=timeout,
            give_up_after=give_up_after,
        )
    heard = [
        rtp.heard(pcap, media_port, call.agent_rtp_port) if call.agent_rtp_port is not None else b""
        for call in run.calls
    ]
    for number, pcm in enumerate(heard, start=1):  # to listen to when a test fails
        caller_audio.write_wav(directory / f"heard-{number}.wav", pcm)
    return PlacedCalls(run, heard)


def said_in_order(heard: str, *words: str) -> bool:
    """Whether each of ``words`` was heard, each after the one before."""
    at = 0
    for word in words:
        at = heard.find(word, at)
        if at < 0:
            return False
        at += len(word)
    return True


async def heard_text(whisper: WhisperModel, pcm: bytes, vocabulary: Vocabulary) -> str:
    """What a caller heard of the agent (its RTP, decoded), as lower-case text."""
    return (await asyncio.to_thread(hear, whisper, pcm, vocabulary)).lower()
