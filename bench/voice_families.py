"""Voice-to-voice latency and identity verification per caller-voice family, and eight calls at once
(issue 16, items 5 and 7).

    .venv/bin/python bench/voice_families.py
        [--families piper-joe,piper-other,espeak,flite-slt,flite-kal,flite-awb,flite-rms] [--calls 6]
        [--concurrency 0|8] [--concurrency-families mixed|FAMILY,...] [--json F] [--audit F] [--workdir D]

Starts its own private FHIR sandbox and ``voice-agent serve`` (rules understanding, INFO logging, TLS;
harness/voice_server.py) and calls it as Twilio would (harness/twilio_caller.py). Each call is made by
a freshly planted synthetic patient (harness/canary.py: random birth date), half with common English names,
half with names the agent was not tuned on. The caller is reactive: it hears each agent turn and answers
by regex (the rules of tests/voice/test_uncommon_callers.py, asking "When is my next appointment?"): the
name, the date of birth in words, the surname and the first name keyed on the keypad (one press per
letter, then #) when asked to spell, and "No that's all I needed." when asked for anything else
(bench/latency.py's CLOSING: a line smart-turn takes as finished).

The caller's hearing is made cheap, since it runs in this process beside the calls and shares the 2
cores with the agent: one Whisper tiny.en pass at beam 1 over the first 3 s and the last 3 s of the
agent's turn (joined by 0.3 s of silence; every question is at the end of a turn, every "verified" or
refusal at its start), and only if the script has no answer for that does it fall back to
harness/scripted.py's full hearings (sentence by sentence, beam 5). Hearings are serialised by a lock
and their CPU (this process's rusage while one runs) is reported apart from the rest of the bench.

Per family (``--calls`` sequential calls): share verified (the agent said "verified"), extra identity
turns (identity questions beyond the name and the date of birth: spelling, first name, asked again),
refusals ("couldn't verify"), caller-side voice-to-voice p50/p95 over spoken lines (end of the caller's
speech to the first loud agent audio) and over keyed lines (the # to the first agent audio), the server's
per-stage means and turn ends by smart_turn/answer/max_pause (/metrics before and after), dropouts
> 100 ms (bench/latency.py's ``Reply.dropouts``) and the CPU seconds of the server process tree (the
agent and its piper server), of the FHIR sandbox, and of this bench (all, and its hearing alone).
``--concurrency 8``: eight calls at once (starts 0.75 s apart), one family per line (``mixed``) or one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import (
    CLOSING,
    OPENING,
    STAGES,
    STAGGER_SECONDS,
    Listener,
    percentile,
    spoken_birth_date,
    table,
    workdir,
)
from fhir_adapters.keypad import keypad_digits
from harness import caller_audio
from harness.canary import plant_canary
from harness.scripted import (
    HEARINGS,
    Keys,
    Line,
    NoAnswer,
    Slowly,
    answer_by,
    correcting_read_back,
    hear,
)
from harness.twilio_caller import TwilioCaller
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import Vocabulary, transcribe
from voice_agent.sandbox.private import Sandbox, private_sandbox

CLK = os.sysconf("SC_CLK_TCK")

FAMILIES: dict[str, Callable[[list[str]], list[bytes]]] = {
    "piper-joe": lambda lines: caller_audio.piper_many(lines),
    "piper-other": lambda lines: caller_audio.piper_many(lines, length_scale=1.2),
    "espeak": lambda lines: [caller_audio.espeak(line) for line in lines],
    **{
        f"flite-{v}": partial(lambda lines, v: [caller_audio.flite(line, voice=v) for line in lines], v=v)
        for v in ("slt", "kal", "awb", "rms")
    },
}

#: (given, family, as the caller says it). Common names alternate with uncommon ones.
COMMON = [
    ("John", "Smith", "John Smith."),
    ("Mary", "Johnson", "Mary Johnson."),
    ("Robert", "Brown", "Robert Brown."),
    ("Linda", "Davis", "Linda Davis."),
    ("James", "Wilson", "James Wilson."),
    ("Susan", "Miller", "Susan Miller."),
]
UNCOMMON = [
    ("Siobhan", "Okonkwo", "Siobhan Okonkwo."),
    ("Minh Anh", "Nguyen", "Minh Anh Nguyen."),
    ("Gretchen", "Van der Linde", "Gretchen Van der Linde."),
    ("Oluwaseun", "Adeyemi", "Oluwaseun Adeyemi."),
    ("Thi Mai", "Nguyen", "Nguyen Thi Mai."),  # said family name first, as in Vietnamese
    ("Padraig", "O'Sullivan", "Padraig O'Sullivan."),
]
NAMES = [n for pair in zip(COMMON, UNCOMMON, strict=True) for n in pair]

HEAD = TAIL = 3.0  # seconds of the agent's turn the cheap hearing transcribes at each end
QUIET = 1.5
IDENTITY = r"first and last name|your name|birth|spell|key it|keypad|letter by letter|one press"
GAVE_UP = r"trouble understanding|call you back"
REFUSAL = r"couldn.?t verify|wasn.?t able to verify|not able to verify|unable to verify"


def caller_script(given: str, family: str, said: str, born: date) -> Callable[[str], Line | None]:
    script = answer_by(
        [
            (r"how can i help|help you today|scheduling assistant", OPENING),
            (REFUSAL, None),  # a refusal ends this caller's try
            (GAVE_UP, None),  # so does the agent's offer of a callback
            # after a date it did not get, the agent offers the keypad: the caller keys it (MMDDYYYY#)
            (
                r"didn.t get that da|key it in as month|key your date|digits for the month",
                Keys(f"{born:%m%d%Y}#"),
            ),
            (r"your first name\W|first name, letter", Keys(keypad_digits(given) + "#")),
            (r"spell|key it|keypad|one press", Keys(keypad_digits(family) + "#")),
            (r"first and last name|your name", said),
            (r"birth", spoken_birth_date(born)),
            (r"anything else", CLOSING),
            (r"bye\b|for calling", None),
        ]
    )
    return correcting_read_back(script, born, spoken_birth_date(born))


# ---------------------------------------------------------------------------------------------- CPU


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime seconds) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK


def tree_cpu(root: int, exclude: int | None = None) -> float:
    """CPU seconds of ``root`` and its live descendants (not under ``exclude``)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        if pid == exclude or pid not in stats:
            continue
        if pid != root or root != os.getpid():
            total += stats[pid][1]
        frontier += [p for p, (ppid, _) in stats.items() if ppid == pid]
    return total


