"""The compliance officer's pages: the audit trail with the breach-detection alerts above it, its export
(JSON lines) and the integrity check."""

# No ``from __future__ import annotations``: FastAPI reads the handlers' ``Annotated`` dependencies at
# runtime, and they name guards local to ``audit_router``.

import asyncio
import io
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from voice_agent.audit import Actor, AuditAction, AuditEvent, AuditIntegrityError, AuditPurpose, AuditTrail
from voice_agent.audit.export import export_events, parse_moment

from ..auth import COMPLIANCE
from ..pages import Console, form_post, form_text, signed_in
from ..sessions import StaffSession

MAX_AUDIT_ROWS = 500
#: Breach-detection events, listed above the trail for the compliance officer.
#: The alert panel's length (newest first); the trail holds every one.
MAX_ALERTS = 200


def audit_router(console: Console) -> APIRouter:
    router = APIRouter()
    compliance = signed_in(console, COMPLIANCE)
    compliance_post = form_post(console, compliance)

    @router.get("/audit")
    async def audit_page(request: Request, session: Annotated[StaffSession, Depends(compliance)]) -> Response:
        today = datetime.now(UTC).date()
        since_text = request.query_params.get("since") or (today - timedelta(days=1)).isoformat()
        until_text = request.query_params.get("until") or today.isoformat()
        try:
            start, stop = parse_moment(since_text, end=False), parse_moment(until_text, end=True)
        except ValueError:
            start, stop = (
                parse_moment((today - timedelta(days=1)).isoformat(), end=False),
                parse_moment(today.isoformat(), end=True),
            )
            since_text, until_text = start.date().isoformat(), today.isoformat()
        rows, problem = await asyncio.to_thread(_recent_events, console.trail, start, stop)
        # from their own table: the panel shows every alert in the range, however busy the trail is
        alerts = await asyncio.to_thread(console.signals.recent, start, stop, MAX_ALERTS)
        await console.audit(
            AuditEvent.now(
                actor=Actor(kind="staff", id=session.username),
                purpose=AuditPurpose.AUDIT_REVIEW,
                action=AuditAction.AUDIT_VIEW,
                outcome="success" if problem is None else "failure",
                range_start=start,
                range_end=stop,
                event_count=len(rows),
            )
        )
        return console.page(
            request,
            "audit.html",
            session,
            title="Audit trail",
            rows=rows,
            alerts=alerts,
            max_alerts=MAX_ALERTS,
            problem=problem,
            since=since_text,
            until=until_text,
            max_rows=MAX_AUDIT_ROWS,
        )

    @router.post("/audit/export")
    async def audit_export(
        request: Request, session: Annotated[StaffSession, Depends(compliance_post)]
    ) -> Response:
        form = await request.form()
        try:
            start = parse_moment(form_text(form.get("since")), end=False)
            stop = parse_moment(form_text(form.get("until")), end=True)
        except ValueError:
            return RedirectResponse("/staff/audit", status_code=303)
        buffer = io.StringIO()
        actor = Actor(kind="staff", id=session.username)
        result = await asyncio.to_thread(export_events, console.trail, start, stop, actor, buffer.write)
        name = f"audit-{start.date().isoformat()}-{(stop - timedelta(seconds=1)).date().isoformat()}.jsonl"
        return Response(
            buffer.getvalue(),
            status_code=200 if result.ok else 500,
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.post("/audit/verify")
    async def audit_verify(
        request: Request, session: Annotated[StaffSession, Depends(compliance_post)]
    ) -> Response:
        report = await asyncio.to_thread(console.trail.verify)
        await console.audit(
            AuditEvent.now(
                actor=Actor(kind="staff", id=session.username),
                purpose=AuditPurpose.AUDIT_REVIEW,
                action=AuditAction.AUDIT_VIEW,
                outcome="success" if report.ok else "failure",
                event_count=report.checked,
            )
        )
        return console.page(request, "verify.html", session, title="Audit trail check", report=report)

    return router


def _recent_events(
    trail: AuditTrail, start: datetime, stop: datetime
) -> tuple[list[dict[str, Any]], str | None]:
    """The newest ``MAX_AUDIT_ROWS`` events of the range, newest first."""
    rows: deque[dict[str, Any]] = deque(maxlen=MAX_AUDIT_ROWS)
    try:
        rows.extend(trail.export(start, stop))
    except AuditIntegrityError:  # show what verified, and say so
        return list(reversed(rows)), "Reading stopped at a record that fails its checks: run the check below."
    return list(reversed(rows)), None
