"""Word error rate of the default speech-to-text on synthetic scheduling callers, with and without the
clinic's vocabulary, to choose how Whisper is told about practitioner names and visit types.

    .venv/bin/python bench/stt_wer.py [--limit N] [--voices espeak,piper] [--modes none,hotwords,prompt,both]
                                      [--telephone] [--errors]

102 things patients say to a scheduling line (roster names, dates of birth, appointment times, visit
types and practitioners, yes/no, cancel/reschedule, 555-01xx phone numbers), each spoken by espeak-ng
and by piper's joe voice (tests/voice/caller_audio.py), framed as the pipeline frames a turn (pre-roll and
trailing silence), and transcribed by ``voice_agent.pipeline.stt.transcribe`` on the shared model with
the default settings. ``--telephone`` first sends the audio through 8 kHz μ-law, as a Twilio call would.

Scoring: reference and transcript are normalised alike (lowercase, accents, punctuation and apostrophes
removed, "Dr." read as "doctor", digits read as a caller says them: "1985" as "nineteen eighty five",
"10:30" as "ten thirty", "555-0142" digit by digit, "oh" as "zero", ordinals as cardinals), then WER is
word edits over reference words, summed over the corpus. Formatting the normaliser cannot undo (Whisper
writing "0315" for "oh three fifteen") still counts, so these numbers are an upper bound.

Every vocabulary mode hears the very same clip, so modes compare pair-wise. Absolute numbers move a
little between runs: piper samples noise, so its joe voice never says a sentence twice the same way.
"invented doctor" counts transcripts naming a practitioner the caller did not name (a vocabulary that
leaks into the transcript sends the dialogue to the wrong doctor; WER alone hides it).

Speed: the encoder's output depends only on the audio, so it runs once per clip and the other modes
reuse it (that is what keeps the run under 5 minutes on 2 cores). Seconds per utterance are each pass's
wall time plus, when the encoder was skipped, that clip's measured encoder time: what one real
``transcribe`` call costs. They are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.voice import caller_audio
from voice_agent.pipeline.models import SpeechModels
from voice_agent.pipeline.stt import Vocabulary, transcribe
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
            out.append(Utterance(category, text))
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


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Tally:
    words: int = 0
    errors: int = 0
    invented: int = 0  # transcripts naming a practitioner the caller did not name
    seconds: list[float] = field(default_factory=list)

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else 0.0


class EncoderReuse:
    """Memoises the model's encoder for the clip being scored and counts the time each reuse saved."""

    def __init__(self, encode: Callable[[Any], Any]) -> None:
        self._encode = encode
        self._key = b""
        self._output: Any = None
        self._seconds = 0.0
        self.saved = 0.0

    def __call__(self, features: Any) -> Any:
        key = hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()
        if key == self._key:
            self.saved += self._seconds
            return self._output
        started = time.perf_counter()
        self._output = self._encode(features)
        self._seconds = time.perf_counter() - started
        self._key = key
        return self._output


@contextmanager
def reused_encoder(model: Any) -> Iterator[EncoderReuse]:
    reuse = EncoderReuse(model.encode)
    model.encode = reuse
    try:
        yield reuse
    finally:
        del model.encode  # the class's method again


def synthesise(voice: str, texts: list[str]) -> list[bytes]:
    if voice == "piper":
        return caller_audio.piper_many(texts, steady=False)  # the voice as it varies, as callers do
    return [caller_audio.espeak(text) for text in texts]


def as_turn(speech: bytes, telephone: bool) -> bytes:
    """Framed like a pipeline turn: ~0.3 s of the pre-roll before the speech, the VAD stop and the
    pipeline's own padding after it."""
    if telephone:
        speech = caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(speech))
    return caller_audio.silence(0.3) + speech + caller_audio.silence(0.5)


