"""The agent's voice: piper, in a process of its own.

Licence decision: piper-tts is GPL-3.0-or-later and this project is Apache-2.0, so no project module
imports piper. It runs as piper's own HTTP server (``python -m piper.http_server``), a separate program,
on an ephemeral loopback port, and the pipeline reaches it through pipecat's ``PiperHttpTTSService``. The
separate process also keeps synthesis CPU work off the event loop and out of the GIL.

Controls on that process (it receives the text of replies, which can hold names and times):
* it listens on 127.0.0.1 only, on a port picked at start;
* its output is discarded (at DEBUG it would log the request bodies, and it never runs at DEBUG);
* its environment points every proxy variable at a closed port, so its voice-download routes can never
  reach the internet, and turns onnxruntime's telemetry off;
* it dies with its parent (``PR_SET_PDEATHSIG``), and ``stop()`` terminates it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

VOICE_SAMPLE_RATE = 22_050  # every piper "medium" voice, the default joe voice among them
_PR_SET_PDEATHSIG = 1


class VoiceServerError(RuntimeError):
    """piper's server did not start or stopped answering."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class VoiceServer:
    """One piper HTTP server for the whole process; every call's TTS posts sentences to it."""

    def __init__(self, voice: Path, *, port: int | None = None) -> None:
        self.voice = voice
        self.port = port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/synthesize"

    def start(self, *, timeout: float = 30.0) -> VoiceServer:
        dead_proxy = "http://127.0.0.1:9"
        env = {
            **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
            "HTTP_PROXY": dead_proxy,
            "HTTPS_PROXY": dead_proxy,
            "http_proxy": dead_proxy,
            "https_proxy": dead_proxy,
            "NO_PROXY": "",
            "no_proxy": "",
            "HF_HUB_OFFLINE": "1",
            "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime's upload to Microsoft (see voice_agent/__init__)
        }
        command = [sys.executable, "-m", "piper.http_server", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--model", str(self.voice), "--data-dir", str(self.voice.parent)]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise VoiceServerError(
                        f"piper's server exited at start (code {self._process.returncode})"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://127.0.0.1:{self.port}/info").status_code == 200:
                        log.info("voice server (piper) ready on loopback port %d", self.port)
                        return self
                time.sleep(0.1)
        self.stop()
        raise VoiceServerError(f"piper's server did not answer within {timeout:.0f} s")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
