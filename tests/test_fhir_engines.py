"""What differs between FHIR servers, tried on each engine (sekmet and Medplum's), and what the gateway does
about it: form-encoded POST searches, ``Prefer: handling=strict``, version ids and ETags, a parameter a
server ignores, strings matched by substring. Each difference is asserted per engine, so a server that
changes its behaviour shows up here first; the gateway's answer is asserted the same on both."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_adapters import (
    OUTSIDE_CRITERIA,
    AccessRecord,
    FhirAuthenticationError,
    FhirConflict,
    FhirInvalidResponse,
    FhirUnavailable,
    PatientRef,
    Purpose,
)
from fhir_adapters.keypad import keypad_digits
from harness.faults import IgnoredParameter, real_transport
from harness.sandbox import Sandbox
from tests.test_transport_security import directory_search, gateway_with
from voice_agent import wiring
from voice_agent.sandbox.certs import issue, make_authority, write_pair


@pytest.fixture
def sandbox(fhir_engine: Sandbox) -> Sandbox:
    return fhir_engine


class Recorder:
    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    async def record(self, access: AccessRecord) -> None:
        self.records.append(access)

    @property
    def withheld(self) -> list[AccessRecord]:
        return [r for r in self.records if r.error == OUTSIDE_CRITERIA]


def form_search(
    sandbox: Sandbox, resource_type: str, form: dict[str, str], *, query: str = "", prefer: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if prefer:
        headers["Prefer"] = prefer
    with sandbox.raw() as raw:
        return raw.post(f"{resource_type}/_search{query}", data=form, headers=headers)


def resources(response: httpx.Response, *, mode: str = "match") -> list[dict[str, Any]]:
    """The entries of a searchset in one search mode: the matches, or the server's notes (``outcome``)."""
    assert response.status_code == 200, response.text
    entries = response.json().get("entry") or []
    return [e["resource"] for e in entries if (e.get("search") or {}).get("mode", "match") == mode]


def park(sandbox: Sandbox) -> str:
    return next(s.id for s in sandbox.clinic.schedules if "Park" in s.practitioner_display)


# ---------------------------------------------------------------- the door: mutual TLS


async def test_each_engine_answers_only_a_client_of_the_clinic_ca(sandbox: Sandbox, tmp_path: Path) -> None:
    """Medplum's front demands a client certificate from the sandbox's CA as uvicorn does for sekmet:
    none, or one from another CA, and the request never reaches the engine. Node may refuse with a TLS
    1.3 alert that reaches the gateway as a bare ``ssl.SSLError`` (uvicorn just closes the connection):
    either way the caller of the gateway gets a typed error, never the raw exception."""
    rogue = write_pair(tmp_path, "rogue", *issue(make_authority("Somebody else's CA"), "voice-agent"))
    refused = (FhirAuthenticationError, FhirUnavailable)
    before = sandbox.log_position()
    for cert in (None, rogue):
        with pytest.raises(refused):
            await directory_search(gateway_with(sandbox, ca=sandbox.certs.ca, cert=cert))
    assert not [line for line in sandbox.log_since(before) if "Schedule" in line]
    async with gateway_with(sandbox, ca=sandbox.certs.ca, cert=sandbox.certs.agent) as fhir:
        await fhir.ping()
    assert (
        len(await directory_search(gateway_with(sandbox, ca=sandbox.certs.ca, cert=sandbox.certs.agent))) == 4
    )


# ---------------------------------------------------------------- searches by form post


def test_a_form_post_search_reads_every_parameter_from_its_body(sandbox: Sandbox) -> None:
    """What the gateway sends: criteria, ``_count`` and ``_sort`` all in the body. Both engines honour
    all of them there."""
    form = {"schedule": f"Schedule/{park(sandbox)}", "status": "free", "_count": "3", "_sort": "start"}
    found = resources(form_search(sandbox, "Slot", form))
    assert len(found) == 3
    assert {s["schedule"]["reference"] for s in found} == {f"Schedule/{park(sandbox)}"}
    assert [s["start"] for s in found] == sorted(s["start"] for s in found)


def test_result_parameters_in_the_url_of_a_form_post(sandbox: Sandbox) -> None:
    """A ``_count`` in the URL of a POST search: sekmet merges URL and body; Medplum reads the body alone
    and returns every match. This is why the gateway puts everything in the body."""
    found = resources(form_search(sandbox, "Slot", {"status": "free"}, query="?_count=3"))
    if sandbox.engine == "medplum":
        assert len(found) > 100
    else:
        assert len(found) == 3


