"""Voice-to-voice latency over the telephony WebSocket: the end of the caller's speech to the first byte of
the agent's reply audio at the carrier, with the caller's audio paced in real time.

    .venv/bin/python bench/latency.py [--turns 50] [--concurrency 1,2,4,8] [--rounds 3] [--quick]
    .venv/bin/python bench/latency.py --sip [--concurrency 1,4] [--rounds 3] [--stagger S]

``BENCH_LOG_LEVEL=DEBUG`` with ``--workdir`` keeps the server's debug log, to see one turn's timeline.
``--sip`` times the SIP path instead (bench/sip_path.py): SIPp callers through kamailio to a worker with
SIP on, caller-side voice-to-voice from a capture of the RTP (bench/rtp_timing.py).

Starts its own private FHIR sandbox and its own ``voice-agent serve`` (rules understanding, INFO logging,
TLS), and calls it as a carrier would (harness/twilio_caller.py: Twilio's media-stream protocol). Each
call is a fixed script, since the dialogue is a deterministic state machine: the greeting, "When is my
next appointment?", the caller's name, their date of birth in words, the agent lists (or says there are
none), "No, that's all, goodbye." That is 4 measured turns per call. Every caller line is synthesised
(piper) before the first call, and the agent's audio is not transcribed while calls run, so nothing but
the calls competes for the CPU during measurement; afterwards, each call's replies are transcribed to
check that the call went as scripted (off-script calls are counted, not hidden).

First one call at a time until ``--turns`` turns are measured, then ``--concurrency`` simultaneous calls
(each line of the switchboard calls ``--rounds`` times back to back, with a different patient per line and
staggered starts). Per scenario: client-side p50/p95/max voice-to-voice; the server's own per-stage means
(GET /metrics before and after: turn detection, speech-to-text, dialogue, text-to-speech) and their share
of its mean voice-to-voice; audio dropouts (within an agent reply, the carrier had played everything it
had received and the next chunk came more than 100 ms late: silence the caller heard mid-reply); and how
often the fake carrier's own paced sender fell behind (a busy machine, not the agent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from pipecat.audio.utils import create_stream_resampler, pcm_to_ulaw, ulaw_to_pcm
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import caller_audio
from harness.scripted import PLAIN_NAMES
from harness.twilio_caller import AgentAudio, TwilioCaller, is_loud
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server
from voice_agent import wiring
from voice_agent.dialogue.understanding import spoken
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import Vocabulary, transcribe
from voice_agent.pipeline.vocabulary import clinic_vocabulary
from voice_agent.sandbox.clinic import SyntheticPatient
from voice_agent.sandbox.private import Sandbox, private_sandbox

STAGES = ("turn_detection", "stt", "dialogue", "tts")
#: The agent's reply has ended after this much quiet from it; then the caller says the next line.
QUIET = 1.5
#: A reply that has not started (or ended) this long after the caller's line is a failure.
REPLY_TIMEOUT = 60.0
#: Within a reply, the carrier ran out of audio for longer than this: the caller heard a dropout.
DROPOUT = 0.1
#: Concurrent lines start this far apart in total, so their turns do not all fall on the same moment.
STAGGER_SECONDS = 6.0

OPENING = "When is my next appointment?"
#: No commas: piper pauses ~0.3 s at one, longer than the VAD's 0.2 s stop, and "No, that's all," then
#: reads as a finished turn (the agent answers before the caller has finished, which times nothing). And no
#: "goodbye" at the end: smart-turn v3 puts piper's flat "...thank you goodbye." at ~0.5 (run to run, half
#: the time "unfinished"), so the turn waits out turn_max_pause_seconds (2.5 s) and the bench would time
#: that; "No that's all I needed." scores ~0.98. The agent's answer is the same goodbye.
CLOSING = "No that's all I needed."
#: A pause this long inside a line can end the caller's turn early (the server's VAD stop is 0.2 s).
LONGEST_PAUSE = 0.15
#: What each reply must contain (the agent's audio transcribed after the scenario), per caller line.
#: (tiny.en often drops the goodbye's last word, "Goodbye.", so its first words count too.)
EXPECTED = (r"\bname\b", r"\bbirth\b", r"\bverified\b", r"bye\b|thank you for calling")


# ---------------------------------------------------------------------------------------------- script


_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"),
    *("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
)
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth"}
_ORDINALS |= {"nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """0-99 in words: "twenty-four"."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def ordinal_words(n: int) -> str:
    """1-31 as a spoken ordinal: "twenty-fourth"."""
    head, dash, last = number_words(n).rpartition("-")
    last = _ORDINALS.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return head + dash + last


