"""``voice-agent``: the command a clinic's IT team runs. Subcommands live in sibling modules."""

from __future__ import annotations

import asyncio

import typer

from voice_agent.cli import audit, chat, dev, inventory, models, serve, staff
from voice_agent.cli.chat import chat_call
from voice_agent.cli.common import Commands, bootstrap, iso_day
from voice_agent.health import describe_clinic

app = typer.Typer(
    cls=Commands, no_args_is_help=True, add_completion=False, help="Self-hosted clinic voice agent."
)
app.add_typer(dev.app, name="dev")
app.add_typer(audit.app, name="audit")
app.add_typer(models.app, name="models")
app.add_typer(staff.app, name="staff")
app.command()(chat.chat)
app.command()(serve.serve)
app.command()(inventory.inventory)


@app.command()
def check() -> None:
    """Reach FHIR through the scoped gateway (mutual TLS) and print what the agent learns of the clinic."""
    settings = bootstrap()
    code = asyncio.run(describe_clinic(settings, typer.echo))
    raise typer.Exit(code)


@app.command()
def up(
    seed: int = typer.Option(7, help="Seed for the synthetic clinic."),
    today: str | None = typer.Option(
        None, help="Date the synthetic clinic is generated around (YYYY-MM-DD)."
    ),
    model: bool = typer.Option(True, help="Install the local dialogue model and its runtime first (once)."),
    text: bool = typer.Option(False, "--text", help="Talk to the agent in this terminal instead of serving."),
) -> None:
    """Embedded defaults, one command: dev certificates, the local FHIR sandbox over mutual TLS seeded with
    the synthetic clinic, the local dialogue model, then the agent answering calls (open the page it
    prints and press Call) or, with --text, a call in this terminal."""
    day = iso_day(today, "--today")
    settings = bootstrap(reach_fhir=False, serving=not text, dev_certs_later=True, sandbox_only="up")
    if model:
        typer.echo(
            "Installing the local dialogue model and its runtime (first time only; see voice-agent models)..."
        )
        models.install(runtime=True, server=False, model=None)
    process = dev.start_sandbox(settings, detach=False)
    try:
        dev.seed_sandbox(settings, seed=seed, today=day)
        if asyncio.run(describe_clinic(settings, typer.echo)) != 0:
            raise typer.Exit(1)
        if text:
            typer.echo("You are the caller: type what you would say, one line per turn (Ctrl-D hangs up).\n")
            asyncio.run(chat_call(settings, caller_id=None, mode=settings.understanding))
        else:
            scheme = "http" if settings.serve_allow_plain_http else "https"
            typer.echo(
                f"Call the clinic from a browser: {scheme}://{settings.serve_host}:{settings.serve_port}/ "
                f"(the development certificate is signed by {settings.certs_dir / 'ca.pem'}). Ctrl-C stops."
            )
            serve.run_server(settings)
    except KeyboardInterrupt:
        pass
    finally:
        dev.stop_sandbox(settings)
        process.wait(timeout=15)


def main() -> None:  # pragma: no cover - console entry
    """Configuration mistakes never reach here as exceptions: ``Commands`` (every group) turns them into
    one line naming the setting and exit 2."""
    app()
