"""harden_process runs in a child interpreter: its changes are irreversible by design."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = r"""
import json, os, resource, stat, tempfile, ctypes, faulthandler
faulthandler.enable()
from voice_agent.privacy import harden_process
report = harden_process()
path = os.path.join(tempfile.mkdtemp(), "scratch")
with open(path, "w") as handle:
    handle.write("x")
libc = ctypes.CDLL(None)
print(json.dumps({
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "dumpable": libc.prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
    "file_mode": stat.S_IMODE(os.stat(path).st_mode),
    "faulthandler": faulthandler.is_enabled(),
    "report": {"core": report.core_dumps_disabled, "not_dumpable": report.not_dumpable,
               "umask": report.umask, "fault": report.faulthandler_disabled},
    "summary": report.summary(),
}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl and RLIMIT_CORE checks are Linux-only"
)
def test_harden_process_refuses_core_dumps_and_makes_files_owner_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    result = json.loads(done.stdout)
    assert result["core"] == [0, 0]
    assert result["dumpable"] == 0
    assert result["file_mode"] == 0o600
    assert result["faulthandler"] is False
    assert result["report"] == {"core": True, "not_dumpable": True, "umask": 0o077, "fault": True}
    assert "core dumps off" in result["summary"]
