"""``voice-agent inventory`` as a clinic runs it: the real command on several configurations, every format.

The reference shapes in docs/inventory.md are this command's own output; ``test_docs_are_current`` fails
when they are stale. Refresh them with: UPDATE_DOCS=1 .venv/bin/pytest tests/test_inventory.py -k docs
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from voice_agent.cli.main import app
from voice_agent.inventory import Inventory
from voice_agent.inventory.findings import RULES
from voice_agent.sandbox.private import VOICE_AGENT

DOCS = Path(__file__).resolve().parents[1] / "docs" / "inventory.md"
REFRESH = "UPDATE_DOCS=1 .venv/bin/pytest tests/test_inventory.py -k docs"
FORMATS = ("text", "json", "mermaid")

CLINIC_FHIR = {
    "VOICE_AGENT_FHIR_BASE_URL": "https://fhir.clinic.internal/fhir",
    "VOICE_AGENT_FHIR_CA_FILE": "/etc/voice-agent/clinic-ca.pem",
    "VOICE_AGENT_FHIR_CLIENT_CERT": "/etc/voice-agent/agent.pem",
    "VOICE_AGENT_FHIR_CLIENT_KEY": "/etc/voice-agent/agent.key",
    "VOICE_AGENT_AUDIT_KEY_FILE": "/etc/voice-agent/audit.key",
    "VOICE_AGENT_SERVE_HOST": "0.0.0.0",
    "VOICE_AGENT_SERVE_PORT": "8443",
    "VOICE_AGENT_SERVE_TLS_CERT": "/etc/voice-agent/serve.pem",
    "VOICE_AGENT_SERVE_TLS_KEY": "/etc/voice-agent/serve.key",
}
#: docs/inventory.md's two reference shapes: (settings, --workers).
ONE_SERVER: dict[str, str] = {
    **CLINIC_FHIR,
    "VOICE_AGENT_AUDIT_DATABASE_URL": "sqlite:////var/lib/voice-agent/audit.db",
}
DB_SECRET = "example-secret"
CLUSTER: dict[str, str] = {
    **CLINIC_FHIR,
    "VOICE_AGENT_AUDIT_DATABASE_URL": (
        f"postgresql+psycopg://voice_agent:{DB_SECRET}@db.clinic.internal:5432/voice_agent"
        "?sslmode=verify-full&sslrootcert=/etc/voice-agent/db-ca.pem"
    ),
    "VOICE_AGENT_LLM_BASE_URL": "https://llm.clinic.internal/v1",
    "VOICE_AGENT_SIP_ENABLED": "true",
    "VOICE_AGENT_SIP_HOST": "10.0.0.11",
    "VOICE_AGENT_SIP_ALLOWED_SOURCES": '["10.0.0.2/32"]',
    "VOICE_AGENT_SIP_TRANSPORT": "tls",
    "VOICE_AGENT_SIP_TLS_CERT": "/etc/voice-agent/sip.pem",
    "VOICE_AGENT_SIP_TLS_CA_FILE": "/etc/voice-agent/pbx-ca.pem",
    "VOICE_AGENT_SIP_SRTP": "mandatory",
    "VOICE_AGENT_FRONT_DESK_SIP_URI": "sip:frontdesk@pbx.clinic.lan",
}
SHAPES: dict[str, tuple[dict[str, str], int]] = {"one-server": (ONE_SERVER, 1), "cluster": (CLUSTER, 3)}

ALWAYS = {
    "agent-worker",
    "stt",
    "tts",
    "caller-browser",
    "fhir-server",
    "audit-database",
    "audit-checkpoints",
    "staff-console",
    "staff-browser",
    "logs",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the settings a test names: no VOICE_AGENT_* from the caller's shell, no .env file."""
    for name in list(os.environ):
        if name.upper().startswith("VOICE_AGENT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def run(settings: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, ["inventory", *args], env=settings)
    assert result.exit_code == 0, result.output
    return result.stdout


def inventory(settings: dict[str, str], *args: str) -> Inventory:
    return Inventory.model_validate(json.loads(run(settings, "--format", "json", *args)))


def finding_ids(settings: dict[str, str]) -> set[str]:
    return {f.id for f in inventory(settings).findings}


# ---------------------------------------------------------------------- what is listed


def test_defaults_list_every_component_with_no_findings() -> None:
    text = run({})
    found = inventory({})
    ids = {c.id for c in found.components}
    assert ids == ALWAYS | {"dialogue-model", "metrics"}
    for component in found.components:
        assert f"{component.id}: {component.name}" in text
    assert "none: no setting is weaker than its safe default" in text
    assert found.findings == ()
    assert {n.id for n in found.not_in_use} == {"sip-edge", "carrier-twilio"}
    assert found.deployment.development_sandbox and found.deployment.worker_id is None
    worker = found.component("agent-worker")
    assert worker.location == "https://127.0.0.1:8080"
    assert (
        "automatic logoff: a call with no activity for 15 min ends and its session is wiped"
        in worker.controls
    )
    assert found.component("dialogue-model").part_of == "agent-worker"
    checkpoints = found.component("audit-checkpoints")  # outside the database, on the worker's host
    assert checkpoints.phi == () and checkpoints.part_of == "agent-worker"
    assert checkpoints.location == "file .voice-agent/audit-checkpoints.jsonl"


def test_the_cluster_lists_the_sip_edge_the_endpoint_and_postgres_without_findings() -> None:
    found = inventory(CLUSTER, "--workers", "3")
    assert found.findings == ()
    assert found.component("agent-worker").name == "3 agent workers (voice-agent serve)"
    edge = found.component("sip-edge")
    assert edge.location == "allowed sources 10.0.0.2/32"
    assert any("sip:frontdesk@pbx.clinic.lan" in c for c in edge.controls)
    assert "media: SRTP required (SDES keys): a plain call is refused" in edge.controls
    assert "SIP over TLS at 10.0.0.11:5061 (TLS calls only)" in found.component("agent-worker").addresses
    database = found.component("audit-database")
    assert database.location.startswith("postgresql+psycopg://voice_agent:***@db.clinic.internal:5432/")
    assert any("verify-full" in c for c in database.controls)
    media = [f for f in found.flows if f.source == "sip-edge" and f.protocol == "SRTP (SDES)"]
    assert len(media) == 1 and media[0].encrypted


def test_a_database_password_never_appears_in_any_format() -> None:
    settings = {
        **CLUSTER,
        "VOICE_AGENT_AUDIT_DATABASE_URL": CLUSTER["VOICE_AGENT_AUDIT_DATABASE_URL"].replace(
            DB_SECRET, "p%40ss-w0rd"
        )
        + "&password=query-s3cret",
    }
    for fmt in FORMATS:
        out = run(settings, "--format", fmt)
        for secret in ("p%40ss-w0rd", "p@ss-w0rd", "query-s3cret"):
            assert secret not in out, fmt
        assert "voice_agent:***@db.clinic.internal" in out


def test_the_real_process_prints_no_secret_to_any_output(tmp_path: Path) -> None:
    """One real process (stdout, stderr and --output), with every secret-bearing setting set."""
    secrets = {
        "VOICE_AGENT_AUDIT_DATABASE_URL": f"postgresql+psycopg://va:{DB_SECRET}@db.clinic.internal/va",
        "VOICE_AGENT_TWILIO_ACCOUNT_SID": "AC0123456789abcdef",
        "VOICE_AGENT_TWILIO_AUTH_TOKEN": "twilio-token-value",
        "VOICE_AGENT_LLM_API_KEY": "llm-key-value",
        "VOICE_AGENT_SIP_PASSWORD": "sip-password-value",
        "VOICE_AGENT_SIP_REGISTRAR": "pbx.clinic.lan",
        "VOICE_AGENT_FHIR_BASE_URL": "https://agent:fhir-password-value@fhir.clinic.internal/fhir",
        "VOICE_AGENT_TURN_URLS": '["turn:turn.clinic.internal:3478"]',
        "VOICE_AGENT_TURN_SHARED_SECRET": "turn-shared-secret-value",
    }
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VOICE_AGENT_")}
    out = tmp_path / "inventory.mmd"
    done = subprocess.run(
        [VOICE_AGENT, "inventory", "--format", "mermaid", "--output", str(out)],
        env={**env, **CLUSTER, **secrets},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    everything = done.stdout + done.stderr + out.read_text()
    for value in (
        DB_SECRET,
        "0123456789abcdef",
        "twilio-token-value",
        "llm-key-value",
        "sip-password-value",
        "fhir-password-value",
    ):
        assert value not in everything
    assert "turn-credential-value" not in everything
    assert out.read_text().startswith("flowchart LR\n")


# ---------------------------------------------------------------------- findings


def test_sip_over_udp_without_srtp_is_a_finding_and_a_red_edge() -> None:
    settings = {"VOICE_AGENT_SIP_ENABLED": "true"}
    found = inventory(settings)
    ids = {f.id for f in found.findings}
    assert {"sip-media-unencrypted", "sip-signalling-unencrypted"} <= ids
    assert next(f for f in found.findings if f.id == "sip-media-unencrypted").severity == "high"
    media = next(f for f in found.flows if f.source == "sip-edge" and f.protocol == "RTP")
    assert not media.encrypted and "sip-media-unencrypted" in media.findings
    diagram = run(settings, "--format", "mermaid")
    assert 'sip_edge -.->|"voice, keypad digits<br/>none: clear RTP"| agent_worker' in diagram
    assert "linkStyle" in diagram
    assert "[high] sip-media-unencrypted" in run(settings)


@pytest.mark.parametrize(
    ("sip", "expected", "absent"),
    [
        (
            {"VOICE_AGENT_SIP_SRTP": "mandatory"},
            {"sip-srtp-keys-in-clear", "sip-signalling-unencrypted"},
            set(),
        ),
        ({"VOICE_AGENT_SIP_SRTP": "optional"}, {"sip-media-srtp-optional"}, {"sip-media-unencrypted"}),
        (
            {"VOICE_AGENT_SIP_TRANSPORT": "tls", "VOICE_AGENT_SIP_TLS_CERT": "/etc/sip.pem"},
            {"sip-peer-unverified", "sip-media-unencrypted"},
            {"sip-signalling-unencrypted"},
        ),
        ({"VOICE_AGENT_SIP_HOST": "0.0.0.0"}, {"sip-all-interfaces"}, set()),
        ({"VOICE_AGENT_SIP_HOST": "8.8.8.8"}, {"sip-public-address"}, set()),
        ({"VOICE_AGENT_SIP_ALLOWED_SOURCES": '["10.0.0.0/8"]'}, {"sip-broad-allow-list"}, set()),
    ],
)
def test_sip_settings_weaker_than_tls_with_srtp(
    sip: dict[str, str], expected: set[str], absent: set[str]
) -> None:
    ids = finding_ids({"VOICE_AGENT_SIP_ENABLED": "true", **sip})
    assert expected <= ids and not absent & ids


@pytest.mark.parametrize(
    ("settings", "finding", "severity"),
    [
        (
            {
                "VOICE_AGENT_FHIR_BASE_URL": "http://fhir.clinic.internal/fhir",
                "VOICE_AGENT_FHIR_ALLOW_PLAIN_HTTP": "true",
            },
            "fhir-plain-http",
            "high",
        ),
        ({"VOICE_AGENT_FHIR_ALLOW_PLAIN_HTTP": "true"}, "fhir-plain-http-allowed", "low"),
        ({"VOICE_AGENT_SERVE_ALLOW_PLAIN_HTTP": "true"}, "serve-plain-http", "medium"),
        (
            {
                "VOICE_AGENT_LLM_BASE_URL": "http://llm.clinic.internal/v1",
                "VOICE_AGENT_LLM_ALLOW_PLAIN_HTTP": "true",
            },
            "llm-plain-http",
            "high",
        ),
        (
            {
                "VOICE_AGENT_LLM_BASE_URL": "http://127.0.0.1:8000/v1",
                "VOICE_AGENT_LLM_ALLOW_PLAIN_HTTP": "true",
            },
            "llm-plain-http-loopback",
            "low",
        ),
        ({"VOICE_AGENT_LLM_ALLOW_PLAIN_HTTP": "true"}, "llm-plain-http-allowed", "low"),
        ({"VOICE_AGENT_FHIR_REQUIRE_CLIENT_CERT": "false"}, "fhir-no-client-cert", "medium"),
        ({"VOICE_AGENT_FHIR_BASE_URL": "https://fhir.clinic.internal/fhir"}, "fhir-ca-not-pinned", "medium"),
        ({"VOICE_AGENT_FHIR_BASE_URL": "https://fhir.clinic.internal/fhir"}, "serve-tls-missing", "high"),
        ({"VOICE_AGENT_FHIR_BASE_URL": "https://fhir.clinic.internal/fhir"}, "audit-key-unusable", "high"),
        ({"VOICE_AGENT_SESSION_IDLE_TIMEOUT_SECONDS": "3600"}, "session-idle-timeout", "medium"),
        ({"VOICE_AGENT_STAFF_IDLE_TIMEOUT_SECONDS": "3600"}, "staff-idle-timeout", "medium"),
        ({"VOICE_AGENT_STAFF_SESSION_MAX_HOURS": "24"}, "staff-session-max-hours", "low"),
        ({"VOICE_AGENT_STAFF_LOCKOUT_THRESHOLD": "10"}, "staff-lockout-weaker", "low"),
        ({"VOICE_AGENT_AUDIT_RETENTION_DAYS": "365"}, "audit-retention-short", "medium"),
        ({"VOICE_AGENT_ESCALATION_RETENTION_DAYS": "90"}, "escalation-retention-long", "low"),
        ({"VOICE_AGENT_LOG_CALLER_SPEECH": "true"}, "log-caller-speech", "high"),
        ({"VOICE_AGENT_AUDIT_DATABASE_URL": "not a url"}, "audit-database-url-invalid", "high"),
        ({"VOICE_AGENT_AUDIT_DATABASE_URL": "mysql://va@db/va"}, "audit-database-url-invalid", "high"),
        (
            {"VOICE_AGENT_AUDIT_DATABASE_URL": "postgresql+psycopg://va@db.clinic.internal/va"},
            "database-tls-not-required",
            "medium",
        ),
        (
            {
                "VOICE_AGENT_AUDIT_DATABASE_URL": "postgresql+psycopg://va@db.clinic.internal/va?sslmode=require"
            },
            "database-tls-unverified",
            "medium",
        ),
        (
            {
                "VOICE_AGENT_AUDIT_DATABASE_URL": "postgresql+psycopg://va@db.clinic.internal/va?sslmode=verify-ca"
            },
            "database-tls-hostname-unchecked",
            "low",
        ),
    ],
)
def test_a_weaker_setting_is_a_finding(settings: dict[str, str], finding: str, severity: str) -> None:
    found = inventory(settings)
    match = [f for f in found.findings if f.id == finding]
    assert len(match) == 1 and match[0].severity == severity
    assert match[0].id in found.component(match[0].component).findings
    assert all(name.startswith("VOICE_AGENT_") for name in match[0].settings)
    assert f"[{severity}] {finding}" in run(settings)


def test_plain_http_is_said_plainly() -> None:
    settings = {"VOICE_AGENT_SERVE_ALLOW_PLAIN_HTTP": "true"}
    found = inventory(settings)
    worker = found.component("agent-worker")
    assert worker.location == "http://127.0.0.1:8080"
    assert (
        "ws://127.0.0.1:8080/telephony/{twilio|telnyx|plivo|exotel} (carrier media streams)"
        in worker.addresses
    )
    assert any("NOT encrypted" in c for c in worker.controls)
    fhir = {
        "VOICE_AGENT_FHIR_BASE_URL": "http://127.0.0.1:8443/fhir",
        "VOICE_AGENT_FHIR_ALLOW_PLAIN_HTTP": "true",
    }
    flow = next(f for f in inventory(fhir).flows if f.target == "fhir-server")
    assert not flow.encrypted and flow.control == "none: plain HTTP" and "fhir-plain-http" in flow.findings


def test_a_local_postgres_and_a_verified_remote_one_raise_nothing() -> None:
    for url in (
        "postgresql+psycopg://va@127.0.0.1/va",
        "postgresql+psycopg://va@/va?host=/run/postgresql",
        "postgresql+psycopg://va@db.clinic.internal/va?sslmode=verify-full",
    ):
        assert not {
            i for i in finding_ids({"VOICE_AGENT_AUDIT_DATABASE_URL": url}) if i.startswith("database")
        }


# ---------------------------------------------------------------------- carriers and models


def test_twilio_configured_is_a_carrier_without_its_credentials() -> None:
    settings = {
        "VOICE_AGENT_TWILIO_ACCOUNT_SID": "AC0123456789abcdef",
        "VOICE_AGENT_TWILIO_AUTH_TOKEN": "twilio-token-value",
    }
    found = inventory(settings)
    carrier = found.component("carrier-twilio")
    assert carrier.zone == "outside" and carrier.kind == "carrier"
    assert found.component("caller-phone").zone == "outside"
    assert {(f.source, f.target) for f in found.flows} >= {
        ("caller-phone", "carrier-twilio"),
        ("carrier-twilio", "agent-worker"),
        ("agent-worker", "carrier-twilio"),
    }
    assert "carrier-twilio" not in {n.id for n in found.not_in_use}
    for fmt in FORMATS:
        out = run(settings, "--format", fmt)
        assert "0123456789abcdef" not in out and "twilio-token-value" not in out
        assert "Twilio" in out


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        ({"VOICE_AGENT_LLM_BASE_URL": "https://llm.clinic.internal/v1"}, "endpoint"),
        ({"VOICE_AGENT_UNDERSTANDING": "llm"}, "in-process"),
        ({"VOICE_AGENT_UNDERSTANDING": "hybrid"}, "in-process"),
        ({"VOICE_AGENT_UNDERSTANDING": "rules"}, "none"),
        (
            {
                "VOICE_AGENT_UNDERSTANDING": "rules",
                "VOICE_AGENT_LLM_BASE_URL": "https://llm.clinic.internal/v1",
            },
            "none",
        ),
    ],
)
def test_the_dialogue_model_as_configured(settings: dict[str, str], kind: str) -> None:
    found = inventory(settings)
    ids = {c.id for c in found.components}
    flows = {(f.source, f.target): f for f in found.flows}
    if kind == "none":
        assert "dialogue-model" not in ids and ("agent-worker", "dialogue-model") not in flows
        assert "understanding=rules" in next(n.reason for n in found.not_in_use if n.id == "dialogue-model")
        return
    model = found.component("dialogue-model")
    assert model.phi == ("the caller's words, one turn at a time",)
    if kind == "endpoint":
        assert model.location == "https://llm.clinic.internal/v1" and model.part_of is None
        assert flows[("agent-worker", "dialogue-model")].encrypted
    else:
        assert model.location == "in process" and model.part_of == "agent-worker"
        assert any(f"understanding={settings['VOICE_AGENT_UNDERSTANDING']}" in c for c in model.controls)


