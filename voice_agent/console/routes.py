"""The console's pages under ``/staff``: login with a second factor, the escalation queue and one
escalation (front desk), the audit trail and its export (compliance officer), accounts (administrator).

Every page is server-rendered (Jinja2, autoescaped) and sent ``no-store``; the only script is
``static/console.js`` (live queue, logoff warning). No URL carries anything but a page name, an
escalation's random id or an account name, except a one-time enrolment link (``/staff/enrol/<token>``:
its page and the administrator's page that shows it send no Referer and load nothing from elsewhere);
what staff type goes in POST bodies. The patient's name and birth date are read from FHIR when an
escalation is opened, put into that one page, and not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from fhir_adapters import FhirError, FhirNotFound, PatientIdentity, PatientRef, Scheduling
from voice_agent.audit import (
    Actor,
    AuditAction,
    AuditEvent,
    AuditIntegrityError,
    AuditPurpose,
    AuditTrail,
    StaffRole,
    current_session_id,
    current_staff_user,
)
from voice_agent.audit.alerts import BreachDetector
from voice_agent.audit.events import AlertKind
from voice_agent.audit.export import export_events, parse_moment
from voice_agent.escalations import (
    AsyncEscalationStore,
    Escalation,
    EscalationCategory,
    EscalationConflict,
    EscalationError,
    EscalationNotFound,
    EscalationStatus,
    EscalationSummary,
    ResolutionOutcome,
    Urgency,
)
from voice_agent.settings import Settings

from . import totp
from .auth import ADMIN, ANY_ROLE, COMPLIANCE, FRONT_DESK, HOME, Auth, Refused
from .csrf import FIELD
from .sessions import StaffSession
from .throttle import Logins
from .users import (
    ROLE_NAMES,
    ROLES,
    EnrolmentLink,
    InvalidStaffInput,
    StaffError,
    StaffStore,
    UserExists,
)

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
#: How often a live queue stream re-reads the queue (another process's escalations, claims, purges).
POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
MAX_AUDIT_ROWS = 500
#: Breach-detection events, listed above the trail for the compliance officer.
#: The alert panel's length (newest first); the trail holds every one.
MAX_ALERTS = 200

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
#: The one answer to every refused sign-in (unknown name, wrong password, locked or disabled account, an
#: address that must wait): the page, its status and these words never say which.
LOGIN_REFUSED = (
    "The user name or password is not right, or this account cannot sign in from here right now. "
    "Try again in a few minutes, or ask an administrator."
)
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

    # ------------------------------------------------------------------ helpers

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

    async def _audit(self, event: AuditEvent) -> None:
        await asyncio.to_thread(self.trail.append, event)

    # ------------------------------------------------------------------ queue and escalations

    async def queue_context(self, selected: UUID | None = None) -> dict[str, Any]:
        summaries = await self.escalations.queue(200)
        active = [s for s in summaries if s.status is not EscalationStatus.RESOLVED]
        return {
            "active": active,
            "repeats": await self.escalations.repeats(),
            "resolved_count": len(summaries) - len(active),
            "urgent_count": sum(1 for s in active if s.urgency is Urgency.URGENT),
            "selected": selected,
            "retention_days": self.settings.escalation_retention_days,
        }

    async def patient(
        self, escalation: Escalation, staff_user: str
    ) -> tuple[PatientIdentity | None, str | None]:
        """The patient's name and birth date, read now through the scoped gateway; the read is audited
        with the staff user as actor and the call's session id. Never cached."""
        if escalation.patient_id is None:
            return None, "The caller was not verified: no patient record is linked."
        staff_token = current_staff_user.set(staff_user)
        session_token = current_session_id.set(escalation.session_id)
        try:
            return await self.scheduling.patient_for_staff(PatientRef(escalation.patient_id)), None
        except FhirNotFound:
            return None, "The linked patient record no longer exists."
        except FhirError as exc:
            log.warning("console: patient details unavailable (%s)", type(exc).__name__)
            return None, "Patient details are unavailable right now (the records system did not answer)."
        finally:
            current_session_id.reset(session_token)
            current_staff_user.reset(staff_token)

    async def stream(self, request: Request, token: str | None) -> AsyncIterator[str]:
        """Server-sent events: ``queue`` when the queue changed (the page fetches the new rows), ``logout``
        when the session ended. Carries no data about any escalation."""
        yield "retry: 3000\n\n"
        last: str | None = None
        quiet = 0.0
        while not await request.is_disconnected():
            session = await asyncio.to_thread(self.auth.sessions.get, token)
            if session is None or session.stage != "full":
                yield "event: logout\ndata: timeout\n\n"
                return
            state = _queue_state(await self.escalations.queue(200), await self.escalations.repeats())
            if last is not None and state != last:
                yield "event: queue\ndata: changed\n\n"
                quiet = 0.0
            elif quiet >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet = 0.0
            last = state
            seen = self.escalations.urgent.version
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.escalations.urgent.wait(seen), POLL_SECONDS)
            quiet += POLL_SECONDS


