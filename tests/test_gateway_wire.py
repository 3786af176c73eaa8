"""What crosses the wire, seen from the server's side and from the transport: fewest elements, strict
handling, no PHI in URLs, bounded retries for reads only, and malformed answers turned into typed errors."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from fhir_adapters import FhirInvalidResponse, FhirUnavailable, PatientRef, Purpose
from tests.conftest import Sandbox
from tests.faults import FaultyTransport, matches, real_transport
from voice_agent import wiring

REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>/fhir/\S+) HTTP/1\.1"')


async def exercise_every_operation(sandbox: Sandbox, wire: FaultyTransport) -> None:
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir)
        await scheduling.directory(refresh=True)
        person = sandbox.clinic.patient("same-name")
        (ref,) = await scheduling.find_patient(
            given=person.given, family=person.family, birth_date=person.birth_date
        )
        await scheduling.phone_on_record(ref, person.phone)
        await scheduling.upcoming_appointments(ref)
        first, second = (await scheduling.find_free_slots(limit=2))[:2]
        booked = await scheduling.book(ref, first.slot_id)
        moved = await scheduling.reschedule(ref, booked.appointment_id, second.slot_id)
        await scheduling.cancel(ref, moved.appointment_id)


async def test_every_request_asks_for_the_fewest_elements_as_the_server_saw_it(sandbox: Sandbox) -> None:
    before = sandbox.log_position()
    await exercise_every_operation(sandbox, FaultyTransport(real_transport(sandbox.settings)))
    lines = [m for m in (REQUEST_LINE.search(line) for line in sandbox.log_since(before)) if m]
    assert len(lines) >= 15
    methods = {m["method"] for m in lines}
    assert methods == {"GET", "POST", "PATCH"}
    for line in lines:
        query = parse_qs(urlsplit(line["target"]).query)
        assert "_elements" in query, line.group(0)
        if line["target"].split("?")[0].endswith("/_search"):
            assert int(query["_count"][0]) <= sandbox.settings.fhir_max_page, line.group(0)


async def test_no_name_birth_date_or_phone_ever_appears_in_a_url(sandbox: Sandbox) -> None:
    before = sandbox.log_position()
    await exercise_every_operation(sandbox, FaultyTransport(real_transport(sandbox.settings)))
    person = sandbox.clinic.patient("same-name")
    logged = unquote(" ".join(sandbox.log_since(before)))
    for secret in (
        person.family,
        person.given,
        person.birth_date.isoformat(),
        person.phone,
        person.phone[-4:],
    ):
        assert secret not in logged


async def test_every_request_asks_for_strict_handling(sandbox: Sandbox) -> None:
    wire = FaultyTransport(real_transport(sandbox.settings))
    await exercise_every_operation(sandbox, wire)
    assert wire.requests
    for request in wire.requests:
        assert "handling=strict" in request.headers["prefer"]
        if request.method in ("POST", "PATCH") and not request.url.path.endswith("/_search"):
            assert "return=minimal" in request.headers["prefer"]
        if request.method == "PATCH":
            assert request.headers["if-match"].startswith('W/"')


@pytest.mark.parametrize(
    "body",
    [
        b"<html>proxy error</html>",
        b'{"resourceType": "OperationOutcome"}',
        b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Observation", "id": "o1"}}]}',
        b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Schedule", "id": "s1"}}]}',
        b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Schedule", "id": "../x", "actor": [{"display": "Dr. X"}]}}]}',
        b"[1, 2, 3]",
    ],
    ids=["html", "not-a-bundle", "wrong-type", "missing-required", "bad-id", "json-array"],
)
async def test_a_malformed_answer_is_a_typed_error_that_quotes_nothing(sandbox: Sandbox, body: bytes) -> None:
    wire = FaultyTransport(real_transport(sandbox.settings), body_override=body)
    wire.inject(matches("POST", "/Schedule/_search"), "garbage")
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        with pytest.raises(FhirInvalidResponse) as bad:
            await fhir.search(
                "Schedule", [("active", "true")], elements=("actor",), count=5, purpose=Purpose.HEALTH_CHECK
            )
        # the next, well-formed answer is accepted: one bad response loses nothing
        assert (
            len(
                await fhir.search(
                    "Schedule",
                    [("active", "true")],
                    elements=("actor",),
                    count=5,
                    purpose=Purpose.HEALTH_CHECK,
                )
            )
            == 4
        )
    assert "proxy" not in str(bad.value) and "Dr. X" not in str(bad.value)


async def test_a_malformed_patient_never_echoes_its_values(sandbox: Sandbox) -> None:
    canary = b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient", "id": "p1", "name": "Zebulon Canary-Quill", "birthDate": "1901-01-01"}}]}'
    wire = FaultyTransport(real_transport(sandbox.settings), body_override=canary)
    wire.inject(matches("POST", "/Patient/_search"), "garbage")
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        with pytest.raises(FhirInvalidResponse) as bad:
            await wiring.scheduling(sandbox.settings, fhir).find_patient(
                given="Zebulon", family="Canary-Quill", birth_date=__import__("datetime").date(1901, 1, 1)
            )
    text = f"{bad.value!s} {bad.value!r} {bad.value.__cause__!r} {bad.value.__context__!r}"
    assert "Zebulon" not in text and "Canary" not in text and "1901" not in text


_NOLAN = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Nolan", "given": ["Omar"]}]}


@pytest.mark.parametrize(
    ("extra", "entries", "complete"),
    [
        ({}, 1, True),
        ({"link": [{"relation": "next", "url": "https://fhir.invalid/Patient?page=2"}]}, 1, False),
        ({"total": 2}, 1, False),
        ({}, 2, False),  # a full page that mentions no more: a server may have capped it quietly
    ],
    ids=["all", "next-link", "total-above", "full-page"],
)
async def test_a_search_page_says_whether_it_holds_every_match(
    sandbox: Sandbox, extra: dict[str, object], entries: int, complete: bool
) -> None:
    """What a keyed-surname lookup relies on to never miss a match: a page the server says (or may)
    continue elsewhere is marked incomplete, and the gateway never follows a ``next`` link."""
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": _NOLAN}] * entries}
    wire = FaultyTransport(
        real_transport(sandbox.settings), body_override=json.dumps({**bundle, **extra}).encode()
    )
    wire.inject(matches("POST", "/Patient/_search"), "garbage")
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        page = await fhir.search(
            "Patient",
            [("family", "n"), ("birthdate", "1944-04-04")],
            elements=("name",),
            count=2,
            purpose=Purpose.VERIFY_IDENTITY,
        )
    assert len(page) == entries and page.complete is complete
    assert len(wire.requests) == 1


async def test_reads_are_retried_a_bounded_number_of_times(sandbox: Sandbox) -> None:
    wire = FaultyTransport(real_transport(sandbox.settings))
    wire.inject(matches("POST", "/Schedule/_search"), "connect-error", times=2)
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        found = await fhir.search(
            "Schedule", [("active", "true")], elements=(), count=5, purpose=Purpose.HEALTH_CHECK
        )
    assert len(found) == 4
    assert len([r for r in wire.requests if r.url.path.endswith("/Schedule/_search")]) == 3

    wire = FaultyTransport(real_transport(sandbox.settings))
    wire.inject(matches("POST", "/Schedule/_search"), "connect-error", times=10)
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        with pytest.raises(FhirUnavailable):
            await fhir.search(
                "Schedule", [("active", "true")], elements=(), count=5, purpose=Purpose.HEALTH_CHECK
            )
    assert len(wire.requests) == 1 + sandbox.settings.fhir_read_retries


async def test_writes_are_never_retried(sandbox: Sandbox) -> None:
    wire = FaultyTransport(real_transport(sandbox.settings))
    ref = PatientRef(sandbox.clinic.patient("no-appointments").id)
    async with wiring.gateway(sandbox.settings, transport=wire) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir)
        offer = (await scheduling.find_free_slots(limit=1))[0]
        wire.inject(matches("PATCH", f"/Slot/{offer.slot_id}"), "connect-error")
        with pytest.raises(FhirUnavailable):
            await scheduling.book(ref, offer.slot_id)
    patches = [r for r in wire.requests if r.method == "PATCH"]
    assert len(patches) == 1
    with sandbox.raw() as raw:
        assert raw.get(f"Slot/{offer.slot_id}").json()["status"] == "free"
