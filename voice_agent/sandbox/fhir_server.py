"""The local FHIR sandbox: sekmet-fhir, an independent R4 server, served by uvicorn with mutual TLS.

It runs from its own virtualenv because it pins its own FastAPI and fhir.resources. It is a development
and test fixture only; clinics point the agent at their own FHIR server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from voice_agent.sandbox.certs import DevCerts
from voice_agent.settings import SANDBOX_VERSION

READY_TIMEOUT_SECONDS = 60.0


class SandboxError(RuntimeError):
    pass


@dataclass(frozen=True)
class SandboxPaths:
    """Where one sandbox instance keeps its config, SQLite data, PID file and access log."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "sekmet.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.root / "sandbox.pid"

    @property
    def access_log(self) -> Path:
        """uvicorn's log: one line per request, with the query string (how tests see ``_elements``)."""
        return self.root / "access.log"


def ensure_venv(venv: Path) -> Path:
    """Create the sandbox's virtualenv and install the pinned server into it, once."""
    uvicorn = venv / "bin" / "uvicorn"
    marker = venv / f".sekmet-fhir-{SANDBOX_VERSION}"
    if uvicorn.exists() and marker.exists():
        return uvicorn
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    lock = resources.files("voice_agent.sandbox").joinpath("sekmet-requirements.txt")
    with resources.as_file(lock) as lock_path:
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "-r", str(lock_path)],
            check=True,
        )
    marker.touch()
    return uvicorn


def write_config(paths: SandboxPaths, port: int) -> None:
    paths.data.mkdir(parents=True, exist_ok=True)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "base_url": f"https://127.0.0.1:{port}/fhir",
        "data_dir": str(paths.data.resolve()),
        # The simulator would change Appointments on its own; the traffic log would keep request bodies.
        "simulator": {"enabled": False},
        "log_inbound": False,
        "facility_name": "Synthetic Family Clinic (development sandbox)",
    }
    paths.config.write_text(yaml.safe_dump(config, sort_keys=True))


def running_pid(paths: SandboxPaths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def start(
    paths: SandboxPaths, certs: DevCerts, *, port: int, venv: Path, detach: bool = True
) -> subprocess.Popen[bytes]:
    """Start uvicorn with mutual TLS on 127.0.0.1 and wait until it answers over mTLS."""
    if running_pid(paths) is not None:
        raise SandboxError(f"A sandbox is already running (PID file {paths.pid_file}).")
    uvicorn = ensure_venv(venv)
    write_config(paths, port)
    server_cert, server_key = (p.resolve() for p in certs.server)
    command = [
        str(uvicorn), "sekmet.main:app_factory", "--factory",
        "--host", "127.0.0.1", "--port", str(port),
        "--ssl-certfile", str(server_cert), "--ssl-keyfile", str(server_key),
        "--ssl-ca-certs", str(certs.ca.resolve()), "--ssl-cert-reqs", "2",
        "--timeout-graceful-shutdown", "1",
        "--no-server-header",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
    env["SEKMET_CONFIG"] = str(paths.config.resolve())
    log = paths.access_log.open("ab")
    process = subprocess.Popen(
        command,
        env=env,
        cwd=paths.root,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=detach,
    )
    log.close()
    paths.pid_file.write_text(f"{process.pid}\n")
    try:
        wait_ready(port, certs, process)
    except BaseException:
        stop(paths)
        raise
    return process


def wait_ready(port: int, certs: DevCerts, process: subprocess.Popen[bytes] | None = None) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(*(str(p) for p in certs.seeder))
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    url = f"https://127.0.0.1:{port}/fhir/metadata"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SandboxError(f"The FHIR sandbox exited with code {process.returncode}; see its access.log.")
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SandboxError("The FHIR sandbox did not become ready in time.")


def stop(paths: SandboxPaths, *, timeout: float = 10.0) -> bool:
    """Stop the sandbox by its PID (SIGTERM, then SIGKILL). Returns whether one was running."""
    pid = running_pid(paths)
    if pid is None:
        paths.pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    paths.pid_file.unlink(missing_ok=True)
    return True
