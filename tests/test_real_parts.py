"""harness/real_parts.py and tests/prepare.py: an absent real part skips locally and is named in pytest's
summary, fails under CI, and the preparation installs it or stops at once with the exact command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import real_parts
from harness.real_parts import PARTS, Part
from tests import prepare

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from harness.real_parts import PARTS, Part, pytest_configure, pytest_runtest_setup, pytest_terminal_summary

PARTS["unobtainium"] = Part("unobtainium", lambda: False, "a test", apt="unobtainium-tools")
PARTS["vapourware"] = Part("vapourware", lambda: False, "a test", command=("voice-agent", "vapour"))
PARTS["air"] = Part("air", lambda: True, "a test", apt="air")
"""

TESTS = """
import pytest
from harness.real_parts import needs, require

@needs("unobtainium")
def test_marked(): pass

def test_required_in_the_test(): require("air", "vapourware")

@pytest.fixture(scope="module")
def expensive(): require("unobtainium")

def test_through_a_fixture(expensive): pass

@needs("air")
def test_present(): pass
"""


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_tiny.py").write_text(textwrap.dedent(TESTS))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [None, "false"])
def test_locally_an_absent_part_skips_and_the_summary_names_it(tmp_path: Path, ci: str | None) -> None:
    done = run_pytest(tmp_path, ci)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 3 skipped" in done.stdout
    summary = done.stdout.split("real parts absent: their tests were skipped", 1)[1]
    assert "unobtainium: 2 skipped (apt-get install unobtainium-tools)" in summary
    assert "vapourware: 1 skipped (voice-agent vapour)" in summary
    assert "air:" not in summary and "tests.prepare" in summary


def test_under_ci_an_absent_part_fails(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "1 passed" in done.stdout and "skipped" not in done.stdout
    assert done.stdout.count("[absent: unobtainium]") >= 2 and "[absent: vapourware]" in done.stdout


def test_a_misspelt_part_is_an_error_not_a_skip() -> None:
    with pytest.raises(KeyError, match="chromiun"):
        real_parts.needs("chromiun")


def test_every_part_says_how_to_get_it() -> None:
    for part in PARTS.values():
        assert (part.apt is None) != (part.command is None), part.name
        assert part.why and part.how


def test_prepare_stops_at_once_with_the_exact_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not root: the apt-get line to run, and nothing long (no model build) started before it."""
    fake = {
        "a": Part("a", lambda: False, "test", apt="pkg-a"),
        "b": Part("b", lambda: False, "test", apt="pkg-b"),
        "c": Part("c", lambda: True, "test", apt="pkg-c"),
        "m": Part("m", lambda: False, "test", command=("voice-agent", "models", "install")),
    }
    monkeypatch.setattr(prepare, "PARTS", fake)
    monkeypatch.setattr(prepare.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(prepare.shutil, "which", lambda name: f"/usr/bin/{name}")

    def no_installer(command: tuple[str, ...]) -> None:
        raise AssertionError(f"ran {command} before the Debian packages were there")

    monkeypatch.setattr(prepare, "run_installer", no_installer)
    assert prepare.main() == 1
    err = capsys.readouterr().err
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends pkg-a pkg-b\n" in err
    assert "pkg-c" not in err


def test_the_readme_command_prepares_what_ci_runs() -> None:
    """.ci/run runs README's second bash block verbatim; that block runs tests.prepare before pytest,
    and .ci/run lists no package or model of its own (they would drift)."""
    readme = (ROOT / "README.md").read_text()
    command = readme.split("```bash\n")[2].split("\n```")[0]
    assert command.index("-m tests.prepare") < command.index("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in ci and "models install" not in ci
    assert "export CI=" in ci