def sandbox_cpu(work: Path) -> float:
    """The FHIR sandbox runs detached (its own session, reparented to init): found by its working
    directory, inside this bench's work directory."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(work.resolve()) + "/sandbox"):
            stat = _stat(int(entry))
            total += stat[1] if stat else 0.0
    return total


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cpu:
    server: float
    sandbox: float  # this bench's other children: the FHIR sandbox (and any synthesis run meanwhile)
    bench: float
    hearing: float

    @classmethod
    def now(cls, server: VoiceServer, hearing: float) -> Cpu:
        pid = server.process.pid
        return cls(tree_cpu(pid), sandbox_cpu(server.product.parent), self_cpu(), hearing)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(*(a - b for a, b in zip(vars(self).values(), vars(other).values(), strict=True)))


# ---------------------------------------------------------------------------------------------- hearing


class Ear:
    """The caller's hearing: cheap first, the full hearings of harness/scripted.py on a miss."""

    def __init__(self, whisper: Any) -> None:
        self.whisper = whisper
        self.lock = threading.Lock()
        self.cpu = 0.0
        self.cheap = 0
        self.full = 0

    def _timed(self, work: Callable[[], str]) -> str:
        with self.lock:
            before = self_cpu()
            try:
                return work()
            finally:
                self.cpu += self_cpu() - before

    def quick(self, pcm: bytes) -> str:
        self.cheap += 1
        head, tail = int(HEAD * 16_000) * 2, int(TAIL * 16_000) * 2
        clip = pcm if len(pcm) <= head + tail + 9600 else pcm[:head] + caller_audio.silence(0.3) + pcm[-tail:]
        pad = caller_audio.silence(0.2)
        return self._timed(
            lambda: transcribe(self.whisper, pad + clip + pad, beam_size=1, vocabulary=Vocabulary())
        )

    def thorough(self, pcm: bytes, attempt: int) -> str:
        self.full += 1
        return self._timed(lambda: hear(self.whisper, pcm, Vocabulary(), attempt))


