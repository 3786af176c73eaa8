"""coturn (Debian's ``coturn``) on loopback with the TURN REST scheme (``use-auth-secret``): the real
relay whose verdict on the agent's minted credentials the tests read."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.sip.edge import free_udp_port

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
MISSING = not os.path.exists(TURNSERVER)
#: The relay's static-auth-secret, shared with the agent (a test value).
SECRET = "turn-shared-secret-for-tests"


@dataclass(frozen=True)
class TurnServer:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


@contextlib.contextmanager
def running_turnserver(directory: Path) -> Iterator[TurnServer]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    log = directory / "turnserver.log"
    args = [
        TURNSERVER,
        "-n",  # no configuration file: everything is on this line
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--relay-ip=127.0.0.1",
        "--use-auth-secret",
        f"--static-auth-secret={SECRET}",
        "--realm=clinic.test",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--allow-loopback-peers",
        f"--db={directory / 'turndb'}",
        f"--pidfile={directory / 'turnserver.pid'}",
        "--min-port=49152",
        "--max-port=49400",
        "--log-file=stdout",
        "--simple-log",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(port, process, log)
        yield TurnServer(port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"turnserver exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return  # taken: turnserver has it
        time.sleep(0.1)
    raise RuntimeError("turnserver did not start listening")
