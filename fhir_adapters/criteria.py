"""Whether a search result satisfies the criteria the gateway asked for, judged on the resource itself.

A server may ignore a parameter (one it does not know, or one a proxy dropped), match a string anywhere
instead of at the start, or slip another type into a searchset. Trusting the answer would then hand the
agent records nobody asked for: a Slot of another practitioner's schedule offered to a caller, a Patient
born on another day among the identity candidates. The gateway drops what fails (``FhirGateway.search``);
this module only says what fails, and which elements it needs to tell.

FHIR's search semantics for the parameters the gateway may send (``scope.ALLOWED_SEARCH_PARAMS``), read
leniently where servers legitimately differ: strings match as a case-, accent- and punctuation-blind
prefix, tokens ignore case, a date without a time zone spans every zone. A result is dropped only when
no reading of the criterion admits it. ``Patient.phone`` is the one criterion left unchecked: checking it
would load the numbers on record, which the agent must never see (``scope.ALLOWED_ELEMENTS``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .errors import FhirNotAllowed

Resource = Mapping[str, Any]
Test = Callable[[Resource], bool]

#: The element each criterion is judged on; the gateway asks for it (``_elements``) with the search.
CHECKED_ON: Mapping[str, Mapping[str, str]] = {
    "Patient": {"family": "name", "given": "name", "birthdate": "birthDate"},
    "Schedule": {"active": "active", "actor": "actor", "service-type": "serviceType"},
    "Slot": {"schedule": "schedule", "status": "status", "start": "start", "service-type": "serviceType"},
    "Appointment": {
        "patient": "participant",
        "status": "status",
        "date": "start",
        "slot": "slot",
        "identifier": "identifier",
    },
}
#: Criteria the gateway sends but cannot judge without loading what it must not (see the module's note).
UNCHECKED: frozenset[tuple[str, str]] = frozenset({("Patient", "phone")})

_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$")
#: A date with no time zone spans the day in every zone, from UTC+14 to UTC-12.
_EARLIEST_ZONE, _LATEST_ZONE = timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))


class _Uncheckable(ValueError):
    pass


@dataclass(frozen=True)
class Criteria:
    """The compiled criteria of one search: every test must pass (parameters AND), each test passes when
    any of its comma-separated values does (values OR)."""

    resource_type: str
    tests: tuple[Test, ...]

    def admits(self, resource: Resource) -> bool:
        return resource.get("resourceType") == self.resource_type and all(t(resource) for t in self.tests)


def compile_criteria(resource_type: str, criteria: Iterable[tuple[str, str]]) -> Criteria:
    """The tests for ``criteria``; ``FhirNotAllowed`` (before any traffic) for one the gateway could not
    judge, such as a date prefix it does not know or a time without a zone."""
    tests = []
    for name, value in criteria:
        if (resource_type, name) in UNCHECKED:
            continue
        try:
            tests.append(_test(resource_type, name, value))
        except _Uncheckable:
            raise FhirNotAllowed(
                "That FHIR search criterion cannot be checked.", resource_type=resource_type
            ) from None
    return Criteria(resource_type, tuple(tests))


def elements_checked(resource_type: str, criteria: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The elements the results must carry for ``criteria`` to be judged."""
    on = CHECKED_ON.get(resource_type, {})
    return tuple(sorted({on[name] for name, _ in criteria if name in on}))


# ------------------------------------------------------------------ the tests per parameter


def _test(resource_type: str, name: str, value: str) -> Test:
    values = _split(value)
    if name == "_id":
        return lambda r: r.get("id") in values
    if (resource_type, name) == ("Patient", "family"):
        prefixes = [_fold(v) for v in values]
        return lambda r: any(_starts(n.get("family"), prefixes) for n in _list(r, "name"))
    if (resource_type, name) == ("Patient", "given"):
        prefixes = [_fold(v) for v in values]
        return lambda r: any(_starts(g, prefixes) for n in _list(r, "name") for g in _strings(n, "given"))
    if name == "status":
        return lambda r: _token_in(r.get("status"), None, values)
    if (resource_type, name) == ("Schedule", "active"):
        wanted = {v.lower() for v in values}
        return lambda r: isinstance(r.get("active"), bool) and str(r["active"]).lower() in wanted
    if name == "service-type":
        return lambda r: any(
            _token_in(c.get("code"), c.get("system"), values)
            for concept in _list(r, "serviceType")
            for c in _list(concept, "coding")
        )
    if (resource_type, name) == ("Appointment", "identifier"):
        return lambda r: any(
            _token_in(i.get("value"), i.get("system"), values) for i in _list(r, "identifier")
        )
    if (resource_type, name) == ("Slot", "schedule"):
        return lambda r: _refers(_dict(r, "schedule").get("reference"), "Schedule", values)
    if (resource_type, name) == ("Schedule", "actor"):
        return lambda r: any(_refers(a.get("reference"), None, values) for a in _list(r, "actor"))
    if (resource_type, name) == ("Appointment", "patient"):
        return lambda r: any(
            _refers(_dict(p, "actor").get("reference"), "Patient", values) for p in _list(r, "participant")
        )
    if (resource_type, name) == ("Appointment", "slot"):
        return lambda r: any(_refers(s.get("reference"), "Slot", values) for s in _list(r, "slot"))
    dated = {
        ("Patient", "birthdate"): "birthDate",
        ("Slot", "start"): "start",
        ("Appointment", "date"): "start",
    }
    element = dated.get((resource_type, name))
    if element is not None:
        ranges = [_date_criterion(v, instant=element == "start") for v in values]
        return lambda r: any(_date_matches(r.get(element), prefix, bounds) for prefix, bounds in ranges)
    raise _Uncheckable(name)