def year_words(year: int) -> str:
    """As people say years: "nineteen eighty-five", "nineteen oh five", "two thousand four", "twenty ten"."""
    century, rest = divmod(year, 100)
    if 2000 <= year < 2010:
        return "two thousand" + (f" {_ONES[rest]}" if rest else "")
    if rest == 0:
        return f"{number_words(century)} hundred"
    if rest < 10:
        return f"{number_words(century)} oh {_ONES[rest]}"
    return f"{number_words(century)} {number_words(rest)}"


def spoken_birth_date(born: date) -> str:
    """ "January twenty-fourth nineteen eighty-five": no comma, which piper turns into a pause long enough
    for the agent to take the date as said in pieces (and wait for the rest)."""
    return f"{born:%B} {ordinal_words(born.day)} {year_words(born.year)}"


def script(patient: SyntheticPatient) -> list[str]:
    return [OPENING, f"{patient.given} {patient.family}.", spoken_birth_date(patient.birth_date), CLOSING]


def candidates(sandbox: Sandbox) -> list[SyntheticPatient]:
    """Plain English names first (the names Whisper is known to hear exactly), then other plain ASCII
    names from the pool and from the patients with appointments (so some calls may hear a listing)."""
    clinic = sandbox.clinic
    pool, holders = clinic.patients_tagged("pool"), clinic.patients_tagged("with-appointments")
    plain = [p for name in PLAIN_NAMES for p in pool if f"{p.given} {p.family}" == name]
    simple = re.compile(r"[A-Z][a-z]+")
    others = [
        p
        for p in (*holders, *pool)
        if p not in plain
        and simple.fullmatch(p.given)
        and simple.fullmatch(p.family)
        and len(p.given) > 2
        and len(p.family) > 2
        and "same-name" not in p.tags
    ]
    # Interleave so the first few lines of the switchboard mix patients with and without appointments.
    mixed: list[SyntheticPatient] = []
    for index in range(max(len(plain), len(others))):
        mixed += plain[index : index + 1] + others[index : index + 1]
    return mixed


