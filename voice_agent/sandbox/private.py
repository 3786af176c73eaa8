"""A private, throwaway sandbox on a free port, started with the same ``voice-agent dev`` commands a
developer runs, and stopped by its PID. Tests and benchmarks use it; nothing else should."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from voice_agent.audit import generate_key_file
from voice_agent.clock import clock_for
from voice_agent.sandbox.certs import DevCerts
from voice_agent.sandbox.clinic import SyntheticClinic, build_clinic
from voice_agent.sandbox.seed import seeder_client
from voice_agent.settings import Settings

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
    #: The agent's "now" on this sandbox (moved with the clinic when started with ``now``).
    clock: Callable[[], datetime]
    #: Which FHIR server this is: "sekmet" here; the tests also run Medplum's engine with the same clinic.
    engine: str = "sekmet"

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

    def agent_settings(self, home: Path, **update: object) -> Settings:
        """This sandbox's settings with an audit trail of its own in ``home`` (a new key, SQLite)."""
        key = home / "audit.key"
        generate_key_file(key)
        audit = {"audit_database_url": f"sqlite:///{home / 'audit.db'}", "audit_key_file": key}
        return self.settings.model_copy(update={**audit, **update})

    def log_position(self) -> int:
        return self.access_log.stat().st_size

    def log_since(self, position: int) -> list[str]:
        with self.access_log.open("rb") as handle:
            handle.seek(position)
            return handle.read().decode("utf-8", "replace").splitlines()

    def raw(self) -> httpx.Client:
        """The seeder's own client, for checking FHIR state from outside the agent's gateway."""
        return seeder_client(self.settings.fhir_base_url, self.certs)


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def private_sandbox(
    dev_dir: Path | None = None,
    *,
    seed: int = 7,
    zone: str = "America/New_York",
    today: date | None = None,
    now: datetime | None = None,
) -> Iterator[Sandbox]:
    """``now`` puts the clinic and the agent on another date together: the clinic is seeded as of that
    day and the agent's clock starts there (``clock_start``), in this process's settings and in every
    ``voice-agent`` the sandbox's ``env`` starts. ``today`` moves the clinic's date only."""
    with contextlib.ExitStack() as stack:
        if dev_dir is None:
            dev_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voice-agent-dev-")))
        port = free_port()
        overrides = {
            "VOICE_AGENT_DEV_DIR": str(dev_dir),
            "VOICE_AGENT_SANDBOX_PORT": str(port),
            "VOICE_AGENT_FHIR_BASE_URL": f"https://127.0.0.1:{port}/fhir",
            "VOICE_AGENT_CLINIC_TIMEZONE": zone,
        }
        if now is not None:
            overrides["VOICE_AGENT_CLOCK_START"] = now.isoformat()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")} | overrides
        day = today or (now.date() if now is not None else datetime.now(ZoneInfo(zone)).date())

        def run(*args: str) -> str:
            done = subprocess.run([VOICE_AGENT, *args], env=env, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"voice-agent {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
            return done.stdout

        run("dev", "certs")
        pid = int(run("dev", "fhir", "--detach").strip().splitlines()[-1].removeprefix("PID "))
        stack.callback(_stop, pid)
        run("dev", "seed", "--seed", str(seed), "--today", day.isoformat())
        settings = Settings(
            dev_dir=dev_dir,
            sandbox_port=port,
            fhir_base_url=overrides["VOICE_AGENT_FHIR_BASE_URL"],
            clinic_timezone=zone,
            clock_start=now,
        )
        yield Sandbox(
            settings=settings,
            env=env,
            certs=DevCerts(dev_dir / "certs"),
            access_log=dev_dir / "fhir" / "access.log",
            pid=pid,
            clinic=build_clinic(seed=seed, today=day, timezone=zone),
            clock=clock_for(ZoneInfo(zone), now),
        )
