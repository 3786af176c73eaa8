"""One real ``voice-agent serve`` for the voice tests and benchmarks: a subprocess on a free port, over TLS
with the sandbox's development certificate, against the private FHIR sandbox, with DEBUG logging into a
file (so every voice test is also part of the canary regime: ``test_voice_canary`` scans that file and the
server's working directories after its call)."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.sandbox import Sandbox, free_port
from harness.twilio_caller import TWILIO_TEST_TOKEN
from voice_agent.audit import generate_key_file
from voice_agent.sandbox.private import VOICE_AGENT


@dataclass
class VoiceServer:
    base_url: str
    ws_url: str
    ca_file: Path
    product: Path  # the server's cwd, TMPDIR, audit database, key and checkpoints: all it may write
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, verify=self.ssl_context(), trust_env=False, timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the worker's /metrics (the private side: calls, ceiling, draining, probes)."""
        with self.client() as client:
            return worker_metric(client, name, **labels)


def worker_metric(client: httpx.Client, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    samples = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(samples) == 1, f"{name}: {samples}"
    return float(samples[0].value)


def start_voice_server(sandbox: Sandbox, product: Path, **extra: str) -> VoiceServer:
    (product / "tmp").mkdir(parents=True, exist_ok=True)
    (product / "cwd").mkdir(exist_ok=True)
    key = product / "audit.key"
    generate_key_file(key)
    port = free_port()
    env = {
        **os.environ,
        **sandbox.env,
        "VOICE_AGENT_AUDIT_DATABASE_URL": f"sqlite:///{product / 'audit.db'}",
        "VOICE_AGENT_AUDIT_KEY_FILE": str(key),
        # in the product tree the canary scans, not the sandbox's development directory (the default)
        "VOICE_AGENT_AUDIT_CHECKPOINT_FILE": str(product / "audit-checkpoints.jsonl"),
        "VOICE_AGENT_UNDERSTANDING": "rules",  # the latency targets are for rules-understood turns
        "VOICE_AGENT_SERVE_PORT": str(port),
        "VOICE_AGENT_LOG_LEVEL": "DEBUG",
        # a scripted caller hears each reply before answering (several Whisper passes on a busy CI
        # machine): no "Are you still there?" in the middle of that; test_silence covers the prompt
        "VOICE_AGENT_SILENCE_PROMPT_SECONDS": "45",
        # carrier streams are signed as Twilio signs them (harness/twilio_caller.py plays Twilio)
        "VOICE_AGENT_TWILIO_AUTH_TOKEN": TWILIO_TEST_TOKEN,
        "TMPDIR": str(product / "tmp"),
        **extra,
    }
    log = product.parent / f"{product.name}.log"  # outside the scanned tree only so its own name differs
    handle = log.open("wb")
    process = subprocess.Popen(
        [VOICE_AGENT, "serve"], env=env, cwd=product / "cwd", stdout=handle, stderr=subprocess.STDOUT
    )
    server = VoiceServer(
        f"https://127.0.0.1:{port}",
        f"wss://127.0.0.1:{port}",
        sandbox.certs.path("ca.pem"),
        product,
        log,
        env,
        process,
    )
    deadline = time.monotonic() + 120
    with server.client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("voice-agent serve exited:\n" + server.log_text()[-3000:])
            try:
                if client.get("/healthz").json().get("status") == "ok":
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("voice-agent serve did not become ready:\n" + server.log_text()[-3000:])


def stop_voice_server(server: VoiceServer) -> None:
    terminate(server.process, timeout=20)


def terminate(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM, and SIGKILL if the process has not exited ``timeout`` seconds later."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class SipAgent:
    """A voice server with SIP on: its SIP port, and the front desk's SIP address it transfers to."""

    server: VoiceServer
    sip_port: int
    front_desk: str