def longest_pause(pcm16k: bytes, *, threshold: int = 500) -> float:
    """The longest near-silence between the first and last loud 10 ms of 16 kHz PCM."""
    samples = np.abs(np.frombuffer(pcm16k, dtype=np.int16).astype(np.int32))
    windows = samples[: len(samples) // 160 * 160].reshape(-1, 160).max(axis=1) >= threshold
    loud = np.flatnonzero(windows)
    if len(loud) < 2:
        return 0.0
    return float((np.diff(loud).max() - 1) * 0.01)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", " ", text.lower()).split()


async def as_the_server_hears(pcm16k: bytes, lead: float) -> bytes:
    """A caller line the way the server's speech-to-text gets it: through the carrier's μ-law and back
    (pipecat's codecs, 20 ms at a time, as the fake carrier and the Twilio serializer do), after ``lead``
    seconds of the line's silence (the turn's pre-roll) and with the turn's 0.3 s of trailing silence."""
    ulaw = await pcm_to_ulaw(pcm16k, 16_000, 8_000, create_stream_resampler())
    resampler, out = create_stream_resampler(), [caller_audio.silence(lead)]
    for offset in range(0, len(ulaw), 160):
        out.append(await ulaw_to_pcm(ulaw[offset : offset + 160], 8_000, 16_000, resampler))
    return b"".join([*out, caller_audio.silence(0.3)])


#: Pre-rolls tried: Whisper tiny.en hears a name differently with a little more or less silence before it
#: ("Deborah Hughes" as "Debra Hughes"), and the server's pre-roll depends on when its VAD fired.
PRE_ROLLS = (0.0, 0.25, 0.45)


async def heard_patients(
    sandbox: Sandbox, patients: list[SyntheticPatient], audio: dict[str, bytes], wanted: int
) -> list[SyntheticPatient]:
    """The first ``wanted`` patients whose name and date of birth the product's own speech-to-text (with
    the clinic vocabulary) hears exactly over the telephone, whatever the pre-roll: decided before any
    call, so a mishearing seldom turns a measured call into a different conversation (the replies are
    checked afterwards all the same)."""
    async with wiring.gateway(sandbox.settings) as fhir:
        vocabulary = await clinic_vocabulary(wiring.scheduling(sandbox.settings, fhir))
    whisper = SpeechModels(sandbox.settings).whisper()
    today = sandbox.clinic.today

    async def hears(line: str, check: Callable[[str], bool]) -> bool:
        if longest_pause(audio[line]) >= LONGEST_PAUSE:
            return False
        for lead in PRE_ROLLS:
            pcm = await as_the_server_hears(audio[line], lead)
            heard = await asyncio.to_thread(transcribe, whisper, pcm, beam_size=1, vocabulary=vocabulary)
            if not check(heard):
                return False
        return True

    chosen = []
    for patient in patients:
        _, name, born, _ = script(patient)

        def same_name(heard: str, name: str = name) -> bool:
            return _words(heard) == _words(name)

        def same_date(heard: str, patient: SyntheticPatient = patient) -> bool:
            parsed, _ = spoken.parse_birth_date(spoken.spoken_numbers(spoken.fold(heard)), today)
            return parsed == patient.birth_date

        if await hears(name, same_name) and await hears(born, same_date):
            chosen.append(patient)
            if len(chosen) == wanted:
                break
    return chosen


# ---------------------------------------------------------------------------------------------- one call


@dataclass
class Reply:
    chunks: list[AgentAudio]

    def dropouts(self) -> list[float]:
        """Silences the caller heard inside this reply, as the carrier plays it: in arrival order, each
        chunk after the one before (or on arrival, if the carrier had nothing left to play)."""
        gaps, cursor = [], self.chunks[0].at
        for chunk in self.chunks:
            if chunk.at - cursor > DROPOUT:
                gaps.append(chunk.at - cursor)
            cursor = max(cursor, chunk.at) + len(chunk.ulaw) / 8000
        return gaps

    def ulaw(self) -> bytes:
        return b"".join(c.ulaw for c in self.chunks)


@dataclass
class Call:
    patient: SyntheticPatient
    v2v: list[float] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)  # the greeting first, then one per caller line
    unanswered: int = 0
    #: Lines the agent answered before the caller had finished them (it took a pause inside the line for
    #: the end of the turn): no voice-to-voice to time, so counted here instead.
    early: int = 0
    lag_resets: int = 0
    hung_up_by_agent: bool = False
    error: str | None = None


class Listener:
    """Waits for the end of the agent's replies without rescanning the whole call each time (the bench
    shares the machine with the server: its own CPU use is kept to the carrier's pacing)."""

    def __init__(self, caller: TwilioCaller) -> None:
        self.caller = caller
        self.loud: list[bool] = []

    def loud_between(self, start: float, end: float) -> bool:
        self._catch_up()
        return any(
            loud and start < c.at <= end for c, loud in zip(self.caller.received, self.loud, strict=False)
        )

    def _catch_up(self) -> int:
        received = self.caller.received
        while len(self.loud) < len(received):
            self.loud.append(is_loud(received[len(self.loud)].ulaw))
        return len(self.loud)

    async def reply(self, after: float) -> Reply:
        """The agent's reply that starts after ``after`` and ends with ``QUIET`` seconds of quiet."""
        received = self.caller.received
        deadline = time.monotonic() + REPLY_TIMEOUT
        index = self._catch_up()
        while index > 0 and received[index - 1].at > after:
            index -= 1
        first: int | None = None
        last: int | None = None
        while time.monotonic() < deadline:
            count = self._catch_up()
            for i in range(index, count):
                if self.loud[i]:
                    first = i if first is None else first
                    last = i
            index = count
            if last is not None and first is not None and time.monotonic() - received[last].at >= QUIET:
                return Reply(received[first : last + 1])
            if self.caller.closed_at is not None and first is None:
                break
            await asyncio.sleep(0.05)
        raise TimeoutError("the agent did not answer" if first is None else "the agent's reply did not end")


