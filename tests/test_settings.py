"""Settings: safe defaults, and a loud, specific failure on every bad value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voice_agent.settings import Settings


def test_safe_defaults() -> None:
    settings = Settings()
    assert settings.session_idle_timeout_seconds == 15 * 60
    assert settings.fhir_base_url.startswith("https://")
    assert settings.fhir_require_client_cert and not settings.fhir_allow_plain_http
    assert settings.audit_retention_days >= 6 * 365
    assert not settings.log_caller_speech
    assert settings.client_cert_pair is not None and settings.ca_file is not None


def test_environment_variables_use_the_voice_agent_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICE_AGENT_SESSION_IDLE_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("VOICE_AGENT_CLINIC_SCHEDULE_IDS", '["sched-a", "sched-b"]')
    settings = Settings()
    assert settings.session_idle_timeout_seconds == 30
    assert settings.clinic_schedule_ids == ("sched-a", "sched-b")


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("VOICE_AGENT_SESSION_IDLE_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("VOICE_AGENT_SESSION_IDLE_TIMEOUT_SECONDS", "fifteen", "valid number"),
        ("VOICE_AGENT_CLINIC_TIMEZONE", "Mars/Olympus", "IANA time zone"),
        ("VOICE_AGENT_FHIR_BASE_URL", "fhir.clinic.local", "absolute https"),
        ("VOICE_AGENT_FHIR_BASE_URL", "https://fhir.clinic.local/fhir?x=1", "query"),
        ("VOICE_AGENT_FHIR_READ_RETRIES", "50", "less than or equal"),
        ("VOICE_AGENT_FHIR_CLIENT_CERT", "/etc/agent.pem", "both"),
        ("VOICE_AGENT_SESION_IDLE_TIMEOUT_SECONDS", "60", "unknown setting"),
    ],
)
def test_bad_values_fail_loudly(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=complaint):
        Settings()


def test_settings_are_immutable_once_loaded() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.session_idle_timeout_seconds = 1


def test_the_deployment_template_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/voice-agent.env.example must load as it stands, so clinics start from something that works."""
    from pathlib import Path

    template = Path(__file__).resolve().parents[1] / "deploy" / "voice-agent.env.example"
    values = dict(
        line.split("=", 1) for line in template.read_text().splitlines() if line and not line.startswith("#")
    )
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.fhir_base_url == values["VOICE_AGENT_FHIR_BASE_URL"]
    assert settings.audit_url.startswith("postgresql+psycopg://")
    assert settings.clinic_name == "Maple Street Clinic"


def test_serving_calls_needs_tls_outside_the_development_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    from voice_agent.settings import ServeTlsMissing

    assert Settings().serve_tls_pair is not None  # the sandbox: the dev server certificate
    monkeypatch.setenv("VOICE_AGENT_FHIR_BASE_URL", "https://fhir.clinic.example/fhir")
    with pytest.raises(ServeTlsMissing, match="SERVE_TLS_CERT"):
        _ = Settings().serve_tls_pair
    monkeypatch.setenv("VOICE_AGENT_SERVE_TLS_CERT", "/etc/voice-agent/serve.pem")
    with pytest.raises(ValidationError, match="serve_tls_key"):
        Settings()
    monkeypatch.setenv("VOICE_AGENT_SERVE_TLS_KEY", "/etc/voice-agent/serve.key")
    assert Settings().serve_tls_pair is not None


