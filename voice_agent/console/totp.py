"""The second factor: TOTP (RFC 6238, pyotp) with replay protection, its QR code, and recovery codes.

The shared secret is sealed under the audit keyring in the accounts table (``users``); it is shown once,
at enrolment, as a QR code (SVG drawn by segno, inline in the page: no image request, nothing from
elsewhere) and as text for manual entry. A code is accepted one step either side of now, and never twice:
the account remembers the last step it accepted. Recovery codes are 80 random bits each, stored as
SHA-256 digests (a slow hash adds nothing at that entropy) and deleted when used.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
from datetime import datetime

import pyotp
import segno

#: Codes accepted one 30-second step before or after the server's clock (clock drift, typing time).
VALID_WINDOW = 1
RECOVERY_CODES = 10
_CODE = re.compile(r"^[0-9]{6}$")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    """A fresh 160-bit base32 secret (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an inline SVG element (no XML declaration, dark on light)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer,
        kind="svg",
        xmldecl=False,
        svgns=True,
        omitsize=True,
        border=4,
        dark="#000",
        light="#fff",
        title="QR code for your authenticator app",
    )
    return buffer.getvalue().decode()


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to, if it is valid within the window and newer than ``last_step``
    (a code already used, or an older one, is refused); else None."""
    code = code.strip().replace(" ", "")
    if not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes like ``k7qm-x2rt-9wfa-hd4c`` (16 characters of a 31-letter alphabet: ~79 bits)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_digest(code: str) -> str:
    normal = re.sub(r"[^a-z0-9]", "", code.strip().lower())
    return hashlib.sha256(f"voice-agent staff recovery v1|{normal}".encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(re.sub(r"[^a-z0-9]", "", code.strip().lower())) == 16