async def one_call(server: VoiceServer, patient: SyntheticPatient, audio: dict[str, bytes]) -> Call:
    result = Call(patient)
    url = f"{server.ws_url}/telephony/twilio"
    caller = TwilioCaller(url, server.ssl_context(), caller_number=patient.phone)
    try:
        async with caller:
            listener = Listener(caller)
            result.replies.append(await listener.reply(time.monotonic()))  # the greeting
            for line in script(patient):
                began = time.monotonic()
                ended = await caller.say(audio[line])
                early = listener.loud_between(began, ended)
                reply = await listener.reply(ended)
                result.replies.append(reply)
                first = caller.first_audio_after(ended)
                if early:
                    result.early += 1
                elif first is None:
                    result.unanswered += 1
                else:
                    result.v2v.append(first - ended)
            for _ in range(50):  # the agent ends the stream after its goodbye
                if caller.closed_at is not None:
                    break
                await asyncio.sleep(0.1)
            result.hung_up_by_agent = caller.closed_at is not None
    except (TimeoutError, OSError) as error:
        result.error = f"{type(error).__name__}: {error}"
    finally:
        result.lag_resets = caller.lag_resets
    return result


# ---------------------------------------------------------------------------------------------- scenarios


Snapshot = dict[str, tuple[float, float]]  # "v2v" and each stage: (sum of seconds, count)


def server_metrics(server: VoiceServer) -> Snapshot:
    with server.client() as client:
        text = client.get("/metrics").raise_for_status().text
    out: Snapshot = {}
    for family in text_string_to_metric_families(text):
        if family.name == "voice_agent_barge_ins":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("ingress") == "telephony":
                    out["barge_ins"] = (sample.value, 0.0)
            continue
        if family.name not in ("voice_agent_voice_to_voice_seconds", "voice_agent_stage_seconds"):
            continue
        for sample in family.samples:
            if family.name.endswith("voice_seconds"):
                if sample.labels.get("ingress") != "telephony":
                    continue
                key = "v2v"
            else:
                key = sample.labels["stage"]
            total, count = out.get(key, (0.0, 0.0))
            if sample.name.endswith("_sum"):
                out[key] = (total + sample.value, count)
            elif sample.name.endswith("_count"):
                out[key] = (total, count + sample.value)
    return out


@dataclass
class Scenario:
    name: str
    calls: list[Call]
    means: dict[str, float | None]  # the server's mean per stage and "v2v", over the scenario's turns
    server_turns: int
    load: tuple[float, float]  # 1-minute load average before and after
    seconds: float
    off_script: list[str] = field(default_factory=list)
    #: The bench's own event loop woke up this late (> DROPOUT): a dropout it timed then may be its own.
    stalls: list[float] = field(default_factory=list)
    #: The server heard the caller speak over the agent: the agent fell silent mid-reply for longer than
    #: QUIET, so the scripted caller took its reply as finished and said the next line.
    barge_ins: int = 0

    @property
    def v2v(self) -> list[float]:
        return [v for call in self.calls for v in call.v2v]

    @property
    def gaps(self) -> list[float]:
        return [g for call in self.calls for reply in call.replies for g in reply.dropouts()]


def difference(before: Snapshot, after: Snapshot) -> tuple[dict[str, float | None], int]:
    means: dict[str, float | None] = {}
    for key in ("v2v", *STAGES):
        total = after.get(key, (0.0, 0.0))[0] - before.get(key, (0.0, 0.0))[0]
        count = after.get(key, (0.0, 0.0))[1] - before.get(key, (0.0, 0.0))[1]
        means[key] = total / count if count else None
    turns = after.get("v2v", (0.0, 0.0))[1] - before.get("v2v", (0.0, 0.0))[1]
    return means, round(turns)


async def sequential(
    server: VoiceServer, patients: list[SyntheticPatient], audio: dict[str, bytes], turns: int
) -> list[Call]:
    calls: list[Call] = []
    while sum(len(c.v2v) for c in calls) < turns:
        call = await one_call(server, patients[len(calls) % len(patients)], audio)
        calls.append(call)
        if call.error and not call.v2v:
            break  # the agent is not answering: more calls will not change that
    return calls


async def concurrent(
    server: VoiceServer, patients: list[SyntheticPatient], audio: dict[str, bytes], lines: int, rounds: int
) -> list[Call]:
    async def line(index: int) -> list[Call]:
        await asyncio.sleep(index * STAGGER_SECONDS / lines)
        return [await one_call(server, patients[index], audio) for _ in range(rounds)]

    per_line = await asyncio.gather(*(line(i) for i in range(lines)))
    return [call for calls in per_line for call in calls]


