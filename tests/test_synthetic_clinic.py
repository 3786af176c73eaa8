"""The synthetic clinic: valid FHIR R4, references that resolve, hard cases, clinic hours, reproducibility."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from fhirclient.models.appointment import Appointment  # noqa: E402
from fhirclient.models.bundle import Bundle  # noqa: E402
from fhirclient.models.patient import Patient  # noqa: E402
from fhirclient.models.practitioner import Practitioner  # noqa: E402
from fhirclient.models.schedule import Schedule  # noqa: E402
from fhirclient.models.slot import Slot  # noqa: E402

from voice_agent.sandbox.clinic import (  # noqa: E402
    VISIT_TYPE_SYSTEM,
    VISIT_TYPES,
    SyntheticClinic,
    build_clinic,
)

TODAY = date(2026, 11, 23)  # a Monday
MODELS: dict[str, Any] = {
    "Appointment": Appointment,
    "Patient": Patient,
    "Practitioner": Practitioner,
    "Schedule": Schedule,
    "Slot": Slot,
}
HARD_CASES = (
    "hyphenated",
    "apostrophe",
    "accented",
    "same-name",
    "leap-day",
    "with-appointments",
    "no-appointments",
    "multi-given",
    "short-name",
    "past-appointment",
)


@pytest.fixture(scope="module")
def clinic() -> SyntheticClinic:
    return build_clinic(seed=7, today=TODAY)


def by_type(clinic: SyntheticClinic, resource_type: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in clinic.resources(resource_type)}


def dumps(clinic: SyntheticClinic) -> list[str]:
    return [json.dumps(bundle, sort_keys=True) for _, bundle in clinic.bundles]


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def upcoming(clinic: SyntheticClinic, patient_id: str) -> list[Any]:
    return [a for a in clinic.appointments if a.patient_id == patient_id and a.start.date() > clinic.today]


# --- bundles and FHIR validity ----------------------------------------------------------------------------


def test_bundles_come_in_load_order_as_idempotent_transactions(clinic: SyntheticClinic) -> None:
    names = [name for name, _ in clinic.bundles]
    assert names[:3] == ["practitioners", "patients", "schedules"]
    assert names[-1] == "appointments"
    assert all(re.fullmatch(r"slots(-\d+)?", n) for n in names[3:-1]) and len(names) > 4
    seen: set[str] = set()
    for _, bundle in clinic.bundles:
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "transaction"
        assert 0 < len(bundle["entry"]) <= 1000
        for entry in bundle["entry"]:
            resource = entry["resource"]
            key = f"{resource['resourceType']}/{resource['id']}"
            assert entry["request"] == {"method": "PUT", "url": key}
            assert key not in seen
            seen.add(key)


def test_large_slot_sets_are_split_into_numbered_bundles() -> None:
    small = build_clinic(seed=7, today=TODAY, weeks=1)
    assert [n for n, _ in small.bundles] == [
        "practitioners",
        "patients",
        "schedules",
        "slots",
        "appointments",
    ]
    big = build_clinic(seed=7, today=TODAY, weeks=8)
    slot_bundles = [n for n, _ in big.bundles if n.startswith("slots")]
    assert slot_bundles == [f"slots-{i}" for i in range(1, len(slot_bundles) + 1)]
    assert len(slot_bundles) >= 3
    assert all(len(b["entry"]) <= 1000 for _, b in big.bundles)


def test_every_resource_parses_strictly_as_fhir_r4(clinic: SyntheticClinic) -> None:
    for _, bundle in clinic.bundles:
        Bundle(bundle, strict=True)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            model = MODELS[resource["resourceType"]](resource, strict=True)
            assert model.id == resource["id"]


def test_references_resolve_to_a_resource_loaded_no_later(clinic: SyntheticClinic) -> None:
    loaded: set[str] = set()
    for name, bundle in clinic.bundles:
        in_bundle = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
        available = loaded | in_bundle
        for entry in bundle["entry"]:
            for ref in references(entry["resource"]):
                assert ref in available, f"{name}: {ref} does not resolve"
        loaded |= in_bundle
    assert any(references(b) for _, b in clinic.bundles)


def test_all_resources_carry_the_synthetic_tag(clinic: SyntheticClinic) -> None:
    for resource in clinic.resources():
        codes = {(t["system"], t["code"]) for t in resource["meta"]["tag"]}
        assert ("urn:voice-agent:synthetic-clinic", "synthetic") in codes


# --- practitioners and schedules -------------------------------------------------------------------------


def test_practitioners_and_schedules(clinic: SyntheticClinic) -> None:
    practitioners = by_type(clinic, "Practitioner")
    assert set(practitioners) == {"prac-okafor", "prac-park", "prac-hernandez-ruiz", "prac-oconnell"}
    assert {s.practitioner_display for s in clinic.schedules} == {
        "Dr. Amara Okafor",
        "Dr. Daniel Park",
        "Dr. Sofía Hernández-Ruiz",
        "Dr. Liam O'Connell",
    }
    schedules = by_type(clinic, "Schedule")
    offered: set[str] = set()
    subsets = set()
    for s in clinic.schedules:
        assert s.id == s.practitioner_id.replace("prac-", "sched-")
        resource = schedules[s.id]
        assert resource["active"] is True
        assert resource["actor"] == [
            {"reference": f"Practitioner/{s.practitioner_id}", "display": s.practitioner_display}
        ]
        assert 3 <= len(s.visit_types) <= 5
        codes = [code for code, _ in s.visit_types]
        assert resource["serviceType"] == [
            {"coding": [{"system": VISIT_TYPE_SYSTEM, "code": c, "display": d}], "text": d}
            for c, d in s.visit_types
        ]
        assert all(VISIT_TYPES[c] == d for c, d in s.visit_types)
        offered |= set(codes)
        subsets.add(frozenset(codes))
        horizon = resource["planningHorizon"]
        assert datetime.fromisoformat(horizon["start"]).date() == TODAY + timedelta(days=1)
        assert datetime.fromisoformat(horizon["end"]).date() == TODAY + timedelta(days=1, weeks=4)
    assert offered == set(VISIT_TYPES)
    assert len(subsets) == len(clinic.schedules)
    park = next(s for s in clinic.schedules if s.id == "sched-park")
    assert {"new-patient", "follow-up", "annual-physical"} <= {c for c, _ in park.visit_types}


# --- slots -----------------------------------------------------------------------------------------------


def upcoming_slots(clinic: SyntheticClinic) -> list[dict[str, Any]]:
    return [s for s in clinic.resources("Slot") if datetime.fromisoformat(s["start"]).date() > clinic.today]


def test_slots_lie_in_clinic_hours_on_weekdays_within_the_range(clinic: SyntheticClinic) -> None:
    zone = ZoneInfo(clinic.timezone)
    schedules = by_type(clinic, "Schedule")
    slots = upcoming_slots(clinic)
    # 4 practitioners x 20 weekdays x (6 morning + 8 afternoon) half-hour slots
    assert len(slots) == 4 * 20 * 14
    for slot in slots:
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert start.utcoffset() == start.astimezone(zone).utcoffset()
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        assert local_start.weekday() < 5
        assert TODAY < local_start.date() <= TODAY + timedelta(weeks=4)
        assert end - start == timedelta(minutes=30)
        in_morning = time(9) <= local_start.time() and local_end.time() <= time(12)
        in_afternoon = time(13) <= local_start.time() and local_end.time() <= time(17)
        assert in_morning or in_afternoon, slot["id"]
        assert slot["status"] in {"free", "busy"}
        schedule = schedules[slot["schedule"]["reference"].removeprefix("Schedule/")]
        assert slot["serviceType"] == schedule["serviceType"]
        assert slot["id"] == f"slot-{schedule['id'].removeprefix('sched-')}-{local_start:%Y%m%d-%H%M}"


def test_about_a_fifth_of_slots_are_busy(clinic: SyntheticClinic) -> None:
    statuses = Counter(s["status"] for s in upcoming_slots(clinic))
    share = statuses["busy"] / sum(statuses.values())
    assert 0.15 <= share <= 0.25
    booked = {a.slot_id for a in clinic.appointments}
    blocked = [s for s in upcoming_slots(clinic) if s["status"] == "busy" and s["id"] not in booked]
    assert blocked, "some busy slots are merely blocked, with no appointment"


def test_slot_length_follows_slot_minutes() -> None:
    clinic = build_clinic(seed=7, today=TODAY, weeks=1, slot_minutes=60)
    slots = upcoming_slots(clinic)
    assert len(slots) == 4 * 5 * 7
    for slot in slots:
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert end - start == timedelta(minutes=60)


def test_dst_change_gives_each_slot_its_own_dates_offset() -> None:
    # US daylight saving time ends on Sunday 2026-11-01.
    clinic = build_clinic(seed=7, today=date(2026, 10, 29), weeks=1)
    starts = {s["id"]: s["start"] for s in clinic.resources("Slot")}
    assert starts["slot-okafor-20261030-0900"] == "2026-10-30T09:00:00-04:00"
    assert starts["slot-okafor-20261102-0900"] == "2026-11-02T09:00:00-05:00"
    for slot in upcoming_slots(clinic):
        start = datetime.fromisoformat(slot["start"])
        expected = "-04:00" if start.date() < date(2026, 11, 1) else "-05:00"
        assert slot["start"].endswith(expected) and slot["end"].endswith(expected)
        assert start.hour >= 9 and start.hour < 17  # the wall clock does not shift with the offset


def test_other_time_zones_use_their_own_offsets() -> None:
    clinic = build_clinic(seed=7, today=date(2026, 7, 1), weeks=1, timezone="America/Los_Angeles")
    slot = upcoming_slots(clinic)[0]
    assert slot["start"].endswith("-07:00")
    assert datetime.fromisoformat(slot["start"]).hour == 9


# --- patients and hard cases ------------------------------------------------------------------------------


def test_patients_are_realistic_fictional_us_records(clinic: SyntheticClinic) -> None:
    resources = by_type(clinic, "Patient")
    assert len(clinic.patients) >= 32
    assert [p.id for p in clinic.patients] == [f"pat-{i:03d}" for i in range(1, len(clinic.patients) + 1)]
    phones = [p.phone for p in clinic.patients]
    assert len(set(phones)) == len(phones)
    emails = 0
    for p in clinic.patients:
        r = resources[p.id]
        assert re.fullmatch(r"\+1-555-01\d\d", p.phone)
        assert r["name"] == [{"use": "official", "family": p.family, "given": list(p.given_names)}]
        assert p.given == p.given_names[0]
        assert r["birthDate"] == p.birth_date.isoformat()
        assert date(1940, 1, 1) <= p.birth_date <= date(2015, 12, 31)
        assert r["gender"] in {"male", "female", "other", "unknown"}
        phone_entries = [t for t in r["telecom"] if t["system"] == "phone"]
        assert [t["value"] for t in phone_entries] == [p.phone]
        for t in r["telecom"]:
            if t["system"] == "email":
                emails += 1
                assert t["value"].endswith("@example.org") and t["value"].isascii()
        assert [i["system"] for i in r["identifier"]] == ["urn:oid:1.2.3.4.5.1"]
        address = r["address"][0]
        assert (
            address["line"]
            and address["city"]
            and address["state"]
            and re.fullmatch(r"\d{5}", address["postalCode"])
        )
    assert 0 < emails < len(clinic.patients)


def test_nothing_looks_like_an_ssn_and_phones_stay_in_the_fictional_range(clinic: SyntheticClinic) -> None:
    text = "\n".join(dumps(clinic))
    assert not re.search(r"\b\d{3}-\d{2}-\d{4}\b", text)
    assert "us-ssn" not in text
    for number in re.findall(r"\+1-[\d-]+", text):
        assert re.fullmatch(r"\+1-555-01\d\d", number)


def test_every_hard_case_tag_is_present(clinic: SyntheticClinic) -> None:
    for tag in HARD_CASES:
        assert clinic.patients_tagged(tag), tag
        assert clinic.patient(tag) == clinic.patients_tagged(tag)[0]
    with pytest.raises(KeyError):
        clinic.patient("no-such-tag")


def test_name_hard_cases_really_have_those_names(clinic: SyntheticClinic) -> None:
    hyphenated = clinic.patient("hyphenated")
    assert "-" in hyphenated.family and "-" in hyphenated.given
    assert "'" in clinic.patient("apostrophe").family
    for p in clinic.patients_tagged("accented"):
        assert not (p.given + p.family).isascii()
    assert len(clinic.patients_tagged("accented")) >= 2
    multi = clinic.patient("multi-given")
    assert len(multi.given_names) == 2
    assert multi.full_name == " ".join((*multi.given_names, multi.family))
    short = clinic.patient("short-name")
    assert len(short.given) <= 2 and len(short.family) <= 2
    # The tags are exact: no other patient has such a name.
    for p in clinic.patients:
        name = "".join(p.given_names) + p.family
        assert ("-" in p.family) == ("hyphenated" in p.tags)
        assert ("'" in name) == ("apostrophe" in p.tags)
        assert (not name.isascii()) == ("accented" in p.tags)
        assert (len(p.given_names) > 1) == ("multi-given" in p.tags)


def test_same_name_pair_shares_the_name_but_not_the_birth_date(clinic: SyntheticClinic) -> None:
    pair = clinic.patients_tagged("same-name")
    assert len(pair) == 2
    first, second = pair
    assert (first.given, first.family) == (second.given, second.family)
    assert first.birth_date != second.birth_date
    assert first.phone != second.phone
    names = Counter((p.given_names, p.family) for p in clinic.patients)
    assert [n for n, count in names.items() if count > 1] == [(first.given_names, first.family)]
    # One of them has appointments, the other does not: the agent must tell them apart.
    assert {bool(upcoming(clinic, p.id)) for p in pair} == {True, False}


def test_leap_day_patient(clinic: SyntheticClinic) -> None:
    leap = clinic.patients_tagged("leap-day")
    assert leap
    assert all((p.birth_date.month, p.birth_date.day) == (2, 29) for p in leap)
    assert by_type(clinic, "Patient")[leap[0].id]["birthDate"].endswith("-02-29")
    others = [p for p in clinic.patients if "leap-day" not in p.tags]
    assert all((p.birth_date.month, p.birth_date.day) != (2, 29) for p in others)


def test_appointment_tags_match_the_appointments(clinic: SyntheticClinic) -> None:
    with_appts = clinic.patients_tagged("with-appointments")
    without = clinic.patients_tagged("no-appointments")
    assert len(with_appts) >= 6 and len(without) >= 6
    assert not {p.id for p in with_appts} & {p.id for p in without}
    assert {p.id for p in with_appts} | {p.id for p in without} == {p.id for p in clinic.patients}
    for p in with_appts:
        assert 1 <= len(upcoming(clinic, p.id)) <= 3
    for p in without:
        assert not [a for a in clinic.appointments if a.patient_id == p.id]
    past = [a for a in clinic.appointments if a.start.date() < clinic.today]
    assert len(past) == 1
    assert past[0].patient_id == clinic.patient("past-appointment").id


# --- appointments -----------------------------------------------------------------------------------------


def test_appointments_are_booked_into_busy_slots_without_double_booking(clinic: SyntheticClinic) -> None:
    slots = by_type(clinic, "Slot")
    schedules = {s.id: s for s in clinic.schedules}
    resources = by_type(clinic, "Appointment")
    assert len(resources) == len(clinic.appointments)
    slot_ids = [a.slot_id for a in clinic.appointments]
    assert len(set(slot_ids)) == len(slot_ids)
    for a in clinic.appointments:
        r = resources[a.id]
        slot = slots[a.slot_id]
        schedule = schedules[a.schedule_id]
        assert slot["status"] == "busy"
        assert slot["schedule"]["reference"] == f"Schedule/{a.schedule_id}"
        assert r["status"] == "booked"
        assert (r["start"], r["end"]) == (slot["start"], slot["end"])
        assert datetime.fromisoformat(r["start"]) == a.start and a.start.tzinfo is not None
        assert r["slot"] == [{"reference": f"Slot/{a.slot_id}"}]
        assert a.visit_type in {code for code, _ in schedule.visit_types}
        assert r["serviceType"] == [
            {
                "coding": [
                    {"system": VISIT_TYPE_SYSTEM, "code": a.visit_type, "display": VISIT_TYPES[a.visit_type]}
                ],
                "text": VISIT_TYPES[a.visit_type],
            }
        ]
        assert r["participant"] == [
            {"actor": {"reference": f"Patient/{a.patient_id}"}, "status": "accepted"},
            {
                "actor": {
                    "reference": f"Practitioner/{schedule.practitioner_id}",
                    "display": schedule.practitioner_display,
                },
                "status": "accepted",
            },
        ]


def test_a_patient_is_never_in_two_places_at_once(clinic: SyntheticClinic) -> None:
    times = Counter((a.patient_id, a.start) for a in clinic.appointments)
    assert max(times.values()) == 1


def test_past_appointment_is_on_the_last_weekday_before_today() -> None:
    clinic = build_clinic(seed=7, today=date(2026, 11, 30))  # a Monday: the visit was on Friday
    past = [a for a in clinic.appointments if a.start.date() < clinic.today]
    assert [a.start.isoformat() for a in past] == ["2026-11-27T10:00:00-05:00"]
    assert by_type(clinic, "Slot")[past[0].slot_id]["status"] == "busy"


# --- reproducibility --------------------------------------------------------------------------------------


def test_same_seed_and_today_give_byte_identical_json(clinic: SyntheticClinic) -> None:
    again = build_clinic(seed=7, today=TODAY)
    assert dumps(again) == dumps(clinic)
    assert json.dumps(again.manifest(), sort_keys=True) == json.dumps(clinic.manifest(), sort_keys=True)


def test_different_seeds_change_the_random_patients_but_keep_the_hard_cases(clinic: SyntheticClinic) -> None:
    other = build_clinic(seed=8, today=TODAY)
    assert dumps(other) != dumps(clinic)

    def pool(c: SyntheticClinic) -> list[tuple[str, str, date]]:
        return [(p.given, p.family, p.birth_date) for p in c.patients_tagged("pool")]

    assert pool(other) != pool(clinic)
    roster_ids = [p.id for p in clinic.patients if "pool" not in p.tags]
    assert roster_ids == [p.id for p in other.patients if "pool" not in p.tags]
    mine, theirs = by_type(clinic, "Patient"), by_type(other, "Patient")
    for patient_id in roster_ids:
        assert mine[patient_id] == theirs[patient_id]
    for tag in HARD_CASES:
        assert clinic.patient(tag) == other.patient(tag)


def test_slots_move_with_today() -> None:
    later = build_clinic(seed=7, today=TODAY + timedelta(days=7))
    first = min(datetime.fromisoformat(s["start"]) for s in upcoming_slots(later))
    assert first.date() == TODAY + timedelta(days=8)


def test_manifest_is_json_and_summarises_the_clinic(clinic: SyntheticClinic) -> None:
    manifest = json.loads(json.dumps(clinic.manifest()))
    assert manifest["seed"] == 7 and manifest["today"] == TODAY.isoformat()
    assert manifest["timezone"] == "America/New_York"
    assert [b["file"] for b in manifest["bundles"]][:2] == ["01-practitioners.json", "02-patients.json"]
    assert [p["id"] for p in manifest["patients"]] == [p.id for p in clinic.patients]
    assert {s["id"] for s in manifest["schedules"]} == {s.id for s in clinic.schedules}
    assert [a["id"] for a in manifest["appointments"]] == [a.id for a in clinic.appointments]
    assert manifest["slots"]["total"] == manifest["slots"]["free"] + manifest["slots"]["busy"]
    assert "address" not in json.dumps(manifest) and "example.org" not in json.dumps(manifest)


def test_build_rejects_nonsense_arguments() -> None:
    with pytest.raises(ValueError):
        build_clinic(today=TODAY, weeks=0)
    with pytest.raises(ValueError):
        build_clinic(today=TODAY, slot_minutes=0)


def test_generate_script_writes_the_bundles_and_manifest(tmp_path: Path) -> None:
    args = ["--seed", "7", "--today", TODAY.isoformat(), "--out", str(tmp_path)]
    script = REPO_ROOT / "fixtures" / "generate.py"
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, cwd=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    clinic = build_clinic(seed=7, today=TODAY)
    assert manifest == json.loads(json.dumps(clinic.manifest()))
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == sorted([b["file"] for b in manifest["bundles"]] + ["manifest.json"])
    for (_, bundle), entry in zip(clinic.bundles, manifest["bundles"], strict=True):
        assert json.loads((tmp_path / entry["file"]).read_text(encoding="utf-8")) == bundle
    first = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, cwd=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == first