def test_plain_http_for_calls_is_loopback_only_and_loud(monkeypatch: pytest.MonkeyPatch) -> None:
    from voice_agent.settings import InsecureSettingWarning

    monkeypatch.setenv("VOICE_AGENT_SERVE_ALLOW_PLAIN_HTTP", "true")
    with pytest.warns(InsecureSettingWarning, match="NOT encrypted"):
        assert Settings().serve_tls_pair is None
    monkeypatch.setenv("VOICE_AGENT_SERVE_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match="loopback"):
        Settings()


def test_voice_defaults_follow_the_issue() -> None:
    settings = Settings()
    assert settings.silence_prompt_seconds > 0 and settings.silence_prompts_before_hangup >= 1
    assert settings.stt_beam_size >= 1 and settings.stt_threads >= 1
    assert settings.stt_model_path is None and settings.tts_voice_path is None  # the pinned PyPI models
    assert settings.metrics_enabled and settings.max_concurrent_calls >= 8


def test_moving_the_agents_clock_is_for_the_sandbox_only_and_loud(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta

    from voice_agent import wiring
    from voice_agent.settings import InsecureSettingWarning

    monkeypatch.delenv("VOICE_AGENT_CLOCK_START", raising=False)
    assert abs(wiring.clock(Settings())() - datetime.now(Settings().zone)) < timedelta(seconds=5)
    monkeypatch.setenv("VOICE_AGENT_CLOCK_START", "2028-02-29T10:00")
    with pytest.warns(InsecureSettingWarning, match="believes it is 2028-02-29 10:00"):
        moved = Settings()
    now = wiring.clock(moved)()
    assert (now.date(), now.hour, now.tzinfo) == (datetime(2028, 2, 29).date(), 10, moved.zone)
    monkeypatch.setenv("VOICE_AGENT_FHIR_BASE_URL", "https://fhir.clinic.internal/fhir")
    with pytest.raises(ValidationError, match="development sandbox only"):
        Settings()


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"siem_syslog": "siem.clinic.lan"}, "host:port"),
        ({"siem_syslog": "siem.clinic.lan:99999"}, "host:port"),
        ({"siem_webhook_url": "http://siem.clinic.lan/hook", "siem_webhook_secret": "x" * 32}, "https"),
        ({"siem_webhook_url": "https://siem.clinic.lan/hook"}, "siem_webhook_secret"),
        (
            {"siem_webhook_url": "https://siem.clinic.lan/hook", "siem_webhook_secret": "short"},
            "16 characters",
        ),
    ],
)
def test_a_siem_sink_that_would_send_in_clear_or_unsigned_fails_loudly(
    update: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**update)  # type: ignore[arg-type]
    assert Settings(siem_syslog="[fd00::5]:6514").siem_syslog_address == ("fd00::5", 6514)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"turn_urls": ["turn:turn.clinic.lan:3478"]}, "turn_shared_secret"),
        ({"turn_urls": ["turn:turn.clinic.lan:3478"], "turn_shared_secret": "short"}, "16 characters"),
        ({"stun_urls": ["turn:turn.clinic.lan:3478"]}, "stun: URLs only"),
        ({"turn_urls": ["stun:stun.clinic.lan"], "turn_shared_secret": "x" * 32}, "turn: or turns:"),
        ({"ice_servers": [{"urls": "turn:t", "username": "u", "credential": "static"}]}, "ice_servers"),
    ],
)
def test_turn_is_configured_with_a_shared_secret_never_a_static_credential(
    update: dict[str, object], message: str
) -> None:
    """A static TURN password would be handed to every browser that loads the page, for ever."""
    with pytest.raises(ValueError, match=message):
        Settings(**update)  # type: ignore[arg-type]


def test_minted_turn_credentials_follow_the_rest_scheme() -> None:
    from voice_agent.ingress.webrtc.turn_credentials import ice_config

    servers = ice_config(
        ("stun:stun.clinic.lan",),
        ("turns:turn.clinic.lan:5349",),
        "s" * 20,
        label="ab",
        now=1000,
        ttl_seconds=60,
    )
    assert servers[0].as_browser_dict() == {"urls": "stun:stun.clinic.lan"}
    turn = servers[1]
    # coturn's check, base64(HMAC-SHA1(secret, "<expiry>:<label>")), as openssl computes it:
    # printf 1060:ab | openssl dgst -sha1 -hmac ssssssssssssssssssss -binary | base64
    assert turn.username == "1060:ab" and turn.credential == "q0PfMH5kzaSDeio0QUx8OoiPv3I="
    assert ice_config((), ("turn:t",), None, label="ab", now=0, ttl_seconds=60) == []
