"""The gateway against a FHIR server named in the environment (e.g. the public HAPI sandbox).

Skipped unless CLINIC_TEST_FHIR_URL is set. Optional: CLINIC_TEST_FHIR_CA (pinned CA; default: the system
store), CLINIC_TEST_FHIR_CLIENT_CERT / _KEY (mutual TLS). It writes a tiny synthetic clinic of its own with
server-assigned ids (integer version ids, referential integrity and strict search parameters are HAPI's
behaviours this exercises), restricted by ``clinic_schedule_ids`` so other data on a shared server is
never touched.
"""

from __future__ import annotations

import os
import ssl
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from fhir_adapters import PatientRef, SlotUnavailable
from voice_agent import wiring
from voice_agent.settings import Settings

URL = os.environ.get("CLINIC_TEST_FHIR_URL")
pytestmark = [pytest.mark.external_fhir, pytest.mark.skipif(not URL, reason="CLINIC_TEST_FHIR_URL not set")]


def _paths(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _settings() -> Settings:
    cert, key = _paths("CLINIC_TEST_FHIR_CLIENT_CERT"), _paths("CLINIC_TEST_FHIR_CLIENT_KEY")
    return Settings(
        fhir_base_url=str(URL),
        fhir_ca_file=_paths("CLINIC_TEST_FHIR_CA"),
        fhir_client_cert=cert,
        fhir_client_key=key,
        fhir_require_client_cert=cert is not None,
        clinic_timezone="UTC",
    )


def _seed(settings: Settings, family: str, birth: date) -> tuple[str, list[str]]:
    """A transaction with urn:uuid references; returns the Schedule id and Slot ids the server assigned."""
    context = ssl.create_default_context(cafile=str(settings.fhir_ca_file) if settings.fhir_ca_file else None)
    if settings.client_cert_pair:
        context.load_cert_chain(*(str(p) for p in settings.client_cert_pair))
    start = datetime.now(ZoneInfo("UTC")).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    schedule_ref = f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Patient",
                "name": [{"family": family, "given": ["Testy"]}],
                "birthDate": birth.isoformat(),
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": schedule_ref,
            "resource": {
                "resourceType": "Schedule",
                "active": True,
                "actor": [{"display": f"Dr. {family}"}],
                "serviceType": [
                    {"coding": [{"system": "urn:test", "code": "follow-up", "display": "Follow-up visit"}]}
                ],
            },
            "request": {"method": "POST", "url": "Schedule"},
        },
    ]
    for hour in range(3):
        begin = start + timedelta(hours=hour)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Slot",
                    "schedule": {"reference": schedule_ref},
                    "status": "free",
                    "start": begin.isoformat(),
                    "end": (begin + timedelta(minutes=30)).isoformat(),
                },
                "request": {"method": "POST", "url": "Slot"},
            }
        )
    with httpx.Client(verify=context, trust_env=False, timeout=60) as client:
        response = client.post(
            str(URL),
            json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
            headers={"Content-Type": "application/fhir+json"},
        )
        response.raise_for_status()
    locations = [e["response"]["location"] for e in response.json()["entry"]]
    ids = [loc.split("/_history")[0].rsplit("/", 1)[1] for loc in locations]
    return ids[1], ids[2:]


async def test_the_gateway_works_on_the_named_server() -> None:
    family = f"Vaqa{uuid.uuid4().hex[:10]}"
    birth = date(1970, 1, 2)
    base = _settings()
    schedule_id, slot_ids = _seed(base, family, birth)
    settings = base.model_copy(update={"clinic_schedule_ids": (schedule_id,)})
    async with wiring.gateway(settings) as fhir:
        scheduling = wiring.scheduling(settings, fhir)
        directory = await scheduling.directory()
        assert [s.schedule_id for s in directory.schedules] == [schedule_id]
        (patient,) = await scheduling.find_patient(given="Testy", family=family, birth_date=birth)
        assert isinstance(patient, PatientRef)
        offers = await scheduling.find_free_slots(limit=3)
        assert [o.slot_id for o in offers] == slot_ids
        booked = await scheduling.book(patient, offers[0].slot_id)
        with pytest.raises(SlotUnavailable):
            await scheduling.book(patient, offers[0].slot_id)
        moved = await scheduling.reschedule(patient, booked.appointment_id, offers[1].slot_id)
        assert [a.appointment_id for a in await scheduling.upcoming_appointments(patient)] == [
            moved.appointment_id
        ]
        await scheduling.cancel(patient, moved.appointment_id)
        assert await scheduling.upcoming_appointments(patient) == []
        assert len(await scheduling.find_free_slots(limit=3)) == 3