# ---------------------------------------------------------------------------------------------- one call


@dataclass
class Call:
    family: str
    name: str
    uncommon: bool
    heard: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    v2v_spoken: list[float] = field(default_factory=list)
    v2v_keyed: list[float] = field(default_factory=list)
    dropouts: list[float] = field(default_factory=list)
    early: int = 0
    verified: bool = False
    refused: bool = False
    gave_up: bool = False  # the agent offered a callback (too many turns it could not understand)
    identity_turns: int = 0
    completed: bool = False  # heard its answer (verified, then the goodbye)
    fallbacks: int = 0
    error: str | None = None
    patient_id: str = ""
    audit: list[str] = field(default_factory=list)  # the audit trail's verify-identity events for the patient

    @property
    def extra_identity(self) -> int:
        return max(0, self.identity_turns - 2)


async def one_call(
    server: VoiceServer,
    ear: Ear,
    family: str,
    who: tuple[str, str, str],
    patient: dict[str, str],
    audio: dict[str, bytes],
    uncommon: bool,
) -> Call:
    given, surname, said = who
    born = date.fromisoformat(patient["CANARY_DOB"])
    script = caller_script(given, surname, said, born)
    result = Call(family, f"{given} {surname}", uncommon, patient_id=patient["id"])
    caller = TwilioCaller(
        f"{server.ws_url}/telephony/twilio", server.ssl_context(), caller_number=patient["CANARY_PHONE"]
    )
    try:
        async with caller:
            listener = Listener(caller)
            after: float = time.monotonic()
            ended: float | None = None
            keyed = False
            for _ in range(14):
                try:
                    reply = await listener.reply(after)
                except TimeoutError:
                    if caller.closed_at is not None:
                        break
                    raise
                first = reply.chunks[0].at
                if ended is not None:
                    (result.v2v_keyed if keyed else result.v2v_spoken).append(first - ended)
                pcm = caller_audio.from_ulaw_8k(reply.ulaw())
                heard = await asyncio.to_thread(ear.quick, pcm)
                line: Line | None
                try:
                    line = script(heard)
                except NoAnswer:
                    line = None
                    for attempt in range(len(HEARINGS)):
                        result.fallbacks += 1
                        # a pause inside the reply: listen on, then hear it all another way
                        await asyncio.sleep(0.5)
                        reply = await listener.reply(after)
                        pcm = caller_audio.from_ulaw_8k(reply.ulaw()) + caller_audio.silence(0.5)
                        heard = await asyncio.to_thread(ear.thorough, pcm, attempt)
                        try:
                            line = script(heard)
                            break
                        except NoAnswer:
                            if attempt == len(HEARINGS) - 1:
                                raise
                result.heard.append(heard)
                result.dropouts += reply.dropouts()
                lowered = heard.lower()
                if re.search(REFUSAL, lowered):
                    result.refused = True
                elif re.search(GAVE_UP, lowered) and not result.verified:
                    result.gave_up = True
                elif "verified" in lowered:
                    result.verified = True
                if not result.verified and not result.refused and re.search(IDENTITY, lowered):
                    result.identity_turns += 1
                if line is None:
                    result.completed = result.verified and not result.refused
                    break
                if isinstance(line, Slowly):
                    line = line.text
                result.said.append(line.digits if isinstance(line, Keys) else line)
                if isinstance(line, Keys):
                    await caller.press(line.digits[:-1])
                    await caller.press(line.digits[-1], gap=0.0)
                    after = ended = time.monotonic()
                    keyed = True
                else:
                    began = time.monotonic()
                    ended = await caller.say(audio[line])
                    if listener.loud_between(began, ended):
                        result.early += 1
                        ended = None  # the agent spoke over the line: no voice-to-voice to time
                    after = caller.speech_ended or time.monotonic()
                    keyed = False
            else:
                result.error = "no goodbye after 14 agent turns"
    except (TimeoutError, OSError, NoAnswer) as error:
        result.error = f"{type(error).__name__}: {str(error)[:200]}"
    return result