VOICE_NAMES = {"espeak": "espeak-ng", "piper": "piper joe"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances (0: all)")
    parser.add_argument("--voices", default="espeak,piper")
    parser.add_argument("--modes", default="none,hotwords,prompt,both")
    parser.add_argument("--telephone", action="store_true", help="through 8 kHz μ-law first")
    parser.add_argument("--errors", action="store_true", help="print every transcript with an error")
    parser.add_argument(
        "--window", type=int, default=0, help="Whisper window in seconds (0: the setting; 30: stock Whisper)"
    )
    args = parser.parse_args()
    voices = [v for v in args.voices.split(",") if v]
    all_vocabularies = vocabularies()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [v for v in voices if v not in VOICE_NAMES] + [
        m for m in modes if m not in all_vocabularies
    ]:
        parser.error(f"unknown voice or mode: {', '.join(unknown)}")

    started = time.perf_counter()
    settings = Settings()
    speech_models = SpeechModels(settings)
    model = speech_models.whisper()
    utterances = corpus()[: args.limit or None]
    references = [normalise(u.text) for u in utterances]
    print(
        f"model {speech_models.whisper_path} ({settings.stt_compute_type}), "
        f"beam {settings.stt_beam_size}, {settings.stt_threads} threads; {len(utterances)} utterances, "
        f"{sum(map(len, references))} words per voice{'; through 8 kHz μ-law' if args.telephone else ''}"
    )

    tallies: dict[tuple[str, str, str], Tally] = {}  # (voice, mode, category)
    with reused_encoder(model) as reuse:
        for voice in voices:
            synthesis_started = time.perf_counter()
            clips = synthesise(voice, [u.text for u in utterances])
            print(f"{VOICE_NAMES[voice]}: synthesised in {time.perf_counter() - synthesis_started:.1f} s")
            for utterance, reference, clip in zip(utterances, references, clips, strict=True):
                audio = as_turn(clip, args.telephone)
                for mode in modes:
                    saved_before = reuse.saved
                    pass_started = time.perf_counter()
                    text = transcribe(
                        model,
                        audio,
                        beam_size=settings.stt_beam_size,
                        vocabulary=all_vocabularies[mode],
                        window_seconds=args.window or settings.stt_window_seconds,
                    )
                    seconds = time.perf_counter() - pass_started + (reuse.saved - saved_before)
                    heard = normalise(text)
                    errors = word_errors(reference, heard)
                    invented = invents_practitioner(reference, heard)
                    for key in ((voice, mode, utterance.category), (voice, mode, "")):
                        tally = tallies.setdefault(key, Tally())
                        tally.words += len(reference)
                        tally.errors += errors
                        tally.invented += invented
                        tally.seconds.append(seconds)
                    if errors and args.errors:
                        print(f"  [{voice}/{mode}] {errors} err  said: {utterance.text!r}  heard: {text!r}")

    def merged(mode: str, category: str = "") -> Tally:
        parts = [tallies[(v, mode, category)] for v in voices if (v, mode, category) in tallies]
        return Tally(
            sum(p.words for p in parts),
            sum(p.errors for p in parts),
            sum(p.invented for p in parts),
            [s for p in parts for s in p.seconds],
        )

    print()
    header = [
        "vocabulary",
        *(f"WER {VOICE_NAMES[v]}" for v in voices),
        "WER overall",
        "errors / words",
        "invented doctor",
        "p50 s/utt",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for mode in modes:
        total = merged(mode)
        cells = [
            mode,
            *(f"{tallies[(v, mode, '')].wer:.1%}" for v in voices),
            f"**{total.wer:.1%}**",
            f"{total.errors} / {total.words}",
            f"{total.invented} / {len(total.seconds)}",
            f"{statistics.median(total.seconds):.2f}",
        ]
        print("| " + " | ".join(cells) + " |")

    categories = list(dict.fromkeys(u.category for u in utterances))
    print()
    header = ["category (both voices)", "utterances", *modes]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for category in categories:
        count = sum(u.category == category for u in utterances)
        print(
            "| "
            + " | ".join([category, str(count), *(f"{merged(m, category).wer:.1%}" for m in modes)])
            + " |"
        )

    vocabulary = all_vocabularies["both"]
    print(f"\nhotwords: {vocabulary.hotwords!r}\ninitial_prompt: {vocabulary.initial_prompt!r}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - started:.0f} s; load average {load}")


if __name__ == "__main__":
    main()