# ------------------------------------------------------------------ strings, tokens, references


def _split(value: str) -> list[str]:
    """Comma-separated alternatives; ``\\,`` is a literal comma."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _fold(text: str) -> str:
    """Case-, accent- and punctuation-blind: the most a server may fold when it matches a string."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return "".join(c for c in stripped.casefold() if c.isalnum())


def _starts(text: object, prefixes: Sequence[str]) -> bool:
    return isinstance(text, str) and any(_fold(text).startswith(p) for p in prefixes)


def _dict(resource: Resource, key: str) -> Resource:
    value = resource.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(resource: Resource, key: str) -> Iterator[Resource]:
    value = resource.get(key)
    return (v for v in (value if isinstance(value, list) else []) if isinstance(v, Mapping))


def _strings(resource: Resource, key: str) -> Iterator[str]:
    value = resource.get(key)
    return (v for v in (value if isinstance(value, list) else []) if isinstance(v, str))


def _token_in(code: object, system: object, values: Sequence[str]) -> bool:
    """``code``, ``system|code``, ``|code`` (no system) or ``system|`` (any code), case-blind."""
    if not isinstance(code, str):
        return False
    for value in values:
        if "|" not in value:
            if value.lower() == code.lower():
                return True
            continue
        want_system, want_code = value.split("|", 1)
        system_ok = (system is None or system == "") if want_system == "" else system == want_system
        if system_ok and (want_code == "" or want_code.lower() == code.lower()):
            return True
    return False


def _type_and_id(reference: str) -> tuple[str | None, str]:
    """ "Slot/x", "https://host/fhir/Slot/x" and "Slot/x/_history/2" all name (Slot, x)."""
    path = reference.split("/_history/", 1)[0].rstrip("/")
    parts = path.split("/")
    return (parts[-2] if len(parts) >= 2 else None), parts[-1]


def _refers(reference: object, target_type: str | None, values: Sequence[str]) -> bool:
    if not isinstance(reference, str) or not reference:
        return False
    held_type, held_id = _type_and_id(reference)
    for value in values:
        wanted_type, wanted_id = _type_and_id(value)
        if target_type is not None and wanted_type not in (None, target_type):
            continue  # the parameter only ever points at target_type
        wanted_type = wanted_type or target_type
        if held_id == wanted_id and (wanted_type is None or held_type == wanted_type):
            return True
    return False


# ------------------------------------------------------------------ dates

Bounds = tuple[datetime, datetime] | tuple[date, date]


def _date_criterion(value: str, *, instant: bool) -> tuple[str, Bounds]:
    """A prefix and the span it applies to. An instant element (Slot.start) is searched with a dateTime
    that names its zone; a date element (birthDate) with a date: anything else the gateway could only
    guess at, so it is refused before it is sent."""
    prefix, text = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
    bounds = _bounds(text)
    if prefix not in _PREFIXES or bounds is None or isinstance(bounds[0], datetime) != instant:
        raise _Uncheckable(value)
    return prefix, bounds


def _bounds(text: str) -> Bounds | None:
    """The half-open span a date or dateTime stands for, by its precision."""
    try:
        if _DATE.fullmatch(text):
            parts = [int(p) for p in text.split("-")]
            year, month, day = [*parts, 1, 1][:3]
            first = date(year, month, day)
            if len(parts) == 3:
                return first, first + timedelta(days=1)
            if len(parts) == 2:
                return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            return first, first.replace(year=first.year + 1)
        if _DATETIME.fullmatch(text):
            moment = datetime.fromisoformat(text)
            clock = re.split(r"[Z+-]", text.split("T", 1)[1])[0]
            if "." in clock:
                step = timedelta(microseconds=10 ** max(0, 6 - len(clock.split(".")[1])))
            else:
                step = timedelta(seconds=1) if clock.count(":") == 2 else timedelta(minutes=1)
            return moment, moment + step
    except ValueError:  # a month 13, a day 32
        return None
    return None


def _date_matches(held: object, prefix: str, wanted: Bounds) -> bool:
    """FHIR's prefixes on spans: eq, the held span lies within the wanted one; ge, it reaches the wanted
    span's start; lt, it starts before the wanted span; and so on. A held date without a zone (a Slot
    whose start is only a day) spans every zone's reading of that day."""
    span = _bounds(held) if isinstance(held, str) else None
    if span is None:
        return False
    low: Any
    high: Any
    low, high = span
    if isinstance(wanted[0], datetime) and not isinstance(low, datetime):
        low = datetime.combine(low, datetime.min.time(), _EARLIEST_ZONE)
        high = datetime.combine(high, datetime.min.time(), _LATEST_ZONE)
    elif isinstance(low, datetime) != isinstance(wanted[0], datetime):
        return False
    want_low, want_high = wanted
    within = want_low <= low and high <= want_high
    outcome: bool = {
        "eq": within,
        "ne": not within,
        "gt": high > want_high,
        "ge": high > want_low,
        "lt": low < want_low,
        "le": low < want_high,
    }[prefix]
    return outcome
