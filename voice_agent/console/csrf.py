"""CSRF tokens for every console form: an HMAC of the session they belong to.

Hand-written rather than itsdangerous: the token needs no payload, expiry or serialisation, only
``HMAC(key, session digest)`` compared in constant time, which is four lines with the standard library.
The key is derived (HKDF) from the active audit key, so every ``serve`` worker computes the same tokens
and none is stored. Logged in, a token is bound to the session (a new login means new tokens); on the
login page, to a random pre-login cookie. SameSite=Strict cookies are the first line; this is the second.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voice_agent.audit import Keyring

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class Csrf:
    def __init__(self, keyring: Keyring) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"voice-agent staff csrf v1"
        ).derive(keyring.keys[keyring.active_id])

    def token(self, binding: str) -> str:
        return hmac.new(self._key, binding.encode(), hashlib.sha256).hexdigest()

    def check(self, binding: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.token(binding), str(token))