# ---------------------------------------------------------------------- formats


COMPONENT_KEYS = {
    "id",
    "name",
    "kind",
    "zone",
    "part_of",
    "location",
    "addresses",
    "phi",
    "controls",
    "findings",
}
FLOW_KEYS = {"from", "to", "phi", "protocol", "control", "encrypted", "findings"}
FINDING_KEYS = {"id", "severity", "component", "settings", "message"}


def test_the_json_schema_is_stable() -> None:
    """Renaming or removing a field breaks clinics' tooling: it takes a new schema_version (and docs)."""
    data: dict[str, Any] = json.loads(run(CLUSTER, "--format", "json"))
    assert set(data) == {"schema_version", "deployment", "components", "flows", "not_in_use", "findings"}
    assert data["schema_version"] == 1
    assert set(data["deployment"]) == {"worker_id", "workers", "development_sandbox"}
    assert all(set(c) == COMPONENT_KEYS for c in data["components"])
    assert all(set(f) == FLOW_KEYS for f in data["flows"])
    weak = json.loads(run({"VOICE_AGENT_SIP_ENABLED": "true"}, "--format", "json"))
    assert weak["findings"] and all(set(f) == FINDING_KEYS for f in weak["findings"])
    assert all(set(n) == {"id", "name", "reason"} for n in weak["not_in_use"])
    schema = Inventory.model_json_schema(mode="serialization")
    assert set(schema["$defs"]["Flow"]["properties"]) == FLOW_KEYS
    assert set(schema["$defs"]["Component"]["properties"]) == COMPONENT_KEYS


