"""The console's pages under ``/staff``, one router per concern, composed by ``console_router``:

* ``auth``: login with a second factor, first enrolment (also through a one-time link), logout, session;
* ``queue``: the escalation queue, its live event stream, one escalation, claim and resolve (front desk);
* ``audit``: the audit trail, its export and integrity check (compliance officer);
* ``admin``: accounts (administrator).

What they share (the ``Console``, page rendering, labels, the auth guards as FastAPI dependencies) is in
``voice_agent.console.pages``.

Every page is server-rendered (Jinja2, autoescaped) and sent ``no-store``; the only script is
``static/console.js`` (live queue, logoff warning). No URL carries anything but a page name, an
escalation's random id or an account name, except a one-time enrolment link (``/staff/enrol/<token>``:
its page and the administrator's page that shows it send no Referer and load nothing from elsewhere);
what staff type goes in POST bodies. The patient's name and birth date are read from FHIR when an
escalation is opened, put into that one page, and not kept.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..pages import (
    ALERT_LABELS,
    CATEGORY_LABELS,
    NOTICES,
    OUTCOME_LABELS,
    Console,
    format_phone,
    refused_response,
)
from .admin import admin_router
from .audit import audit_router
from .auth import LOGIN_REFUSED, auth_router
from .queue import queue_router

PREFIX = "/staff"


def console_router(console: Console) -> APIRouter:
    """Every console page under ``/staff`` (in this order: sign-in first, then each role's pages)."""
    router = APIRouter(include_in_schema=False)
    for part in (auth_router, queue_router, audit_router, admin_router):
        router.include_router(part(console), prefix=PREFIX)
    return router


__all__ = [
    "ALERT_LABELS",
    "CATEGORY_LABELS",
    "LOGIN_REFUSED",
    "NOTICES",
    "OUTCOME_LABELS",
    "Console",
    "console_router",
    "format_phone",
    "refused_response",
]