# ---------------------------------------------------------------- unknown parameters and strict handling


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_an_unknown_search_parameter(sandbox: Sandbox, strict: bool) -> None:
    """sekmet ignores a parameter it does not know (every free slot matches, and an OperationOutcome entry
    says so) unless asked for strict handling, then refuses with 400; Medplum's engine never refuses, and
    matches nothing, strict or not. Neither answer can widen a gateway search: its parameters are all
    known to both, and whatever a server sends back is checked against them."""
    form = {"status": "free", "not-a-parameter": "x", "_count": "5"}
    response = form_search(sandbox, "Slot", form, prefer="handling=strict" if strict else None)
    if sandbox.engine == "medplum":
        assert resources(response) == []
    elif strict:
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"
    else:
        assert len(resources(response)) == 5
        (note,) = resources(response, mode="outcome")  # and says so, beside the matches
        assert "not-a-parameter" in note["issue"][0]["diagnostics"]


# ---------------------------------------------------------------- versions and ETags


async def test_version_ids_and_etags(sandbox: Sandbox) -> None:
    """sekmet numbers versions (W/"1", W/"2"); Medplum names them with UUIDs. The gateway reads the ETag
    whatever it holds, sends it back in If-Match, and a stale one is a conflict on both."""
    async with wiring.gateway(sandbox.settings) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir, now=sandbox.clock)
        offer = (await scheduling.find_free_slots(schedule_ids=[park(sandbox)], limit=1))[0]
        read = await fhir.read("Slot", offer.slot_id, elements=("status",), purpose=Purpose.BOOK)
        assert read.etag is not None
        version = re.fullmatch(r'W/"([^"]+)"', read.etag)
        assert version is not None
        pattern = (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
            if sandbox.engine == "medplum"
            else r"\d+"
        )
        assert re.fullmatch(pattern, version.group(1))
        with sandbox.raw() as raw:
            assert raw.get(f"Slot/{offer.slot_id}").json()["meta"]["versionId"] == version.group(1)

        busy = [{"op": "replace", "path": "/status", "value": "busy"}]
        newer = await fhir.update("Slot", offer.slot_id, busy, if_match=read.etag, purpose=Purpose.BOOK)
        assert newer is not None and newer != read.etag
        free = [{"op": "replace", "path": "/status", "value": "free"}]
        with pytest.raises(FhirConflict):  # the version read before the change is stale now
            await fhir.update("Slot", offer.slot_id, free, if_match=read.etag, purpose=Purpose.BOOK)
        await fhir.update("Slot", offer.slot_id, free, if_match=newer, purpose=Purpose.BOOK)
    with sandbox.raw() as raw:
        assert raw.get(f"Slot/{offer.slot_id}").json()["status"] == "free"


def test_prefer_return_minimal_and_where_a_created_resource_is(sandbox: Sandbox) -> None:
    """The gateway writes with ``Prefer: return=minimal, handling=strict`` and needs no body back:
    sekmet reads the list and sends none; Medplum honours only a header that is exactly
    ``return=minimal`` and sends the resource. A create's ``Location`` is versioned on sekmet
    (``…/_history/1``) and not on Medplum; the gateway takes the id from either, the ETag from the header."""
    body = {
        "resourceType": "Appointment",
        "status": "proposed",
        "participant": [{"actor": {"reference": "Patient/engines-nobody"}, "status": "needs-action"}],
    }
    with sandbox.raw() as raw:
        for prefer, empty in (("return=minimal", True), ("return=minimal, handling=strict", None)):
            created = raw.post("Appointment", json=body, headers={"Prefer": prefer})
            assert created.status_code == 201 and created.headers["etag"].startswith('W/"')
            if empty is None:
                empty = sandbox.engine == "sekmet"
            assert (created.content == b"") is empty, prefer
            location = created.headers["location"]
            assert (
                re.search(r"/Appointment/[A-Za-z0-9.-]+/_history/1$", location)
                if (sandbox.engine == "sekmet")
                else re.search(r"/fhir/R4/Appointment/[A-Za-z0-9.-]+$", location)
            )


# ---------------------------------------------------------------- a server that ignores a parameter


async def test_slots_of_another_schedule_are_never_offered_when_the_server_ignores_schedule(
    sandbox: Sandbox,
) -> None:
    """The known bug: a server that ignored ``schedule`` had the agent offer another practitioner's slots.
    Here the parameter is taken out on its way to a real server, which answers with every schedule's free
    slots; the gateway drops the others and records which, and the caller hears only Dr. Park's."""
    wire = IgnoredParameter(real_transport(sandbox.settings), "Slot", "schedule")
    recorder = Recorder()
    async with wiring.gateway(sandbox.settings, recorder=recorder, transport=wire) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir, now=sandbox.clock)
        offers = await scheduling.find_free_slots(schedule_ids=[park(sandbox)], limit=5)
    assert wire.removed >= 1
    assert len(offers) == 5 and {o.schedule_id for o in offers} == {park(sandbox)}
    assert recorder.withheld, "the server sent no other schedule's slot: the test proves nothing"
    for record in recorder.withheld:
        assert (record.resource_type, record.outcome, record.purpose) == (
            "Slot",
            "denied",
            Purpose.FIND_SLOTS,
        )
        assert record.resource_ids and not [i for i in record.resource_ids if i.startswith("slot-park-")]
    kept = [r for r in recorder.records if r.outcome == "success" and r.resource_type == "Slot"]
    assert {i for r in kept for i in r.resource_ids} >= {o.slot_id for o in offers}


