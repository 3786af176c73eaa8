"""Fault injection at the wire: wrappers around the REAL mutual-TLS transport to the real sandbox.

They let tests drop or corrupt one chosen exchange (a dropped connection mid-write, a garbled body), or
take one search parameter out before the server sees it, while every other request goes to the server
untouched. Nothing here fakes FHIR behaviour: every answer is the real server's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import httpx

from fhir_adapters.transport import ssl_context
from voice_agent.settings import Settings

_FRAMING = ("content-length", "content-encoding", "transfer-encoding")
Rule = Callable[[httpx.Request], bool]


def real_transport(settings: Settings) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(
        verify=ssl_context(settings.ca_file, settings.client_cert_pair), retries=0
    )


@dataclass
class FaultyTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    requests: list[httpx.Request] = field(default_factory=list)
    #: (rule, fault) pairs; the first matching rule fires once per matching request, up to ``times``.
    faults: list[tuple[Rule, str, int]] = field(default_factory=list)
    body_override: bytes = b"not json at all"

    def inject(self, rule: Rule, fault: str, *, times: int = 1) -> None:
        """fault: 'connect-error' (never sent), 'lost-response' (sent, answer lost), 'status-500',
        'garbage' (body replaced with ``body_override``)."""
        self.faults.append((rule, fault, times))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for index, (rule, fault, times) in enumerate(self.faults):
            if times > 0 and rule(request):
                self.faults[index] = (rule, fault, times - 1)
                return await self._fail(request, fault)
        return await self.inner.handle_async_request(request)

    async def _fail(self, request: httpx.Request, fault: str) -> httpx.Response:
        if fault == "connect-error":
            raise httpx.ConnectError("injected: connection refused", request=request)
        if fault == "status-500":
            return httpx.Response(500, request=request, content=b"{}")
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if fault == "lost-response":
            raise httpx.ReadTimeout("injected: the answer never arrived", request=request)
        if fault == "garbage":
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _FRAMING}
            return httpx.Response(200, request=request, content=self.body_override, headers=kept)
        raise AssertionError(fault)

    async def aclose(self) -> None:
        await self.inner.aclose()


def matches(method: str, path_part: str) -> Rule:
    return lambda request: request.method == method and path_part in request.url.path


@dataclass
class IgnoredParameter(httpx.AsyncBaseTransport):
    """A server that ignores one search parameter, made from a real one: the parameter is taken out of
    every form-encoded search of ``resource_type`` before it reaches the server, which then answers as if
    it had never been asked (the way a server that does not know the parameter answers). ``removed``
    counts the searches it changed."""

    inner: httpx.AsyncBaseTransport
    resource_type: str
    parameter: str
    removed: int = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith(f"/{self.resource_type}/_search"):
            form = parse_qsl((await request.aread()).decode(), keep_blank_values=True)
            kept = [(name, value) for name, value in form if name != self.parameter]
            if len(kept) < len(form):
                self.removed += 1
                headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
                request = httpx.Request(request.method, request.url, headers=headers, content=urlencode(kept))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
