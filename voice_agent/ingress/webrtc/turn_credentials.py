"""Short-lived TURN credentials, as the TURN REST convention that coturn implements
(``use-auth-secret``/``static-auth-secret``): the user name is ``<expiry unix time>:<label>`` and the
password is base64(HMAC-SHA1(shared secret, user name)). The TURN server checks the HMAC and the expiry
itself, so a credential copied out of a browser stops working within minutes and the shared secret never
leaves the agent. (Three lines of HMAC: no library is needed for it.) Pure, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["IceServerConfig", "ice_config", "turn_credential"]


@dataclass(frozen=True)
class IceServerConfig:
    urls: str
    username: str = ""
    credential: str = ""

    def as_browser_dict(self) -> dict[str, str]:
        """The shape of an ``RTCIceServer`` in the page's ``RTCPeerConnection`` configuration."""
        entry = {"urls": self.urls}
        if self.username:
            entry |= {"username": self.username, "credential": self.credential}
        return entry


def turn_credential(secret: str, *, label: str, now: float, ttl_seconds: int) -> tuple[str, str]:
    """(user name, password) good until ``now + ttl_seconds``; ``label`` is not an identifier of anyone
    (the agent passes a random one per request, so the TURN server's logs link no two calls)."""
    username = f"{int(now) + ttl_seconds}:{label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_config(
    stun_urls: tuple[str, ...],
    turn_urls: tuple[str, ...],
    secret: str | None,
    *,
    label: str,
    now: float,
    ttl_seconds: int,
) -> list[IceServerConfig]:
    """The STUN servers as they are, and the TURN servers with one fresh credential between them."""
    servers = [IceServerConfig(urls=url) for url in stun_urls]
    if turn_urls and secret is not None:
        username, password = turn_credential(secret, label=label, now=now, ttl_seconds=ttl_seconds)
        servers += [IceServerConfig(urls=url, username=username, credential=password) for url in turn_urls]
    return servers
