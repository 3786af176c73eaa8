"""The front desk's pages: the escalation queue, its live event stream, and one escalation with claim and
resolve. The patient's name and birth date are read from FHIR when an escalation is opened, put into that
one page, and not kept.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' ``Annotated`` dependencies at
# runtime, and they name guards local to ``queue_router``.

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from fhir_adapters import FhirError, FhirNotFound, PatientIdentity, PatientRef
from voice_agent.audit import current_session_id, current_staff_user
from voice_agent.escalations import (
    Escalation,
    EscalationConflict,
    EscalationError,
    EscalationNotFound,
    EscalationStatus,
    EscalationSummary,
    ResolutionOutcome,
    Urgency,
)

from ..auth import FRONT_DESK
from ..pages import Console, as_uuid, form_post, form_text, signed_in
from ..sessions import StaffSession

log = logging.getLogger(__name__)

#: How often a live queue stream re-reads the queue (another process's escalations, claims, purges).
POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0


def queue_router(console: Console) -> APIRouter:
    router = APIRouter()
    settings = console.settings
    front_desk = signed_in(console, FRONT_DESK)
    #: what the page asks by itself (live updates): no activity, a 401 rather than the login page
    front_desk_polling = signed_in(console, FRONT_DESK, activity=False)
    front_desk_post = form_post(console, front_desk)

    @router.get("")
    async def queue_page(request: Request, session: Annotated[StaffSession, Depends(front_desk)]) -> Response:
        return console.page(
            request, "queue.html", session, title="Escalations", **await queue_context(console)
        )

    @router.get("/queue")
    async def queue_rows(
        request: Request, session: Annotated[StaffSession, Depends(front_desk_polling)]
    ) -> Response:
        selected = as_uuid(request.query_params.get("selected"))
        return console.page(request, "_queue.html", session, **await queue_context(console, selected))

    @router.get("/events", dependencies=[Depends(front_desk_polling)])
    async def events(request: Request) -> Response:
        token = request.cookies.get(settings.staff_session_cookie)
        return StreamingResponse(
            stream(console, request, token),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    @router.get("/escalations/{escalation_id}")
    async def escalation_page(
        request: Request, escalation_id: str, session: Annotated[StaffSession, Depends(front_desk)]
    ) -> Response:
        ident = as_uuid(escalation_id)
        if ident is None:
            return RedirectResponse("/staff?notice=gone", status_code=303)
        try:
            escalation = await console.escalations.get(ident, session.username)
        except EscalationNotFound:
            return RedirectResponse("/staff?notice=gone", status_code=303)
        patient, patient_note = await patient_details(console, escalation, session.username)
        return console.page(
            request,
            "queue.html",
            session,
            title="Escalation",
            escalation=escalation,
            patient=patient,
            patient_note=patient_note,
            **await queue_context(console, ident),
        )

    @router.post("/escalations/{escalation_id}/claim")
    async def claim(
        escalation_id: str, session: Annotated[StaffSession, Depends(front_desk_post)]
    ) -> Response:
        return await _change(session, escalation_id, None)

    @router.post("/escalations/{escalation_id}/resolve")
    async def resolve(request: Request, escalation_id: str) -> Response:
        # the outcome is read before the guard runs (as it always was): an unknown outcome goes back to
        # the escalation's page, whose own guard decides what the browser sees next
        form = await request.form()
        try:
            outcome = ResolutionOutcome(form_text(form.get("outcome")))
        except ValueError:
            return RedirectResponse(f"/staff/escalations/{as_uuid(escalation_id)}", status_code=303)
        return await _change(await front_desk_post(request), escalation_id, outcome)

    async def _change(
        session: StaffSession, escalation_id: str, outcome: ResolutionOutcome | None
    ) -> Response:
        ident = as_uuid(escalation_id)
        if ident is None:
            return RedirectResponse("/staff?notice=gone", status_code=303)
        try:
            if outcome is None:
                await console.escalations.claim(ident, session.username)
            else:
                await console.escalations.resolve(ident, session.username, outcome)
        except EscalationNotFound:
            return RedirectResponse("/staff?notice=gone", status_code=303)
        except EscalationConflict as conflict:
            notice = (
                "already-resolved" if conflict.status is EscalationStatus.RESOLVED else "claimed-elsewhere"
            )
            return RedirectResponse(f"/staff/escalations/{ident}?notice={notice}", status_code=303)
        except EscalationError as exc:
            log.warning("console: escalation change failed (%s)", type(exc).__name__)
            raise
        if outcome is None:
            return RedirectResponse(f"/staff/escalations/{ident}", status_code=303)
        return RedirectResponse("/staff?notice=resolved", status_code=303)

    return router


async def queue_context(console: Console, selected: UUID | None = None) -> dict[str, Any]:
    summaries = await console.escalations.queue(200)
    active = [s for s in summaries if s.status is not EscalationStatus.RESOLVED]
    return {
        "active": active,
        "repeats": await console.escalations.repeats(),
        "resolved_count": len(summaries) - len(active),
        "urgent_count": sum(1 for s in active if s.urgency is Urgency.URGENT),
        "selected": selected,
        "retention_days": console.settings.escalation_retention_days,
    }


async def patient_details(
    console: Console, escalation: Escalation, staff_user: str
) -> tuple[PatientIdentity | None, str | None]:
    """The patient's name and birth date, read now through the scoped gateway; the read is audited with
    the staff user as actor and the call's session id. Never cached."""
    if escalation.patient_id is None:
        return None, "The caller was not verified: no patient record is linked."
    staff_token = current_staff_user.set(staff_user)
    session_token = current_session_id.set(escalation.session_id)
    try:
        return await console.scheduling.patient_for_staff(PatientRef(escalation.patient_id)), None
    except FhirNotFound:
        return None, "The linked patient record no longer exists."
    except FhirError as exc:
        log.warning("console: patient details unavailable (%s)", type(exc).__name__)
        return None, "Patient details are unavailable right now (the records system did not answer)."
    finally:
        current_session_id.reset(session_token)
        current_staff_user.reset(staff_token)


async def stream(console: Console, request: Request, token: str | None) -> AsyncIterator[str]:
    """Server-sent events: ``queue`` when the queue changed (the page fetches the new rows), ``logout``
    when the session ended. Carries no data about any escalation."""
    yield "retry: 3000\n\n"
    last: str | None = None
    quiet = 0.0
    while not await request.is_disconnected():
        session = await asyncio.to_thread(console.auth.sessions.get, token)
        if session is None or session.stage != "full":
            yield "event: logout\ndata: timeout\n\n"
            return
        state = _queue_state(await console.escalations.queue(200), await console.escalations.repeats())
        if last is not None and state != last:
            yield "event: queue\ndata: changed\n\n"
            quiet = 0.0
        elif quiet >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet = 0.0
        last = state
        seen = console.escalations.urgent.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(console.escalations.urgent.wait(seen), POLL_SECONDS)
        quiet += POLL_SECONDS


def _queue_state(summaries: list[EscalationSummary], repeats: dict[UUID, int]) -> str:
    text = "|".join(
        f"{s.id}:{s.status.value}:{s.claimed_by}:{s.tampered}:{repeats.get(s.id, 0)}" for s in summaries
    )
    return hashlib.sha256(text.encode()).hexdigest()
