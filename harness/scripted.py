"""A scripted caller over the fake carrier: hear the agent (the product's own Whisper), decide the next
line from what was heard, say it (synthesised speech) or key it (DTMF). Used by the end-to-end tests and
by ``bench/latency.py``."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from harness import caller_audio
from harness.sandbox import Sandbox
from harness.twilio_caller import TwilioCaller
from voice_agent.dialogue.understanding import spoken
from voice_agent.pipeline.stt import Vocabulary, transcribe
from voice_agent.sandbox.clinic import SyntheticPatient

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


#: Names a small English Whisper hears exactly from a synthetic voice (the roster also has "Zoë Lefèvre":
#: a real caller with such a name is why the keypad and the callback offer exist).
PLAIN_NAMES = ("David Young", "Emily Jackson", "Paul Evans", "Deborah Hughes", "Brenda Young", "Luis Reyes")


def plain_spoken_patient(sandbox: Sandbox) -> SyntheticPatient:
    pool = sandbox.clinic.patients_tagged("pool")
    plain = [p for p in pool if f"{p.given} {p.family}" in PLAIN_NAMES]
    return (plain or list(pool))[0]


@dataclass(frozen=True)
class Keys:
    """Key these on the phone's keypad instead of speaking."""

    digits: str


#: piper's phoneme length for a line said slowly: about a third longer than its default.
SLOW_LENGTH_SCALE = 1.3


@dataclass(frozen=True)
class Slowly:
    """Say this more slowly than usual: a second try at words the agent did not get the first time."""

    text: str
    length_scale: float = SLOW_LENGTH_SCALE


Line = str | Keys | Slowly
#: (what the agent's words must match, what the caller answers); None ends the script.
Rule = tuple[str, Line | None]


@dataclass
class Exchange:
    agent: str  # the agent's turn, as the product's own speech-to-text hears it
    caller: Line | None
    voice_to_voice: float | None  # end of the caller's previous line to the agent's first audio
    audio: bytes = field(default=b"", repr=False)  # the agent's turn as the caller received it (16 kHz)


@dataclass(frozen=True)
class Script:
    """The first rule whose pattern the agent's words match answers; ``NoAnswer`` if none does."""

    rules: Sequence[Rule]

    @property
    def lines(self) -> list[str | Slowly]:
        """What the caller may say, to synthesise before the call."""
        return [line for _, line in self.rules if isinstance(line, str | Slowly)]

    def __call__(self, heard: str) -> Line | None:
        for pattern, line in self.rules:
            if re.search(pattern, heard, re.IGNORECASE):
                return line
        raise NoAnswer(heard)


def answer_by(rules: Sequence[Rule]) -> Script:
    return Script(tuple(rules))


#: The agent reading back a spoken date of birth before the surname question ("I heard July 26th, 1956.").
_READ_BACK = re.compile(r"\bI heard (?P<date>.+?)[.,!?]*\s+(?:Could|Can|Would) you spell", re.IGNORECASE)


def correcting_read_back(
    script: Callable[[str], Line | None], born: date, said: str
) -> Callable[[str], Line | None]:
    """``script``, with the caller a person would be: when the agent reads back a date of birth that is
    not theirs (the line misheard it), they say theirs again (``said``) before anything else."""

    def answer(heard: str) -> Line | None:
        read_back = _READ_BACK.search(heard)
        if read_back is not None:
            text = spoken.spoken_numbers(spoken.fold(read_back["date"]))
            heard_date, _ = spoken.parse_birth_date(text, date.today())
            if heard_date is not None and heard_date != born:
                return f"No, it's {said}"
        return script(heard)

    return answer


class NoAnswer(AssertionError):
    """The script has no line for what the agent said."""


#: How the listener hears a turn, one way per try (a script with no answer for one hearing tries the
#: next): (sentence by sentence or the whole clip, beam size). tiny.en at beam 1 sometimes drops a
#: sentence (it stops early on a longer clip) and the same pass over the same audio drops it again, so
#: each try decodes differently.
HEARINGS: tuple[tuple[str, int], ...] = (("pieces", 1), ("pieces", 5), ("whole", 5))
#: Silence put either side of a piece: tiny.en often hears nothing, or half, of an unpadded short clip.
_PAD = bytes(int(0.2 * 16_000) * 2)


#: A turn is over after this much quiet from the agent: its sentences follow each other with pauses well
#: under a second (each is synthesised while the one before plays). If what was heard answers nothing,
#: the caller listens on for ``LISTEN_ON_SECONDS`` of quiet, for a sentence delayed under load.
QUIET_SECONDS = 1.5
LISTEN_ON_SECONDS = 3.0


