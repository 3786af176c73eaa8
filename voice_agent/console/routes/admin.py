"""The administrator's page: accounts. Adding or resetting one issues a one-time enrolment link, shown
once on the page that answers the form (never a password); role, second-factor reset, unlock, disable and
enable change the account in place."""

# No ``from __future__ import annotations``: FastAPI reads the handlers' ``Annotated`` dependencies at
# runtime, and they name guards local to ``admin_router``.

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from voice_agent.audit import Actor

from ..auth import ADMIN
from ..pages import Console, form_post, form_text, signed_in
from ..sessions import StaffSession
from ..users import EnrolmentLink, InvalidStaffInput, StaffError, UserExists


def admin_router(console: Console) -> APIRouter:
    router = APIRouter()
    settings = console.settings
    admin = signed_in(console, ADMIN)
    admin_post = form_post(console, admin)

    @router.get("/admin/users")
    async def users_page(request: Request, session: Annotated[StaffSession, Depends(admin)]) -> Response:
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
    async def add_user(request: Request, session: Annotated[StaffSession, Depends(admin_post)]) -> Response:
        form = await request.form()
        try:
            user, link = await asyncio.to_thread(
                console.staff.invite,
                form_text(form.get("username")).strip().lower(),
                form_text(form.get("role")),
                by=Actor(kind="staff", id=session.username),
            )
        except (InvalidStaffInput, UserExists) as exc:
            return await _users(request, session, 400, f"Not created: {exc}.")
        # rendered, not redirected: the link exists only in this response
        return await _users(request, session, link=link, notice=f"Account {user.username} created.")

    @router.post("/admin/users/{username}/{change}")
    async def change_user(
        request: Request, username: str, change: str, session: Annotated[StaffSession, Depends(admin_post)]
    ) -> Response:
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
                role=form_text(form.get("role")) or None,
                current_session=session.token_hash,
            )
        except StaffError as exc:
            return await _users(request, session, 400, f"Not changed: {exc}.")
        return RedirectResponse("/staff/admin/users?notice=user-changed", status_code=303)

    return router