async def test_a_patient_born_another_day_is_never_a_candidate_when_the_server_ignores_birthdate(
    sandbox: Sandbox,
) -> None:
    """Two John Smiths, told apart only by their birth dates: with ``birthdate`` ignored the server sends
    both, and the gateway keeps only the one born on the day the caller said."""
    first, second = sandbox.clinic.patients_tagged("same-name")[:2]
    wire = IgnoredParameter(real_transport(sandbox.settings), "Patient", "birthdate")
    recorder = Recorder()
    async with wiring.gateway(sandbox.settings, recorder=recorder, transport=wire) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir, now=sandbox.clock)
        found = await scheduling.find_patient(
            given=first.given, family=first.family, birth_date=first.birth_date
        )
    assert wire.removed == 1
    assert found == [PatientRef(first.id)]
    (withheld,) = recorder.withheld
    assert second.id in withheld.resource_ids and first.id not in withheld.resource_ids
    assert (withheld.purpose, withheld.outcome) == (Purpose.VERIFY_IDENTITY, "denied")


def upcoming_booked(sandbox: Sandbox) -> list[dict[str, object]]:
    """Every booked appointment from now on, whoever's, as the server holds them."""
    now = sandbox.clock().isoformat()
    with sandbox.raw() as raw:
        bundle = raw.get("Appointment", params={"status": "booked", "date": f"ge{now}", "_count": 200}).json()
    return [e["resource"] for e in bundle.get("entry") or []]


async def test_another_patients_appointments_are_never_listed_when_the_server_ignores_patient(
    sandbox: Sandbox,
) -> None:
    person = sandbox.clinic.patient("with-appointments")
    wire = IgnoredParameter(real_transport(sandbox.settings), "Appointment", "patient")
    recorder = Recorder()
    async with wiring.gateway(sandbox.settings, recorder=recorder, transport=wire) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir, now=sandbox.clock)
        try:
            listed = await scheduling.upcoming_appointments(PatientRef(person.id))
        except FhirInvalidResponse:
            # the page the server filled with everyone's appointments was full: the caller's own may lie
            # beyond it, so the listing is refused rather than said to be empty
            listed = None
    page_was_full = len(upcoming_booked(sandbox)) >= 20  # a page exactly full is not known to be whole
    assert (listed is None) == page_was_full
    with sandbox.raw() as raw:
        for appointment in listed or []:
            stored = raw.get(f"Appointment/{appointment.appointment_id}").json()
            assert {"reference": f"Patient/{person.id}"} in [p["actor"] for p in stored["participant"]]
    assert listed is None or listed  # when the page held everything, theirs are among it
    theirs = {a.id for a in sandbox.clinic.appointments if a.patient_id == person.id}
    withheld = {i for r in recorder.withheld for i in r.resource_ids}
    assert withheld and withheld.isdisjoint(theirs)


# ---------------------------------------------------------------- strings: prefix or substring


async def test_a_surname_search_matches_by_prefix_on_one_engine_and_by_substring_on_the_other(
    sandbox: Sandbox,
) -> None:
    """``family=m,n,o`` (the first key of a keyed surname): sekmet matches names that start with one of
    the letters, as FHIR says; Medplum's engine, names that contain one. The gateway keeps only the
    prefix matches, so the keyed lookup answers the same on both, and records what it withheld."""
    born = "1933-03-03"
    with sandbox.raw() as raw:
        for pid, family in (("engines-nolan", "Nolan"), ("engines-binns", "Binns")):
            body = {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"use": "official", "family": family, "given": ["Omar"]}],
                "birthDate": born,
            }
            raw.put(f"Patient/{pid}", json=body).raise_for_status()
    recorder = Recorder()
    async with wiring.gateway(sandbox.settings, recorder=recorder) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir, now=sandbox.clock)
        found = await scheduling.find_patient_keyed(
            heard_given="Omar", keys=keypad_digits("Nolan"), birth_date=date.fromisoformat(born)
        )
    assert found == [PatientRef("engines-nolan")]
    withheld = [i for r in recorder.withheld for i in r.resource_ids]
    assert withheld == (["engines-binns"] if sandbox.engine == "medplum" else [])