MERMAID_SETTINGS = [
    {},
    CLUSTER,
    {
        "VOICE_AGENT_SIP_ENABLED": "true",
        "VOICE_AGENT_TWILIO_ACCOUNT_SID": "AC1",
        "VOICE_AGENT_UNDERSTANDING": "rules",
    },
    {
        "VOICE_AGENT_STUN_URLS": '["stun:stun.clinic.internal:3478"]',
        "VOICE_AGENT_METRICS_ENABLED": "false",
        "VOICE_AGENT_LOG_CALLER_SPEECH": "true",
    },
]
_NODE = re.compile(r'^(\w+)(\[\("|\(\["|\[")(.*)("\)\]|"\]\)|"\])$')
_EDGE = re.compile(r'^(\w+) (-->|-\.->)\|"([^"]*)"\| (\w+)$')


def check_mermaid(diagram: str, found: Inventory) -> None:
    """Structural check (no Mermaid runtime in CI): a flowchart, balanced subgraphs, every node declared
    once with a quoted label, every edge between declared nodes, link styles only on existing edges."""
    lines = [line.strip() for line in diagram.splitlines()]
    assert lines[0] == "flowchart LR"
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    depth = 0
    styled: list[int] = []
    for line in lines[1:]:
        if line.startswith("subgraph "):
            depth += 1
            assert re.fullmatch(r'subgraph \w+\["[^"]+"\]', line), line
        elif line == "end":
            depth -= 1
            assert depth >= 0
        elif line.startswith("linkStyle "):
            styled += [int(i) for i in line.split()[1].split(",")]
        elif line.startswith(("classDef ", "class ")):
            continue
        elif match := _EDGE.match(line):
            edges.append((match.group(1), match.group(4)))
        elif match := _NODE.match(line):
            assert '"' not in match.group(3), line
            nodes.append(match.group(1))
        else:
            raise AssertionError(f"not a node, edge, subgraph or style: {line!r}")
    assert depth == 0
    assert len(nodes) == len(set(nodes)) == len(found.components)
    assert {n.replace("_", "-") for n in nodes} == {c.id for c in found.components}
    assert all(a in nodes and b in nodes for a, b in edges), edges
    assert len(edges) == len(found.flows)
    assert all(0 <= i < len(edges) for i in styled)
    assert sorted(styled) == [i for i, f in enumerate(found.flows) if f.findings]


