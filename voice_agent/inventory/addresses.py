"""Addresses as the inventory prints them: never a password, a token or a query value that could be one."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

HIDDEN = "***"
#: Query parameters whose values are never printed (a password or key some drivers accept in the URL).
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth", "credential")
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_url(url: str) -> str:
    """``url`` without a password in its user part and without query values (a key may ride there)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{HIDDEN}@{host}" if ":" in user else f"{user}@{host}"
    query = "&".join(f"{pair.partition('=')[0]}={HIDDEN}" for pair in parts.query.split("&") if pair)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _secret_name(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


@dataclass(frozen=True)
class Database:
    """The audit database as configured, printable: ``url`` has any password replaced by ``***``."""

    dialect: str
    url: str
    sqlite_file: str | None
    host: str | None
    sslmode: str | None

    @property
    def local(self) -> bool:
        """A SQLite file, a Unix socket or a loopback server: nothing crosses a network."""
        return (
            self.sqlite_file is not None
            or self.host is None
            or self.host.startswith("/")
            or is_loopback(self.host)
        )


def database(url: str) -> Database | None:
    """Parse an SQLAlchemy URL with SQLAlchemy's own parser; None when it does not parse."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    query = parsed.query
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    if query:
        pairs = []
        for name in sorted(query):
            values = query[name]
            for value in (values,) if isinstance(values, str) else values:
                pairs.append(f"{name}={HIDDEN if _secret_name(name) else value}")
        shown += "?" + "&".join(pairs)
    dialect = parsed.get_backend_name()
    socket_host = query.get("host")
    host = parsed.host or (socket_host if isinstance(socket_host, str) else None)
    sslmode = query.get("sslmode")
    return Database(
        dialect=dialect,
        url=shown,
        sqlite_file=(parsed.database or "") if dialect == "sqlite" else None,
        host=host,
        sslmode=sslmode if isinstance(sslmode, str) else None,
    )


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` names, when it is an IP literal (a name: None)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
