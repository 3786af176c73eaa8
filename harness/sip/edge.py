"""The SIP edge for tests: kamailio running ``deploy/sip/kamailio.cfg`` itself, in the foreground, with
the site settings given as ``-A`` defines (a free port on 127.0.0.1, the dispatcher list and the
allow-list written into the test's tmp dir, its control socket there too), killed at teardown."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.voice_server import terminate

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "sip" / "kamailio.cfg"
#: SIPp, kamailio and tcpdump (harness/real_parts.py: Debian's sip-tester, kamailio, tcpdump); tcpdump
#: captures on ``lo``, which needs root (or CAP_NET_RAW).
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
#: The calling number the hand-written requests carry (a synthetic one)
CALLER = "+15550142222"


def free_udp_port(*, even: bool = False) -> int:
    """A UDP port on 127.0.0.1 nobody has bound (even, with the next one free too, for RTP and RTCP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not even:
            return port
        if port % 2 == 0 and port < 65534:
            with contextlib.ExitStack() as stack:
                try:
                    for p in (port, port + 1, port + 2, port + 3):
                        s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                        s.bind(("127.0.0.1", p))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free UDP port")


def free_sip_port() -> int:
    """A port for an agent's SIP listener: UDP and TCP on it, and TCP on the next one (TLS), all free,
    and below the kernel's ephemeral range (32768 and up), so no outgoing connection of this machine
    can take one of them between this choice and the agent's bind (which once failed CI)."""
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(20000, 29998)
        with contextlib.ExitStack() as stack:
            try:
                for kind, number in (
                    (socket.SOCK_DGRAM, port),
                    (socket.SOCK_STREAM, port),
                    (socket.SOCK_DGRAM, port + 1),
                    (socket.SOCK_STREAM, port + 1),
                ):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, kind))
                    sock.bind(("127.0.0.1", number))
            except OSError:
                continue
        return port
    raise RuntimeError("no free SIP port pair")


@dataclass
class Edge:
    host: str
    port: int
    directory: Path
    log: Path
    ctl: str
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def rpc(self, *command: str) -> str:
        """A kamcmd command against this kamailio's control socket (as the README's health checks)."""
        done = subprocess.run(
            [KAMCMD, "-s", self.ctl, *command], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout

    def workers(self) -> dict[str, str]:
        """The dispatcher's view of the workers: URI -> flags ("AP": active and probed, "IP": inactive)."""
        listing = self.rpc("dispatcher.list")
        return dict(re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", listing))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_edge(
    directory: Path,
    workers: Sequence[tuple[str, int]],
    *,
    allowed: Sequence[str] = ("127.0.0.1",),
    asserting: Sequence[str] = (),
    ping_interval: int = 1,
    host: str = "127.0.0.1",
) -> Edge:
    """kamailio on a free UDP port of ``host``, sending calls to ``workers`` (host, SIP port) and taking
    them only from the ``allowed`` addresses (each "address" or "address/mask")."""
    directory.mkdir(parents=True, exist_ok=True)
    run = directory / "run"
    run.mkdir(exist_ok=True)
    dispatcher = directory / "dispatcher.list"
    dispatcher.write_text(
        "".join(f"1 sip:agent@{h}:{p} 0 0 duid=worker-{i}\n" for i, (h, p) in enumerate(workers, start=1))
    )
    peers = directory / "allowed-peers.list"
    peers.write_text(
        "".join(f"1 {a.split('/')[0]} {_mask(a)} 0 test-peer\n" for a in allowed)
        + "".join(f"2 {a.split('/')[0]} {_mask(a)} 0 test-trunk\n" for a in asserting)
    )
    port = free_sip_port()
    ctl = f"unix:{run / 'kamailio_ctl'}"
    defines = {
        "SIP_LISTEN": f"udp:{host}:{port}",
        "DISPATCHER_LIST": f'"{dispatcher}"',
        "ALLOWED_PEERS": f'"{peers}"',
        "CTL_SOCKET": f'"{ctl}"',
        "DS_PING_INTERVAL": str(ping_interval),
        "CHILDREN": "2",
    }
    command = [KAMAILIO, "-f", str(CONFIG), "-DD", "-E", "-Y", str(run), "-P", str(run / "kamailio.pid")]
    for name, value in defines.items():
        command += ["-A", f"{name}={value}"]
    log = directory / "kamailio.log"
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=directory, start_new_session=True
    )
    edge = Edge(host, port, directory, log, ctl, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("kamailio exited:\n" + edge.log_text()[-3000:])
        if (run / "kamailio_ctl").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                if edge.workers():
                    return edge
        time.sleep(0.2)
    stop_edge(edge)
    raise RuntimeError("kamailio did not start:\n" + edge.log_text()[-3000:])


def wait_for_workers(edge: Edge, *, active: bool = True, timeout: float = 20) -> dict[str, str]:
    """Until every worker is marked active (or, with ``active=False``, inactive) by the OPTIONS pings."""
    deadline = time.monotonic() + timeout
    workers = edge.workers()
    while time.monotonic() < deadline:
        workers = edge.workers()
        if workers and all(flags.startswith("A" if active else "I") for flags in workers.values()):
            return workers
        time.sleep(0.2)
    raise AssertionError(f"workers not {'active' if active else 'inactive'}: {workers}")


def stop_edge(edge: Edge) -> None:
    """SIGTERM to the main process (it stops its children), then the whole group if anything is left."""
    if edge.process.poll() is None:
        terminate(edge.process, timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(edge.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_edge(
    directory: Path,
    workers: Sequence[tuple[str, int]],
    *,
    allowed: Sequence[str] = ("127.0.0.1",),
    asserting: Sequence[str] = (),
    ping_interval: int = 1,
) -> Iterator[Edge]:
    edge = start_edge(directory, workers, allowed=allowed, asserting=asserting, ping_interval=ping_interval)
    try:
        yield edge
    finally:
        stop_edge(edge)


def sip_request(
    host: str,
    port: int,
    method: str,
    *,
    source: str = "127.0.0.1",
    user: str | None = None,
    via: str | None = None,
    headers: Sequence[str] = (),
    timeout: float = 10,
) -> str | None:
    """One out-of-dialog request over UDP from ``source`` (its Via naming ``via`` if given: a forgery);
    the status line of the final answer, or None if nothing answers within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        here, here_port = sock.getsockname()
        uri = f"sip:{user}@{host}:{port}" if user else f"sip:{host}:{port}"
        sdp = f"v=0\r\no=- 1 1 IN IP4 {here}\r\ns=-\r\nc=IN IP4 {here}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        body = sdp if method == "INVITE" else ""
        message = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {via or here}:{here_port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"From: <sip:{CALLER}@{here}:{here_port}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:{CALLER}@{here}:{here_port}>\r\n"
            "Max-Forwards: 70\r\n"
            + "".join(f"{h}\r\n" for h in headers)
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        sock.sendto(message.encode(), (host, port))
        try:
            while True:
                status = sock.recv(65535).decode(errors="replace").splitlines()[0]
                if not status.startswith("SIP/2.0 1"):  # 100 Trying: wait for the final answer
                    return status
        except TimeoutError:
            return None


def _mask(address: str) -> int:
    return int(address.split("/")[1]) if "/" in address else 32
