"""Breach detection against a real agent (the sandbox over mTLS, its own audit trail): a flood of fake
emergencies from one phone is one queue row and one alert while every caller still hears 911; a FHIR
server whose certificate the agent cannot trust is an alert; alerts reach a syslog collector over TLS
(RFC 5424, octet-counted) and a signed webhook, carry nothing but their kind, and a SIEM that is down or
presents a certificate the agent does not trust loses the call nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import json
import re
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from fhir_adapters import FhirAuthenticationError
from harness.sandbox import Sandbox
from tests.security.test_caller_gate import call
from voice_agent.audit.siem import FAILURES
from voice_agent.dialogue import templates
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.escalations import EscalationCategory, ResolutionOutcome, Urgency
from voice_agent.runtime import Runtime, runtime
from voice_agent.sandbox.certs import issue, make_authority, write_pair

FLOODER, SOMEONE_ELSE = "+15550107771", "+15550107772"
SECRET = "webhook-secret-for-tests-0123456789"


def alert_kinds(agent: Runtime) -> list[str]:
    now = datetime.now(UTC)
    return [a.kind for a in agent.detector.signals.recent(now - timedelta(hours=1), now + timedelta(hours=1))]


async def emergency_from(agent: Runtime, number: str) -> str:
    conversation = conversations(agent)(
        session=await agent.sessions.start(caller_number=number), understanding=RulesUnderstanding()
    )
    await conversation.greet()
    return (await conversation.respond("I have crushing chest pain and can't breathe")).text


@pytest.fixture
async def own_agent(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with runtime(sandbox.agent_settings(tmp_path)) as running:
        yield running
    # the origin tables hold HMACs: the numbers are nowhere in the database's files
    for stored in tmp_path.glob("audit.db*"):
        data = stored.read_bytes()
        assert FLOODER.encode() not in data and FLOODER[2:].encode() not in data


async def test_a_flood_of_emergencies_from_one_phone_is_one_row_and_one_alert(own_agent: Runtime) -> None:
    for _ in range(5):
        assert "9 1 1" in await emergency_from(own_agent, FLOODER)  # every caller is told to dial 911
    assert "9 1 1" in await emergency_from(own_agent, SOMEONE_ELSE)
    store = own_agent.escalations.store
    urgent = [e for e in store.queue(100) if e.urgency is Urgency.URGENT]
    assert len(urgent) == 2  # the flood is one row; the other caller's emergency is not buried under it
    repeats = store.repeats()
    assert sorted(repeats.get(e.id, 0) for e in urgent) == [0, 4]
    assert alert_kinds(own_agent) == ["urgent-flood"]

    # once staff have resolved the flood's row, a new emergency from that phone is a new row again
    flood = next(e for e in urgent if repeats.get(e.id))
    store.claim(flood.id, "desk")
    store.resolve(flood.id, "desk", ResolutionOutcome.DUPLICATE)
    await emergency_from(own_agent, FLOODER)
    active = [e for e in store.queue(100) if e.urgency is Urgency.URGENT and e.status.value != "resolved"]
    assert len(active) == 2 and all(e.category is EscalationCategory.EMERGENCY for e in active)
    trail = own_agent.trail.export(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    assert sum(1 for row in trail if row["event"]["action"] == "escalation.merge") == 4


async def test_a_fhir_server_the_agent_cannot_trust_raises_an_alert(sandbox: Sandbox, tmp_path: Path) -> None:
    stranger = make_authority("Someone else's CA")
    write_pair(tmp_path, "other-ca", stranger.key, stranger.cert)
    async with runtime(sandbox.agent_settings(tmp_path, fhir_ca_file=tmp_path / "other-ca.pem")) as agent:
        for _ in range(2):
            with pytest.raises(FhirAuthenticationError):
                await agent.scheduling.find_patient(given="Ann", family="Lee", birth_date=date(1980, 1, 2))
        assert alert_kinds(agent) == ["fhir-certificate-failure"]  # once an hour, not once a request
        conversation = await call(agent)  # and a caller gets the spoken fallback, not silence
        await conversation.respond("when is my next appointment")
        await conversation.respond("Ann Lee")
        reply = await conversation.respond("January 2 1980")
        assert reply.text and templates.VERIFIED not in reply.text


class Collector:
    """A syslog collector over TLS (RFC 5425 octet counting) on a free port, in a thread."""

    def __init__(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._context = context
        self.frames: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                with self._context.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(5)
                    buffer = b""
                    while chunk := conn.recv(4096):
                        buffer += chunk
                        while b" " in buffer:
                            length, _, rest = buffer.partition(b" ")
                            if len(rest) < int(length):
                                break
                            self.frames.append(rest[: int(length)].decode())
                            buffer = rest[int(length) :]
            except (ssl.SSLError, OSError):
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


class Webhook(http.server.ThreadingHTTPServer):
    def __init__(self, cert: Path, key: Path) -> None:
        self.posts: list[tuple[bytes, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((body, self.headers.get("X-Voice-Agent-Signature", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/alerts"


@pytest.fixture
def siem(sandbox: Sandbox) -> Iterator[tuple[Collector, Webhook]]:
    collector, webhook = Collector(*sandbox.certs.server), Webhook(*sandbox.certs.server)
    try:
        yield collector, webhook
    finally:
        collector.close()
        webhook.shutdown()


#: RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG; facility auth (4), warning (4)
SYSLOG = re.compile(
    r"^<36>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
    r"(\S+) voice-agent \S+ security-alert "
    r'\[alert@32473 kind="([a-z-]+)"\] \ufeff?security alert: ([a-z-]+)$'
)


async def test_alerts_reach_the_siem_over_tls_signed_and_with_nothing_else(
    sandbox: Sandbox, tmp_path: Path, siem: tuple[Collector, Webhook]
) -> None:
    collector, webhook = siem
    settings = sandbox.agent_settings(
        tmp_path,
        siem_syslog=collector.address,
        siem_webhook_url=webhook.url,
        siem_webhook_secret=SecretStr(SECRET),
        siem_ca_file=sandbox.certs.ca,
    )
    async with runtime(settings) as agent:
        await agent.detector.raise_once("number-locked", FLOODER, timedelta(hours=1))
        for _ in range(30):
            await agent.detector.signal("ceiling-refusal")
        for _ in range(100):
            if len(collector.frames) >= 2 and len(webhook.posts) >= 2:
                break
            await asyncio.sleep(0.05)
    parsed = [SYSLOG.match(frame) for frame in collector.frames]
    assert all(parsed) and len(parsed) == 2, collector.frames
    assert [m.group(3) for m in parsed if m] == ["number-locked", "ceiling-refusals"]
    bodies = []
    for body, signature in webhook.posts:
        assert signature == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        bodies.append(json.loads(body))
    assert [b["alert"] for b in bodies] == ["number-locked", "ceiling-refusals"]
    everything = "".join(collector.frames) + "".join(b.decode() for b, _ in webhook.posts)
    assert FLOODER not in everything and FLOODER[2:] not in everything  # the scope never leaves


async def test_a_siem_that_is_down_or_untrusted_costs_nothing_but_a_count(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    impostor = make_authority("Not the clinic's CA")
    write_pair(tmp_path, "impostor", *issue(impostor, "siem", server_names=("127.0.0.1",)))
    collector = Collector(tmp_path / "impostor.pem", tmp_path / "impostor.key")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    try:
        for address in (collector.address, f"127.0.0.1:{closed.getsockname()[1]}"):
            before = FAILURES.labels("syslog")._value.get()
            home = tmp_path / address.replace(":", "_")
            home.mkdir()
            settings = sandbox.agent_settings(home, siem_syslog=address, siem_ca_file=sandbox.certs.ca)
            async with runtime(settings) as agent:
                await agent.detector.signal("fhir-auth-failure")  # no exception reaches the caller
                assert alert_kinds(agent) == ["fhir-certificate-failure"]  # still on the console
                assert FAILURES.labels("syslog")._value.get() == before + 1
        assert collector.frames == []  # nothing was sent to a collector the agent could not trust
    finally:
        collector.close()
        closed.close()