@pytest.mark.parametrize(
    "settings", MERMAID_SETTINGS, ids=["defaults", "cluster", "sip-twilio-rules", "stun"]
)
def test_the_mermaid_diagram_is_well_formed(settings: dict[str, str]) -> None:
    check_mermaid(run(settings, "--format", "mermaid"), inventory(settings))


def test_outside_components_sit_outside_the_clinic_subgraph() -> None:
    settings = {"VOICE_AGENT_TWILIO_ACCOUNT_SID": "AC1", **ONE_SERVER}
    diagram = run(settings, "--format", "mermaid").splitlines()
    start = diagram.index('  subgraph clinic["Clinic network"]')
    for node in ("caller_phone", "carrier_twilio"):
        assert any(line.startswith(f"  {node}") for line in diagram[1:start])
    assert any(line.startswith("      agent_worker[") for line in diagram[start:])


def test_output_file_and_bad_settings(tmp_path: Path) -> None:
    target = tmp_path / "inventory.json"
    result = CliRunner().invoke(app, ["inventory", "--format", "json", "--output", str(target)], env={})
    assert result.exit_code == 0 and result.stdout == ""
    assert Inventory.model_validate_json(target.read_text()).schema_version == 1
    bad = CliRunner().invoke(app, ["inventory"], env={"VOICE_AGENT_SIP_SRTP": "sometimes"})
    assert bad.exit_code == 2 and "VOICE_AGENT_SIP_SRTP" in bad.output


