"""``voice-agent staff``: console accounts from the command line (the first administrator, a lost admin)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated

import typer

from voice_agent.audit import KeyringError, load_keyring
from voice_agent.audit.trail import AuditTrail
from voice_agent.cli.common import load_settings
from voice_agent.console.users import ROLES, StaffError, StaffStore

app = typer.Typer(no_args_is_help=True, help="Staff console accounts.")


@app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="2-32 lower-case letters, digits, dots, hyphens.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (scripts).")
    ] = False,
) -> None:
    """Create a console account (audited). Its owner sets up TOTP at the first login at /staff."""
    settings = load_settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password (12 characters or more)", hide_input=True, confirmation_prompt=True)
    try:
        keyring = load_keyring(settings, create_dev_key=settings.uses_dev_sandbox)
    except KeyringError as exc:
        typer.echo(f"Audit keys: {exc}", err=True)
        raise typer.Exit(2) from None
    with AuditTrail.open(settings.audit_url, keyring) as trail:
        store = StaffStore(
            trail,
            keyring,
            service_identity=settings.service_identity,
            lockout_threshold=settings.staff_lockout_threshold,
            lockout=timedelta(seconds=settings.staff_lockout_seconds),
        )
        try:
            user = store.add_user(username, role, password)
        except StaffError as exc:
            typer.echo(f"Not created: {exc}.", err=True)
            raise typer.Exit(1) from None
    typer.echo(
        f"Created {user.username} ({user.role_name}). Sign in at https://<host>:{settings.serve_port}/staff "
        "to set up the authenticator app."
    )
