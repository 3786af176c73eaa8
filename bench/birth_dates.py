"""Dates of birth spoken over the phone line: how often the agent hears one right, asks again, or hears
another date. A wrong date is the dangerous case: it fails verification in silence unless the caller
hears it read back (the surname question does that) and corrects it.

    .venv/bin/python bench/birth_dates.py [--count 30] [--seed 7]
        [--voices espeak,flite-slt,flite-kal,flite-awb,flite-rms,piper-other]

Each voice family (harness/caller_audio.py) says ``--count`` random dates of birth (1940 to 1999, seeded)
the way a caller answers "what is your date of birth?" ("July 25, 1956."); the clip goes through 8 kHz
μ-law as a Twilio call carries it, then through the recogniser a call gets (``stt_engine``, default
Whisper tiny.en) and the agent's own birth-date reader. Prints, per family: right, asked again (no date
read: the agent asks once more), wrong (a valid other date), and each wrong one.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial

from harness import caller_audio
from voice_agent.dialogue.understanding import spoken
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import Vocabulary
from voice_agent.settings import Settings

VOICES: dict[str, Callable[[str], bytes]] = {
    "espeak": caller_audio.espeak,
    "flite-slt": partial(caller_audio.flite, voice="slt"),
    "flite-kal": partial(caller_audio.flite, voice="kal"),
    "flite-awb": partial(caller_audio.flite, voice="awb"),
    "flite-rms": partial(caller_audio.flite, voice="rms"),
    "piper-other": partial(caller_audio.piper, length_scale=0.85, steady=False),
}
TODAY = date(2026, 12, 7)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--voices", default=",".join(VOICES))
    args = parser.parse_args()
    recogniser = SpeechModels(Settings()).recogniser()
    rng = random.Random(args.seed)
    dates = [date(1940, 1, 1) + timedelta(days=rng.randrange(60 * 365)) for _ in range(args.count)]
    print(f"{'voice':12} {'right':>6} {'again':>6} {'wrong':>6}")
    for name in args.voices.split(","):
        right = again = 0
        wrong: list[str] = []
        for born in dates:
            said = f"{born:%B} {born.day}, {born.year}."
            pcm = caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(VOICES[name](said)))
            heard = recogniser.transcribe(pcm, vocabulary=Vocabulary())
            read, _ = spoken.parse_birth_date(spoken.spoken_numbers(spoken.fold(heard)), TODAY)
            if read == born:
                right += 1
            elif read is None:
                again += 1
            else:
                wrong.append(f"{said!r} heard as {heard!r}")
        print(f"{name:12} {right:6d} {again:6d} {len(wrong):6d}")
        for line in wrong:
            print(f"    {line}")


if __name__ == "__main__":
    main()