def check_script(calls: list[Call], sandbox: Sandbox) -> list[str]:
    """After the scenario (nothing else running): did each call go as scripted? Its replies, transcribed
    with the product's own speech-to-text, must say what the script expects at each step."""
    whisper = SpeechModels(sandbox.settings).whisper()
    problems = []
    for call in calls:
        who = f"{call.patient.given} {call.patient.family}"
        if call.error:
            problems.append(f"{who}: {call.error}")
            continue
        for step, (pattern, reply) in enumerate(zip(EXPECTED, call.replies[1:], strict=False), start=1):
            pcm = caller_audio.from_ulaw_8k(reply.ulaw()) + caller_audio.silence(0.5)
            heard = transcribe(whisper, pcm, beam_size=1, vocabulary=Vocabulary())
            if not re.search(pattern, heard, re.IGNORECASE):
                problems.append(f"{who}, reply {step}: expected /{pattern}/, heard {heard!r}")
                break
        else:
            if not call.hung_up_by_agent:
                problems.append(f"{who}: the agent did not end the call after its goodbye")
    return problems


async def watch_loop(stalls: list[float]) -> None:
    """Records each time this process's event loop (the fake carriers) woke up more than DROPOUT late."""
    while True:
        asleep = time.monotonic()
        await asyncio.sleep(0.02)
        late = time.monotonic() - asleep - 0.02
        if late > DROPOUT:
            stalls.append(late)


async def scenario(
    name: str,
    server: VoiceServer,
    sandbox: Sandbox,
    patients: list[SyntheticPatient],
    audio: dict[str, bytes],
    *,
    turns: int = 0,
    lines: int = 0,
    rounds: int = 0,
) -> Scenario:
    load_before = os.getloadavg()[0]
    before = await asyncio.to_thread(server_metrics, server)
    stalls: list[float] = []
    watch = asyncio.create_task(watch_loop(stalls))
    started = time.monotonic()
    try:
        if turns:
            calls = await sequential(server, patients, audio, turns)
        else:
            calls = await concurrent(server, patients, audio, lines, rounds)
    finally:
        watch.cancel()
    seconds = time.monotonic() - started
    after = await asyncio.to_thread(server_metrics, server)
    load_after = os.getloadavg()[0]
    means, server_turns = difference(before, after)
    result = Scenario(name, calls, means, server_turns, (load_before, load_after), seconds, stalls=stalls)
    result.barge_ins = round(after.get("barge_ins", (0.0, 0.0))[0] - before.get("barge_ins", (0.0, 0.0))[0])
    result.off_script = await asyncio.to_thread(check_script, calls, sandbox)
    print(f"  {name}: {len(result.v2v)} turns in {seconds:.0f} s, load {load_before:.2f} -> {load_after:.2f}")
    for problem in result.off_script:
        print(f"    off script: {problem}")
    sys.stdout.flush()
    return result


# ---------------------------------------------------------------------------------------------- report


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def v2v_cells(result: Scenario) -> list[str]:
    values = result.v2v
    if not values:
        return ["0", "-", "-", "-"]
    return [
        str(len(values)),
        seconds(statistics.median(values)),
        seconds(percentile(values, 0.95)),
        seconds(max(values)),
    ]


