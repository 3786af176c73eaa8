"""What crosses the wire, seen from the server's side and from the transport: fewest elements, strict
handling, no PHI in URLs, bounded retries for reads only, and malformed answers turned into typed errors."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote

import pytest

from fhir_adapters import (
    OUTSIDE_CRITERIA,
    AccessRecord,
    FhirInvalidResponse,
    FhirUnavailable,
    PatientRef,
    Purpose,
)
from harness.faults import FaultyTransport, matches, real_transport
from harness.sandbox import Sandbox
from voice_agent import wiring


@pytest.fixture
def sandbox(fhir_engine: Sandbox) -> Sandbox:
    """Every test here runs on each FHIR engine: the sekmet sandbox and Medplum's."""
    return fhir_engine


REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>/fhir/\S+) HTTP/1\.1"')


class Recorder:
    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    async def record(self, access: AccessRecord) -> None:
        self.records.append(access)


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
    """Reads and writes name ``_elements`` in the URL the server logged; a search names nothing there at
    all: its criteria, ``_elements`` and ``_count`` all travel in the form body (which some servers, like
    Medplum, read alone)."""
    before = sandbox.log_position()
    wire = FaultyTransport(real_transport(sandbox.settings))
    await exercise_every_operation(sandbox, wire)
    lines = [m for m in (REQUEST_LINE.search(line) for line in sandbox.log_since(before)) if m]
    assert len(lines) >= 15
    methods = {m["method"] for m in lines}
    assert methods == {"GET", "POST", "PATCH"}
    for line in lines:
        path, _, query = line["target"].partition("?")
        if path.endswith("/_search"):
            assert not query, line.group(0)
        else:
            assert "_elements" in parse_qs(query), line.group(0)
    searches = [r for r in wire.requests if r.url.path.endswith("/_search")]
    assert searches
    for request in searches:
        form = parse_qs(request.content.decode())
        assert form["_elements"] and "meta" not in form["_elements"][0], form
        assert int(form["_count"][0]) <= sandbox.settings.fhir_max_page


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
        b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Schedule", "id": "s1"}}]}',
        b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Schedule", "id": "../x", "actor": [{"display": "Dr. X"}]}}]}',
        b"[1, 2, 3]",
    ],
    ids=["html", "not-a-bundle", "missing-required", "bad-id", "json-array"],
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


_NOLAN = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Nolan", "given": ["Omar"]}],
    "birthDate": "1944-04-04",
}


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


@pytest.mark.parametrize(
    ("entries", "kept", "withheld"),
    [
        ([{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}], [], ()),
        ([{**_NOLAN, "id": f"p{i}"} for i in range(1, 4)], ["p1", "p2"], ("p3",)),
        ([{**_NOLAN, "birthDate": "1944-04-05"}, {**_NOLAN, "id": "p2"}], ["p2"], ("p1",)),
    ],
    ids=["another-type", "beyond-the-page", "outside-the-criteria"],
)
async def test_a_result_the_search_did_not_ask_for_is_dropped_and_recorded(
    sandbox: Sandbox, entries: list[dict[str, object]], kept: list[str], withheld: tuple[str, ...]
) -> None:
    """Another type, more than ``_count``, or a record that fails a criterion: never handed on, and a
    second access record (outcome denied) names what was withheld, without its content."""
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": e} for e in entries]}
    wire = FaultyTransport(real_transport(sandbox.settings), body_override=json.dumps(bundle).encode())
    wire.inject(matches("POST", "/Patient/_search"), "garbage")
    recorder = Recorder()
    async with wiring.gateway(sandbox.settings, recorder=recorder, transport=wire) as fhir:
        page = await fhir.search(
            "Patient",
            [("family", "n"), ("birthdate", "1944-04-04")],
            elements=("name",),
            count=2,
            purpose=Purpose.VERIFY_IDENTITY,
        )
    assert [p.id for p in page] == kept
    search, dropped = recorder.records
    assert (search.outcome, search.resource_ids) == ("success", tuple(kept))
    assert (dropped.outcome, dropped.error, dropped.resource_ids) == ("denied", OUTSIDE_CRITERIA, withheld)
    assert (dropped.resource_type, dropped.purpose) == ("Patient", Purpose.VERIFY_IDENTITY)


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