# ---------------------------------------------------------------------- docs/inventory.md


def _settings_block(settings: dict[str, str], workers: int) -> str:
    lines = [f"{name}={value}" for name, value in settings.items()]
    return "```sh\n" + "\n".join(lines) + f"\n# then: voice-agent inventory --workers {workers}\n```"


def _json_excerpt(data: dict[str, Any]) -> dict[str, Any]:
    """What a reader needs to see the shape: the deployment, the database, the flows into the worker."""
    return {
        "schema_version": data["schema_version"],
        "deployment": data["deployment"],
        "components": [c for c in data["components"] if c["id"] == "audit-database"],
        "flows": [f for f in data["flows"] if f["to"] == "agent-worker"],
        "not_in_use": data["not_in_use"],
        "findings": data["findings"],
    }


def generated_regions() -> dict[str, str]:
    regions = {
        "findings": "| id | severity | meaning |\n| --- | --- | --- |\n"
        + "\n".join(f"| `{r.id}` | {r.severity} | {r.title} |" for r in RULES.values()),
        "json-schema": "```json\n"
        + json.dumps(Inventory.model_json_schema(mode="serialization"), indent=2)
        + "\n```",
    }
    for shape, (settings, workers) in SHAPES.items():
        args = ("--workers", str(workers))
        regions[f"{shape}-settings"] = _settings_block(settings, workers)
        regions[f"{shape}-mermaid"] = "```mermaid\n" + run(settings, "--format", "mermaid", *args) + "```"
        regions[f"{shape}-text"] = "```text\n" + run(settings, "--format", "text", *args) + "```"
        data = json.loads(run(settings, "--format", "json", *args))
        regions[f"{shape}-json"] = "```json\n" + json.dumps(_json_excerpt(data), indent=2) + "\n```"
    return regions


def _region(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(\n<!-- end: {name} -->)", re.DOTALL)


def test_docs_are_current() -> None:
    """docs/inventory.md embeds the command's output for the reference shapes; it must match the code."""
    text = DOCS.read_text(encoding="utf-8")
    stale = []
    for name, content in generated_regions().items():
        pattern = _region(name)
        match = pattern.search(text)
        assert match is not None, f"docs/inventory.md lacks the region {name!r}"
        if match.group(2) != content:
            stale.append(name)
            text = text[: match.start(2)] + content + text[match.end(2) :]
    if stale and os.environ.get("UPDATE_DOCS") == "1":
        DOCS.write_text(text, encoding="utf-8")
        return
    assert not stale, f"docs/inventory.md is stale ({', '.join(stale)}); refresh it with: {REFRESH}"
