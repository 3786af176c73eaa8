"""The recorder behind the FHIR gateway: what it writes, off the event loop, and failing closed."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from fhir_adapters.errors import FhirNotAllowed
from fhir_adapters.gateway import AccessRecord, AccessRecorder, FhirGateway, Purpose
from fhir_adapters.scope import Interaction
from voice_agent.audit import (
    AuditEvent,
    AuditRecorder,
    AuditTrail,
    AuditWriteError,
    Keyring,
    current_session_id,
)


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    keyring = Keyring.from_string(f"k1 {base64.b64encode(os.urandom(32)).decode()}")
    with AuditTrail.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring) as opened:
        yield opened


@pytest.fixture
def recorder(trail: AuditTrail) -> AuditRecorder:
    return AuditRecorder(trail, "voice-agent")


def events(trail: AuditTrail) -> list[dict[str, Any]]:
    return [item["event"] for item in trail.export()]


def test_the_recorder_satisfies_the_gateway_protocol(recorder: AuditRecorder) -> None:
    as_protocol: AccessRecorder = recorder
    assert as_protocol is recorder


async def test_an_access_record_becomes_a_typed_event(recorder: AuditRecorder, trail: AuditTrail) -> None:
    session = uuid4()
    token = current_session_id.set(session)
    try:
        await recorder.record(
            AccessRecord(
                "Slot", Interaction.UPDATE, Purpose.BOOK, "conflict", ("slot-1",), 412, "FhirConflict"
            )
        )
    finally:
        current_session_id.reset(token)
    await recorder.record(AccessRecord("Schedule", Interaction.SEARCH, Purpose.LEARN_CLINIC, "success"))
    first, second = events(trail)
    assert first == {
        "time": first["time"],
        "actor": {"kind": "service", "id": "voice-agent"},
        "purpose": "book",
        "action": "fhir.update",
        "outcome": "conflict",
        "resource_type": "Slot",
        "resource_ids": ["slot-1"],
        "session_id": str(session),
        "http_status": 412,
        "error": "FhirConflict",
    }
    assert "session_id" not in second  # outside a call
    assert trail.verify().ok


async def test_caller_input_where_an_id_belongs_is_withheld(
    recorder: AuditRecorder, trail: AuditTrail
) -> None:
    await recorder.record(
        AccessRecord(
            "Patient?name=John Smith",
            Interaction.READ,
            Purpose.VERIFY_IDENTITY,
            "denied",
            ("../Patient?name=John Smith", "555-010-0199", "pat-9"),
            None,
            "FhirNotAllowed",
        )
    )
    (event,) = events(trail)
    assert event["resource_ids"] == ["pat-9"]
    assert event["withheld_ids"] == 2
    assert "resource_type" not in event
    assert event["outcome"] == "denied"


async def test_writes_happen_off_the_event_loop(trail: AuditTrail) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    class Spy(AuditTrail):
        def append(self, event: AuditEvent) -> int:
            seen.append(threading.get_ident())
            return trail.append(event)

    spy = Spy.__new__(Spy)
    await AuditRecorder(spy, "voice-agent").session_started(uuid4())
    assert seen and seen[0] != loop_thread


async def test_session_events(recorder: AuditRecorder, trail: AuditTrail) -> None:
    session = uuid4()
    await recorder.session_started(session)
    await recorder.session_ended(session, "goodbye", 93.5)
    start, end = events(trail)
    assert (start["action"], start["purpose"], start["session_id"]) == (
        "session.start",
        "call-session",
        str(session),
    )
    assert end["action"] == "session.end"
    assert (end["end_reason"], end["duration_seconds"], end["phi_retained"]) == ("goodbye", 93.5, "none")


class BrokenTrail(AuditTrail):
    def __init__(self) -> None:
        pass

    def append(self, event: AuditEvent) -> int:
        raise OSError("disk full")


async def test_a_failed_write_is_raised_not_swallowed() -> None:
    with pytest.raises(AuditWriteError) as caught:
        await AuditRecorder(BrokenTrail(), "voice-agent").session_started(uuid4())
    assert isinstance(caught.value.__cause__, OSError)


def _gateway(recorder: AuditRecorder, handler: Any) -> FhirGateway:
    client = httpx.AsyncClient(base_url="https://fhir.test/fhir", transport=httpx.MockTransport(handler))
    return FhirGateway(client, recorder=recorder, read_retries=0)


def _patient(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={"resourceType": "Patient", "id": "pat-42", "meta": {"versionId": "3"}},
        headers={"etag": 'W/"3"'},
    )


async def test_through_the_gateway_reads_and_refusals_are_audited(
    recorder: AuditRecorder, trail: AuditTrail
) -> None:
    session: UUID = uuid4()
    current_session_id.set(session)
    try:
        async with _gateway(recorder, _patient) as gateway:
            await gateway.read("Patient", "pat-42", elements=["birthDate"], purpose=Purpose.VERIFY_IDENTITY)
            with pytest.raises(FhirNotAllowed):
                await gateway.search("Observation", [], elements=[], count=1, purpose=Purpose.VERIFY_IDENTITY)
    finally:
        current_session_id.set(None)
    read, refused = events(trail)
    assert (read["action"], read["outcome"], read["resource_ids"]) == ("fhir.read", "success", ["pat-42"])
    assert (refused["action"], refused["outcome"], refused["resource_type"]) == (
        "fhir.search",
        "denied",
        "Observation",
    )
    assert refused["error"] == "FhirNotAllowed"
    assert read["session_id"] == refused["session_id"] == str(session)


async def test_when_the_audit_write_fails_the_gateway_call_fails(trail: AuditTrail) -> None:
    """Fail closed: patient data is not handed back if its access could not be recorded."""
    async with _gateway(AuditRecorder(BrokenTrail(), "voice-agent"), _patient) as gateway:
        with pytest.raises(AuditWriteError):
            await gateway.read("Patient", "pat-42", elements=["birthDate"], purpose=Purpose.VERIFY_IDENTITY)
