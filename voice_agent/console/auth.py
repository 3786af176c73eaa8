"""Who is asking: the session behind the cookie, its role, its CSRF token, the source address; cookies
set one strict way."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable, Collection
from ipaddress import ip_address

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from voice_agent.audit import StaffRole
from voice_agent.settings import Settings

from .csrf import FIELD, HEADER, Csrf
from .sessions import SessionStore, StaffSession

log = logging.getLogger(__name__)

FRONT_DESK: frozenset[StaffRole] = frozenset({"front-desk"})
COMPLIANCE: frozenset[StaffRole] = frozenset({"compliance"})
ADMIN: frozenset[StaffRole] = frozenset({"admin"})
ANY_ROLE: frozenset[StaffRole] = FRONT_DESK | COMPLIANCE | ADMIN

#: Where each role lands after logging in.
HOME: dict[StaffRole, str] = {
    "front-desk": "/staff",
    "compliance": "/staff/audit",
    "admin": "/staff/admin/users",
}


class Refused(Exception):
    """The request may not go on; ``response`` says where to (login) or why not (403)."""

    def __init__(self, response: Response) -> None:
        super().__init__("console request refused")
        self.response = response


class Auth:
    def __init__(self, settings: Settings, sessions: SessionStore, csrf: Csrf) -> None:
        self.settings = settings
        self.sessions = sessions
        self.csrf = csrf

    # ------------------------------------------------------------------ sessions

    async def current(self, request: Request) -> StaffSession | None:
        return await asyncio.to_thread(
            self.sessions.get, request.cookies.get(self.settings.staff_session_cookie)
        )

    async def require(
        self,
        request: Request,
        roles: Collection[StaffRole] = ANY_ROLE,
        *,
        activity: bool = True,
        forbidden: Callable[[StaffSession], Response] | None = None,
    ) -> StaffSession:
        """A logged-in session whose role is in ``roles``, else ``Refused``: no session goes to the login
        page (a live update gets 401), another role gets ``forbidden`` (a 403 page). ``activity=False``
        for requests a page makes by itself (live updates), which must not hold off the logoff."""
        session = await self.current(request)
        if session is None or session.stage != "full":
            if not activity:
                raise Refused(Response(status_code=401))
            raise Refused(RedirectResponse("/staff/login", status_code=303))
        if session.user.role not in roles:
            # the path names a page and at most an escalation id: no PHI
            log.warning(
                "console: %s refused %s (role %s)", session.username, request.url.path, session.user.role
            )
            raise Refused(forbidden(session) if forbidden else Response("Forbidden", status_code=403))
        if activity:
            await asyncio.to_thread(self.sessions.touch, session)
        return session

    async def half_open(self, request: Request) -> StaffSession:
        """A session between the password and the second factor."""
        session = await self.current(request)
        if session is None or session.stage != "password":
            raise Refused(RedirectResponse("/staff/login", status_code=303))
        return session

    # ------------------------------------------------------------------ CSRF

    def token_for(self, session: StaffSession) -> str:
        return self.csrf.token(session.token_hash)

    async def check_form(self, request: Request, session: StaffSession) -> None:
        form = await request.form()
        token = form.get(FIELD)
        if not self.csrf.check(session.token_hash, token if isinstance(token, str) else None):
            raise Refused(Response("The form expired; go back and reload the page.", status_code=403))

    def check_header(self, request: Request, session: StaffSession) -> None:
        if not self.csrf.check(session.token_hash, request.headers.get(HEADER)):
            raise Refused(Response(status_code=403))

    def login_binding(self, request: Request) -> tuple[str, str | None]:
        """The pre-login cookie's digest (what the login form's token is bound to) and a new cookie value
        when the browser has none yet."""
        value = request.cookies.get(self.settings.staff_login_cookie)
        fresh = None
        if not value or len(value) > 100:
            value = fresh = secrets.token_urlsafe(24)
        # never stored, and the form's token is an HMAC of it: a plain hash is enough here
        return hashlib.sha256(f"voice-agent staff login v1|{value}".encode()).hexdigest(), fresh

    # ------------------------------------------------------------------ source address

    def source(self, request: Request) -> str | None:
        """The client's address, for the login throttle: the connection's peer as uvicorn reports it
        (which already honours uvicorn's own ``FORWARDED_ALLOW_IPS``), or, when that peer is one of
        ``staff_trusted_proxies``, the nearest address in ``X-Forwarded-For`` that is not (walking from
        the right, so entries a client wrote itself are never reached)."""
        peer = request.client.host if request.client else None
        trusted = self.settings.staff_trusted_proxies
        if peer is None or not trusted:
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        client = peer
        for hop in [peer, *reversed(hops)]:
            try:
                address = ip_address(hop)
            except ValueError:
                return client  # the proxy wrote something that is no address: the last hop we trust
            client = str(address)
            if not any(address in network for network in trusted):
                return client
        return client

    # ------------------------------------------------------------------ cookies

    def set_cookie(self, response: Response, name: str, value: str) -> None:
        """HttpOnly, Secure, SameSite=Strict, Path=/, no Domain, no expiry (gone when the browser closes)."""
        response.set_cookie(name, value, path="/", secure=True, httponly=True, samesite="strict")

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")