def _queue_state(summaries: list[EscalationSummary], repeats: dict[UUID, int]) -> str:
    text = "|".join(
        f"{s.id}:{s.status.value}:{s.claimed_by}:{s.tampered}:{repeats.get(s.id, 0)}" for s in summaries
    )
    return hashlib.sha256(text.encode()).hexdigest()


async def refused_response(_request: Request, exc: Exception) -> Response:
    """``Refused`` anywhere in a console handler ends the request with its response (login, 401, 403)."""
    assert isinstance(exc, Refused)
    return exc.response


def console_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/staff", include_in_schema=False)
    auth = console.auth
    settings = console.settings

    async def guarded(
        request: Request, roles: frozenset[StaffRole] = ANY_ROLE, activity: bool = True
    ) -> StaffSession:
        """A logged-in session of one of ``roles``; another role gets the 403 page (or, at ``/staff``
        itself, its own home page)."""

        def refuse(session: StaffSession) -> Response:
            if request.url.path == "/staff":
                return RedirectResponse(HOME[session.user.role], status_code=303)
            return console.forbidden(request, session)

        return await auth.require(request, roles, activity=activity, forbidden=refuse)

    async def posted(request: Request, allowed: Awaitable[StaffSession]) -> StaffSession:
        """The session of a form post, once its CSRF token checked out."""
        session = await allowed
        await auth.check_form(request, session)
        return session

    # -------------------------------------------------------------- login

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        session = await auth.current(request)
        reason = request.query_params.get("reason")
        if session is not None and reason == "timeout":
            # the page counted down to its logoff (within a second of the server's own): end it now
            await asyncio.to_thread(auth.sessions.end, session, "timeout")
        elif session is not None and session.stage == "full":
            return RedirectResponse(HOME[session.user.role], status_code=303)
        binding, fresh = auth.login_binding(request)
        message = {
            "timeout": (
                f"You were signed out after {settings.staff_idle_timeout_seconds // 60 or 1} minutes "
                "without activity."
            ),
            "logout": "You have signed out.",
        }.get(reason or "")
        response = console.page(
            request, "login.html", None, csrf=auth.csrf.token(binding), title="Sign in", message=message
        )
        if fresh:
            auth.set_cookie(response, settings.staff_login_cookie, fresh)
        if session is not None and reason == "timeout":
            auth.clear_cookie(response, settings.staff_session_cookie)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        binding, _fresh = auth.login_binding(request)
        form = await request.form()
        if not auth.csrf.check(binding, _text(form.get(FIELD))):
            return RedirectResponse("/staff/login", status_code=303)
        username = _text(form.get("username")).strip().lower()
        password = _text(form.get("password"))
        check = await asyncio.to_thread(console.logins.password, username, password, auth.source(request))
        if not check.ok or check.user is None:
            await console.detector.signal("staff-login-failure")
            return console.page(
                request,
                "login.html",
                None,
                status_code=401,
                csrf=auth.csrf.token(binding),
                title="Sign in",
                error=LOGIN_REFUSED,
            )
        token = await asyncio.to_thread(auth.sessions.open, check.user.username, "password")
        response = RedirectResponse(
            "/staff/login/code" if check.user.enrolled else "/staff/enrol", status_code=303
        )
        auth.set_cookie(response, settings.staff_session_cookie, token)
        return response

    @router.get("/login/code")
    async def code_page(request: Request) -> Response:
        session = await auth.half_open(request)
        if not session.user.enrolled:
            return RedirectResponse("/staff/enrol", status_code=303)
        return console.page(request, "code.html", session, title="Second factor")

    @router.post("/login/code")
    async def code(request: Request) -> Response:
        session = await posted(request, auth.half_open(request))
        form = await request.form()
        check = await asyncio.to_thread(
            console.logins.code, session.username, _text(form.get("code")), auth.source(request)
        )
        return await _second_factor_result(request, session, check.ok, check.reason, "code.html")

    async def _second_factor_result(
        request: Request, session: StaffSession, ok: bool, reason: str | None, template: str, **extra: Any
    ) -> Response:
        token = await asyncio.to_thread(auth.sessions.upgrade, session) if ok else None
        if token is not None:
            full = await asyncio.to_thread(auth.sessions.get, token)
            if extra.get("recovery_codes") and full is not None:
                response: Response = console.page(
                    request, "recovery.html", full, title="Recovery codes", home=HOME[full.user.role], **extra
                )
            else:
                response = RedirectResponse(HOME[session.user.role], status_code=303)
            auth.set_cookie(response, settings.staff_session_cookie, token)
            return response
        if not ok:
            await console.detector.signal("staff-login-failure")
        if ok or reason in ("AccountLocked", "AccountDisabled", "SourceThrottled"):
            # (ok without a token: an administrator's change to the account ended the half-open session)
            await asyncio.to_thread(auth.sessions.end, session, "logout")
            response = RedirectResponse("/staff/login", status_code=303)
            auth.clear_cookie(response, settings.staff_session_cookie)
            return response
        context: dict[str, Any] = {
            "title": "Second factor",
            "error": "That code is not right. Try the next one.",
        }
        if template == "enrol.html":
            context.update(await _enrolment(session))
        return console.page(request, template, session, status_code=401, **context)

    async def _enrolment(session: StaffSession) -> dict[str, Any]:
        secret = await asyncio.to_thread(console.staff.enrolment_secret, session.username)
        uri = totp.provisioning_uri(secret, session.username, f"{settings.clinic_name} staff console")
        return {"title": "Set up your authenticator", "qr": totp.qr_svg(uri), "secret": totp.grouped(secret)}

    @router.get("/enrol")
    async def enrol_page(request: Request) -> Response:
        session = await auth.half_open(request)
        if session.user.enrolled:
            return RedirectResponse("/staff/login/code", status_code=303)
        return console.page(request, "enrol.html", session, **await _enrolment(session))

    @router.post("/enrol")
    async def enrol(request: Request) -> Response:
        session = await posted(request, auth.half_open(request))
        form = await request.form()
        check, codes = await asyncio.to_thread(
            console.logins.enrol,
            session.username,
            _text(form.get("code")),
            auth.source(request),
            session=session.token_hash,
        )
        return await _second_factor_result(
            request, session, check.ok, check.reason, "enrol.html", recovery_codes=codes
        )

    # -------------------------------------------------------------- first enrolment (a one-time link)

    def _link_response(response: Response) -> Response:
        """The token is in this page's URL: no Referer may carry it anywhere (the console's headers say
        so too; this page must not depend on that)."""
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def _link_refused(request: Request) -> Response:
        """One page for every reason (unknown, used, superseded, expired, disabled): the audit trail
        has the reason, the visitor needs only to ask for a new link."""
        return _link_response(
            console.page(
                request, "enrol_link.html", None, status_code=410, title="Link not valid", refused=True
            )
        )

    async def _link_page(
        request: Request, token: str, status_code: int = 200, error: str | None = None
    ) -> Response:
        check = await asyncio.to_thread(console.staff.enrolment_account, token)
        if not check.ok or check.user is None:
            return _link_refused(request)
        username = check.user.username
        secret = await asyncio.to_thread(console.staff.enrolment_secret, username)
        uri = totp.provisioning_uri(secret, username, f"{settings.clinic_name} staff console")
        binding, fresh = auth.login_binding(request)
        response = console.page(
            request,
            "enrol_link.html",
            None,
            status_code=status_code,
            csrf=auth.csrf.token(binding),
            title="Set up your account",
            username=username,
            qr=totp.qr_svg(uri),
            secret=totp.grouped(secret),
            error=error,
        )
        if fresh:
            auth.set_cookie(response, settings.staff_login_cookie, fresh)
        return _link_response(response)

    @router.get("/enrol/{token}")
    async def link_page(request: Request, token: str) -> Response:
        """Opening the link spends nothing (a mail scanner may fetch it too); only the form does."""
        return await _link_page(request, token)

    @router.post("/enrol/{token}")
    async def link_enrol(request: Request, token: str) -> Response:
        """Set the password and TOTP, spend the link, and sign in: the person just proved the link, a new
        password and the app in one step, so a second login would prove nothing more (and would wait for
        the next 30-second code)."""
        binding, _fresh = auth.login_binding(request)
        form = await request.form()
        if not auth.csrf.check(binding, _text(form.get(FIELD))):
            return await _link_page(request, token, 403, "The form expired; fill it in again.")
        password = _text(form.get("password"))
        if password != _text(form.get("confirm")):
            return await _link_page(request, token, 400, "The two passwords are not the same.")
        try:
            check, codes = await asyncio.to_thread(
                console.staff.complete_enrolment, token, password, _text(form.get("code"))
            )
        except InvalidStaffInput as exc:
            return await _link_page(request, token, 400, f"Choose another password: {exc}.")
        if check.reason == "BadCode":
            return await _link_page(
                request,
                token,
                401,
                "That code is not right. Check the app has the key, then try the next one.",
            )
        if not check.ok or check.user is None:
            return _link_refused(request)  # refused (and audited) by complete_enrolment
        # a full login (link, password, code): this address is proven for the account (``throttle``)
        await asyncio.to_thread(console.logins.throttle.prove, check.user.username, auth.source(request))
        session_token = await asyncio.to_thread(auth.sessions.open, check.user.username, "full")
        full = await asyncio.to_thread(auth.sessions.get, session_token)
        response = console.page(
            request,
            "recovery.html",
            full,
            title="Recovery codes",
            home=HOME[check.user.role],
            recovery_codes=codes,
        )
        auth.set_cookie(response, settings.staff_session_cookie, session_token)
        return _link_response(response)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = await auth.current(request)
        if session is not None:
            await auth.check_form(request, session)
            await asyncio.to_thread(auth.sessions.end, session, "logout")
        response = RedirectResponse("/staff/login?reason=logout", status_code=303)
        auth.clear_cookie(response, settings.staff_session_cookie)
        return response

    @router.get("/session")
    async def session_state(request: Request) -> Response:
        """Seconds left before the automatic logoff (not activity itself): the page asks before it warns
        and before it leaves, so activity in another tab counts."""
        session = await auth.current(request)
        if session is None or session.stage != "full":
            return JSONResponse({"remaining": 0}, status_code=401)
        return JSONResponse({"remaining": int(auth.sessions.remaining(session).total_seconds())})

    @router.post("/session/extend")
    async def extend(request: Request) -> Response:
        """ "Stay signed in": activity, by a person's press of the button."""
        session = await guarded(request)
        auth.check_header(request, session)
        fresh = await asyncio.to_thread(auth.sessions.get, request.cookies.get(settings.staff_session_cookie))
        remaining = auth.sessions.remaining(fresh).total_seconds() if fresh else 0
        return JSONResponse({"remaining": int(remaining)})

    # -------------------------------------------------------------- front desk

    async def front_desk(request: Request, activity: bool = True) -> StaffSession:
        return await guarded(request, FRONT_DESK, activity)

    @router.get("")
    async def queue_page(request: Request) -> Response:
        session = await front_desk(request)
        return console.page(
            request, "queue.html", session, title="Escalations", **await console.queue_context()
        )

    @router.get("/queue")
    async def queue_rows(request: Request) -> Response:
        session = await front_desk(request, activity=False)
        selected = _uuid(request.query_params.get("selected"))
        return console.page(request, "_queue.html", session, **await console.queue_context(selected))

    @router.get("/events")
    async def events(request: Request) -> Response:
        await front_desk(request, activity=False)
        token = request.cookies.get(settings.staff_session_cookie)
        return StreamingResponse(
            console.stream(request, token),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    @router.get("/escalations/{escalation_id}")
    async def escalation_page(request: Request, escalation_id: str) -> Response:
        session = await front_desk(request)
        ident = _uuid(escalation_id)
        if ident is None:
            return RedirectResponse("/staff?notice=gone", status_code=303)
        try:
            escalation = await console.escalations.get(ident, session.username)
        except EscalationNotFound:
            return RedirectResponse("/staff?notice=gone", status_code=303)
        patient, patient_note = await console.patient(escalation, session.username)
        return console.page(
            request,
            "queue.html",
            session,
            title="Escalation",
            escalation=escalation,
            patient=patient,
            patient_note=patient_note,
            **await console.queue_context(ident),
        )

    @router.post("/escalations/{escalation_id}/claim")
    async def claim(request: Request, escalation_id: str) -> Response:
        return await _change(request, escalation_id, None)

    @router.post("/escalations/{escalation_id}/resolve")
    async def resolve(request: Request, escalation_id: str) -> Response:
        form = await request.form()
        try:
            outcome = ResolutionOutcome(_text(form.get("outcome")))
        except ValueError:
            return RedirectResponse(f"/staff/escalations/{_uuid(escalation_id)}", status_code=303)
        return await _change(request, escalation_id, outcome)

    async def _change(request: Request, escalation_id: str, outcome: ResolutionOutcome | None) -> Response:
        session = await posted(request, front_desk(request))
        ident = _uuid(escalation_id)
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

    # -------------------------------------------------------------- compliance officer

    @router.get("/audit")
    async def audit_page(request: Request) -> Response:
        session = await guarded(request, COMPLIANCE)
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
        await console._audit(
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
    async def audit_export(request: Request) -> Response:
        session = await posted(request, guarded(request, COMPLIANCE))
        form = await request.form()
        try:
            start = parse_moment(_text(form.get("since")), end=False)
            stop = parse_moment(_text(form.get("until")), end=True)
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
    async def audit_verify(request: Request) -> Response:
        session = await posted(request, guarded(request, COMPLIANCE))
        report = await asyncio.to_thread(console.trail.verify)
        await console._audit(
            AuditEvent.now(
                actor=Actor(kind="staff", id=session.username),
                purpose=AuditPurpose.AUDIT_REVIEW,
                action=AuditAction.AUDIT_VIEW,
                outcome="success" if report.ok else "failure",
                event_count=report.checked,
            )
        )
        return console.page(request, "verify.html", session, title="Audit trail check", report=report)

    # -------------------------------------------------------------- administrator

    @router.get("/admin/users")
    async def users_page(request: Request) -> Response:
        session = await guarded(request, ADMIN)
        return await _users(request, session)

    async def _users(
        request: Request,
        session: StaffSession,
        status_code: int = 200,
        error: str | None = None,
        link: EnrolmentLink | None = None,
        notice: str | None = None,
    ) -> Response:
        """The accounts page; after a creation or reset, with the new enrolment link, shown this once
        (only its HMAC is stored)."""
        users = await asyncio.to_thread(console.staff.users)
        extra: dict[str, Any] = {"notice": notice} if notice else {}
        if link is not None:
            extra.update(link=link, link_url=str(request.base_url).rstrip("/") + link.path)
        return console.page(
            request,
            "users.html",
            session,
            status_code=status_code,
            title="Accounts",
            users=users,
            now=console.staff.now(),
            error=error,
            link_hours=settings.staff_enrolment_link_hours,
            **extra,
        )

    @router.post("/admin/users")
    async def add_user(request: Request) -> Response:
        session = await posted(request, guarded(request, ADMIN))
        form = await request.form()
        try:
            user, link = await asyncio.to_thread(
                console.staff.invite,
                _text(form.get("username")).strip().lower(),
                _text(form.get("role")),
                by=Actor(kind="staff", id=session.username),
            )
        except (InvalidStaffInput, UserExists) as exc:
            return await _users(request, session, 400, f"Not created: {exc}.")
        # rendered, not redirected: the link exists only in this response
        return await _users(request, session, link=link, notice=f"Account {user.username} created.")

    @router.post("/admin/users/{username}/{change}")
    async def change_user(request: Request, username: str, change: str) -> Response:
        session = await posted(request, guarded(request, ADMIN))
        if change not in ("role", "reset", "totp-reset", "unlock", "disable", "enable"):
            return Response(status_code=404)
        if username == session.username and change in ("role", "disable", "reset"):
            return await _users(
                request, session, 400, "You cannot change your own role, reset or disable yourself."
            )
        if change == "reset":
            try:
                link = await asyncio.to_thread(
                    console.staff.reset, username, by=Actor(kind="staff", id=session.username)
                )
            except StaffError as exc:
                return await _users(request, session, 400, f"Not reset: {exc}.")
            return await _users(request, session, link=link, notice=f"Account {username} reset.")
        form = await request.form()
        try:
            await asyncio.to_thread(
                console.staff.change,
                username,
                change,  # type: ignore[arg-type]  # checked against the closed set above
                by=Actor(kind="staff", id=session.username),
                role=_text(form.get("role")) or None,
                current_session=session.token_hash,
            )
        except StaffError as exc:
            return await _users(request, session, 400, f"Not changed: {exc}.")
        return RedirectResponse("/staff/admin/users?notice=user-changed", status_code=303)

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


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
