"""Every ``voice-agent`` command answers a configuration mistake with one line naming the setting and how
to fix it, and exit 2: never a traceback. Walked over each command with a missing audit key, a bad
certificate path and an unreachable FHIR server (a closed port on 127.0.0.1), in process (CliRunner),
with whatever a command would start after its checks replaced by a tripwire."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner, Result

from voice_agent.audit import generate_key_file
from voice_agent.cli import chat, common, dev, main, models, serve
from voice_agent.sandbox.certs import make_dev_certs
from voice_agent.sandbox.private import VOICE_AGENT, free_port

KEY, CERT, FHIR = "missing audit key", "bad certificate path", "unreachable FHIR server"
Invoke = Callable[[tuple[str, ...], dict[str, str]], Result]


@dataclass(frozen=True)
class Walk:
    args: tuple[str, ...]
    #: Scenario -> the setting its one line names. A scenario not listed is one whose settings the
    #: command never reads; with ``clean`` it is run anyway and must succeed.
    names: dict[str, str] = field(default_factory=dict)
    clean: bool = False


KEY_FILE, CA_FILE, BASE_URL = (
    "VOICE_AGENT_AUDIT_KEY_FILE",
    "VOICE_AGENT_FHIR_CA_FILE",
    "VOICE_AGENT_FHIR_BASE_URL",
)
AGENT = {KEY: KEY_FILE, CERT: CA_FILE, FHIR: BASE_URL}
#: Every command, by its path; a new command fails ``test_the_walk_covers_every_command`` until added.
WALKS: dict[str, Walk] = {
    "up": Walk(("up", "--no-model"), AGENT),
    "serve": Walk(("serve",), AGENT),
    "chat": Walk(("chat", "--understanding", "rules"), AGENT),
    "check": Walk(("check",), AGENT),
    "inventory": Walk(("inventory",), clean=True),
    "dev certs": Walk(("dev", "certs"), clean=True),
    "dev fhir": Walk(("dev", "fhir", "--stop"), clean=True),  # starting it is `up`'s walk
    # Synthetic patients go into the sandbox only; its own certificates, not the agent's.
    "dev seed": Walk(("dev", "seed"), {FHIR: BASE_URL}),
    "audit verify": Walk(("audit", "verify"), {KEY: KEY_FILE}, clean=True),
    "audit export": Walk(
        ("audit", "export", "--since", "2026-01-01", "--until", "2026-01-02"), {KEY: KEY_FILE}
    ),
    "audit purge": Walk(("audit", "purge"), {KEY: KEY_FILE}, clean=True),
    "audit keygen": Walk(("audit", "keygen"), clean=True),  # makes the missing key: the fix itself
    "models install": Walk(("models", "install")),  # downloads; reads none of these settings
    "models status": Walk(("models", "status"), clean=True),
    "staff add-user": Walk(("staff", "add-user", "alice"), {KEY: KEY_FILE}, clean=True),
    "staff reset-user": Walk(("staff", "reset-user", "alice"), {KEY: KEY_FILE}),
}


def leaf_commands(command: TyperCommand | TyperGroup, path: tuple[str, ...] = ()) -> set[str]:
    if isinstance(command, TyperGroup):
        return {leaf for name, sub in command.commands.items() for leaf in leaf_commands(sub, (*path, name))}
    return {" ".join(path)}


def test_the_walk_covers_every_command() -> None:
    assert leaf_commands(typer.main.get_command(main.app)) == set(WALKS)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("cli-configuration")
    certs = make_dev_certs(root / "dev" / "certs")  # also the sandbox's, in the scenarios that use it
    key = root / "audit.key"
    generate_key_file(key)
    return SimpleNamespace(root=root, certs=certs, key=key, port=free_port())


def scenario(name: str, files: SimpleNamespace, tmp_path: Path) -> dict[str, str]:
    """One mistake each, everything else right. The sandbox scenarios point at a port nobody listens on."""
    key = tmp_path / "audit.key"  # this test's own copy: `audit keygen` adds to it
    shutil.copy(files.key, key)
    key.chmod(0o600)
    base = {
        "VOICE_AGENT_DEV_DIR": str(files.root / "dev"),
        "VOICE_AGENT_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "VOICE_AGENT_AUDIT_KEY_FILE": str(key),
        "VOICE_AGENT_MODELS_DIR": str(tmp_path / "models"),
        "VOICE_AGENT_FHIR_CONNECT_TIMEOUT_SECONDS": "2",
    }
    sandbox = {
        "VOICE_AGENT_SANDBOX_PORT": str(files.port),
        "VOICE_AGENT_FHIR_BASE_URL": f"https://127.0.0.1:{files.port}/fhir",
    }
    if name == KEY:
        return base | sandbox | {"VOICE_AGENT_AUDIT_KEY_FILE": str(tmp_path / "absent" / "audit.key")}
    if name == CERT:
        return base | sandbox | {"VOICE_AGENT_FHIR_CA_FILE": str(tmp_path / "absent" / "clinic-ca.pem")}
    return base | {  # a clinic's server, named with all its certificates, that does not answer
        "VOICE_AGENT_FHIR_BASE_URL": f"https://127.0.0.1:{files.port}/fhir",
        "VOICE_AGENT_FHIR_CA_FILE": str(files.certs.ca),
        "VOICE_AGENT_FHIR_CLIENT_CERT": str(files.certs.path("agent.pem")),
        "VOICE_AGENT_FHIR_CLIENT_KEY": str(files.certs.path("agent.key")),
        "VOICE_AGENT_SERVE_TLS_CERT": str(files.certs.server[0]),
        "VOICE_AGENT_SERVE_TLS_KEY": str(files.certs.server[1]),
    }


def tripwire(what: str) -> object:
    def fired(*_: object, **__: object) -> None:
        raise AssertionError(f"{what} ran despite the configuration mistake")

    return fired


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    """The CLI in this process: no process hardening (it is irreversible) or log set-up, no inherited
    VOICE_AGENT_* variables, and a tripwire on everything a command starts after its checks."""
    for name in [n for n in os.environ if n.startswith("VOICE_AGENT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common, "harden_process", lambda: SimpleNamespace(summary=lambda: "test"))
    monkeypatch.setattr(common, "configure_logging", lambda settings: None)
    monkeypatch.setattr(models, "install", tripwire("models install"))
    monkeypatch.setattr(dev, "start_sandbox", tripwire("the sandbox"))
    monkeypatch.setattr(serve, "run_server", tripwire("the server"))
    monkeypatch.setattr(chat, "chat_call", tripwire("the call"))
    monkeypatch.setattr(main, "describe_clinic", tripwire("the clinic check"))

    def run(args: tuple[str, ...], env: dict[str, str]) -> Result:
        return CliRunner().invoke(main.app, list(args), env=env)

    return run


CASES = [
    pytest.param(command, problem, id=f"{command}: {problem}")
    for command, walk in WALKS.items()
    for problem in (KEY, CERT, FHIR)
    if problem in walk.names or walk.clean
]


@pytest.mark.parametrize(("command", "problem"), CASES)
def test_each_command_names_the_setting_or_is_unaffected(
    command: str, problem: str, files: SimpleNamespace, tmp_path: Path, invoke: Invoke
) -> None:
    walk = WALKS[command]
    result = invoke(walk.args, scenario(problem, files, tmp_path))
    assert "Traceback" not in result.output
    setting = walk.names.get(problem)
    if setting is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, AssertionError), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{setting}: "), result.output


def test_the_sandbox_not_running_is_named_with_its_fix(
    files: SimpleNamespace, tmp_path: Path, invoke: Invoke
) -> None:
    env = scenario(CERT, files, tmp_path)
    del env["VOICE_AGENT_FHIR_CA_FILE"]
    for args in (("check",), ("dev", "seed")):
        result = invoke(args, env)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"{BASE_URL}: ") and "voice-agent dev fhir --detach" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "args", "setting"),
    [
        ("VOICE_AGENT_SERVE_TLS_CERT", "absent.pem", ("serve",), "VOICE_AGENT_SERVE_TLS_CERT"),
        (
            "VOICE_AGENT_AUDIT_DATABASE_URL",
            "postgresql+psycopg://a@127.0.0.1:{port}/a",
            ("audit", "purge"),
            None,
        ),
        ("VOICE_AGENT_STUN_URLS", "stun:not-a-list", ("inventory",), None),
        ("VOICE_AGENT_FHIR_BASE_URL", "http://fhir.clinic.lan/fhir", ("check",), None),
        ("VOICE_AGENT_AUDIT_KEY_FILE", "{ca}", ("check",), None),
    ],
)
def test_other_mistakes_are_one_line_too(
    variable: str,
    value: str,
    args: tuple[str, ...],
    setting: str | None,
    files: SimpleNamespace,
    tmp_path: Path,
    invoke: Invoke,
) -> None:
    """A file that is missing or is not what it should be, a database nobody answers, a value that is
    not the JSON its setting needs, a value a validator refuses."""
    env = scenario(FHIR, files, tmp_path)
    env[variable] = value.format(port=files.port, ca=files.certs.ca)
    if variable == "VOICE_AGENT_SERVE_TLS_CERT":
        env["VOICE_AGENT_SERVE_TLS_KEY"] = "absent.key"
    result = invoke(args, env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{setting or variable}: "), result.output


def test_the_real_command_prints_one_line_without_a_key(tmp_path: Path) -> None:
    """The issue's case, as a clinic's IT team meets it: ``voice-agent check`` on a clinic's server with
    no audit key configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")} | {
        "VOICE_AGENT_DEV_DIR": str(tmp_path),
        "VOICE_AGENT_FHIR_BASE_URL": "https://fhir.clinic.invalid/fhir",
        "VOICE_AGENT_FHIR_CLIENT_CERT": str(tmp_path / "agent.pem"),
        "VOICE_AGENT_FHIR_CLIENT_KEY": str(tmp_path / "agent.key"),
    }
    make_dev_certs(tmp_path / "pki")
    for name in ("agent.pem", "agent.key"):
        (tmp_path / name).write_bytes((tmp_path / "pki" / name).read_bytes())
    done = subprocess.run(
        [VOICE_AGENT, "check"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{KEY_FILE}: no audit key configured") and "voice-agent audit keygen" in line