def quality_cells(result: Scenario) -> list[str]:
    gaps = result.gaps
    off = len({p.split(":")[0].split(",")[0] for p in result.off_script})
    early, unanswered = sum(c.early for c in result.calls), sum(c.unanswered for c in result.calls)
    return [
        str(len(gaps)),
        f"{max(gaps) * 1000:.0f} ms" if gaps else "-",
        str(sum(c.lag_resets for c in result.calls)),
        f"{len(result.stalls)} (max {max(result.stalls) * 1000:.0f} ms)" if result.stalls else "0",
        f"{len(result.off_script)} in {off} patient(s)" if result.off_script else "0",
        f"{early} / {unanswered}",
        str(result.barge_ins),
    ]


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def report(single: Scenario, series: list[Scenario]) -> None:
    print("\n### One call at a time\n")
    values = single.v2v
    p50 = statistics.median(values) if values else None
    p95 = percentile(values, 0.95) if values else None
    target = (
        f"p50 ≤ 0.8 s: {verdict(p50 is not None and p50 <= 0.8)}; "
        f"p95 ≤ 1.3 s: {verdict(p95 is not None and p95 <= 1.3)}"
    )
    table(
        ["calls", "turns", "p50 s", "p95 s", "max s", "dropouts", "worst gap", "sender lag resets",
         "bench stalls", "off-script replies", "early / unanswered", "barge-ins",
         "load 1-min before→after", "target"],
        [[str(len(single.calls)), *v2v_cells(single), *quality_cells(single),
          f"{single.load[0]:.2f}→{single.load[1]:.2f}", target]],
    )  # fmt: skip
    print("\nWhere the server's time goes (its own clock: from the end of speech as its VAD saw it to the")
    print(f"first reply audio it sent; mean over {single.server_turns} turns):\n")
    total = single.means["v2v"]
    rows = []
    for stage in STAGES:
        mean = single.means[stage]
        share = f"{100 * mean / total:.0f}%" if mean is not None and total else "-"
        rows.append([stage, seconds(mean), share])
    rows.append(["voice-to-voice (server)", seconds(total), "100%" if total else "-"])
    client = statistics.mean(values) if values else None
    rows.append(["voice-to-voice (at the carrier)", seconds(client), ""])
    table(["stage", "mean s", "share"], rows)

    print("\n### Simultaneous calls\n")
    rows = []
    for result in series:
        lines = int(result.name.split()[0])
        values = result.v2v
        p50 = statistics.median(values) if values else None
        if lines == 1:
            target = f"p50 ≤ 0.8 s: {verdict(p50 is not None and p50 <= 0.8)}"
        elif lines == 4:
            target = f"p50 ≤ 1.2 s: {verdict(p50 is not None and p50 <= 1.2)}"
        elif lines == 8:
            target = f"no dropouts: {verdict(not result.gaps)}"
        else:
            target = ""
        stage_means = " / ".join(seconds(result.means[s]) for s in STAGES)
        rows.append([
            str(lines), str(len(result.calls)), *v2v_cells(result), seconds(result.means["v2v"]), stage_means,
            *quality_cells(result), f"{result.load[0]:.2f}→{result.load[1]:.2f}", target,
        ])  # fmt: skip
    table(
        ["simultaneous", "calls", "turns", "p50 s", "p95 s", "max s", "server mean s",
         "turn det / stt / dialogue / tts mean s", "dropouts", "worst gap", "sender lag resets",
         "bench stalls", "off-script replies", "early / unanswered", "barge-ins",
         "load 1-min before→after", "target"],
        rows,
    )  # fmt: skip
    print(
        "\nvoice-to-voice at the carrier: the end of the caller's speech (its synthesised line, less the"
        " line's trailing silence) to the first non-silent agent audio received. Dropouts: within a reply,"
        f" the carrier had played all it had received and the next chunk came > {DROPOUT * 1000:.0f} ms"
        " later (greetings included). Sender lag resets: the fake carrier's own 20 ms pacing fell behind"
        " (the bench machine was busy). Bench stalls: the bench's event loop woke > 100 ms late, so a"
        " dropout then may be the bench's, not the agent's. Off-script: a reply, transcribed after the"
        " scenario, that was not the one the script expects (its turns still count). Early: the agent"
        " answered before the caller had finished the line (it took a pause inside it for the end of the"
        " turn); unanswered: no reply at all. Neither has a voice-to-voice time. Barge-ins (the server's"
        " count): the agent fell silent mid-reply for longer than the caller's 1.5 s wait, so the caller"
        " spoke over the rest of it (the reply is then timed and checked only up to that silence)."
    )


# ---------------------------------------------------------------------------------------------- main


