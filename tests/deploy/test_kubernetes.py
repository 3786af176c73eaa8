"""deploy/kubernetes: each overlay renders, is valid Kubernetes, passes checkov, and has the properties a
reviewer looks for (unprivileged, read-only, probes, scaling signal, network scope, no secrets or PHI in
plain sight)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy.manifests import DEPLOY, OVERLAYS, Manifest, all_of, only
from tests.deploy.tools import KUBECTL_VERSION, KUSTOMIZE_VERSION, Tools
from voice_agent.settings import Settings

#: The oldest Kubernetes the manifests are meant for (NetworkPolicy endPort, autoscaling/v2 and
#: policy/v1 are all GA there), and the newest schema kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.30.0", "1.37.0")

#: checkov findings accepted, each justified where it is skipped: a `checkov.io/skipN` annotation on the
#: resource (kept in the rendered manifest, so the reason travels with it).
ACCEPTED_CHECKOV = {"CKV_K8S_35", "CKV_K8S_43"}

DRAIN_SECONDS_DEFAULT = 120.0
METRIC = "voice_agent_worker_calls_active"


def worker(docs: list[Manifest]) -> Manifest:
    return only(docs, "Deployment", "voice-agent")


def container(docs: list[Manifest]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = worker(docs)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def settings_env(docs: list[Manifest]) -> dict[str, str]:
    maps = [m for m in all_of(docs, "ConfigMap") if m["metadata"]["name"].startswith("voice-agent-settings")]
    assert len(maps) == 1
    data: dict[str, str] = maps[0]["data"]
    return data


def test_kubectl_is_the_pinned_one(tools: Tools) -> None:
    out = subprocess.run(
        [str(tools.kubectl), "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    )
    versions = json.loads(out.stdout)
    assert versions["clientVersion"]["gitVersion"] == KUBECTL_VERSION
    assert versions["kustomizeVersion"] == KUSTOMIZE_VERSION


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_is_valid_kubernetes(
    manifests: dict[str, list[Manifest]], overlay: str, version: str
) -> None:
    docs = manifests[overlay]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, desired_version=version, strict=True)


def test_checkov_finds_nothing_but_the_accepted(tools: Tools, rendered: dict[str, Path]) -> None:
    scan = subprocess.run(
        [str(tools.checkov), "--skip-download", "--framework", "kubernetes", "--output", "json"]
        + [arg for path in rendered.values() for arg in ("--file", str(path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert scan.returncode in (0, 1), scan.stderr
    reports = json.loads(scan.stdout)
    for report in reports if isinstance(reports, list) else [reports]:
        results = report["results"]
        failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
        assert failed == [], f"checkov: {failed}"
        skipped = {
            c["check_id"]: c["check_result"].get("suppress_comment", "") for c in results["skipped_checks"]
        }
        assert set(skipped) <= ACCEPTED_CHECKOV, f"unexpected suppressions: {sorted(skipped)}"
        assert all(len(reason) > 40 for reason in skipped.values()), skipped
        assert report["summary"]["parsing_errors"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_runs_unprivileged_on_a_read_only_root(
    manifests: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = manifests[overlay]
    pod = worker(docs)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("hostNetwork", False) is False and pod.get("hostPID", False) is False
    account = only(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False

    box = container(docs)
    security = box["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged", False) is False
    assert {"requests", "limits"} <= set(box["resources"])
    for kind in ("cpu", "memory"):
        assert kind in box["resources"]["requests"] and kind in box["resources"]["limits"]

    # The only writable place is the memory-backed /tmp; everything else is mounted read-only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in box["volumeMounts"]:
        volume = volumes[mount["name"]]
        if mount.get("readOnly", False):
            continue
        assert mount["mountPath"] == "/tmp"
        assert volume["emptyDir"]["medium"] == "Memory" and "sizeLimit" in volume["emptyDir"]

    namespace = only(docs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_drain(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    docs = manifests[overlay]
    box = container(docs)
    ready, live, start = box["readinessProbe"], box["livenessProbe"], box["startupProbe"]
    assert ready["httpGet"]["path"] == "/readyz"
    assert live["httpGet"]["path"] == "/healthz"
    assert start["httpGet"]["path"] == "/healthz"
    for probe in (ready, live, start):
        assert probe["httpGet"]["scheme"] == "HTTPS"
    # Loading Whisper, the turn model, piper and the dialogue model takes minutes on a slow node.
    assert start["periodSeconds"] * start["failureThreshold"] >= 300

    # Stopping drains: the grace period covers the drain bound the worker is given, with time to spare.
    env = settings_env(docs)
    drain = float(env.get("VOICE_AGENT_DRAIN_SECONDS", DRAIN_SECONDS_DEFAULT))
    field = Settings.model_fields.get("drain_seconds")
    default = float(field.default) if field is not None else DRAIN_SECONDS_DEFAULT
    grace = worker(docs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= max(drain, default) + 15


def test_autoscaling(manifests: dict[str, list[Manifest]]) -> None:
    single = manifests["single-clinic"]
    assert list(all_of(single, "HorizontalPodAutoscaler")) == []
    assert worker(single)["spec"]["replicas"] == 1

    multi = manifests["multi-worker"]
    assert "replicas" not in worker(multi)["spec"]  # the autoscaler owns it
    hpa = only(multi, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == worker(multi)["metadata"]["name"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"] == {"name": METRIC}
    assert metric["pods"]["target"]["type"] == "AverageValue"
    assert float(metric["pods"]["target"]["averageValue"]) > 0

    # The target is a measured number that may change: the base says where it comes from.
    base = (DEPLOY / "kubernetes" / "base" / "horizontalpodautoscaler.yaml").read_text()
    assert re.search(r"averageValue: .*# calls-per-worker: measured, see docs/operations.md", base)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budget_lets_a_node_drain(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    docs = manifests[overlay]
    budget = only(docs, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert "minAvailable" not in budget["spec"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == worker(docs)["spec"]["selector"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    docs = manifests[overlay]
    ports = {(p["port"], p["protocol"]) for s in all_of(docs, "Service") for p in s["spec"]["ports"]}
    assert {(8443, "TCP"), (5060, "UDP")} <= ports
    selector = worker(docs)["spec"]["selector"]["matchLabels"]
    for service in all_of(docs, "Service"):
        assert service["spec"]["selector"] == selector


def _peers(rules: list[dict[str, Any]], side: str) -> set[tuple[str, tuple[tuple[int, int, str], ...]]]:
    """Each rule as (who, ports): who is an ipBlock CIDR, or 'namespace/label=value,...' for pods."""
    out = set()
    for rule in rules:
        assert rule.get(side), f"a rule with no {side} allows everyone: {rule}"
        assert rule.get("ports"), f"a rule with no ports allows every port: {rule}"
        ports = tuple(sorted((p["port"], p.get("endPort", p["port"]), p["protocol"]) for p in rule["ports"]))
        for peer in rule[side]:
            if "ipBlock" in peer:
                assert "except" not in peer["ipBlock"]
                who = peer["ipBlock"]["cidr"]
                assert not who.endswith("/0")
            else:
                namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                labels = ",".join(f"{k}={v}" for k, v in sorted(peer["podSelector"]["matchLabels"].items()))
                who = f"{namespace}/{labels}"
            out.add((who, ports))
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_scope(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    docs = manifests[overlay]
    policy = only(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == worker(docs)["spec"]["selector"]
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    sip = ((5060, 5060, "TCP"), (5060, 5060, "UDP"))
    assert _peers(policy["spec"]["egress"], "to") == {
        ("kube-system/k8s-app=kube-dns", ((53, 53, "TCP"), (53, 53, "UDP"))),
        ("10.20.1.10/32", ((443, 443, "TCP"),)),  # FHIR
        ("10.20.1.11/32", ((443, 443, "TCP"),)),  # the LLM endpoint
        ("10.20.1.12/32", ((5432, 5432, "TCP"),)),  # PostgreSQL
        ("10.20.0.2/32", sip),  # the SIP edge
        ("10.20.0.3/32", ((10000, 20000, "UDP"),)),  # RTP to the PBX
    }
    assert _peers(policy["spec"]["ingress"], "from") == {
        ("ingress-nginx/app.kubernetes.io/name=ingress-nginx", ((8443, 8443, "TCP"),)),
        ("monitoring/app.kubernetes.io/name=prometheus", ((8443, 8443, "TCP"),)),
        ("10.20.0.2/32", sip),
        ("10.20.0.3/32", ((10000, 10199, "UDP"),)),
    }
    env = settings_env(docs)
    assert env["VOICE_AGENT_SIP_RTP_PORTS"] == "10000-10199"
    assert json.loads(env["VOICE_AGENT_SIP_ALLOWED_SOURCES"]) == ["10.20.0.2/32"]


#: Settings that hold a secret (or may: a database URL carries its password) never go in a ConfigMap.
SECRET_SETTINGS = {"audit_keys", "audit_database_url", "llm_api_key", "twilio_auth_token", "sip_password"}
PHI_LOOKING = [
    re.compile(r"\b(19|20)\d\d-\d\d-\d\d\b"),  # a date (of birth)
    re.compile(r"\+?1?[ .-]?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b"),  # a phone number
    re.compile(r"\b\d{3}-\d\d-\d{4}\b"),  # a social security number
    re.compile(r"BEGIN [A-Z ]*PRIVATE KEY"),
    re.compile(r"(?i)password|passwd|secret|token"),
]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_maps_hold_no_secret_and_no_phi(
    manifests: dict[str, list[Manifest]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = manifests[overlay]
    env = settings_env(docs)
    for maps in all_of(docs, "ConfigMap"):
        for key, value in maps.get("data", {}).items():
            for pattern in PHI_LOOKING:
                assert not pattern.search(value), f"{maps['metadata']['name']}/{key} looks like {pattern}"
    for key in env:
        assert key.startswith("VOICE_AGENT_"), key
        assert key.removeprefix("VOICE_AGENT_").lower() not in SECRET_SETTINGS, key

    # Every setting in the ConfigMap is one the agent knows, with a value it accepts (an unknown or bad
    # one would stop every worker at start-up).
    for key in list(os.environ):
        if key.startswith("VOICE_AGENT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VOICE_AGENT_SIP_HOST", "10.20.5.7")  # the pod's address, from the downward API
    monkeypatch.setenv("VOICE_AGENT_WORKER_ID", "voice-agent-5d8f7c9b8-x2x4q")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sip_enabled and settings.serve_tls_cert is not None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_placeholders_and_reach_the_worker(
    manifests: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = manifests[overlay]
    secrets = {s["metadata"]["name"]: s for s in all_of(docs, "Secret")}
    assert secrets
    for name, secret in secrets.items():
        assert "stringData" not in secret
        for key, value in secret["data"].items():
            assert base64.b64decode(value).decode().strip().endswith("REPLACE-ME"), f"{name}/{key}"

    # The audit keys and the database URL arrive as environment from a Secret; the certificate keys as
    # files from Secrets, mounted read-only where the ConfigMap's settings say they are.
    box = container(docs)
    pod = worker(docs)["spec"]["template"]["spec"]
    [from_secret] = [e["secretRef"]["name"] for e in box["envFrom"] if "secretRef" in e]
    assert set(secrets[from_secret]["data"]) == {"VOICE_AGENT_AUDIT_KEYS", "VOICE_AGENT_AUDIT_DATABASE_URL"}
    env = settings_env(docs)
    mounted = {m["name"]: m["mountPath"] for m in box["volumeMounts"]}
    files = set()
    for volume in pod["volumes"]:
        source = volume.get("secret") or volume.get("configMap")
        if source is None:
            continue
        name = source.get("secretName") or source.get("name")
        data = (secrets.get(name) or only(docs, "ConfigMap", name))["data"]
        files |= {f"{mounted[volume['name']]}/{key}" for key in data}
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] & 0o007 == 0  # nobody but the worker's group
    for setting in (
        "FHIR_CA_FILE",
        "FHIR_CLIENT_CERT",
        "FHIR_CLIENT_KEY",
        "SERVE_TLS_CERT",
        "SERVE_TLS_KEY",
    ):
        assert env[f"VOICE_AGENT_{setting}"] in files, setting
    assert "VOICE_AGENT_AUDIT_KEY_FILE" not in env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_names_itself_from_the_pod(manifests: dict[str, list[Manifest]], overlay: str) -> None:
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container(manifests[overlay])["env"]}
    # The pod's name in the audit trail's session events and the worker table; SIP on the pod's address.
    assert env == {"VOICE_AGENT_WORKER_ID": "metadata.name", "VOICE_AGENT_SIP_HOST": "status.podIP"}