# ---------------------------------------------------------------------------------------------- metrics


def server_snapshot(server: VoiceServer) -> dict[str, float]:
    with server.client() as client:
        text = client.get("/metrics").raise_for_status().text
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if fam.name == "voice_agent_turn_ends":
                if s.name.endswith("_total"):
                    key = f"ends:{s.labels.get('by')}"
                    out[key] = out.get(key, 0.0) + s.value
            elif fam.name in ("voice_agent_voice_to_voice_seconds", "voice_agent_stage_seconds"):
                if fam.name.startswith("voice_agent_voice") and s.labels.get("ingress") != "telephony":
                    continue
                key = "v2v" if fam.name.startswith("voice_agent_voice") else s.labels["stage"]
                if s.name.endswith("_sum"):
                    out[f"{key}:sum"] = out.get(f"{key}:sum", 0.0) + s.value
                elif s.name.endswith("_count"):
                    out[f"{key}:count"] = out.get(f"{key}:count", 0.0) + s.value
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after.keys() | before.keys()}
    out: dict[str, float | None] = {}
    for key in ("v2v", *STAGES):
        count = d.get(f"{key}:count", 0.0)
        out[key] = d.get(f"{key}:sum", 0.0) / count if count else None
    out["server_turns"] = d.get("v2v:count", 0.0)
    for by in ("smart_turn", "answer", "max_pause"):
        out[f"ends:{by}"] = d.get(f"ends:{by}", 0.0)
    return out


@dataclass
class Run:
    name: str
    calls: list[Call]
    server: dict[str, float | None]
    cpu: Cpu
    seconds: float
    load: tuple[float, float]
    hearings: tuple[int, int]


# ---------------------------------------------------------------------------------------------- runs


