"""``voice-agent staff``: console accounts from the command line (the first administrator, a lost admin).

No password is ever typed here: ``add-user`` and ``reset-user`` print a one-time enrolment link, once,
through which the account's owner sets their own password and authenticator app. Whoever runs the command
(someone with the server's keys) never knows a working credential. The link is printed, never logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

import typer

from voice_agent.audit import KeyringError, load_keyring
from voice_agent.audit.trail import AuditTrail
from voice_agent.cli.common import Commands, explain, load_settings
from voice_agent.console.users import ROLES, EnrolmentLink, StaffError, StaffStore
from voice_agent.settings import Settings

app = typer.Typer(cls=Commands, no_args_is_help=True, help="Staff console accounts.")

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="The console's address as staff reach it (e.g. https://voice.clinic.example:8080), for the "
        "printed link. Default: https://<host>:<serve port>.",
    ),
]


@app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="2-32 lower-case letters, digits, dots, hyphens.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "admin",
    base_url: BaseUrl = None,
) -> None:
    """Create a console account (audited) and print its one-time enrolment link: the owner opens it and
    sets their password and authenticator app. The first administrator starts here."""
    settings = load_settings()
    with _store(settings) as store:
        try:
            user, link = store.invite(username, role)
        except StaffError as exc:
            typer.echo(f"Not created: {exc}.", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"Created {user.username} ({user.role_name}); it cannot sign in until its owner enrols.")
    _print_link(settings, link, base_url)


@app.command("reset-user")
def reset_user(
    username: Annotated[str, typer.Argument(help="The account to reset.")],
    base_url: BaseUrl = None,
) -> None:
    """Clear an account's password and authenticator app, end its sessions, void any older link, and
    print a new one-time enrolment link (audited). For a lost administrator, or an expired first link."""
    settings = load_settings()
    with _store(settings) as store:
        try:
            link = store.reset(username)
        except StaffError as exc:
            typer.echo(f"Not reset: {exc}.", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"Reset {username}: its old password, authenticator app and links no longer work.")
    _print_link(settings, link, base_url)


@contextmanager
def _store(settings: Settings) -> Iterator[StaffStore]:
    try:
        keyring = load_keyring(settings, create_dev_key=settings.uses_dev_sandbox)
    except KeyringError as exc:
        typer.echo(str(explain(exc)), err=True)  # names the setting
        raise typer.Exit(2) from None
    with AuditTrail.open(settings.audit_url, keyring) as trail:
        yield StaffStore(
            trail,
            keyring,
            service_identity=settings.service_identity,
            lockout_threshold=settings.staff_lockout_threshold,
            lockout=timedelta(seconds=settings.staff_lockout_seconds),
            enrolment_lifetime=timedelta(hours=settings.staff_enrolment_link_hours),
        )


def _print_link(settings: Settings, link: EnrolmentLink, base_url: str | None) -> None:
    """The link, printed once to standard output (only its HMAC is stored: it cannot be shown again)."""
    base = (base_url or f"https://<host>:{settings.serve_port}").rstrip("/")
    until = f"{link.expires_at:%Y-%m-%d %H:%M} UTC"
    typer.echo(
        f"Give this one-time link to its owner privately; it works once, until {until} "
        f"({settings.staff_enrolment_link_hours} h):\n{base}{link.path}"
    )
