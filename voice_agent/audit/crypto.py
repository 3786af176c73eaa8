"""Keys kept outside the audit database: AES-256-GCM for records, HMAC for the head and purge anchor.

A key file (or secret string) holds lines ``<key-id> <base64 of 32 bytes>``; ``#`` starts a comment and
the last key is the active one. Older keys stay listed so records written under them still decrypt
(rotation = append a key). Errors name the source and line, never key material.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_UNSAFE_MODE = stat.S_IRWXG | stat.S_IRWXO


class KeyringError(Exception):
    """The audit keys are missing, malformed or exposed. Messages never include key material."""


class DecryptionError(Exception):
    """A record does not decrypt: unknown key id, wrong key, or altered ciphertext/context."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, repr=False)
class Keyring:
    """Named 256-bit keys; ``active_id`` encrypts and MACs new records. ``repr`` hides the keys."""

    keys: Mapping[str, bytes]
    active_id: str
    _mac_keys: dict[str, bytes] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise KeyringError("the active key id is not in the keyring")
        for key_id, key in self.keys.items():
            if not KEY_ID_PATTERN.fullmatch(key_id) or len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} is not a {KEY_BYTES}-byte key with a valid id")

    def __repr__(self) -> str:
        return f"Keyring(key_ids={sorted(self.keys)!r}, active_id={self.active_id!r})"

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_string(cls, text: str, *, source: str = "audit keys") -> Keyring:
        """Parse the key-file format; ``;`` may separate entries too (handy in one environment variable)."""
        keys: dict[str, bytes] = {}
        active: str | None = None
        entries = [
            (number, entry.strip())
            for number, line in enumerate(text.splitlines(), start=1)
            if not line.lstrip().startswith("#")
            for entry in line.split(";")
        ]
        for number, entry in entries:
            if not entry or entry.startswith("#"):
                continue
            parts = entry.split()
            if len(parts) != 2:
                raise KeyringError(f"{source}, line {number}: expected '<key-id> <base64 key>'")
            key_id, encoded = parts
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise KeyringError(f"{source}, line {number}: key id must match {KEY_ID_PATTERN.pattern}")
            if key_id in keys:
                raise KeyringError(f"{source}, line {number}: key id {key_id!r} appears twice")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError(f"{source}, line {number}: key {key_id!r} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise KeyringError(
                    f"{source}, line {number}: key {key_id!r} is {len(key)} bytes, expected {KEY_BYTES}"
                )
            keys[key_id] = key
            active = key_id
        if active is None:
            raise KeyringError(f"{source}: no keys")
        return cls(keys, active)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """Load a key file, refusing one that others on the machine could read or change."""
        try:
            info = path.stat()
        except FileNotFoundError:
            raise KeyringError(
                f"audit key file {path} does not exist (create one with `voice-agent audit keygen`)"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise KeyringError(f"audit key file {path} is not a regular file")
        if info.st_mode & _UNSAFE_MODE:
            raise KeyringError(
                f"audit key file {path} is accessible to group/others (mode {stat.S_IMODE(info.st_mode):o}); "
                f"run: chmod 600 {path}"
            )
        try:
            text = path.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise KeyringError(f"audit key file {path} is not ASCII text") from None
        return cls.from_string(text, source=f"audit key file {path}")

    # ------------------------------------------------------------------ use

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        """Encrypt under the active key with a fresh random 96-bit nonce."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self.keys[self.active_id]).encrypt(nonce, plaintext, aad)
        return Sealed(self.active_id, nonce, ciphertext)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        key = self.keys.get(sealed.key_id)
        if key is None:
            raise DecryptionError(f"key id {sealed.key_id!r} is not in the keyring")
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError("the GCM tag does not verify (altered record or wrong key)") from None

    def mac(self, message: bytes, key_id: str | None = None, *, purpose: str = "audit") -> str:
        """HMAC-SHA256 (hex) under a subkey derived from ``key_id`` (default: the active key) for one
        ``purpose``, so a tag made for one kind of record (a session token, a staff row, a checkpoint)
        is never valid for another."""
        return hmac.new(self._mac_key(key_id or self.active_id, purpose), message, sha256).hexdigest()

    def macs(self, message: bytes, *, purpose: str) -> list[str]:
        """The tag of ``message`` under every key in the keyring: what to look a stored tag up by, so a
        secret tagged just before a key rotation (a session token, a link) is still found after it."""
        return [self.mac(message, key_id, purpose=purpose) for key_id in self.keys]

    def check_mac(self, message: bytes, key_id: str, tag: str, *, purpose: str = "audit") -> bool:
        if key_id not in self.keys:
            return False
        return hmac.compare_digest(self.mac(message, key_id, purpose=purpose), tag)

    def _mac_key(self, key_id: str, purpose: str) -> bytes:
        """A separate key per purpose (HKDF), so the AES key is used for one purpose only. ``audit``
        keeps the info string the trail's head was first MACed under."""
        derived = self._mac_keys.get(f"{key_id}|{purpose}")
        if derived is None:
            info = f"voice-agent {purpose} mac v1".encode()
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
                self.keys[key_id]
            )
            self._mac_keys[f"{key_id}|{purpose}"] = derived
        return derived


def new_key_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"k{stamp}-{secrets.token_hex(3)}"


def generate_key_file(path: Path, key_id: str | None = None) -> str:
    """Add a fresh random key as the new active key, creating the file (mode 0600) if needed.

    The file is rewritten atomically (temp file + rename) so a crash never leaves it half written,
    and an existing file that group/others can reach is refused rather than extended. Returns the
    new key id; the key itself is never printed.
    """
    key_id = key_id or new_key_id()
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyringError(f"key id must match {KEY_ID_PATTERN.pattern}")
    existing = ""
    if path.exists():
        Keyring.from_file(path)  # refuses exposed or malformed files
        existing = path.read_text(encoding="ascii")
        if key_id in Keyring.from_string(existing).keys:
            raise KeyringError(f"key id {key_id!r} already exists in {path}")
        if existing and not existing.endswith("\n"):
            existing += "\n"
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        existing = "# voice-agent audit keys: <key-id> <base64 32-byte key>; the last line is active.\n"
    line = f"{key_id} {base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}\n"
    fd, tmp = tempfile.mkstemp(prefix=".audit-key-", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(existing + line)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return key_id
