"""Who may open a carrier media stream, and which caller number the agent may believe. Pure rules and
crypto, no I/O: ``media_stream.py`` applies them to the requests it receives.

* Twilio signs its incoming-call webhook and the stream's WebSocket handshake with ``X-Twilio-Signature``
  under the account's auth token (the ``twilio`` package's ``RequestValidator`` implements the scheme).
  The signed webhook's ``From`` is the one caller number the agent trusts: it travels to the stream in a
  short-lived token, passed as a TwiML ``<Parameter>`` (a stream URL takes no query string), bound to the
  call's ``CallSid`` and sealed (AES-256-GCM) under a key derived from the auth token, so any worker can
  open it and no log line that carries it reveals the number.
* Carriers that sign nothing get a per-carrier secret in the stream URL, compared in constant time, and a
  source-address allow-list; their caller numbers are never believed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twilio.request_validator import RequestValidator

__all__ = [
    "StreamRefused",
    "caller_from_token",
    "mint_stream_token",
    "public_url",
    "secret_matches",
    "source_allowed",
    "twilio_signed",
    "valid_call_id",
]

#: Each carrier's call id grammar, checked before an id goes into a REST URL or a token.
_CALL_ID = {
    "twilio": re.compile(r"^CA[0-9a-f]{32}$"),
    "telnyx": re.compile(r"^[A-Za-z0-9:_\-]{8,128}$"),
    "plivo": re.compile(r"^[0-9a-f\-]{36}$"),
    "exotel": re.compile(r"^[0-9a-zA-Z]{16,64}$"),
}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_TOKEN_MAX = 400
_TOKEN_AAD = b"voice-agent twilio stream"


class StreamRefused(Exception):
    """A stream that is not the carrier's, or a token that is not the agent's. The reason is a fixed
    word for the audit and the metric, never the values received."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def valid_call_id(carrier: str, call_id: str | None) -> bool:
    pattern = _CALL_ID.get(carrier)
    return bool(call_id and pattern is not None and pattern.match(call_id))


def twilio_signed(auth_token: str, url: str, params: dict[str, str], signature: str | None) -> bool:
    """Twilio's scheme: the full URL, then each POST parameter sorted by name, HMAC-SHA1 under the token."""
    return bool(signature) and RequestValidator(auth_token).validate(url, params, signature)


def public_url(received: str, public_base: str | None) -> str:
    """The URL the carrier signed: the one it was given (``public_base``, behind a proxy), else the one
    this server received; ``wss``/``ws`` keep their scheme's security."""
    got = urlsplit(received)
    if public_base is None:
        return received
    base = urlsplit(public_base)
    secure = base.scheme == "https"
    scheme = ("wss" if secure else "ws") if got.scheme in ("ws", "wss") else base.scheme
    return urlunsplit((scheme, base.netloc, got.path, got.query, ""))


def _token_key(auth_token: str) -> bytes:
    return hmac.new(auth_token.encode(), b"voice-agent stream token v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_stream_token(auth_token: str, call_sid: str, caller: str | None, *, now: float, ttl: float) -> str:
    """A token for the stream of this signed call: its CallSid, the attested number and an expiry,
    sealed with AES-256-GCM (the carrier's and pipecat's handshake logs would otherwise carry the number
    in a reversible form)."""
    claims = json.dumps({"sid": call_sid, "from": caller, "exp": round(now + ttl)}).encode()
    nonce = os.urandom(12)
    return _b64(nonce + AESGCM(_token_key(auth_token)).encrypt(nonce, claims, _TOKEN_AAD))


def caller_from_token(auth_token: str, token: object, call_sid: object, *, now: float) -> str | None:
    """The attested caller number (None: the carrier sent none) of a valid, live token for this call."""
    if not isinstance(token, str) or not isinstance(call_sid, str) or len(token) > _TOKEN_MAX:
        raise StreamRefused("token")
    try:
        sealed = _unb64(token)
        claims = json.loads(AESGCM(_token_key(auth_token)).decrypt(sealed[:12], sealed[12:], _TOKEN_AAD))
    except (ValueError, InvalidTag, UnicodeDecodeError):  # not base64, too short, forged or altered
        raise StreamRefused("token") from None
    said = str(claims.get("sid", "")).encode() if isinstance(claims, dict) else b""
    if not isinstance(claims, dict) or not hmac.compare_digest(said, call_sid.encode()):
        raise StreamRefused("token")
    expiry = claims.get("exp")
    if not isinstance(expiry, int) or expiry < now:
        raise StreamRefused("token-expired")
    caller = claims.get("from")
    return caller if isinstance(caller, str) and _E164.match(caller) else None


def secret_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


Network = IPv4Network | IPv6Network


def source_allowed(host: str | None, allowed: tuple[Network, ...]) -> bool:
    """The connection's own peer address (never a header the sender wrote) lies in an allowed network;
    an empty list allows every source."""
    if not allowed:
        return True
    try:
        address: IPv4Address | IPv6Address = ip_address(host or "")
    except ValueError:
        return False
    return any(address in network for network in allowed if network.version == address.version)
