"""No telemetry: onnxruntime (under the VAD, smart-turn and piper) phones home to Microsoft unless told
not to, and leaves a session file in TMPDIR as it starts. Importing the agent turns it off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOAD_A_MODEL = (
    "import onnxruntime; from importlib import resources; "
    "onnxruntime.InferenceSession(str(resources.files('pipecat.audio.vad.data') / 'silero_vad.onnx'))"
)


def _leftovers(tmp: Path, code: str) -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "HOME": str(tmp)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=120)
    return sorted(p.name for p in tmp.iterdir())


def test_the_agent_turns_onnxruntime_telemetry_off(tmp_path: Path) -> None:
    assert _leftovers(tmp_path, "import voice_agent; " + LOAD_A_MODEL) == []


def test_without_it_onnxruntime_starts_its_telemetry_session(tmp_path: Path) -> None:
    """The control: proves the check above looks at the right place."""
    assert ".ses" in _leftovers(tmp_path, LOAD_A_MODEL)
