"""What the console's routers (``routes/``) share: the ``Console`` (its stores, settings and Jinja2
templates), page rendering, the labels and notices pages may show, the auth guards the routes take as
FastAPI dependencies, and the little readers of form fields and path ids.

Every page is server-rendered (Jinja2, autoescaped) and sent ``no-store``; the only script is
``static/console.js`` (live queue, logoff warning).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from fhir_adapters import Scheduling
from voice_agent.audit import AuditEvent, AuditTrail, StaffRole
from voice_agent.audit.alerts import BreachDetector
from voice_agent.audit.events import AlertKind
from voice_agent.escalations import AsyncEscalationStore, EscalationCategory, ResolutionOutcome
from voice_agent.settings import Settings

from .auth import ANY_ROLE, HOME, Auth, Refused
from .csrf import FIELD
from .sessions import StaffSession
from .throttle import Logins
from .users import ROLE_NAMES, ROLES, StaffStore

TEMPLATES = Path(__file__).parent / "templates"

#: What each alert means, for the compliance officer (AlertKind is a closed set: mypy checks all are here).
ALERT_LABELS: dict[AlertKind, str] = {
    "identity-locked": "Identity checks locked for one claimed name (too many failed birth dates)",
    "number-locked": "Identity checks locked for one calling number",
    "source-locked": "Identity checks locked for one browser source address",
    "verification-burst": "Many failed identity checks across the clinic in a short time",
    "urgent-flood": "Repeated urgent escalations from one phone or browser",
    "carrier-auth-failures": "Repeated carrier-authentication failures on the telephony endpoint",
    "fhir-certificate-failure": "The FHIR server and the agent could not authenticate each other",
    "ceiling-refusals": "Many calls refused because every line was busy",
    "staff-login-burst": (
        "Many refused staff console sign-ins in a short time (password guessing, or an attempt to lock "
        "staff out)"
    ),
    "record-tampered": (
        "A staff account or escalation was changed outside the console (its integrity tag fails): "
        "the account cannot sign in; the escalation is shown as needing attention"
    ),
}

CATEGORY_LABELS: dict[EscalationCategory, str] = {
    EscalationCategory.EMERGENCY: "Emergency",
    EscalationCategory.CRISIS: "Crisis",
    EscalationCategory.MEDICAL_QUESTION: "Medical question",
    EscalationCategory.VERIFICATION_FAILED: "Could not verify identity",
    EscalationCategory.CALLER_REQUEST: "Asked for a person",
    EscalationCategory.OTHER_PERSON_REQUEST: "Asked about someone else",
    EscalationCategory.RULE_CHANGE_ATTEMPT: "Tried to change the agent's rules",
    EscalationCategory.SYSTEM_ERROR: "System problem during the call",
    EscalationCategory.CANNOT_COMPLETE: "Could not complete the request",
}
OUTCOME_LABELS: dict[ResolutionOutcome, str] = {
    ResolutionOutcome.CALLED_BACK: "Called back",
    ResolutionOutcome.NO_ANSWER: "No answer",
    ResolutionOutcome.LEFT_MESSAGE: "Left a message",
    ResolutionOutcome.BOOKED: "Booked an appointment",
    ResolutionOutcome.RESOLVED_OTHER: "Resolved another way",
    ResolutionOutcome.DUPLICATE: "Duplicate",
}
#: Notices a redirect may name (a closed set: nothing from the request is echoed).
NOTICES = {
    "resolved": "Escalation resolved.",
    "claimed-elsewhere": "Someone else has claimed that escalation.",
    "already-resolved": "That escalation is already resolved.",
    "gone": "That escalation no longer exists (resolved and deleted).",
    "user-changed": "Account changed.",
}


def format_phone(number: str | None) -> str:
    """+15550142222 -> "+1 555 014 2222" (North American numbers grouped; others as stored)."""
    if not number:
        return ""
    if number.startswith("+1") and len(number) == 12:
        return f"+1 {number[2:5]} {number[5:8]} {number[8:]}"
    return number


class Console:
    """The console's state: stores, FHIR operations, settings, templates. One per ``serve`` process."""

    def __init__(
        self,
        settings: Settings,
        *,
        auth: Auth,
        staff: StaffStore,
        escalations: AsyncEscalationStore,
        scheduling: Scheduling,
        trail: AuditTrail,
        logins: Logins,
        detector: BreachDetector,
    ) -> None:
        self.settings = settings
        self.logins = logins
        self.detector = detector
        self.signals = detector.signals
        self.auth = auth
        self.staff = staff
        self.escalations = escalations
        self.scheduling = scheduling
        self.trail = trail
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        env = self.templates.env
        env.filters["localtime"] = self.localtime
        env.filters["ago"] = self.ago
        env.filters["phone"] = format_phone
        env.filters["longdate"] = lambda d: f"{d:%B} {d.day}, {d.year}" if isinstance(d, date) else ""
        env.globals.update(
            CATEGORY_LABELS=CATEGORY_LABELS,
            ALERT_LABELS=ALERT_LABELS,
            OUTCOME_LABELS=OUTCOME_LABELS,
            ROLE_NAMES=ROLE_NAMES,
            ROLES=ROLES,
            CSRF_FIELD=FIELD,
            clinic_name=settings.clinic_name,
        )

    def localtime(self, moment: datetime) -> str:
        local = moment.astimezone(self.settings.zone)
        return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"

    def ago(self, moment: datetime) -> str:
        minutes = int((datetime.now(UTC) - moment).total_seconds() // 60)
        if minutes < 1:
            return "just now"
        if minutes < 60:
            return f"{minutes} min ago"
        hours = minutes // 60
        return f"{hours} h {minutes % 60} min ago" if hours < 24 else f"{hours // 24} d ago"

    def page(
        self,
        request: Request,
        template: str,
        session: StaffSession | None,
        *,
        status_code: int = 200,
        csrf: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        if session is not None and session.stage == "full":
            idle = int(self.auth.sessions.remaining(session).total_seconds())
        else:
            idle = 0
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "session": session if session is not None and session.stage == "full" else None,
                "csrf": csrf or (self.auth.token_for(session) if session is not None else ""),
                "idle_seconds": idle,
                "notice": NOTICES.get(request.query_params.get("notice", "")),
                **context,
            },
            status_code=status_code,
        )

    def forbidden(self, request: Request, session: StaffSession | None = None) -> HTMLResponse:
        return self.page(request, "forbidden.html", session, status_code=403, title="Not for your role")

    async def audit(self, event: AuditEvent) -> None:
        await asyncio.to_thread(self.trail.append, event)


