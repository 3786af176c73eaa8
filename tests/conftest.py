"""Shared fixtures: the real FHIR sandbox over mutual TLS, started with the same commands a developer uses.

``voice-agent dev certs``, ``dev fhir --detach`` and ``dev seed`` run as subprocesses against a private dev
directory and a free port; the sandbox is stopped by its PID at the end of the session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from fhir_adapters import FhirGateway, Scheduling
from voice_agent import wiring
from voice_agent.sandbox.certs import DevCerts
from voice_agent.sandbox.clinic import SyntheticClinic, build_clinic
from voice_agent.sandbox.seed import seeder_client
from voice_agent.settings import Settings

CLINIC_ZONE = "America/New_York"
CLINIC_SEED = 7
VOICE_AGENT = str(Path(sys.executable).with_name("voice-agent"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sandbox:
    """One running sandbox: its settings, certificates, access log, and the clinic seeded into it."""

    settings: Settings
    env: dict[str, str]
    certs: DevCerts
    access_log: Path
    pid: int
    clinic: SyntheticClinic

    def run(
        self, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VOICE_AGENT, *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=check,
        )

    def log_position(self) -> int:
        return self.access_log.stat().st_size

    def log_since(self, position: int) -> list[str]:
        with self.access_log.open("rb") as handle:
            handle.seek(position)
            return handle.read().decode("utf-8", "replace").splitlines()

    def raw(self) -> httpx.Client:
        """The seeder's own client, for checking FHIR state from outside the agent's gateway."""
        return seeder_client(self.settings.fhir_base_url, self.certs)


def _settings_env(dev_dir: Path, port: int) -> dict[str, str]:
    return {
        "VOICE_AGENT_DEV_DIR": str(dev_dir),
        "VOICE_AGENT_SANDBOX_PORT": str(port),
        "VOICE_AGENT_FHIR_BASE_URL": f"https://127.0.0.1:{port}/fhir",
        "VOICE_AGENT_CLINIC_TIMEZONE": CLINIC_ZONE,
    }


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    dev_dir = tmp_path_factory.mktemp("voice-agent-dev")
    port = free_port()
    overrides = _settings_env(dev_dir, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")} | overrides
    today = datetime.now(ZoneInfo(CLINIC_ZONE)).date()

    def run(*args: str) -> str:
        done = subprocess.run([VOICE_AGENT, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"voice-agent {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("dev", "certs")
    started = run("dev", "fhir", "--detach")
    pid = int(started.strip().splitlines()[-1].removeprefix("PID "))
    try:
        run("dev", "seed", "--seed", str(CLINIC_SEED), "--today", today.isoformat())
        settings = Settings(
            dev_dir=dev_dir,
            sandbox_port=port,
            fhir_base_url=overrides["VOICE_AGENT_FHIR_BASE_URL"],
            clinic_timezone=CLINIC_ZONE,
        )
        yield Sandbox(
            settings=settings,
            env=env,
            certs=DevCerts(dev_dir / "certs"),
            access_log=dev_dir / "fhir" / "access.log",
            pid=pid,
            clinic=build_clinic(seed=CLINIC_SEED, today=today, timezone=CLINIC_ZONE),
        )
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def gateway(sandbox: Sandbox) -> AsyncIterator[FhirGateway]:
    async with wiring.gateway(sandbox.settings) as fhir:
        yield fhir


@pytest.fixture
def scheduling(sandbox: Sandbox, gateway: FhirGateway) -> Scheduling:
    return wiring.scheduling(sandbox.settings, gateway)


@pytest.fixture(scope="session")
def today(sandbox: Sandbox) -> date:
    return sandbox.clinic.today
