"""``voice-agent dev``: the throwaway PKI, the local FHIR sandbox, and the synthetic clinic."""

from __future__ import annotations

import socket
import subprocess
from datetime import date

import httpx
import typer

from voice_agent.cli.common import Commands, check_sandbox, iso_day, load_settings, problem
from voice_agent.sandbox import fhir_server
from voice_agent.sandbox.certs import DevCerts, make_dev_certs
from voice_agent.sandbox.clinic import build_clinic
from voice_agent.sandbox.seed import load_bundles
from voice_agent.settings import Settings

app = typer.Typer(
    cls=Commands, no_args_is_help=True, help="Development sandbox: certificates, FHIR server, synthetic data."
)


def sandbox_paths(settings: Settings) -> fhir_server.SandboxPaths:
    return fhir_server.SandboxPaths(settings.dev_dir / "fhir")


def ensure_certs(settings: Settings, *, force: bool = False) -> DevCerts:
    try:
        return make_dev_certs(settings.certs_dir, force=force)
    except OSError as exc:
        raise problem(
            "VOICE_AGENT_DEV_DIR",
            f"cannot write the development certificates in {settings.certs_dir} ({exc.strerror})",
            "point it at a directory this user can write",
        ) from None


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_sandbox(settings: Settings, *, detach: bool) -> subprocess.Popen[bytes]:
    certs = ensure_certs(settings)
    paths = sandbox_paths(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    if fhir_server.running_pid(paths) is None and _port_taken(settings.sandbox_port):
        raise problem(
            "VOICE_AGENT_SANDBOX_PORT",
            f"port {settings.sandbox_port} on 127.0.0.1 is taken by another program",
            "stop it, or choose another port (and VOICE_AGENT_FHIR_BASE_URL to match)",
        )
    typer.echo(
        f"Starting the FHIR sandbox (sekmet-fhir, mutual TLS) on https://127.0.0.1:{settings.sandbox_port}/fhir"
    )
    return fhir_server.start(
        paths, certs, port=settings.sandbox_port, venv=settings.sandbox_venv, detach=detach
    )


def stop_sandbox(settings: Settings) -> bool:
    return fhir_server.stop(sandbox_paths(settings))


def seed_sandbox(settings: Settings, *, seed: int, today: date | None) -> None:
    check_sandbox(settings, "dev seed")  # synthetic patients never go into a clinic's server
    clinic = build_clinic(seed=seed, today=today, timezone=settings.clinic_timezone)
    try:
        written = load_bundles(settings.fhir_base_url, ensure_certs(settings), clinic.bundles)
    except httpx.TransportError as exc:
        raise problem(
            "VOICE_AGENT_FHIR_BASE_URL",
            f"nothing answered at {settings.fhir_base_url} ({type(exc).__name__})",
            "start the sandbox first: `voice-agent dev fhir --detach`",
        ) from None
    typer.echo(
        f"Seeded the synthetic clinic (seed {seed}, around {clinic.today.isoformat()}): "
        + ", ".join(f"{name} {count}" for name, count in written.items())
    )


@app.command()
def certs(force: bool = typer.Option(False, help="Replace existing certificates.")) -> None:
    """Make a throwaway CA, the sandbox's server certificate, and client certificates (agent, seeder)."""
    settings = load_settings()
    made = ensure_certs(settings, force=force)
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
    seed_sandbox(settings, seed=seed, today=iso_day(today, "--today"))
