"""The wire: an httpx client that speaks mutual TLS to exactly one server, and error classification.

Kept apart from the gateway so the gateway's rules (scope, elements, parsing) never depend on how bytes
move, and tests can wrap the real transport to inject faults.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from .errors import FhirAuthenticationError, FhirError, FhirUnavailable

#: OpenSSL reasons that mean "the peers could not authenticate each other", as opposed to "unreachable".
_TLS_AUTH_REASONS = (
    "CERTIFICATE",
    "UNKNOWN_CA",
    "HANDSHAKE_FAILURE",
    "WRONG_VERSION_NUMBER",
    "ACCESS_DENIED",
    "UNSUPPORTED_PROTOCOL",
)


@dataclass(frozen=True)
class TransportConfig:
    base_url: str
    ca_file: Path | None
    client_cert: tuple[Path, Path] | None
    connect_timeout: float = 3.0
    read_timeout: float = 10.0


def ssl_context(ca_file: Path | None, client_cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """TLS 1.2+; trust only the clinic's CA when one is named; present the agent's certificate."""
    try:
        if ca_file is not None:
            # With cafile given, the system store is NOT loaded: the server is pinned to this CA alone.
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        else:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_cert is not None:
            context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    except (OSError, ssl.SSLError) as exc:
        raise FhirAuthenticationError(
            f"The FHIR TLS material could not be loaded ({type(exc).__name__}); check the CA and client "
            "certificate settings."
        ) from None
    return context


def build_client(
    config: TransportConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """One pooled client per process. ``trust_env`` is off: proxies and CA bundles from the environment
    (this machine sets REQUESTS_CA_BUNDLE) must never override the pinned CA or route PHI elsewhere."""
    verify: ssl.SSLContext | bool = True
    if config.base_url.startswith("https://"):
        verify = ssl_context(config.ca_file, config.client_cert)
    timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
    base = config.base_url.rstrip("/") + "/"
    if transport is None:
        transport = httpx.AsyncHTTPTransport(verify=verify, retries=0)
    return httpx.AsyncClient(
        base_url=base,
        transport=transport,
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
        headers={"Accept": "application/fhir+json"},
    )


def _ssl_reason(exc: BaseException) -> str | None:
    """The OpenSSL reason anywhere in the exception's context chain, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return str(getattr(current, "reason", None) or current)
        text = str(current)
        for marker in ("SSL", "TLS", "tlsv1", "sslv3"):
            if marker in text:
                return text
        current = current.__cause__ or current.__context__
    return None


def classify(exc: httpx.TransportError | ssl.SSLError, *, resource_type: str | None) -> FhirError:
    """Map a transport failure to a typed, PHI-free error (never chained to the original). A TLS alert
    the server sends after the handshake (TLS 1.3's "certificate required", from a server that refuses
    the agent's certificate with a proper alert, as Node's does) reaches httpx's caller unwrapped, as an
    ``ssl.SSLError``: it is an authentication failure like the others."""
    reason = _ssl_reason(exc)
    if reason is not None and any(key in reason.upper() for key in _TLS_AUTH_REASONS):
        return FhirAuthenticationError(resource_type=resource_type)
    if isinstance(exc, httpx.TimeoutException):
        return FhirUnavailable("The FHIR server did not answer in time.", resource_type=resource_type)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and reason is None:
        # A server that demands a client certificate may simply drop the connection after the TLS 1.3
        # handshake; to the client that looks like a disconnect. Say both, since they cannot be told apart.
        return FhirUnavailable(
            "The FHIR server closed the connection (unreachable, or it refused the agent's certificate).",
            resource_type=resource_type,
        )
    if reason is not None:
        return FhirAuthenticationError(resource_type=resource_type)
    return FhirUnavailable(resource_type=resource_type)
