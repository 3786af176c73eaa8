"""The front-desk escalation console, served by ``voice-agent serve`` under ``/staff``.

``users`` (accounts: argon2id, TOTP, lockout), ``throttle`` (per-source backoff, a lock outsiders cannot
aim at the desk), ``sessions`` (cookie token HMACs, automatic logoff, ended by credential changes),
``csrf``, ``auth`` (who is asking, which role), ``pages`` (the ``Console``, page rendering, labels, the
auth guards as FastAPI dependencies), ``routes/`` (the pages: ``auth``, ``queue``, ``audit`` and ``admin``
routers), ``templates/`` and ``static/``.
It may touch: the escalation store (queue, audited view, claim, resolve, purge), the audit trail (its
own events; reading and exporting for a compliance officer), and FHIR only through
``Scheduling.patient_for_staff`` (a Patient's name and birth date, read at view time, purpose
``staff-console``, audited with the staff user as actor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from voice_agent.runtime import Runtime

from .auth import Auth, Refused
from .csrf import Csrf
from .pages import Console, refused_response
from .routes import console_router
from .sessions import SessionStore
from .throttle import Logins, LoginThrottle
from .users import StaffStore

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def build_console(agent: Runtime) -> Console:
    settings, keyring = agent.settings, agent.keyring
    sessions = SessionStore(
        agent.trail,
        keyring,
        idle=timedelta(seconds=settings.staff_idle_timeout_seconds),
        max_age=timedelta(hours=settings.staff_session_max_hours),
    )
    staff = StaffStore(
        agent.trail,
        keyring,
        service_identity=settings.service_identity,
        lockout_threshold=settings.staff_lockout_threshold,
        lockout=timedelta(seconds=settings.staff_lockout_seconds),
        enrolment_lifetime=timedelta(hours=settings.staff_enrolment_link_hours),
    )
    throttle = LoginThrottle(
        agent.trail,
        keyring,
        threshold=settings.staff_source_threshold,
        backoff=timedelta(seconds=settings.staff_source_backoff_seconds),
        cap=timedelta(seconds=settings.staff_lockout_seconds),
    )
    return Console(
        settings,
        auth=Auth(settings, sessions, Csrf(keyring)),
        staff=staff,
        logins=Logins(staff, throttle),
        escalations=agent.escalations,
        scheduling=agent.scheduling,
        trail=agent.trail,
        detector=agent.detector,
    )


def prepare_app(app: FastAPI) -> None:
    """What must be on the app before it starts: the console's static files and the handler that turns
    a refused request into its login redirect or 403 page (the pages themselves come with the runtime,
    in ``running_console``)."""
    app.mount("/staff/static", StaticFiles(directory=STATIC), name="staff-static")
    app.add_exception_handler(Refused, refused_response)


@contextlib.asynccontextmanager
async def running_console(app: FastAPI, agent: Runtime) -> AsyncIterator[Console]:
    """Add the console's pages to ``app`` and run its upkeep while the server runs: the automatic logoff
    of abandoned sessions, and the deletion of resolved escalations past retention."""
    console = build_console(agent)
    app.include_router(console_router(console))
    tasks = [
        asyncio.create_task(_every(_sweep_interval(agent), lambda: _sweep(console)), name="staff-sessions"),
        asyncio.create_task(
            _every(agent.settings.escalation_purge_interval_seconds, lambda: _purge(agent)),
            name="escalation-retention",
        ),
    ]
    try:
        yield console
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _sweep_interval(agent: Runtime) -> float:
    return max(1.0, min(30.0, agent.settings.staff_idle_timeout_seconds / 8))


async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep the loop alive; the class name only (no values)
            log.error("console upkeep failed (%s); retrying in %.0f s", type(exc).__name__, seconds)
        await asyncio.sleep(seconds)


async def _sweep(console: Console) -> None:
    ended = await asyncio.to_thread(console.auth.sessions.sweep)
    if ended:
        log.info("console: %d idle staff session(s) logged off", ended)


async def _purge(agent: Runtime) -> None:
    report = await agent.escalations.purge_resolved(
        datetime.now(UTC), agent.settings.escalation_retention_days
    )
    log.info("escalations: %d resolved before the retention cutoff deleted", report.deleted)


__all__ = ["Console", "build_console", "prepare_app", "running_console"]
