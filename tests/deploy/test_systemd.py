"""deploy/systemd: the units load (systemd-analyze verify), their sandbox scores well
(systemd-analyze security --offline), and stopping the agent lets it drain its calls."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from harness.real_parts import require
from tests.deploy.manifests import DEPLOY
from voice_agent.settings import Settings

UNITS = DEPLOY / "systemd"
TEMPLATE = "voice-agent-audit@.service"
#: Each service as systemd runs it, and its file: the audit jobs are instances of one template.
SERVICES = {
    "voice-agent.service": "voice-agent.service",
    "voice-agent-audit@purge.service": TEMPLATE,
    "voice-agent-audit@verify.service": TEMPLATE,
}
TIMERS = sorted(p.name for p in UNITS.glob("*.timer"))
#: Drop-ins, by the instance they change: the daily verify also checks the audit checkpoints.
DROP_INS = {"voice-agent-audit@verify.service": "voice-agent-audit@verify.service.d/checkpoints.conf"}
INSTALLED_COMMAND = "/opt/voice-agent/bin/voice-agent"


def test_every_unit_file_is_checked() -> None:
    assert {p.name for p in UNITS.glob("*.service")} == set(SERVICES.values())
    assert {str(p.relative_to(UNITS)) for p in UNITS.glob("*.d/*")} == set(DROP_INS.values())


#: systemd-analyze's exposure, 0 (locked down) to 10 (unprotected), times ten as --threshold takes it.
#: The agent's service is at 1.4 (its JIT-compiled speech kernels rule out MemoryDenyWriteExecute), the
#: audit jobs at 1.2; both "OK" in systemd's words. Anything above fails.
THRESHOLD = {"voice-agent.service": 15}
DEFAULT_THRESHOLD = 13


def systemd_analyze() -> str:
    require("systemd-analyze")
    return shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def directives(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out[key.strip()].append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units as shipped, but starting this checkout's voice-agent (verify wants an executable there)."""
    command = Path(sys.executable).parent / "voice-agent"  # this environment's console script
    assert command.is_file(), f"{command} is missing"
    out = tmp_path_factory.mktemp("units")
    files = {**SERVICES, **{timer: timer for timer in TIMERS}, **{d: d for d in DROP_INS.values()}}
    for unit, source in files.items():
        (out / unit).parent.mkdir(exist_ok=True)
        (out / unit).write_text((UNITS / source).read_text().replace(INSTALLED_COMMAND, str(command)))
    return out


@pytest.mark.parametrize("unit", [*SERVICES, *TIMERS])
def test_units_verify(unit_dir: Path, unit: str) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit_dir / unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_sandbox_exposure(unit_dir: Path, unit: str) -> None:
    threshold = THRESHOLD.get(unit, DEFAULT_THRESHOLD)
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", f"--threshold={threshold}", str(unit_dir / unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert result.returncode == 0, f"{unit}: exposure {match.group(1)} is above {threshold / 10}"
    assert float(match.group(1)) * 10 <= threshold


@pytest.mark.parametrize("unit", sorted(set(SERVICES.values())))
def test_every_service_is_sandboxed(unit: str) -> None:
    d = directives(unit)
    assert d["User"] == ["voice-agent"] and d["Group"] == ["voice-agent"]
    assert d["EnvironmentFile"] == ["/etc/voice-agent/voice-agent.env"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "LimitCORE": "0",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert d[key] == [value], key
    assert "ReadWritePaths" not in d  # only its own StateDirectory= is writable
    assert d["StateDirectory"] == ["voice-agent"]
    families = d["RestrictAddressFamilies"][0].split()
    assert set(families) <= {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "@system-service" in d["SystemCallFilter"]
    assert "~@privileged" in " ".join(d["SystemCallFilter"])


def test_the_agent_stops_by_draining() -> None:
    d = directives("voice-agent.service")
    assert d["ExecStart"] == [f"{INSTALLED_COMMAND} serve"]
    assert d["KillSignal"] == ["SIGTERM"]
    assert d["KillMode"] == ["mixed"]  # SIGTERM to the worker only: its piper keeps speaking while it drains
    field = Settings.model_fields.get("drain_seconds")
    drain = float(field.default) if field is not None else 120.0
    [stop] = d["TimeoutStopSec"]
    assert float(stop.removesuffix("s")) >= drain + 15
    # Whisper's int8 kernels (oneDNN) and numba generate code at run time: W^X would stop the speech
    # stack ("could not create a primitive"), so the agent's unit must not set it; the audit jobs do.
    assert "MemoryDenyWriteExecute" not in d
    assert directives(TEMPLATE)["MemoryDenyWriteExecute"] == ["yes"]


@pytest.mark.parametrize("timer", TIMERS)
def test_timers_start_their_jobs(timer: str) -> None:
    d = directives(timer)
    command = timer.removeprefix("voice-agent-audit-").removesuffix(".timer")
    assert d["Unit"] == [f"voice-agent-audit@{command}.service"]
    assert command in ("purge", "verify")  # `voice-agent audit <command>` with no arguments
    assert d["Persistent"] == ["true"]  # a run missed while the server was off happens at boot
    assert d["OnCalendar"]
    template = directives(TEMPLATE)
    assert template["Type"] == ["oneshot"]
    assert template["ExecStart"] == [f"{INSTALLED_COMMAND} audit %i"]


def test_the_daily_verify_checks_the_checkpoints() -> None:
    """Its drop-in replaces the template's command (``test_units_verify`` loads the unit with it): the
    chain, and the signed checkpoints at the path the settings name, which the CLI resolves itself."""
    drop_in = directives(DROP_INS["voice-agent-audit@verify.service"])
    assert drop_in["ExecStart"] == ["", f"{INSTALLED_COMMAND} audit verify --checkpoints"]
    assert set(drop_in) == {"ExecStart"}  # nothing else differs from the purge job
