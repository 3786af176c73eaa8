"""Word error rate of the speech-to-text models on synthetic scheduling callers, with and without the
clinic's vocabulary: which model hears callers best for its CPU cost, and how Whisper is told about
practitioner names and visit types.

    .venv/bin/python bench/stt_wer.py [--limit N] [--models tiny.en,base,moonshine]
        [--voices espeak,flite-slt,flite-kal,flite-awb,flite-rms,piper-other,piper-joe]
        [--modes none,hotwords,prompt,both] [--telephone] [--noise SNR_DB] [--level DB]
        [--window S] [--errors] [--raw FILE.jsonl]

102 things patients say to a scheduling line (roster names, dates of birth, appointment times, visit
types and practitioners, yes/no, cancel/reschedule, 555-01xx phone numbers), each spoken by every voice
family asked for (harness/caller_audio.py): espeak-ng, flite's slt, kal, awb and rms voices, piper
with settings other than the agent's ("piper-other": faster and slower, a less even voice) and piper's
joe voice as the agent itself speaks (``piper-joe``, or ``piper``: a reference, not a caller). Each clip
is framed as a caller's line carries a turn (pre-roll and the VAD stop), optionally made ``--level`` dB
louder or quieter (clipped, as a hot line clips) and given pink noise ``--noise`` dB below the speech
(seeded per utterance), then with ``--telephone`` sent through 8 kHz μ-law as a Twilio call would, and
given the pipeline's own trailing silence. Each ``--models`` entry is the recogniser a call gets with
that ``stt_engine`` (``voice_agent.pipeline.recognisers``; tiny.en, base: Whisper, with the
``stt_window_seconds`` window unless ``--window``; moonshine: Moonshine base, which takes no vocabulary,
so it runs once per clip whatever the modes). Every model and mode hears the very same clip.

Scoring: reference and transcript are normalised alike (lowercase, accents, punctuation and apostrophes
removed, "Dr." read as "doctor", digits read as a caller says them: "1985" as "nineteen eighty five",
"10:30" as "ten thirty", "555-0142" digit by digit, "oh" as "zero", ordinals as cardinals), then WER is
word edits over reference words, summed over the corpus. Formatting the normaliser cannot undo (Whisper
writing "0315" for "oh three fifteen") still counts, so these numbers are an upper bound. "surname
exact" counts the utterances giving a name whose transcript holds the caller's family name word for
word; "birth date" those giving a date of birth that the agent's own rules understanding reads as that
date. "WER callers" and the summary leave piper-joe out when other voices ran: the agent's voice is no
caller.

Absolute numbers move a little between runs: piper samples noise, so its voices never say a sentence
twice the same way. "invented doctor" counts transcripts naming a practitioner the caller did not name
(a vocabulary that leaks into the transcript sends the dialogue to the wrong doctor; WER alone hides it).

Speed: the Whisper encoder's output depends only on the audio, so it runs once per clip and the other
modes reuse it. Seconds per utterance are each pass's wall time and the process's CPU time
(``time.process_time``, all threads), plus, when the encoder was skipped, that clip's measured encoder
time: what one real ``transcribe`` call costs. CPU seconds say what a pass costs a shared worker (8
calls on 2 cores); wall seconds are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import caller_audio
from voice_agent.dialogue.understanding.base import Expectation, UnderstandingContext
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.pipeline.recognisers import Recogniser, WhisperRecogniser
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import Vocabulary
from voice_agent.pipeline.vocabulary import primed_with
from voice_agent.sandbox import roster
from voice_agent.sandbox.clinic import PRACTITIONERS, VISIT_TYPES, build_clinic
from voice_agent.settings import Settings

# ---------------------------------------------------------------------------------------------- numbers

_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"),
    *("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_WORDS = {
    "first": "one",
    "second": "two",
    "third": "three",
    "fourth": "four",
    "fifth": "five",
    "sixth": "six",
    "seventh": "seven",
    "eighth": "eight",
    "ninth": "nine",
    "tenth": "ten",
    "eleventh": "eleven",
    "twelfth": "twelve",
    "thirteenth": "thirteen",
    "fourteenth": "fourteen",
    "fifteenth": "fifteen",
    "sixteenth": "sixteen",
    "seventeenth": "seventeen",
    "eighteenth": "eighteen",
    "nineteenth": "nineteen",
    "twentieth": "twenty",
    "thirtieth": "thirty",
}
#: One spelling for words Whisper writes either way.
_SPELLINGS = {"ok": "okay", "anytime": "any time", "sometime": "some time", "followup": "follow up"}
_ORDINALS = {cardinal: ordinal for ordinal, cardinal in _ORDINAL_WORDS.items()}
_MONTHS = [
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
]


def cardinal(n: int) -> str:
    """0..9999 in words, as said aloud: "two thousand five", "nineteen hundred", "forty two"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + cardinal(n % 100))
    return cardinal(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + cardinal(n % 1000))


