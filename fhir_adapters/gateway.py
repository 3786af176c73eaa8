"""The one door to FHIR: scope checks, fewest elements, strict handling, result checks, typed errors,
access records.

Every call names a purpose and is reported to an ``AccessRecorder`` (the audit trail), whether it
succeeded, failed, or was refused before reaching the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import httpx
from fhirclient.models.appointment import Appointment
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.patient import Patient
from fhirclient.models.schedule import Schedule
from fhirclient.models.slot import Slot

from . import scope
from .criteria import compile_criteria, elements_checked
from .errors import (
    FhirAuthenticationError,
    FhirConflict,
    FhirError,
    FhirInvalidResponse,
    FhirNotAllowed,
    FhirNotFound,
    FhirRejected,
    FhirUnavailable,
)
from .scope import Interaction
from .transport import TransportConfig, build_client, classify

log = logging.getLogger(__name__)

MODELS: Mapping[str, Any] = {
    "Patient": Patient,
    "Schedule": Schedule,
    "Slot": Slot,
    "Appointment": Appointment,
}

#: FHIR's id grammar. Anything else (a path, a query, "../") is refused before it can shape a URL.
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_LOCATION_ID = re.compile(
    r"(?:^|/)(?P<type>[A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<vid>[^/]+))?/?$"
)
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_STRICT = "handling=strict"
#: The ``error`` of the access record that lists search results dropped for failing their criteria.
OUTSIDE_CRITERIA = "FhirResultOutsideCriteria"


class Purpose(StrEnum):
    """Why the agent touched FHIR; recorded with every access."""

    LEARN_CLINIC = "learn-clinic"
    VERIFY_IDENTITY = "verify-identity"
    LIST_APPOINTMENTS = "list-appointments"
    FIND_SLOTS = "find-slots"
    BOOK = "book"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    HEALTH_CHECK = "health-check"
    #: A front-desk user opened an escalation: the patient's name and birth date, read at view time.
    STAFF_CONSOLE = "staff-console"


Outcome = Literal["success", "denied", "not-found", "conflict", "failure"]


@dataclass(frozen=True)
class AccessRecord:
    """What the audit trail learns of one gateway call: types, ids, action, outcome. No content. A search
    whose answer held results outside its criteria writes a second one listing them (``OUTSIDE_CRITERIA``)."""

    resource_type: str
    interaction: Interaction
    purpose: Purpose
    outcome: Outcome
    resource_ids: tuple[str, ...] = ()
    status: int | None = None
    error: str | None = None


class AccessRecorder(Protocol):
    async def record(self, access: AccessRecord) -> None: ...


class _NoRecorder:
    async def record(self, access: AccessRecord) -> None:
        return None


@dataclass(frozen=True)
class Versioned:
    """A parsed resource (a fhirclient model) and the ETag to send back in ``If-Match``."""

    resource: Any
    etag: str | None


class SearchPage(list[Any]):
    """One page of search results (a list of parsed resources), and whether it holds every match
    (``_complete``, judged on what the server sent, before results outside the criteria were dropped): a
    caller that must not miss a match checks ``complete``."""

    def __init__(self, resources: Iterable[Any], *, complete: bool, withheld: int = 0) -> None:
        super().__init__(resources)
        self.complete = complete
        #: results the server sent outside the criteria (dropped): it ignored part of the search
        self.withheld = withheld


@dataclass(frozen=True)
class Created:
    id: str
    etag: str | None


def _outcome(error: FhirError) -> Outcome:
    if isinstance(error, FhirNotAllowed):
        return "denied"
    if isinstance(error, FhirNotFound):
        return "not-found"
    if isinstance(error, FhirConflict):
        return "conflict"
    return "failure"


def _status_error(status: int, resource_type: str) -> FhirError:
    if status in (404, 410):
        return FhirNotFound(resource_type=resource_type, status=status)
    if status in (401, 403):
        return FhirAuthenticationError(
            "The FHIR server refused the agent's identity.", resource_type=resource_type, status=status
        )
    if status in (409, 412):
        return FhirConflict(resource_type=resource_type, status=status)
    if status in (400, 405, 422):
        return FhirRejected(resource_type=resource_type, status=status)
    if status >= 500 or status == 429:
        return FhirUnavailable(resource_type=resource_type, status=status)
    return FhirInvalidResponse(
        f"Unexpected HTTP status {status} from FHIR.", resource_type=resource_type, status=status
    )


def _trim(body: dict[str, Any], elements: Sequence[str]) -> dict[str, Any]:
    """Drop whatever the server sent beyond what was asked (some ignore ``_elements`` on reads)."""
    kept = {k: v for k, v in body.items() if k in elements}
    kept["resourceType"] = body["resourceType"]
    if "id" in body:
        kept["id"] = body["id"]
    version = (body.get("meta") or {}).get("versionId")
    if version is not None:
        kept["meta"] = {"versionId": version}
    return kept


def _complete(bundle: Mapping[str, Any], returned: int, page_size: int) -> bool:
    """Whether a searchset page holds every match: no ``next`` link, no ``total`` above what came back,
    and room to spare. A page exactly full counts as incomplete, so a server that caps a page below
    ``_count`` and says nothing of the rest cannot hide a match."""
    links = bundle.get("link") or []
    more = any(isinstance(link, dict) and link.get("relation") == "next" for link in links)
    total = bundle.get("total")
    counted_more = isinstance(total, int) and not isinstance(total, bool) and total > returned
    return not more and not counted_more and returned < page_size


def _check_id(resource_type: str, resource_id: str) -> None:
    if not _ID.fullmatch(resource_id):
        raise FhirNotAllowed("That is not a FHIR resource id.", resource_type=resource_type)


class FhirGateway:
    """Search, read, create and update for the four allowed types. Construct once per process."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        recorder: AccessRecorder | None = None,
        max_page: int = 50,
        read_retries: int = 2,
        retry_backoff_seconds: float = 0.2,
    ) -> None:
        self._client = client
        self._recorder: AccessRecorder = recorder or _NoRecorder()
        self._max_page = max_page
        self._read_retries = read_retries
        self._backoff = retry_backoff_seconds

    @classmethod
    def connect(
        cls,
        config: TransportConfig,
        *,
        recorder: AccessRecorder | None = None,
        max_page: int = 50,
        read_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> FhirGateway:
        return cls(
            build_client(config, transport=transport),
            recorder=recorder,
            max_page=max_page,
            read_retries=read_retries,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> FhirGateway:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def ping(self) -> None:
        """Readiness: the server answers its capability statement over the same mutual-TLS client, or a
        ``FhirError`` says why not. It reads no patient data, so it is not audited (a probe every few
        seconds would bury the trail); it retries nothing, so a probe fails fast."""
        try:
            response = await self._client.get("metadata", params=[("_summary", "true")])
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise classify(exc, resource_type="CapabilityStatement") from None
        if not response.is_success:
            raise _status_error(response.status_code, "CapabilityStatement")
        if self._json(response, "CapabilityStatement").get("resourceType") != "CapabilityStatement":
            raise FhirInvalidResponse(
                "FHIR answered /metadata with something other than a CapabilityStatement.",
                resource_type="CapabilityStatement",
            )

    # ------------------------------------------------------------------ interactions

    async def search(
        self,
        resource_type: str,
        criteria: Sequence[tuple[str, str]],
        *,
        elements: Sequence[str],
        count: int,
        purpose: Purpose,
        sort: str | None = None,
    ) -> SearchPage:
        """POST ``[type]/_search`` with every parameter in the form body: names and birth dates never
        appear in a URL (and so never in the FHIR server's or a proxy's access log), and servers that
        read only the body (Medplum) still get ``_count`` and ``_sort``. One page of at most ``count``
        (and ``max_page``) resources, which says whether it holds every match; further pages are never
        fetched, since a server's ``next`` link repeats the criteria in its URL.

        Each result is checked against the criteria (``criteria.compile_criteria``): one the server
        should not have sent (another type, a Slot of another schedule, more than the page asked for) is
        dropped, and the drop is recorded as a second access record of its own (outcome ``denied``, error
        ``FhirResultOutsideCriteria``, the withheld ids), so a server that ignores a parameter shows in
        the trail instead of reaching a caller."""
        dropped: list[str] = []
        async with self._recording(resource_type, Interaction.SEARCH, purpose) as ids:
            scope.check_search(resource_type, criteria)
            checks = compile_criteria(resource_type, criteria)
            wanted = scope.elements_for(
                resource_type, [*elements, *elements_checked(resource_type, criteria)]
            )
            page_size = max(1, min(count, self._max_page))
            form = [*criteria, ("_elements", ",".join(wanted)), ("_count", str(page_size))]
            if sort:
                form.append(("_sort", sort))
            response = await self._send(
                "POST",
                f"{resource_type}/_search",
                resource_type,
                params=[],
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=urlencode(form).encode(),
                idempotent=True,
            )
            bundle = self._json(response, resource_type)
            if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
                raise FhirInvalidResponse(
                    "FHIR answered a search with something other than a searchset.",
                    resource_type=resource_type,
                )
            entries = []
            for entry in bundle.get("entry") or []:
                if not isinstance(entry, dict):
                    raise FhirInvalidResponse(resource_type=resource_type)
                if (entry.get("search") or {}).get("mode") != "outcome":
                    entries.append(entry.get("resource"))
            resources = []
            for position, body in enumerate(entries):
                if not isinstance(body, dict) or body.get("resourceType") != resource_type:
                    dropped.append("")  # another type: its id names nothing of this type
                elif position >= page_size:  # past what was asked for: withheld unread
                    rid = body.get("id")
                    dropped.append(rid if isinstance(rid, str) and _ID.fullmatch(rid) else "")
                elif checks.admits(body):
                    resources.append(self._parse(body, resource_type, wanted))
                else:
                    dropped.append(self._parse(body, resource_type, wanted).id)
            ids.extend(r.id for r in resources)
            status = response.status_code
        if dropped:
            log.warning(
                "FHIR %s search: %d result(s) outside its criteria dropped", resource_type, len(dropped)
            )
            await self._recorder.record(
                AccessRecord(
                    resource_type,
                    Interaction.SEARCH,
                    purpose,
                    "denied",
                    tuple(i for i in dropped if i),
                    status,
                    OUTSIDE_CRITERIA,
                )
            )
        return SearchPage(
            resources, complete=_complete(bundle, len(entries), page_size), withheld=len(dropped)
        )

    async def read(
        self, resource_type: str, resource_id: str, *, elements: Sequence[str], purpose: Purpose
    ) -> Versioned:
        async with self._recording(resource_type, Interaction.READ, purpose, resource_id):
            scope.check(resource_type, Interaction.READ)
            _check_id(resource_type, resource_id)
            wanted = scope.elements_for(resource_type, elements)
            response = await self._send(
                "GET",
                f"{resource_type}/{resource_id}",
                resource_type,
                params=[("_elements", ",".join(wanted))],
                idempotent=True,
            )
            resource = self._parse(self._json(response, resource_type), resource_type, wanted)
            if resource.id != resource_id:
                raise FhirInvalidResponse(
                    "FHIR answered a read with a different resource.", resource_type=resource_type
                )
            return Versioned(resource, self._etag(response, resource))

    async def create(self, resource: Any, *, purpose: Purpose, if_none_exist: str | None = None) -> Created:
        """Create from a fhirclient model. Returns the new id and its ETag."""
        resource_type = resource.resource_type
        async with self._recording(resource_type, Interaction.CREATE, purpose) as ids:
            scope.check(resource_type, Interaction.CREATE)
            body = resource.as_json()
            scope.elements_for(resource_type, [k for k in body if k not in ("resourceType", "id", "meta")])
            headers = {"Prefer": f"return=minimal, {_STRICT}", "Content-Type": "application/fhir+json"}
            if if_none_exist:
                headers["If-None-Exist"] = if_none_exist
            response = await self._send(
                "POST",
                resource_type,
                resource_type,
                params=[("_elements", "id")],
                headers=headers,
                content=json.dumps(body).encode(),
                idempotent=False,
            )
            match = _LOCATION_ID.search(response.headers.get("location", ""))
            if match is None or match["type"] != resource_type:
                raise FhirInvalidResponse(
                    "FHIR created a resource without saying where.", resource_type=resource_type
                )
            ids.append(match["id"])
            etag = response.headers.get("etag") or (f'W/"{match["vid"]}"' if match["vid"] else None)
            return Created(match["id"], etag)

    async def update(
        self,
        resource_type: str,
        resource_id: str,
        patch: Sequence[Mapping[str, Any]],
        *,
        if_match: str | None,
        purpose: Purpose,
    ) -> str | None:
        """JSON Patch guarded by ``If-Match``: change only named elements of the version that was read.
        Returns the new ETag. A stale ETag raises ``FhirConflict`` and changes nothing."""
        async with self._recording(resource_type, Interaction.UPDATE, purpose, resource_id):
            scope.check(resource_type, Interaction.UPDATE)
            _check_id(resource_type, resource_id)
            if not if_match:
                raise FhirNotAllowed(
                    "An update must name the version it changes.", resource_type=resource_type
                )
            touched = [str(op.get("path", "")).lstrip("/").split("/")[0] for op in patch]
            scope.elements_for(resource_type, touched)
            response = await self._send(
                "PATCH",
                f"{resource_type}/{resource_id}",
                resource_type,
                params=[("_elements", "id")],
                headers={
                    "If-Match": if_match,
                    "Prefer": f"return=minimal, {_STRICT}",
                    "Content-Type": "application/json-patch+json",
                },
                content=json.dumps(list(patch)).encode(),
                idempotent=False,
            )
            etag: str | None = response.headers.get("etag")
            return etag

    # ------------------------------------------------------------------ plumbing

    def _recording(
        self, resource_type: str, interaction: Interaction, purpose: Purpose, resource_id: str | None = None
    ) -> _Recording:
        return _Recording(self._recorder, resource_type, interaction, purpose, resource_id)

    async def _send(
        self,
        method: str,
        url: str,
        resource_type: str,
        *,
        params: Sequence[tuple[str, str]],
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        request_headers = {"Prefer": _STRICT, **(headers or {})}
        started = time.perf_counter()
        attempts = 1 + (self._read_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._client.request(
                    method, url, params=list(params), headers=request_headers, content=content
                )
            except (httpx.TransportError, ssl.SSLError) as exc:  # a TLS alert can surface unwrapped
                error = classify(exc, resource_type=resource_type)
                if isinstance(error, FhirUnavailable) and not last:
                    await asyncio.sleep(self._backoff * 2**attempt)
                    continue
                raise error from None
            # Method, type and status only: the URL and body may carry search values.
            log.debug(
                "FHIR %s %s -> %d in %.1f ms (attempt %d)",
                method,
                resource_type,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                attempt + 1,
            )
            if response.is_success:
                return response
            if response.status_code in _RETRY_STATUSES and not last and idempotent:
                await asyncio.sleep(self._backoff * 2**attempt)
                continue
            raise _status_error(response.status_code, resource_type)
        raise FhirUnavailable(resource_type=resource_type)  # pragma: no cover - loop always returns or raises

    @staticmethod
    def _json(response: httpx.Response, resource_type: str) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FhirInvalidResponse(
                "FHIR sent a body that is not JSON.", resource_type=resource_type
            ) from None
        if not isinstance(body, dict):
            raise FhirInvalidResponse("FHIR sent JSON that is not a resource.", resource_type=resource_type)
        return body

    @staticmethod
    def _parse(body: object, resource_type: str, elements: Sequence[str]) -> Any:
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            raise FhirInvalidResponse(
                f"FHIR sent a resource that is not a {resource_type}.", resource_type=resource_type
            )
        if not isinstance(body.get("id"), str) or not _ID.fullmatch(body["id"]):
            raise FhirInvalidResponse("FHIR sent a resource without a valid id.", resource_type=resource_type)
        try:
            return MODELS[resource_type](_trim(body, elements), strict=True)
        except (FHIRValidationError, TypeError, ValueError, KeyError, AttributeError):
            # fhirclient's messages quote the offending values: never pass them on.
            raise FhirInvalidResponse(
                f"FHIR sent a {resource_type} that fails validation.", resource_type=resource_type
            ) from None

    @staticmethod
    def _etag(response: httpx.Response, resource: Any) -> str | None:
        etag: str | None = response.headers.get("etag")
        if etag:
            return etag
        version = getattr(getattr(resource, "meta", None), "versionId", None)
        return f'W/"{version}"' if version else None


class _Recording:
    """Async context that reports one gateway call to the recorder, whatever its outcome."""

    def __init__(
        self,
        recorder: AccessRecorder,
        resource_type: str,
        interaction: Interaction,
        purpose: Purpose,
        resource_id: str | None,
    ) -> None:
        self._recorder = recorder
        self._base = (resource_type, interaction, purpose)
        self.ids: list[str] = [resource_id] if resource_id else []

    async def __aenter__(self) -> list[str]:
        return self.ids

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        resource_type, interaction, purpose = self._base
        if exc is None:
            record = AccessRecord(resource_type, interaction, purpose, "success", tuple(self.ids))
        elif isinstance(exc, FhirError):
            record = AccessRecord(
                resource_type,
                interaction,
                purpose,
                _outcome(exc),
                tuple(self.ids),
                exc.status,
                type(exc).__name__,
            )
        else:
            record = AccessRecord(
                resource_type, interaction, purpose, "failure", tuple(self.ids), None, type(exc).__name__
            )
        await self._recorder.record(record)
