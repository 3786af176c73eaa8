"""Audit keys: file format, permissions, loud failures without key material, AES-GCM with bound context."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from voice_agent.audit import Keyring, KeyringError, generate_key_file, load_keyring, open_trail
from voice_agent.audit.crypto import DecryptionError, Sealed
from voice_agent.settings import Settings


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def write_key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_generate_creates_a_private_file_and_appends_rotated_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    first = generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    second = generate_key_file(path, "k2")
    ring = Keyring.from_file(path)
    assert list(ring.keys) == [first, "k2"]
    assert ring.active_id == "k2"
    assert all(len(key) == 32 for key in ring.keys.values())
    assert second == "k2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyringError, match="already exists"):
        generate_key_file(path, "k2")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".audit-key-")]


def test_generate_refuses_to_extend_an_exposed_file(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "audit.key", f"k1 {b64(os.urandom(32))}\n", 0o640)
    with pytest.raises(KeyringError, match="group/others"):
        generate_key_file(path)
    assert len(path.read_text().splitlines()) == 1


def test_last_line_is_active_and_comments_and_semicolons_are_understood(tmp_path: Path) -> None:
    a, b = os.urandom(32), os.urandom(32)
    text = f"# audit keys; rotated yearly\nold {b64(a)}\n\n  # a comment\nnew {b64(b)}\n"
    ring = Keyring.from_file(write_key_file(tmp_path / "k", text))
    assert ring.active_id == "new"
    assert ring.keys == {"old": a, "new": b}
    assert Keyring.from_string(f"old {b64(a)}; new {b64(b)}").active_id == "new"


SECRET = os.urandom(32)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no keys"),
        ("# only a comment\n", "no keys"),
        (f"k1 {b64(SECRET)} extra", "expected"),
        (f"k1{b64(SECRET)}", "expected"),
        (f"bad/id {b64(SECRET)}", "key id must match"),
        (f"k1 {b64(SECRET)[:-3]}!!", "not valid base64"),
        (f"k1 {b64(SECRET[:16])}", "16 bytes, expected 32"),
        (f"k1 {b64(SECRET + b'x')}", "33 bytes, expected 32"),
        (f"k1 {b64(SECRET)}\nk1 {b64(SECRET)}", "appears twice"),
    ],
)
def test_malformed_keys_fail_loudly_without_key_material(tmp_path: Path, text: str, message: str) -> None:
    path = write_key_file(tmp_path / "audit.key", text)
    with pytest.raises(KeyringError, match=message) as caught:
        Keyring.from_file(path)
    assert b64(SECRET) not in str(caught.value)
    assert b64(SECRET)[:12] not in str(caught.value)
    with pytest.raises(KeyringError, match=message):
        Keyring.from_string(text)


def test_missing_or_exposed_key_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match=r"does not exist.*keygen"):
        Keyring.from_file(tmp_path / "nope.key")
    for mode in (0o644, 0o604, 0o660, 0o620):
        path = write_key_file(tmp_path / f"k{mode:o}", f"k1 {b64(SECRET)}\n", mode)
        with pytest.raises(KeyringError, match="chmod 600") as caught:
            Keyring.from_file(path)
        assert b64(SECRET) not in str(caught.value)


def test_repr_hides_keys() -> None:
    ring = Keyring.from_string(f"k1 {b64(SECRET)}")
    assert b64(SECRET) not in repr(ring)
    assert repr(SECRET) not in repr(ring)
    assert "k1" in repr(ring)


def test_gcm_binds_records_to_their_context() -> None:
    ring = Keyring.from_string(f"k1 {b64(os.urandom(32))}")
    sealed = ring.seal(b'{"x":1}', b"seq=1")
    assert ring.open(sealed, b"seq=1") == b'{"x":1}'
    assert len(sealed.nonce) == 12
    assert ring.seal(b'{"x":1}', b"seq=1").nonce != sealed.nonce  # fresh random nonce
    with pytest.raises(DecryptionError, match="GCM tag"):
        ring.open(sealed, b"seq=2")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(DecryptionError):
        ring.open(Sealed(sealed.key_id, sealed.nonce, flipped), b"seq=1")
    with pytest.raises(DecryptionError, match="not in the keyring"):
        ring.open(Sealed("other", sealed.nonce, sealed.ciphertext), b"seq=1")
    other = Keyring.from_string(f"k1 {b64(os.urandom(32))}")
    with pytest.raises(DecryptionError):
        other.open(sealed, b"seq=1")


def test_macs_are_keyed_and_separate_per_key() -> None:
    ring = Keyring.from_string(f"a {b64(os.urandom(32))}; b {b64(os.urandom(32))}")
    tag = ring.mac(b"head")
    assert ring.check_mac(b"head", "b", tag)
    assert not ring.check_mac(b"head", "a", tag)
    assert not ring.check_mac(b"head!", "b", tag)
    assert not ring.check_mac(b"head", "missing", tag)


# ---------------------------------------------------------------------- settings


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(dev_dir=tmp_path / "dev", **values)  # type: ignore[arg-type]


def test_keys_from_settings_secret(tmp_path: Path) -> None:
    secret = SecretStr(f"a {b64(os.urandom(32))};b {b64(os.urandom(32))}")
    assert load_keyring(settings(tmp_path, audit_keys=secret)).active_id == "b"
    both = settings(tmp_path, audit_keys=secret, audit_key_file=tmp_path / "k")
    with pytest.raises(KeyringError, match="not both"):
        load_keyring(both)


def test_the_dev_key_is_created_only_on_request_and_only_at_the_dev_path(tmp_path: Path) -> None:
    dev = settings(tmp_path)
    assert dev.audit_key_path == tmp_path / "dev" / "audit.key"
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(dev)
    assert load_keyring(dev, create_dev_key=True).active_id
    assert stat.S_IMODE((tmp_path / "dev" / "audit.key").stat().st_mode) == 0o600
    named = settings(tmp_path, audit_key_file=tmp_path / "clinic.key")
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(named, create_dev_key=True)
    remote = settings(tmp_path, fhir_base_url="https://fhir.clinic.example/fhir")
    with pytest.raises(KeyringError, match="no audit key configured"):
        open_trail(remote)