def hear(whisper: WhisperModel, pcm: bytes, vocabulary: Vocabulary, attempt: int = 0) -> str:
    """The agent's turn as a listener hears it, the ``attempt``-th way of ``HEARINGS``: sentence by
    sentence (split at its pauses, each piece padded with silence), because tiny.en sometimes stops
    after the first sentence of a longer clip and drops the rest; or, last, the whole clip at once."""
    how, beam_size = HEARINGS[min(attempt, len(HEARINGS) - 1)]
    if how == "whole":
        return transcribe(whisper, _PAD + pcm + _PAD, beam_size=beam_size, vocabulary=vocabulary)
    heard = [
        transcribe(whisper, _PAD + piece + _PAD, beam_size=beam_size, vocabulary=vocabulary)
        for piece in pieces_of(pcm)
    ]
    return " ".join(h for h in heard if h)


def pieces_of(pcm: bytes) -> list[bytes]:
    """16 kHz int16 speech split at its pauses of 250 ms or more (each piece keeps 100 ms of its pause)."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    window = 160  # 10 ms at 16 kHz
    loud = [int(np.abs(samples[i : i + window]).max(initial=0)) > 500 for i in range(0, len(samples), window)]
    pieces, start, quiet = [], None, 0
    for index, is_loud in enumerate(loud + [False] * 30):
        if is_loud:
            start = index if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= 25:  # 250 ms of silence ends a piece
                pieces.append(samples[start * window : (index - quiet + 10) * window].tobytes())
                start, quiet = None, 0
    return pieces


def hear_until(
    whisper: WhisperModel,
    pcm: bytes,
    wanted: str | Callable[[str], bool],
    vocabulary: Vocabulary | None = None,
) -> str:
    """The agent's turn heard each way of ``HEARINGS`` in turn until what is heard is ``wanted`` (matches
    the pattern, case-insensitive, or passes the check); the last hearing if none is (for the failing
    assertion's message). A listener who did not catch it plays it again, listening differently."""
    heard = ""
    for attempt in range(len(HEARINGS)):
        heard = hear(whisper, pcm, vocabulary or Vocabulary(), attempt)
        if wanted(heard) if callable(wanted) else re.search(wanted, heard, re.IGNORECASE):
            break
    return heard


async def converse(
    caller: TwilioCaller,
    whisper: WhisperModel,
    answer: Callable[[str], Line | None],
    *,
    voice: Callable[[str], bytes] = caller_audio.piper,
    max_turns: int = 16,
    quiet: float = QUIET_SECONDS,
    vocabulary: Vocabulary | None = None,
) -> list[Exchange]:
    """Greeting first; then one caller line per agent turn until the script (or the agent) ends it. A
    ``Script``'s lines are synthesised first, so the caller answers as promptly as a person would."""
    after, ended_speech = time.monotonic(), None  # before synthesis: the greeting is already playing
    lines = answer.lines if isinstance(answer, Script) else []
    # piper's own lines in one run (a process start each would delay the first answer); any other voice
    # says every line, the pre-synthesised ones too
    spoken = await asyncio.to_thread(synthesise, lines, None if voice is caller_audio.piper else voice)
    exchanges: list[Exchange] = []
    for _ in range(max_turns):
        try:
            pcm = await caller.agent_turn(after=after, quiet=quiet)
        except TimeoutError:
            if caller.closed_at is not None:
                break
            raise
        first = caller.first_audio_after(after)
        v2v = first - ended_speech if first is not None and ended_speech is not None else None
        hearings: list[str] = []
        for attempt in range(len(HEARINGS)):
            heard = await asyncio.to_thread(hear, whisper, pcm, vocabulary or Vocabulary(), attempt)
            hearings.append(heard)
            try:
                line = answer(heard)
                break
            except NoAnswer:
                if attempt == len(HEARINGS) - 1:
                    raise NoAnswer(" | ".join(hearings)) from None
                # A pause inside the reply (a slow sentence under load): listen on, longer, then hear it
                # all again, another way (the same pass over the same audio would drop the same words).
                pcm = await caller.agent_turn(after=after, quiet=LISTEN_ON_SECONDS)
        exchanges.append(Exchange(heard, line, v2v, pcm))
        if line is None:
            break
        if isinstance(line, Keys):
            await caller.press(line.digits)
            after = ended_speech = time.monotonic()
        else:
            if line not in spoken:
                spoken |= await asyncio.to_thread(synthesise, [line], voice)
            audio = spoken[line]
            after = ended_speech = await caller.say(audio)
    return exchanges


def synthesise(
    lines: Sequence[str | Slowly], voice: Callable[[str], bytes] | None = None
) -> dict[str | Slowly, bytes]:
    """Each line's audio: plain lines in ``voice`` (default: piper, one run for all of them), slow ones
    by piper at their length scale."""
    plain = list(dict.fromkeys(line for line in lines if isinstance(line, str)))
    audio: dict[str | Slowly, bytes] = {}
    if voice is None:
        audio.update(zip(plain, caller_audio.piper_many(plain), strict=True))
    else:
        audio.update((line, voice(line)) for line in plain)
    for slow in dict.fromkeys(line for line in lines if isinstance(line, Slowly)):
        audio[slow] = caller_audio.piper(slow.text, length_scale=slow.length_scale)
    return audio