def ordinal(n: int) -> str:
    """1..39 as an ordinal: "third", "twenty first"."""
    words = cardinal(n).split()
    words[-1] = _ORDINALS[words[-1]]
    return " ".join(words)


def paired(n: int) -> str:
    """A four-digit number the way years and clock times are said: "nineteen eighty five", "ten thirty",
    "nineteen oh five", "two thousand three", "twelve hundred"."""
    if n % 1000 == 0 or 2000 < n < 2010:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    return cardinal(high) + (" oh " if low < 10 else " ") + cardinal(low)


def digits(text: str) -> str:
    """Digit by digit, as phone numbers are said."""
    return " ".join(_ONES[int(d)] for d in text)


def _number_words(token: str) -> str:
    """A digit string as a caller says it. Whisper writes "two fifteen" as "215" and "ten thirty" as
    "1030", so three and four digits read as clock times and years; phone numbers are caught earlier."""
    if token.startswith("0") or len(token) > 4:
        return digits(token)
    n = int(token)
    if len(token) <= 2:
        return cardinal(n)
    if len(token) == 3:
        return cardinal(n) if n % 100 == 0 else cardinal(n // 100) + " " + _number_words(token[1:])
    return paired(n)


# ---------------------------------------------------------------------------------------------- scoring


def normalise(text: str) -> list[str]:
    """Words to compare: the same function for reference and transcript, so only recognition differs."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"\bdr\b\.?", " doctor ", text)
    text = re.sub(r"\b([ap])\.? ?m\b\.?", r" \1m ", text)
    text = re.sub(r"\b(\d{3})[-.](\d{3,4})\b", lambda m: f" {digits(m[1])} {digits(m[2])} ", text)  # 555-0142
    text = re.sub(r"\b(\d{1,2}):00\b", r"\1", text)  # "10:00 am" is said "ten am" (or "ten o'clock")
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", r"\1", text)  # "14th": ordinals compare as cardinals
    text = re.sub("['`\u2019]", "", text)  # "o'connell", "i'd"
    text = re.sub(r"(\d)([a-z])|([a-z])(\d)", r"\1\3 \2\4", text)  # "2pm"
    words: list[str] = []
    for token in re.sub(r"[^a-z0-9]+", " ", text).split():
        if token.isdigit():
            words.extend(_number_words(token).split())
        elif token in _SPELLINGS:
            words.extend(_SPELLINGS[token].split())
        else:
            words.append(_ORDINAL_WORDS.get(token, token))
    return ["zero" if word == "oh" else word for word in words]


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


# ---------------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Utterance:
    category: str
    text: str  # what the synthetic caller says, numbers in words: it is also the reference
    surname: str | None = None  # the caller's family name, when the utterance gives one
    born: date | None = None  # the date of birth, when the utterance gives one


def _birth_date(born: date, style: int) -> str:
    month, day, year = _MONTHS[born.month - 1], ordinal(born.day), paired(born.year)
    numeric_month = ("oh " + cardinal(born.month)) if born.month < 10 else cardinal(born.month)
    numeric_day = ("oh " + cardinal(born.day)) if born.day < 10 else cardinal(born.day)
    return (
        f"My date of birth is {month} {day}, {year}.",
        f"{month} {day}, {year}.",
        f"It's {numeric_month}, {numeric_day}, {year}.",
        f"I was born on the {day} of {month}, {year}.",
    )[style % 4]


def _phone(number: str, style: int) -> str:
    exchange, line = number.rsplit("-", 2)[-2:]
    spoken = digits(exchange) + ", " + digits(line)
    if style % 2:
        spoken = spoken.replace("zero", "oh")
    return (
        f"My number is {spoken}.",
        f"It's {spoken}.",
        f"You can reach me at {spoken}.",
        f"My cell phone is {spoken}.",
    )[style % 4]


def corpus() -> list[Utterance]:
    """The utterances, categories interleaved so that ``--limit`` still samples every category."""
    clinic = build_clinic(seed=7, today=date(2026, 11, 23))
    hard = [p for p in clinic.patients if roster.POOL not in p.tags]
    pool = list(clinic.patients_tagged(roster.POOL))[:6]
    surnames = {f"My name is {p.full_name}.": p.family for p in hard} | {
        f"{lead} {p.given} {p.family}.": p.family for p in pool for lead in ("This is", "It's")
    }
    surnames |= {
        "The last name is Ng, N G.": "Ng",
        "I'm calling for my mother, Anna Maria Kowalski.": "Kowalski",
    }
    births = {_birth_date(p.birth_date, i): p.birth_date for i, p in enumerate(hard)} | {
        _birth_date(p.birth_date, i + 1): p.birth_date for i, p in enumerate(pool[:4])
    }
    by_category: dict[str, list[str]] = {
        "name": [
            *(f"My name is {p.full_name}." for p in hard),
            *(
                (f"This is {p.given} {p.family}.", f"It's {p.given} {p.family}.")[i % 2]
                for i, p in enumerate(pool)
            ),
            "The last name is Ng, N G.",
            "I'm calling for my mother, Anna Maria Kowalski.",
        ],
        "birth date": [
            *(_birth_date(p.birth_date, i) for i, p in enumerate(hard)),
            *(_birth_date(p.birth_date, i + 1) for i, p in enumerate(pool[:4])),
        ],
        "when": [
            "Next Tuesday at ten thirty.",
            "The afternoon of the fourteenth.",
            "Do you have anything Thursday morning?",
            "How about Friday at two fifteen?",
            "Monday the first at nine a.m.",
            "Is there something after four o'clock on Wednesday?",
            "The earliest you have next week.",
            "Tomorrow at eleven, if you have it.",
            "December second, in the afternoon.",
            "Any time before noon on the twenty third.",
            "I can do three thirty on Monday.",
            "Not mornings, I work until noon.",
            "Is quarter past ten available?",
            "Sometime the week of December seventh.",
            "Friday, December eleventh, at half past two.",
            "The first one, the Tuesday at ten.",
        ],
        "visit": [
            "I need a new patient visit with Dr. Okafor.",
            "I'd like to schedule my annual physical.",
            "Just a follow-up visit with Dr. Park.",
            "Can I get a vaccination appointment?",
            "Do you do telehealth visits with Dr. Hernández-Ruiz?",
            "I'd like to see Dr. O'Connell for a follow-up.",
            "Is Dr. Amara Okafor taking new patients?",
            "It's for a flu shot, so a vaccination.",
            "Book me a telehealth appointment, please.",
            "I want my yearly physical with Dr. Daniel Park.",
            "Any doctor is fine, I just need a follow-up.",
            "Dr. Liam O'Connell, please.",
            "With Dr. Sofía Hernández-Ruiz, if she's available.",
            "Can the follow-up be a telehealth visit?",
            "I'm a new patient, I've never been there before.",
            "I need to see Dr. Park about my annual physical.",
        ],
        "yes/no": [
            "Yes.",
            "No.",
            "Yes, that's right.",
            "No, that's not me.",
            "Yep, that works.",
            "Correct.",
            "That's correct.",
            "Sounds good, thank you.",
            "No, the other one.",
            "Yes please, book it.",
            "Sure, go ahead.",
            "Nope.",
            "Okay.",
            "Actually, no, wait.",
            "That one works for me.",
            "Yes, the second one.",
        ],
        "cancel/move": [
            "I need to cancel my appointment.",
            "I'd like to reschedule my appointment with Dr. Okafor.",
            "Can I move my follow-up to next week?",
            "Please cancel the one on Thursday.",
            "I can't make it tomorrow, can we change it?",
            "Cancel my telehealth visit on the fourteenth.",
            "I want to push my appointment back a week.",
            "Something came up, I need a different time.",
            "Could you move it to the afternoon instead?",
            "Reschedule my vaccination to Friday morning.",
            "I'd like to cancel both of my appointments.",
            "When is my next appointment?",
            "I want to change my appointment with Dr. Park.",
            "Hi, I'd like to book an appointment.",
        ],
        "phone": [_phone(p.phone, i) for i, p in enumerate(clinic.patients[:40:5])],
    }
    interleaved = itertools.chain.from_iterable(itertools.zip_longest(*by_category.values()))
    categories = itertools.cycle(by_category)
    out: list[Utterance] = []
    for text in interleaved:
        category = next(categories)
        if text is not None:
            out.append(Utterance(category, text, surnames.get(text), births.get(text)))
    return out


# ---------------------------------------------------------------------------------------------- vocabulary


#: Practitioner family names as normalised words: a vocabulary that makes Whisper "hear" one of these
#: when the caller did not say it sends the dialogue to the wrong doctor, which WER alone hides.
PRACTITIONER_WORDS = frozenset(word for p in PRACTITIONERS for word in normalise(p.family))


def invents_practitioner(reference: list[str], hypothesis: list[str]) -> bool:
    return bool((set(hypothesis) - set(reference)) & PRACTITIONER_WORDS)


def vocabularies() -> dict[str, Vocabulary]:
    """The candidates, all built from the same directory: practitioner names and visit types. "prompt" is
    the agent's default, the very sentence calls use (``primed_with``)."""
    terms = [p.display for p in PRACTITIONERS] + [display.lower() for display in VISIT_TYPES.values()]
    hotwords = ", ".join(terms)
    default = primed_with([p.display for p in PRACTITIONERS], VISIT_TYPES.values())
    prompt = default.initial_prompt
    return {
        "none": Vocabulary(),
        "hotwords": Vocabulary(hotwords=hotwords),
        "prompt": Vocabulary(initial_prompt=prompt),
        "both": Vocabulary(hotwords=hotwords, initial_prompt=prompt),
    }


# ------------------------------------------------------------------------------------------- names and dates


def surname_heard(surname: str, hypothesis: list[str]) -> bool:
    """The caller's family name came through exactly: its normalised words, in order, in the transcript
    ("Smith-Jones" as "smith jones", "O'Brien" as "obrien")."""
    wanted = normalise(surname)
    return any(hypothesis[i : i + len(wanted)] == wanted for i in range(len(hypothesis) - len(wanted) + 1))


_RULES = RulesUnderstanding()
_TODAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def birth_date_heard(born: date, transcript: str) -> bool:
    """The agent's own reading of the transcript as the answer to "What is your date of birth?" (the
    rules understanding, as a call uses it) is the caller's date."""
    context = UnderstandingContext(now=_TODAY, expecting=Expectation.BIRTH_DATE, screened=True)
    return _RULES.parse(transcript, context).slots.birth_date == born


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Tally:
    words: int = 0
    errors: int = 0
    invented: int = 0  # transcripts naming a practitioner the caller did not name
    seconds: list[float] = field(default_factory=list)  # wall, per utterance
    cpu: list[float] = field(default_factory=list)  # CPU seconds of the process, per utterance
    surnames: int = 0  # utterances giving a surname...
    surnames_heard: int = 0  # ...in whose transcript it came through exactly
    births: int = 0  # utterances giving a date of birth...
    births_heard: int = 0  # ...that the agent read as that date

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else 0.0

    def add(self, other: Tally) -> None:
        self.words += other.words
        self.errors += other.errors
        self.invented += other.invented
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.surnames += other.surnames
        self.surnames_heard += other.surnames_heard
        self.births += other.births
        self.births_heard += other.births_heard


def share(heard: int, of: int) -> str:
    return f"{heard}/{of}" if of else "-"


class EncoderReuse:
    """Memoises the model's encoder for the clip being scored and counts the time each reuse saved."""

    def __init__(self, encode: Callable[[Any], Any]) -> None:
        self._encode = encode
        self._key = b""
        self._output: Any = None
        self._seconds = 0.0
        self._cpu = 0.0
        self.saved = 0.0
        self.saved_cpu = 0.0

    def __call__(self, features: Any) -> Any:
        key = hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()
        if key == self._key:
            self.saved += self._seconds
            self.saved_cpu += self._cpu
            return self._output
        started, cpu = time.perf_counter(), time.process_time()
        self._output = self._encode(features)
        self._seconds = time.perf_counter() - started
        self._cpu = time.process_time() - cpu
        self._key = key
        return self._output


@contextmanager
def reused_encoders(models: list[Any]) -> Iterator[dict[int, EncoderReuse]]:
    """Each Whisper model's encoder memoised (keyed by ``id(model)``), restored afterwards."""
    reuses: dict[int, EncoderReuse] = {}
    for model in models:
        reuses[id(model)] = EncoderReuse(model.encode)
        model.encode = reuses[id(model)]
    try:
        yield reuses
    finally:
        for model in models:
            del model.encode  # the class's method again


#: Voice families: what ``--voices`` accepts, and how the tables name them.
VOICE_NAMES = {
    "espeak": "espeak-ng",
    "flite-slt": "flite slt",
    "flite-kal": "flite kal",
    "flite-awb": "flite awb",
    "flite-rms": "flite rms",
    "piper-other": "piper other",
    "piper-joe": "piper joe (agent's voice)",
}
_VOICE_ALIASES = {"piper": "piper-joe"}
#: ``--models``: the name used here and the ``stt_engine`` setting it stands for.
MODELS = {"tiny.en": "whisper-tiny.en", "base": "whisper-base", "moonshine": "moonshine-base"}


def synthesise(voice: str, texts: list[str]) -> list[bytes]:
    if voice == "piper-joe":
        return caller_audio.piper_many(texts, steady=False)  # the voice as it varies, as callers do
    if voice == "piper-other":
        # Another speaker than the agent: every other utterance faster (0.8) or slower (1.25), with a
        # less even voice and rhythm than joe's own (noise 0.667, width noise 0.8).
        other = {"steady": False, "noise_scale": 1.0, "noise_w_scale": 1.0}
        fast = caller_audio.piper_many(texts[0::2], length_scale=0.8, **other)  # type: ignore[arg-type]
        slow = caller_audio.piper_many(texts[1::2], length_scale=1.25, **other)  # type: ignore[arg-type]
        return [clip for pair in itertools.zip_longest(fast, slow) for clip in pair if clip is not None]
    if voice.startswith("flite-"):
        return [caller_audio.flite(text, voice=voice.removeprefix("flite-")) for text in texts]
    return [caller_audio.espeak(text) for text in texts]


def as_turn(
    speech: bytes, telephone: bool, *, noise_db: float | None = None, level_db: float = 0.0, seed: int = 0
) -> bytes:
    """Framed like a pipeline turn, as the caller's line carries it: ~0.3 s of the pre-roll before the
    speech and the 0.2 s VAD stop after it, made ``level_db`` louder or quieter (clipped), with pink
    noise ``noise_db`` below the speech over all of it, then through 8 kHz μ-law if ``telephone``;
    then the pipeline's own 0.3 s of digital silence."""
    line = caller_audio.silence(0.3) + speech + caller_audio.silence(0.2)
    if level_db:
        line = caller_audio.with_gain(line, level_db)
    if noise_db is not None:
        line = caller_audio.with_noise(line, noise_db, seed=seed)
    if telephone:
        line = caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(line))
    return line + caller_audio.silence(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances (0: all)")
    parser.add_argument("--voices", default="espeak,piper-joe", help=", ".join(VOICE_NAMES))
    parser.add_argument("--models", default="tiny.en", help=", ".join(MODELS))
    parser.add_argument("--modes", default="none,hotwords,prompt,both")
    parser.add_argument("--telephone", action="store_true", help="through 8 kHz μ-law first")
    parser.add_argument(
        "--noise", type=float, default=None, metavar="SNR_DB", help="pink noise, dB below speech"
    )
    parser.add_argument(
        "--level", type=float, default=0.0, metavar="DB", help="caller's level change (clips)"
    )
    parser.add_argument("--errors", action="store_true", help="print every transcript with an error")
    parser.add_argument(
        "--raw", type=Path, default=None, help="every transcript as JSON lines into this file"
    )
    parser.add_argument(
        "--window", type=int, default=0, help="Whisper window in seconds (0: the setting; 30: stock Whisper)"
    )
    args = parser.parse_args()
    voices = [_VOICE_ALIASES.get(v, v) for v in args.voices.split(",") if v]
    models = [m for m in args.models.split(",") if m]
    all_vocabularies = vocabularies()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [
        *(v for v in voices if v not in VOICE_NAMES),
        *(m for m in modes if m not in all_vocabularies),
        *(m for m in models if m not in MODELS),
    ]:
        parser.error(f"unknown voice, model or mode: {', '.join(unknown)}")

    started = time.perf_counter()
    settings = Settings()
    window = args.window or settings.stt_window_seconds
    recognisers: dict[str, Recogniser] = {}
    for name in models:
        engine = settings.model_copy(update={"stt_engine": MODELS[name], "stt_window_seconds": window})
        recognisers[name] = SpeechModels(engine).recogniser()  # what a call would use with that setting
    utterances = corpus()[: args.limit or None]
    references = [normalise(u.text) for u in utterances]
    line = [
        f"{settings.stt_compute_type}, beam {settings.stt_beam_size}, Whisper window {window} s",
        f"{settings.stt_threads} threads",
        f"{len(utterances)} utterances, {sum(map(len, references))} words per voice",
    ]
    if args.telephone:
        line.append("through 8 kHz μ-law")
    if args.noise is not None:
        line.append(f"pink noise at {args.noise:g} dB SNR")
    if args.level:
        line.append(f"caller level {args.level:+g} dB")
    print(f"models {', '.join(models)}; " + "; ".join(line))
    raw = args.raw.open("w", encoding="utf-8") if args.raw else None

    whisper_models = [r.model for r in recognisers.values() if isinstance(r, WhisperRecogniser)]
    tallies: dict[tuple[str, str, str, str], Tally] = {}  # (voice, model, mode, category)
    with reused_encoders(whisper_models) as reuses:
        for voice in voices:
            synthesis_started = time.perf_counter()
            clips = synthesise(voice, [u.text for u in utterances])
            print(f"{VOICE_NAMES[voice]}: synthesised in {time.perf_counter() - synthesis_started:.1f} s")
            for index, (utterance, reference, clip) in enumerate(
                zip(utterances, references, clips, strict=True)
            ):
                # One clip per voice and utterance: every model and mode hears the very same audio.
                audio = as_turn(clip, args.telephone, noise_db=args.noise, level_db=args.level, seed=index)
                for name, recogniser in recognisers.items():
                    reuse = (
                        reuses.get(id(recogniser.model))
                        if isinstance(recogniser, WhisperRecogniser)
                        else None
                    )
                    heard_once: tuple[str, float, float] | None = None
                    for mode in modes:
                        if reuse is None and heard_once is not None:
                            text, seconds, cpu = heard_once  # the vocabulary is not used: same transcript
                        else:
                            saved, saved_cpu = (reuse.saved, reuse.saved_cpu) if reuse else (0.0, 0.0)
                            pass_started, cpu_started = time.perf_counter(), time.process_time()
                            text = recogniser.transcribe(audio, vocabulary=all_vocabularies[mode])
                            seconds = time.perf_counter() - pass_started
                            cpu = time.process_time() - cpu_started
                            if reuse is not None:
                                seconds += reuse.saved - saved
                                cpu += reuse.saved_cpu - saved_cpu
                            heard_once = (text, seconds, cpu)
                        heard = normalise(text)
                        one = Tally(
                            words=len(reference),
                            errors=word_errors(reference, heard),
                            invented=invents_practitioner(reference, heard),
                            seconds=[seconds],
                            cpu=[cpu],
                        )
                        if utterance.surname is not None:
                            one.surnames, one.surnames_heard = 1, surname_heard(utterance.surname, heard)
                        if utterance.born is not None:
                            one.births, one.births_heard = 1, birth_date_heard(utterance.born, text)
                        for key in ((voice, name, mode, utterance.category), (voice, name, mode, "")):
                            tallies.setdefault(key, Tally()).add(one)
                        if raw is not None:
                            record = {
                                "voice": voice,
                                "model": name,
                                "mode": mode,
                                "category": utterance.category,
                                "said": utterance.text,
                                "heard": text,
                                "errors": one.errors,
                                "words": one.words,
                                "surname_heard": bool(one.surnames_heard) if one.surnames else None,
                                "birth_date_heard": bool(one.births_heard) if one.births else None,
                                "wall_s": round(seconds, 4),
                                "cpu_s": round(cpu, 4),
                            }
                            raw.write(json.dumps(record, ensure_ascii=False) + "\n")
                        if one.errors and args.errors:
                            print(
                                f"  [{voice}/{name}/{mode}] {one.errors} err  said: {utterance.text!r}  "
                                f"heard: {text!r}"
                            )
    if raw is not None:
        raw.close()

    def merged(model: str, mode: str, category: str = "", among: list[str] = voices) -> Tally:
        total = Tally()
        for v in among:
            if (v, model, mode, category) in tallies:
                total.add(tallies[(v, model, mode, category)])
        return total

    def row(cells: list[str]) -> None:
        print("| " + " | ".join(cells) + " |")

    def header(cells: list[str]) -> None:
        row(cells)
        print("|" + "|".join("---" for _ in cells) + "|")

    callers = [v for v in voices if v != "piper-joe"] or voices  # the agent's own voice is a reference only
    print()
    header(
        [
            "model",
            "vocabulary",
            *(f"WER {VOICE_NAMES[v]}" for v in voices),
            "WER callers" if callers != voices else "WER overall",
            "errors / words",
            "invented doctor",
            "surname exact",
            "birth date",
            "p50 s/utt",
            "CPU s/utt",
        ]
    )
    for name in models:
        for mode in modes:
            total = merged(name, mode, among=callers)
            row(
                [
                    name,
                    mode,
                    *(f"{tallies[(v, name, mode, '')].wer:.1%}" for v in voices),
                    f"**{total.wer:.1%}**",
                    f"{total.errors} / {total.words}",
                    f"{total.invented} / {len(total.seconds)}",
                    share(total.surnames_heard, total.surnames),
                    share(total.births_heard, total.births),
                    f"{statistics.median(total.seconds):.2f}",
                    f"{statistics.fmean(total.cpu):.2f}",
                ]
            )

    print()
    header(
        [
            "voice family",
            "model",
            *(["vocabulary"] if len(modes) > 1 else []),
            "WER",
            "surname exact",
            "birth date",
            "wall s/utt (mean)",
            "CPU s/utt (mean)",
        ]
    )
    for voice in voices:
        for name in models:
            for mode in modes:
                t = tallies[(voice, name, mode, "")]
                row(
                    [
                        VOICE_NAMES[voice],
                        name,
                        *([mode] if len(modes) > 1 else []),
                        f"{t.wer:.1%}",
                        share(t.surnames_heard, t.surnames),
                        share(t.births_heard, t.births),
                        f"{statistics.fmean(t.seconds):.2f}",
                        f"{statistics.fmean(t.cpu):.2f}",
                    ]
                )

    categories = list(dict.fromkeys(u.category for u in utterances))
    columns = [(name, mode) for name in models for mode in modes]
    print()
    header(
        [
            "category (" + ("callers" if callers != voices else "all voices") + ")",
            "utterances",
            *(f"{n} {m}" if len(modes) > 1 else n for n, m in columns),
        ]
    )
    for category in categories:
        count = sum(u.category == category for u in utterances)
        row([category, str(count), *(f"{merged(n, m, category, callers).wer:.1%}" for n, m in columns)])

    vocabulary = all_vocabularies["both"]
    print(f"\nhotwords: {vocabulary.hotwords!r}\ninitial_prompt: {vocabulary.initial_prompt!r}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - started:.0f} s; load average {load}")


if __name__ == "__main__":
    main()
