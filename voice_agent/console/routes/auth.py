"""Signing in and out: login, the second factor (a TOTP code or a recovery code), first enrolment of the
authenticator (after a password, or through a one-time enrolment link), logout, and the session's
remaining time.

A one-time enrolment link (``/staff/enrol/<token>``) is the only URL that carries more than a page name:
its page sends no Referer and loads nothing from elsewhere.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' ``Annotated`` dependencies at
# runtime, and they name guards local to ``auth_router``.

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from .. import totp
from ..auth import HOME
from ..csrf import FIELD
from ..pages import Console, form_post, form_text, half_open, signed_in
from ..sessions import StaffSession
from ..users import InvalidStaffInput

#: The one answer to every refused sign-in (unknown name, wrong password, locked or disabled account, an
#: address that must wait): the page, its status and these words never say which.
LOGIN_REFUSED = (
    "The user name or password is not right, or this account cannot sign in from here right now. "
    "Try again in a few minutes, or ask an administrator."
)


def auth_router(console: Console) -> APIRouter:
    router = APIRouter()
    auth = console.auth
    settings = console.settings
    password_stage = half_open(console)
    password_stage_post = form_post(console, password_stage)
    any_role = signed_in(console)

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
        if not auth.csrf.check(binding, form_text(form.get(FIELD))):
            return RedirectResponse("/staff/login", status_code=303)
        username = form_text(form.get("username")).strip().lower()
        password = form_text(form.get("password"))
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
    async def code_page(
        request: Request, session: Annotated[StaffSession, Depends(password_stage)]
    ) -> Response:
        if not session.user.enrolled:
            return RedirectResponse("/staff/enrol", status_code=303)
        return console.page(request, "code.html", session, title="Second factor")

    @router.post("/login/code")
    async def code(
        request: Request, session: Annotated[StaffSession, Depends(password_stage_post)]
    ) -> Response:
        form = await request.form()
        check = await asyncio.to_thread(
            console.logins.code, session.username, form_text(form.get("code")), auth.source(request)
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

    # ``/enrol`` before ``/enrol/{token}``
    @router.get("/enrol")
    async def enrol_page(
        request: Request, session: Annotated[StaffSession, Depends(password_stage)]
    ) -> Response:
        if session.user.enrolled:
            return RedirectResponse("/staff/login/code", status_code=303)
        return console.page(request, "enrol.html", session, **await _enrolment(session))

    @router.post("/enrol")
    async def enrol(
        request: Request, session: Annotated[StaffSession, Depends(password_stage_post)]
    ) -> Response:
        form = await request.form()
        check, codes = await asyncio.to_thread(
            console.logins.enrol,
            session.username,
            form_text(form.get("code")),
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
        if not auth.csrf.check(binding, form_text(form.get(FIELD))):
            return await _link_page(request, token, 403, "The form expired; fill it in again.")
        password = form_text(form.get("password"))
        if password != form_text(form.get("confirm")):
            return await _link_page(request, token, 400, "The two passwords are not the same.")
        try:
            check, codes = await asyncio.to_thread(
                console.staff.complete_enrolment, token, password, form_text(form.get("code"))
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

    # -------------------------------------------------------------- logout and session

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
    async def extend(request: Request, session: Annotated[StaffSession, Depends(any_role)]) -> Response:
        """ "Stay signed in": activity, by a person's press of the button."""
        auth.check_header(request, session)
        fresh = await asyncio.to_thread(auth.sessions.get, request.cookies.get(settings.staff_session_cookie))
        remaining = auth.sessions.remaining(fresh).total_seconds() if fresh else 0
        return JSONResponse({"remaining": int(remaining)})

    return router