async def refused_response(_request: Request, exc: Exception) -> Response:
    """``Refused`` anywhere in a console handler ends the request with its response (login, 401, 403)."""
    assert isinstance(exc, Refused)
    return exc.response


# ---------------------------------------------------------------------- guards (FastAPI dependencies)

#: A route's guard: the session it may act for, else ``Refused`` (login redirect, 401 or 403).
Guard = Callable[[Request], Awaitable[StaffSession]]


def signed_in(console: Console, roles: frozenset[StaffRole] = ANY_ROLE, *, activity: bool = True) -> Guard:
    """A logged-in session of one of ``roles``; another role gets the 403 page (or, at ``/staff`` itself,
    its own home page). ``activity=False`` for what a page asks by itself (it must not hold off the
    logoff)."""

    async def guard(request: Request) -> StaffSession:
        def refuse(session: StaffSession) -> Response:
            if request.url.path == "/staff":
                return RedirectResponse(HOME[session.user.role], status_code=303)
            return console.forbidden(request, session)

        return await console.auth.require(request, roles, activity=activity, forbidden=refuse)

    return guard


def half_open(console: Console) -> Guard:
    """A session between the password and the second factor."""

    async def guard(request: Request) -> StaffSession:
        return await console.auth.half_open(request)

    return guard


def form_post(console: Console, allowed: Guard) -> Guard:
    """The session of a form post: ``allowed``, once the form's CSRF token checked out."""

    async def guard(request: Request) -> StaffSession:
        session = await allowed(request)
        await console.auth.check_form(request, session)
        return session

    return guard


# ---------------------------------------------------------------------- request values


def form_text(value: object) -> str:
    """A form field as text ("" when absent or a file)."""
    return value if isinstance(value, str) else ""


def as_uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