def plant(sandbox: Sandbox, picks: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    return [plant_canary(sandbox, given, family) for given, family, _ in picks]


async def synthesise(
    family: str, picks: list[tuple[str, str, str]], patients: list[dict[str, str]]
) -> dict[str, bytes]:
    lines = [OPENING, CLOSING]
    for (_, _, said), patient in zip(picks, patients, strict=True):
        lines += [said, spoken_birth_date(date.fromisoformat(patient["CANARY_DOB"]))]
    lines = list(dict.fromkeys(lines))
    return dict(zip(lines, await asyncio.to_thread(FAMILIES[family], lines), strict=True))


async def measured(name: str, server: VoiceServer, ear: Ear, work: Callable[[], Any]) -> Run:
    load0 = os.getloadavg()[0]
    before = await asyncio.to_thread(server_snapshot, server)
    cpu0 = Cpu.now(server, ear.cpu)
    hearings0 = (ear.cheap, ear.full)
    started = time.monotonic()
    calls = await work()
    seconds = time.monotonic() - started
    cpu = Cpu.now(server, ear.cpu) - cpu0
    after = await asyncio.to_thread(server_snapshot, server)
    run = Run(name, calls, delta(before, after), cpu, seconds, (load0, os.getloadavg()[0]),
              (ear.cheap - hearings0[0], ear.full - hearings0[1]))  # fmt: skip
    cpus = f"cpu server {cpu.server:.0f} s, bench {cpu.bench:.0f} s"
    print(f"  {name}: {len(calls)} calls in {seconds:.0f} s; {cpus}")
    for call in calls:
        status = (
            "verified"
            if call.verified
            else ("REFUSED" if call.refused else "CALLBACK OFFERED" if call.gave_up else "not verified")
        )
        print(
            f"    {call.name}: {status}, extra id turns {call.extra_identity}, early {call.early},"
            f" v2v {[round(v, 2) for v in call.v2v_spoken]} keyed {[round(v, 2) for v in call.v2v_keyed]}"
            f"{', ERROR ' + call.error if call.error else ''}"
        )
        print(f"      heard: {' | '.join(call.heard)}")
    sys.stdout.flush()
    return run


async def family_run(
    sandbox: Sandbox, server: VoiceServer, ear: Ear, family: str, calls: int, offset: int
) -> Run:
    picks = [NAMES[(offset + i) % len(NAMES)] for i in range(calls)]
    patients = plant(sandbox, picks)
    audio = await synthesise(family, picks, patients)

    async def work() -> list[Call]:
        return [
            await one_call(server, ear, family, who, patient, audio, who in UNCOMMON)
            for who, patient in zip(picks, patients, strict=True)
        ]

    return await measured(family, server, ear, work)


async def concurrent_run(
    sandbox: Sandbox, server: VoiceServer, ear: Ear, families: list[str], lines: int
) -> Run:
    picks = [NAMES[i % len(NAMES)] for i in range(lines)]
    patients = plant(sandbox, picks)
    line_families = [families[i % len(families)] for i in range(lines)]
    audio: dict[str, dict[str, bytes]] = {}
    for fam in dict.fromkeys(line_families):
        mine = [i for i in range(lines) if line_families[i] == fam]
        audio[fam] = await synthesise(fam, [picks[i] for i in mine], [patients[i] for i in mine])

    async def line(i: int) -> Call:
        await asyncio.sleep(i * STAGGER_SECONDS / lines)
        fam = line_families[i]
        return await one_call(server, ear, fam, picks[i], patients[i], audio[fam], picks[i] in UNCOMMON)

    async def work() -> list[Call]:
        return list(await asyncio.gather(*(line(i) for i in range(lines))))

    label = "mixed" if len(set(line_families)) > 1 else line_families[0]
    return await measured(f"{lines} simultaneous ({label})", server, ear, work)


# ---------------------------------------------------------------------------------------------- report


def s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def p50_p95(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {percentile(values, 0.95):.2f} (n={len(values)})"


def cpu_cells(run: Run) -> list[str]:
    c = run.cpu
    return [f"{c.server:.0f}", f"{c.sandbox:.0f}", f"{c.bench:.0f} ({c.hearing:.0f})", f"{run.seconds:.0f}"]


def server_cells(run: Run) -> list[str]:
    sv = run.server
    return [
        s(sv["v2v"]),
        " / ".join(s(sv[st]) for st in STAGES),
        " / ".join(f"{sv[f'ends:{by}']:.0f}" for by in ("smart_turn", "answer", "max_pause")),
    ]


def report_families(runs: list[Run]) -> None:
    print("\n### Per caller-voice family (one call at a time)\n")
    rows = []
    for run in runs:
        calls = run.calls
        n = len(calls)
        verified = sum(c.verified for c in calls)
        extra = [c.extra_identity for c in calls if c.verified]
        spoken = [v for c in calls for v in c.v2v_spoken]
        keyed = [v for c in calls for v in c.v2v_keyed]
        gaps = [g for c in calls for g in c.dropouts]
        rows.append([
            run.name, str(n), f"{verified}/{n} ({100 * verified / n:.0f}%)" if n else "-",
            " / ".join(
                f"{sum(c.verified for c in group)}/{len(group)}"
                for group in ([c for c in calls if not c.uncommon], [c for c in calls if c.uncommon])
            ),
            f"{statistics.mean(extra):.1f} / {max(extra)}" if extra else "-",
            f"{sum(c.refused for c in calls)} / {sum(c.gave_up for c in calls)}",
            str(sum(c.error is not None for c in calls)),
            p50_p95(spoken), p50_p95(keyed), str(sum(c.early for c in calls)),
            f"{len(gaps)}" + (f" (max {max(gaps) * 1000:.0f} ms)" if gaps else ""),
            *server_cells(run), *cpu_cells(run), f"{run.load[0]:.1f}→{run.load[1]:.1f}",
        ])  # fmt: skip
    table(
        ["family", "calls", "verified", "verified: common / uncommon names",
         "extra id turns mean / max (verified)", "refused / callback offered", "errors",
         "v2v spoken p50 / p95 s", "v2v keyed p50 / p95 s", "early",
         "dropouts >100 ms", "server v2v mean s", "turn det / stt / dialogue / tts mean s",
         "ends smart_turn / answer / max_pause", "CPU s server", "CPU s sandbox", "CPU s bench (hearing)",
         "wall s", "load"],
        rows,
    )  # fmt: skip


def report_concurrent(run: Run) -> None:
    print(f"\n### {run.name}\n")
    rows = []
    for i, c in enumerate(run.calls):
        rows.append([
            str(i + 1), c.family, c.name, "yes" if c.completed else "no",
            "verified" if c.verified else "refused" if c.refused else "callback" if c.gave_up else "no",
            str(c.extra_identity),
            p50_p95(c.v2v_spoken), p50_p95(c.v2v_keyed), str(c.early),
            f"{len(c.dropouts)}" + (f" (max {max(c.dropouts) * 1000:.0f} ms)" if c.dropouts else ""),
            c.error or "",
        ])  # fmt: skip
    table(["line", "family", "patient", "task done", "identity", "extra id turns", "v2v spoken p50 / p95 s",
           "v2v keyed p50 / p95 s", "early", "dropouts >100 ms", "error"], rows)  # fmt: skip
    spoken = [v for c in run.calls for v in c.v2v_spoken]
    gaps = [g for c in run.calls for g in c.dropouts]
    print()
    table(
        ["all lines", "task done", "v2v spoken p50 / p95 s", "dropouts >100 ms", "server v2v mean s",
         "turn det / stt / dialogue / tts mean s", "ends smart_turn / answer / max_pause",
         "CPU s server", "CPU s sandbox", "CPU s bench (hearing)", "wall s", "load"],
        [[str(len(run.calls)), f"{sum(c.completed for c in run.calls)}/{len(run.calls)}", p50_p95(spoken),
          f"{len(gaps)}" + (f" (max {max(gaps) * 1000:.0f} ms)" if gaps else ""), *server_cells(run),
          *cpu_cells(run), f"{run.load[0]:.1f}→{run.load[1]:.1f}"]],
    )  # fmt: skip


def audit_cross_check(server: VoiceServer, runs: list[Run], out: Path) -> None:
    """Export the server's audit trail and attach to each call the events that name its patient."""
    from datetime import timedelta

    from voice_agent.sandbox.private import VOICE_AGENT

    today = date.today()
    done = subprocess.run(
        [VOICE_AGENT, "audit", "export", "--since", str(today - timedelta(days=1)),
         "--until", str(today + timedelta(days=1)), "--out", str(out)],
        env=server.env, cwd=server.product / "cwd", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode:
        print(f"audit export failed: {done.stderr[-500:]}")
        return
    events = [json.loads(line)["event"] for line in out.read_text().splitlines()]
    sessions: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        sessions.setdefault(str(event.get("session_id")), []).append(event)
    # Verified in the audit trail: a verify-identity Patient search in the call's session returned the
    # planted patient, and the same session then listed appointments (which only a verified caller gets).
    for run in runs:
        for call in run.calls:
            for session in sessions.values():
                found = any(
                    e.get("purpose") == "verify-identity" and call.patient_id in e.get("resource_ids", [])
                    for e in session
                )
                if found:
                    call.audit += sorted({str(e.get("purpose")) for e in session})
    agree = sum(c.verified == ("list-appointments" in c.audit) for r in runs for c in r.calls)
    total = sum(len(r.calls) for r in runs)
    print(
        f"\naudit trail ({out}): words and audit trail (the patient found by a verify-identity "
        f"search, then a list-appointments search in that session) agree in {agree}/{total} calls"
    )


def footnote(runs: list[Run]) -> None:
    cheap = sum(r.hearings[0] for r in runs)
    full = sum(r.hearings[1] for r in runs)
    print(
        f"\nCaller's hearing: {cheap} cheap passes (first {HEAD:g} s + last {TAIL:g} s, beam 1), {full} full"
        " re-hearings on a miss. CPU s bench (hearing): all of this process's CPU over the run, and in"
        " brackets the part spent while a hearing ran (hearings are serialised). CPU s server: the"
        " `voice-agent serve` process and its children (piper's HTTP server); CPU s sandbox: the FHIR"
        " sandbox. v2v spoken: end of the caller's speech to the first loud agent audio at the fake"
        " carrier; keyed: the # key sent to the first agent audio. Extra id turns: identity questions beyond"
        " the name and the date of birth (spell the surname, the first name, asked again). Early: the agent"
        " spoke over the caller's line (no v2v for it)."
    )


def raw(run: Run) -> dict[str, Any]:
    return {
        "name": run.name, "seconds": run.seconds, "load": run.load, "server": run.server,
        "cpu": vars(run.cpu), "hearings": run.hearings,
        "calls": [vars(c) for c in run.calls],
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- main


async def run_all(sandbox: Sandbox, server: VoiceServer, args: argparse.Namespace) -> list[Run]:
    whisper = SpeechModels(sandbox.settings).whisper()
    ear = Ear(whisper)
    runs: list[Run] = []
    families = [f for f in args.families.split(",") if f]
    # Warm-up (not measured): first-call costs in the server.
    if families or args.concurrency:
        await family_run(sandbox, server, ear, "piper-joe", 1, 0)
    print("runs:")
    for index, family in enumerate(families):
        if args.calls:
            runs.append(await family_run(sandbox, server, ear, family, args.calls, index))
            if args.json:
                Path(args.json).write_text(json.dumps([raw(r) for r in runs], indent=1, default=str))
    if runs:
        report_families(runs)
    if args.concurrency:
        mixed = args.concurrency_families == "mixed"
        conc = list(FAMILIES) if mixed else [f for f in args.concurrency_families.split(",") if f]
        run = await concurrent_run(sandbox, server, ear, conc, args.concurrency)
        runs.append(run)
        report_concurrent(run)
    footnote(runs)
    if args.audit:
        try:
            await asyncio.to_thread(audit_cross_check, server, runs, Path(args.audit))
        except Exception as error:  # the figures above stand without it
            print(f"audit cross-check failed: {type(error).__name__}: {error}")
    if args.json:
        Path(args.json).write_text(json.dumps([raw(r) for r in runs], indent=1, default=str))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--calls", type=int, default=6, help="sequential calls per family (0: none)")
    parser.add_argument("--concurrency", type=int, default=0, help="then this many calls at once (8)")
    parser.add_argument(
        "--concurrency-families", default="mixed", help="mixed (every family in turn), or FAMILY[,FAMILY...]"
    )
    parser.add_argument("--workdir")
    parser.add_argument("--json")
    parser.add_argument(
        "--audit", help="export the audit trail here and cross-check each call's verification"
    )
    args = parser.parse_args()
    for family in args.families.split(","):
        if family and family not in FAMILIES:
            raise SystemExit(f"unknown family {family!r}: {', '.join(FAMILIES)}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with workdir(args.workdir) as work, private_sandbox(work / "sandbox") as sandbox:
        server = start_voice_server(sandbox, work / "server", VOICE_AGENT_LOG_LEVEL="INFO")
        print(f"server log: {server.log}")
        try:
            asyncio.run(run_all(sandbox, server, args))
        finally:
            stop_voice_server(server)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
