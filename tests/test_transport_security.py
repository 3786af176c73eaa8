"""Transmission security against the real sandbox: mutual TLS, a pinned CA, no environment overrides."""

from __future__ import annotations

import ssl
import subprocess
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from fhir_adapters import (
    FhirAuthenticationError,
    FhirGateway,
    FhirUnavailable,
    Purpose,
    TransportConfig,
)
from harness.real_parts import require
from harness.sandbox import Sandbox, free_port
from voice_agent import wiring
from voice_agent.sandbox.certs import issue, make_authority, write_pair
from voice_agent.settings import InsecureSettingWarning, Settings


def gateway_with(sandbox: Sandbox, *, ca: Path | None, cert: tuple[Path, Path] | None) -> FhirGateway:
    return FhirGateway.connect(TransportConfig(sandbox.settings.fhir_base_url, ca, cert), read_retries=0)


async def directory_search(fhir: FhirGateway) -> list[object]:
    async with fhir:
        return await fhir.search(
            "Schedule", [("active", "true")], elements=("actor",), count=5, purpose=Purpose.HEALTH_CHECK
        )


async def test_the_agent_identity_reaches_the_sandbox(sandbox: Sandbox) -> None:
    found = await directory_search(gateway_with(sandbox, ca=sandbox.certs.ca, cert=sandbox.certs.agent))
    assert len(found) == 4


async def test_a_connection_without_a_client_certificate_is_refused(sandbox: Sandbox) -> None:
    before = sandbox.log_position()
    with pytest.raises((FhirAuthenticationError, FhirUnavailable)) as refused:
        await directory_search(gateway_with(sandbox, ca=sandbox.certs.ca, cert=None))
    assert "127.0.0.1" not in str(refused.value) and "Schedule?" not in str(refused.value)
    assert not [line for line in sandbox.log_since(before) if "/fhir/Schedule" in line]


async def test_a_client_certificate_from_another_ca_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    rogue = make_authority("Somebody else's CA")
    cert = write_pair(tmp_path, "rogue-client", *issue(rogue, "voice-agent"))
    before = sandbox.log_position()
    with pytest.raises((FhirAuthenticationError, FhirUnavailable)):
        await directory_search(gateway_with(sandbox, ca=sandbox.certs.ca, cert=cert))
    assert not [line for line in sandbox.log_since(before) if "/fhir/Schedule" in line]


async def test_a_server_not_signed_by_the_pinned_ca_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    other = make_authority("Another clinic CA")
    other_ca, _ = write_pair(tmp_path, "other-ca", other.key, other.cert)
    with pytest.raises(FhirAuthenticationError) as refused:
        await directory_search(gateway_with(sandbox, ca=other_ca, cert=sandbox.certs.agent))
    assert "CERTIFICATE" not in str(refused.value).upper() or "authenticate" in str(refused.value)


async def test_the_system_trust_store_does_not_stand_in_for_the_pin(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine sets REQUESTS_CA_BUNDLE; make the environment as hostile as it can be.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    found = await directory_search(gateway_with(sandbox, ca=sandbox.certs.ca, cert=sandbox.certs.agent))
    assert len(found) == 4  # the pinned CA is used and the proxy variable is ignored (trust_env off)
    with pytest.raises(FhirAuthenticationError):
        await directory_search(gateway_with(sandbox, ca=None, cert=sandbox.certs.agent))


def test_a_tls_alert_that_reaches_the_gateway_unwrapped_is_an_authentication_error() -> None:
    """Node's TLS 1.3 "certificate required" alert surfaces from httpx as a bare ``ssl.SSLError`` (seen on
    Medplum's front, tests/test_fhir_engines.py): typed like every other refusal, quoting nothing."""
    from fhir_adapters.transport import classify

    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    error = classify(alert, resource_type="Schedule")
    assert isinstance(error, FhirAuthenticationError) and "TLSV13" not in str(error)


def test_tls_below_1_2_is_never_offered(sandbox: Sandbox) -> None:
    from fhir_adapters.transport import ssl_context

    context = ssl_context(sandbox.certs.ca, sandbox.certs.agent)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_an_unreachable_server_is_a_typed_error_after_bounded_retries(sandbox: Sandbox) -> None:
    port = free_port()
    settings = Settings(
        dev_dir=sandbox.settings.dev_dir,
        sandbox_port=port,
        fhir_base_url=f"https://127.0.0.1:{port}/fhir",
        fhir_read_retries=2,
    )
    async with wiring.gateway(settings) as fhir:
        with pytest.raises(FhirUnavailable):
            await fhir.search(
                "Schedule", [("active", "true")], elements=(), count=1, purpose=Purpose.HEALTH_CHECK
            )


def test_missing_tls_material_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FhirAuthenticationError) as missing:
        FhirGateway.connect(TransportConfig("https://127.0.0.1:1/fhir", tmp_path / "nope.pem", None))
    assert "nope" not in str(missing.value)


def test_plain_http_fhir_is_refused_unless_the_loud_development_flag_is_set() -> None:
    with pytest.raises(ValidationError, match="unencrypted"):
        Settings(fhir_base_url="http://fhir.clinic.internal/fhir")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Settings(fhir_base_url="http://127.0.0.1:8080/fhir", fhir_allow_plain_http=True)
    assert any(issubclass(w.category, InsecureSettingWarning) for w in caught)


def test_the_cli_refuses_to_start_on_plain_http(sandbox: Sandbox) -> None:
    done = sandbox.run(
        "check", check=False, extra_env={"VOICE_AGENT_FHIR_BASE_URL": "http://127.0.0.1:1/fhir"}
    )
    assert done.returncode == 2
    assert "unencrypted" in done.stderr


def test_cli_check_lists_the_clinic_over_mtls(sandbox: Sandbox) -> None:
    done = sandbox.run("check")
    assert "mutual TLS" in done.stdout
    for schedule in sandbox.clinic.schedules:
        assert schedule.practitioner_display in done.stdout


def test_dev_certs_keys_are_owner_only(sandbox: Sandbox) -> None:
    for key in sandbox.certs.directory.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key.name
    require("openssl")
    subprocess.run(
        ["openssl", "verify", "-CAfile", str(sandbox.certs.ca), str(sandbox.certs.agent[0])],
        check=True,
        capture_output=True,
    )
