"""``voice-agent dev``: the throwaway PKI, the local FHIR sandbox, and the synthetic clinic."""

from __future__ import annotations

import subprocess
from datetime import date

import typer

from voice_agent.cli.common import load_settings
from voice_agent.sandbox import fhir_server
from voice_agent.sandbox.certs import DevCerts, make_dev_certs
from voice_agent.sandbox.clinic import build_clinic
from voice_agent.sandbox.seed import load_bundles
from voice_agent.settings import Settings

app = typer.Typer(
    no_args_is_help=True, help="Development sandbox: certificates, FHIR server, synthetic data."
)


def sandbox_paths(settings: Settings) -> fhir_server.SandboxPaths:
    return fhir_server.SandboxPaths(settings.dev_dir / "fhir")


def ensure_certs(settings: Settings) -> DevCerts:
    return make_dev_certs(settings.certs_dir)


def start_sandbox(settings: Settings, *, detach: bool) -> subprocess.Popen[bytes]:
    certs = ensure_certs(settings)
    paths = sandbox_paths(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    typer.echo(
        f"Starting the FHIR sandbox (sekmet-fhir, mutual TLS) on https://127.0.0.1:{settings.sandbox_port}/fhir"
    )
    return fhir_server.start(
        paths, certs, port=settings.sandbox_port, venv=settings.sandbox_venv, detach=detach
    )


def stop_sandbox(settings: Settings) -> bool:
    return fhir_server.stop(sandbox_paths(settings))


def seed_sandbox(settings: Settings, *, seed: int, today: date | None) -> None:
    clinic = build_clinic(seed=seed, today=today, timezone=settings.clinic_timezone)
    written = load_bundles(settings.fhir_base_url, ensure_certs(settings), clinic.bundles)
    typer.echo(
        f"Seeded the synthetic clinic (seed {seed}, around {clinic.today.isoformat()}): "
        + ", ".join(f"{name} {count}" for name, count in written.items())
    )


@app.command()
def certs(force: bool = typer.Option(False, help="Replace existing certificates.")) -> None:
    """Make a throwaway CA, the sandbox's server certificate, and client certificates (agent, seeder)."""
    settings = load_settings()
    made = make_dev_certs(settings.certs_dir, force=force)
    typer.echo(
        f"Development certificates in {made.directory} (CA: {made.ca.name}; never use them in production)"
    )


@app.command()
def fhir(
    detach: bool = typer.Option(False, "--detach", help="Start in the background and print its PID."),
    stop: bool = typer.Option(False, "--stop", help="Stop a detached sandbox by its PID."),
) -> None:
    """Run the local FHIR R4 sandbox (sekmet-fhir in its own virtualenv) over mutual TLS on 127.0.0.1."""
    settings = load_settings()
    if stop:
        typer.echo("Stopped." if stop_sandbox(settings) else "No sandbox was running.")
        return
    process = start_sandbox(settings, detach=detach)
    if detach:
        typer.echo(f"PID {process.pid}")
        return
    typer.echo("Ready. Ctrl-C stops it.")
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_sandbox(settings)


@app.command()
def seed(
    seed: int = typer.Option(7, help="Seed for the synthetic patients."),
    today: str | None = typer.Option(None, help="Generate around this date (YYYY-MM-DD); default today."),
) -> None:
    """Load the synthetic clinic (practitioners, schedules, 4 weeks of slots, patients, appointments)."""
    settings = load_settings()
    seed_sandbox(settings, seed=seed, today=date.fromisoformat(today) if today else None)
