"""A small cluster on one machine, from the same parts a health system runs: several ``voice-agent
serve`` workers sharing one PostgreSQL (audit trail, escalations, staff accounts) and one audit key,
kamailio dispatching SIP between them (harness/sip/edge.py), and nginx in front of their HTTPS side running
``deploy/nginx/voice-agent.conf`` with its site lines set for this machine."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.sandbox import Sandbox
from harness.sip.edge import free_sip_port
from harness.voice_server import VoiceServer, start_voice_server, terminate

NGINX_SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "voice-agent.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Worker:
    name: str
    server: VoiceServer
    sip_port: int
    #: Each worker's RTP ports, so the SDP of an answer tells which worker took the call.
    rtp_ports: range

    @property
    def https_port(self) -> int:
        return int(self.server.base_url.rsplit(":", 1)[1])

    def took(self, agent_rtp_port: int | None) -> bool:
        return agent_rtp_port is not None and agent_rtp_port in self.rtp_ports


def cluster_env(database_url: str, key_file: Path) -> dict[str, str]:
    """What every worker of the cluster shares: the database, the audit key, quick heartbeats (a dead
    worker is presumed dead after three), a drain bound that lets calls at their goodbye finish."""
    return {
        "VOICE_AGENT_AUDIT_DATABASE_URL": database_url,
        "VOICE_AGENT_AUDIT_KEY_FILE": str(key_file),
        "VOICE_AGENT_WORKER_HEARTBEAT_SECONDS": "1",
        "VOICE_AGENT_DRAIN_SECONDS": "12",
        "VOICE_AGENT_SIP_ENABLED": "true",
        "VOICE_AGENT_SIP_HOST": "127.0.0.1",
        "VOICE_AGENT_SIP_TRANSPORT": "udp",
        "VOICE_AGENT_SIP_ALLOWED_SOURCES": '["127.0.0.1/32"]',  # the edge
        "VOICE_AGENT_SIP_MAX_CALLS": "8",
        "VOICE_AGENT_LOG_LEVEL": "INFO",
    }


def start_worker(sandbox: Sandbox, directory: Path, name: str, shared: dict[str, str], rtp: range) -> Worker:
    sip_port = free_sip_port()
    server = start_voice_server(
        sandbox,
        directory / name,
        **shared,
        VOICE_AGENT_WORKER_ID=name,
        VOICE_AGENT_SIP_PORT=str(sip_port),
        VOICE_AGENT_SIP_RTP_PORTS=f"{rtp.start}-{rtp.stop - 1}",
    )
    return Worker(name, server, sip_port, rtp)


@contextlib.contextmanager
def running_workers(
    sandbox: Sandbox, directory: Path, names: Sequence[str], shared: dict[str, str]
) -> Iterator[list[Worker]]:
    """The workers, started side by side (each loads its models; the cluster is up when all answer)."""
    with ThreadPoolExecutor(len(names)) as pool:
        starting = [
            pool.submit(
                start_worker, sandbox, directory, name, shared, range(30000 + 1000 * i, 31000 + 1000 * i)
            )
            for i, name in enumerate(names)
        ]
    workers = [future.result() for future in starting if future.exception() is None]
    try:
        for future in starting:
            future.result()  # a worker that did not start fails the test (the others still stop)
        yield workers
    finally:
        for worker in workers:
            if worker.server.process.poll() is None:
                terminate(worker.server.process, timeout=30)


@dataclass
class Nginx:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def nginx_site(workers: Sequence[Worker], port: int, cert: Path, key: Path, ca: Path) -> str:
    """``deploy/nginx/voice-agent.conf`` with its "site" lines set for this machine (and nothing else
    changed): the workers, the listen port, the certificates, the name the workers' certificates carry."""
    site = NGINX_SITE.read_text()
    upstream = "".join(
        f"    server 127.0.0.1:{w.https_port} max_fails=1 fail_timeout=10s;\n" for w in workers
    )
    site = re.sub(r"(?:    server 10\.0\.0\.\d+:8443 [^\n]*\n)+", lambda _: upstream, site)
    replacements = {
        r"listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        r"ssl_certificate     \S+;": f"ssl_certificate     {cert};",
        r"ssl_certificate_key \S+;": f"ssl_certificate_key {key};",
        r"proxy_ssl_trusted_certificate \S+;": f"proxy_ssl_trusted_certificate {ca};",
        r"proxy_ssl_name \S+;": "proxy_ssl_name localhost;",  # the development certificate's name
    }
    for pattern, value in replacements.items():
        site, count = re.subn(pattern, lambda _, v=value: v, site)  # type: ignore[misc]
        assert count == 1, f"deploy/nginx/voice-agent.conf no longer has one {pattern!r}"
    return site


@contextlib.contextmanager
def running_nginx(directory: Path, site: str) -> Iterator[Nginx]:
    """nginx in the foreground with a minimal main configuration around the site file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "voice-agent.conf").write_text(site)
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+) ssl;", site)[1])  # type: ignore[index]
    main = directory / "nginx.conf"
    temp = directory / "temp"
    temp.mkdir(exist_ok=True)
    main.write_text(
        # as root (CI), the workers stay root: the test's certificates are in root's 0700 temp dirs
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    client_body_temp_path {temp}/body;\n    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        f"    include {directory / 'voice-agent.conf'};\n"
        "}\n"
    )
    check = subprocess.run(
        [NGINX, "-t", "-c", str(main), "-p", str(directory)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [NGINX, "-c", str(main), "-p", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "stderr.log").open("wb"),
    )
    nginx = Nginx(port, directory, process)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert process.poll() is None and time.monotonic() < deadline, nginx.error_log()
            time.sleep(0.1)
        yield nginx
    finally:
        terminate(process, timeout=10)


def via_nginx(nginx: Nginx, ca: Path) -> httpx.Client:
    return httpx.Client(base_url=nginx.base_url, verify=str(ca), trust_env=False, timeout=15)
