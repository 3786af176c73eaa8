"""The gateway's scope: what the agent may touch, refused in code before any byte reaches the network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from fhir_adapters import AccessRecord, FhirGateway, FhirNotAllowed, PatientRef, Purpose
from harness.faults import FaultyTransport, real_transport
from harness.sandbox import Sandbox
from voice_agent import wiring


class Recorder:
    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    async def record(self, access: AccessRecord) -> None:
        self.records.append(access)


#: The gateway, the transport that counts its requests, and the access records it wrote.
Counted = tuple[FhirGateway, FaultyTransport, Recorder]


@pytest.fixture
async def counted(sandbox: Sandbox) -> AsyncIterator[Counted]:
    """A gateway whose every outgoing request is counted at the transport."""
    wire = FaultyTransport(real_transport(sandbox.settings))
    recorder = Recorder()
    async with wiring.gateway(sandbox.settings, recorder=recorder, transport=wire) as fhir:
        yield fhir, wire, recorder


async def test_an_observation_read_is_refused_without_any_network_call(
    sandbox: Sandbox, counted: Counted
) -> None:
    fhir, wire, recorder = counted
    before = sandbox.log_position()
    with pytest.raises(FhirNotAllowed) as refused:
        await fhir.read("Observation", "obs-1", elements=(), purpose=Purpose.LIST_APPOINTMENTS)
    assert wire.requests == []
    assert sandbox.log_since(before) == []  # the server saw nothing either
    assert "obs-1" not in str(refused.value)
    assert recorder.records[-1].outcome == "denied"
    assert recorder.records[-1].resource_type == "Observation"


@pytest.mark.parametrize(
    ("resource_type", "call"),
    [
        ("Observation", "search"),
        ("Practitioner", "search"),
        ("Patient", "create"),
        ("Patient", "update"),
        ("Schedule", "update"),
        ("Slot", "create"),
        ("Observation", "create"),
    ],
)
async def test_interactions_outside_the_allowlist_are_refused(
    counted: Counted, resource_type: str, call: str
) -> None:
    fhir, wire, recorder = counted
    with pytest.raises(FhirNotAllowed):
        if call == "search":
            await fhir.search(resource_type, [("_id", "x")], elements=(), count=1, purpose=Purpose.FIND_SLOTS)
        elif call == "update":
            await fhir.update(
                resource_type,
                "x",
                [{"op": "replace", "path": "/active", "value": False}],
                if_match='W/"1"',
                purpose=Purpose.BOOK,
            )
        else:
            model = {"Patient": Patient, "Observation": Observation}.get(resource_type)
            if model is None:
                from fhirclient.models.slot import Slot

                resource = Slot(
                    {
                        "resourceType": "Slot",
                        "schedule": {"reference": "Schedule/x"},
                        "status": "free",
                        "start": "2030-01-01T09:00:00Z",
                        "end": "2030-01-01T09:30:00Z",
                    }
                )
            elif model is Observation:
                resource = Observation(
                    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
                )
            else:
                resource = Patient({"resourceType": "Patient"})
            await fhir.create(resource, purpose=Purpose.BOOK)
    assert wire.requests == []
    assert all(r.outcome == "denied" for r in recorder.records)


async def test_a_patient_search_must_name_one_person(counted: Counted) -> None:
    fhir, wire, _ = counted
    for criteria in ([], [("family", "Smith")], [("birthdate", "1980-01-01")], [("phone", "555")]):
        with pytest.raises(FhirNotAllowed):
            await fhir.search(
                "Patient", criteria, elements=("name",), count=50, purpose=Purpose.VERIFY_IDENTITY
            )
    assert wire.requests == []


@pytest.mark.parametrize("element", ["address", "telecom", "identifier", "contact", "text"])
async def test_patient_elements_beyond_name_and_birth_date_cannot_be_asked_for(
    counted: Counted, element: str
) -> None:
    fhir, wire, _ = counted
    with pytest.raises(FhirNotAllowed):
        await fhir.search(
            "Patient", [("_id", "pat-001")], elements=(element,), count=1, purpose=Purpose.VERIFY_IDENTITY
        )
    assert wire.requests == []


@pytest.mark.parametrize("bad_id", ["../Observation/1", "pat-001?_elements=address", "a/b", "", "x" * 65])
async def test_ids_that_would_reshape_the_url_are_refused(counted: Counted, bad_id: str) -> None:
    fhir, wire, _ = counted
    with pytest.raises(FhirNotAllowed):
        await fhir.read("Patient", bad_id, elements=("name",), purpose=Purpose.VERIFY_IDENTITY)
    assert wire.requests == []


async def test_patches_may_only_touch_allowed_elements(counted: Counted) -> None:
    fhir, wire, _ = counted
    with pytest.raises(FhirNotAllowed):
        await fhir.update(
            "Appointment",
            "appt-001",
            [{"op": "add", "path": "/comment", "value": "x"}],
            if_match='W/"1"',
            purpose=Purpose.CANCEL,
        )
    with pytest.raises(FhirNotAllowed):
        await fhir.update(
            "Slot",
            "slot-1",
            [{"op": "replace", "path": "/status", "value": "busy"}],
            if_match=None,
            purpose=Purpose.BOOK,
        )
    assert wire.requests == []


async def test_a_read_returns_only_the_elements_asked_for_even_when_the_server_sends_more(
    sandbox: Sandbox, gateway: FhirGateway
) -> None:
    # sekmet ignores _elements on reads and returns the whole record; the gateway must trim it.
    patient = sandbox.clinic.patient("hyphenated")
    with sandbox.raw() as raw:
        full = raw.get(f"Patient/{patient.id}").json()
    assert full.get("address") and full.get("telecom") and full.get("identifier")
    got = await gateway.read("Patient", patient.id, elements=("birthDate",), purpose=Purpose.VERIFY_IDENTITY)
    shown = got.resource.as_json()
    assert set(shown) <= {"resourceType", "id", "meta", "birthDate"}
    assert got.etag and got.etag.startswith('W/"')


async def test_a_keyed_surname_search_asks_for_name_and_birth_date_only(
    sandbox: Sandbox, counted: Counted
) -> None:
    """The keypad path's one request: a Patient search narrowed as every identity search is (family
    names, here the first key's letters as prefixes, with the birth date), asking for name and birthDate
    and nothing else, the whole search in the body and nothing in the URL, recorded as verify-identity."""
    fhir, wire, recorder = counted
    person = sandbox.clinic.patient("apostrophe")  # O'Brien: 627436
    scheduling = wiring.scheduling(sandbox.settings, fhir, now=sandbox.clock)
    found = await scheduling.find_patient_keyed(
        heard_given=person.given, keys="627436", birth_date=person.birth_date
    )
    assert found == [PatientRef(person.id)]
    (request,) = wire.requests
    assert request.method == "POST" and request.url.path.endswith("/Patient/_search")
    assert not request.url.query
    form = parse_qsl(request.content.decode())
    assert form[:2] == [("family", "m,n,o"), ("birthdate", person.birth_date.isoformat())]
    result = dict(form[2:])
    assert set(result) == {"_elements", "_count"} and result["_elements"] == "birthDate,name"
    assert int(result["_count"]) <= sandbox.settings.fhir_max_page
    (access,) = recorder.records
    assert (access.resource_type, access.purpose, access.outcome) == (
        "Patient",
        Purpose.VERIFY_IDENTITY,
        "success",
    )