async def run(
    sandbox: Sandbox, server: VoiceServer, turns: int, concurrency: list[int], rounds: int, dump: Path | None
) -> None:
    wanted = max([*concurrency, 1])
    pool = candidates(sandbox)
    started = time.monotonic()
    audio: dict[str, bytes] = {}
    patients: list[SyntheticPatient] = []
    for offset in range(0, len(pool), wanted + 2):  # a few spare, in case one is misheard
        group = pool[offset : offset + wanted + 2]
        lines = sorted({line for p in group for line in script(p)} - audio.keys())
        audio |= dict(zip(lines, await asyncio.to_thread(caller_audio.piper_many, lines), strict=True))
        patients += await heard_patients(sandbox, group, audio, wanted - len(patients))
        if len(patients) >= wanted:
            break
    for line in (OPENING, CLOSING):
        if longest_pause(audio[line]) >= LONGEST_PAUSE:
            raise SystemExit(f"piper paused {longest_pause(audio[line]):.2f} s inside {line!r}: reword it")
    print(
        f"synthesised {len(audio)} caller lines; chose {len(patients)} patient(s) whose names and birth dates"
        f" are heard exactly, in {time.monotonic() - started:.0f} s: "
        + ", ".join(f"{p.given} {p.family}" for p in patients)
    )
    if len(patients) < wanted:
        raise SystemExit(f"only {len(patients)} patients are heard exactly; {wanted} simultaneous calls need")

    # Not measured: first-call costs (the clinic directory, caches).
    warm = await one_call(server, patients[0], audio)
    if warm.error:
        raise SystemExit(f"the warm-up call failed ({warm.error}); server log: {server.log}")
    print("scenarios:")
    single = await scenario("1 call, sequential", server, sandbox, patients, audio, turns=turns)
    series = [
        await scenario(f"{n} simultaneous", server, sandbox, patients, audio, lines=n, rounds=rounds)
        for n in concurrency
    ]
    report(single, series)
    if dump is not None:
        dump.write_text(json.dumps([raw(result) for result in (single, *series)], indent=1))
        print(f"\nper-call numbers: {dump}")


def raw(result: Scenario) -> dict[str, object]:
    return {
        "scenario": result.name,
        "seconds": round(result.seconds, 1),
        "load": result.load,
        "server_means": result.means,
        "server_turns": result.server_turns,
        "off_script": result.off_script,
        "bench_stalls": [round(x, 3) for x in result.stalls],
        "barge_ins": result.barge_ins,
        "calls": [
            {
                "patient": f"{c.patient.given} {c.patient.family}",
                "v2v": [round(v, 3) for v in c.v2v],
                "early": c.early,
                "unanswered": c.unanswered,
                "dropouts": [round(g, 3) for r in c.replies for g in r.dropouts()],
                "reply_seconds": [round(r.chunks[-1].at - r.chunks[0].at, 2) for r in c.replies],
                "lag_resets": c.lag_resets,
                "error": c.error,
            }
            for c in result.calls
        ],
    }


@contextlib.contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
    else:
        with tempfile.TemporaryDirectory(prefix="latency-bench-") as temp:
            yield Path(temp)


def run_sip_path(concurrency: str, rounds: int, folder: str | None, stagger: float = 0.0) -> None:
    from bench.sip_path import HEADER, run_sip

    lines = [int(n) for n in concurrency.split(",") if n.strip()]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with workdir(folder) as work, private_sandbox(work / "sandbox") as sandbox:
        results = asyncio.run(
            run_sip(
                sandbox,
                work,
                lines,
                rounds,
                opening=OPENING,
                closing=CLOSING,
                spoken_birth_date=spoken_birth_date,
                candidates=candidates(sandbox),
                stagger=stagger,
            )
        )
    print(f"\nSIP (caller side, from the RTP capture; callers {stagger:g} s apart):")
    table(HEADER, [result.row() for result in results])
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=50, help="measured turns, one call at a time")
    parser.add_argument("--concurrency", default="1,2,4,8", help="simultaneous calls per scenario")
    parser.add_argument("--rounds", type=int, default=3, help="calls per line in each concurrency scenario")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 turns, concurrency 1,2")
    parser.add_argument("--workdir", help="keep the sandbox, the server's files and its log here")
    parser.add_argument("--json", type=Path, help="also write per-call numbers here")
    parser.add_argument(
        "--sip", action="store_true", help="the SIP path instead: SIPp through kamailio (--concurrency 1,4)"
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="--sip: seconds between callers' starts (0: all at once, the worst case)",
    )
    args = parser.parse_args()
    if args.sip:
        concurrency = args.concurrency if args.concurrency != "1,2,4,8" else "1,4"
        run_sip_path(concurrency, args.rounds, args.workdir, args.stagger)
        return
    if args.quick:
        args.turns, args.concurrency, args.rounds = 10, "1,2", 1
    concurrency = [int(n) for n in args.concurrency.split(",") if n.strip()]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with workdir(args.workdir) as work, private_sandbox(work / "sandbox") as sandbox:
        server = start_voice_server(
            sandbox, work / "server", VOICE_AGENT_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO")
        )
        print(f"server log: {server.log}")
        try:
            asyncio.run(run(sandbox, server, args.turns, concurrency, args.rounds, args.json))
        finally:
            stop_voice_server(server)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
