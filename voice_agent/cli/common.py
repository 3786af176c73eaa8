"""Shared CLI plumbing: settings that fail loudly and readably, the checks a command runs on them before it
starts, and the process start-up every command that touches PHI goes through.

A user's configuration mistake is answered in one place (``Commands``) with one line per problem, naming
the ``VOICE_AGENT_*`` setting and how to fix it, and exit status 2: never a traceback, which would bury
the one line that matters and could echo values from the settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from datetime import date
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import ArgumentError, OperationalError
from typer.core import TyperGroup

from fhir_adapters import FhirAuthenticationError, FhirError
from voice_agent.audit import KeyringError, load_keyring
from voice_agent.privacy import configure_logging, harden_process
from voice_agent.settings import ServeTlsMissing, Settings

log = logging.getLogger("voice_agent")

#: Exit status for a configuration mistake (click's own for a usage mistake, too).
CONFIG_EXIT = 2


class ConfigurationError(Exception):
    """A user's mistake in the settings: one line each, ``VOICE_AGENT_X: what is wrong; how to fix it``."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def problem(setting: str, what: str, fix: str = "") -> ConfigurationError:
    return ConfigurationError(f"{setting}: {what}" + (f"; {fix}" if fix else ""))


def explain(exc: BaseException) -> ConfigurationError | None:
    """The configuration mistake behind an exception a command let through, or None for a bug (which
    keeps its traceback). Messages are ours or the drivers'; none carries a secret."""
    if isinstance(exc, ConfigurationError):
        return exc
    if isinstance(exc, KeyringError):
        return _keyring_problem(exc, keys_inline=False)
    if isinstance(exc, ServeTlsMissing):
        return problem("VOICE_AGENT_SERVE_TLS_CERT", str(exc))
    if isinstance(exc, SettingsError) or (
        isinstance(exc, ValidationError) and exc.title == Settings.__name__
    ):
        return settings_problem(exc)  # another model's ValidationError is a bug, and keeps its traceback
    if isinstance(exc, OperationalError | ArgumentError):
        cause = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0][:200]
        return problem(
            "VOICE_AGENT_AUDIT_DATABASE_URL",
            f"the audit database could not be opened ({cause})",
            "check the URL and that the database server runs",
        )
    return None


class Commands(TyperGroup):
    """Every ``voice-agent`` group: a configuration mistake raised anywhere below it becomes its lines on
    standard error and exit 2 (see ``explain``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            found = explain(exc)
            if found is None:
                raise
            for line in found.lines:
                typer.echo(line, err=True)
            raise typer.Exit(CONFIG_EXIT) from None


# ---------------------------------------------------------------------------------------------- settings


def _setting_named(text: str) -> str | None:
    """The setting a model-level message is about: the first field it names, else the first variable."""
    fields = sorted(Settings.model_fields, key=len, reverse=True)
    found = re.search(r"\b(" + "|".join(fields) + r")\b", text)
    if found:
        return f"VOICE_AGENT_{found.group(1).upper()}"
    named = re.search(r"VOICE_AGENT_[A-Z0-9_]+", text)
    return named.group(0) if named else None


def settings_problem(exc: ValidationError | SettingsError) -> ConfigurationError:
    """One line per invalid setting. The value itself is never repeated: it may be a secret."""
    if isinstance(exc, SettingsError):  # a value that is not the JSON its field needs (lists, maps)
        named = re.search(r'field "(\w+)"', str(exc))
        setting = f"VOICE_AGENT_{named.group(1).upper()}" if named else "settings"
        return problem(setting, "not valid JSON", 'write lists as ["a", "b"] and maps as {"key": ["a"]}')
    lines: list[str] = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        field = str(err["loc"][0]) if err["loc"] else ""  # a list's or map's item: its setting
        named_as = f"VOICE_AGENT_{field.upper()}" if field else _setting_named(message)
        lines.append(f"{named_as or 'settings'}: {message}")
    return ConfigurationError(*lines)


def load_settings() -> Settings:
    """The settings, or exit 2 with one line per invalid one (also when a sub-app runs on its own)."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        for line in settings_problem(exc).lines:
            typer.echo(line, err=True)
        raise typer.Exit(CONFIG_EXIT) from None


# ---------------------------------------------------------------------------------------- start-up checks


def _keyring_problem(exc: KeyringError, *, keys_inline: bool) -> ConfigurationError:
    return problem("VOICE_AGENT_AUDIT_KEYS" if keys_inline else "VOICE_AGENT_AUDIT_KEY_FILE", str(exc))


def check_audit_keys(settings: Settings) -> None:
    """The audit keys load. Read-only: a development key that does not exist yet is made later, by the
    runtime, after the process is hardened."""
    dev_key_later = (
        settings.uses_dev_sandbox
        and settings.audit_keys is None
        and settings.audit_key_file is None
        and settings.audit_key_path is not None
        and not settings.audit_key_path.exists()
    )
    if dev_key_later:
        return
    try:
        load_keyring(settings)
    except KeyringError as exc:
        raise _keyring_problem(exc, keys_inline=settings.audit_keys is not None) from None


def _readable_file(setting: str, path: Path, fix: str) -> None:
    if not path.is_file():
        raise problem(
            setting, f"{path} does not exist" if not path.exists() else f"{path} is not a file", fix
        )
    if not os.access(path, os.R_OK):
        raise problem(setting, f"{path} is not readable by this user", fix)


def _dev_fix(setting: str, configured: bool, what: str) -> str:
    if configured:
        return f"point {setting} at {what}"
    return f"run `voice-agent dev certs` (development sandbox), or set {setting} to {what}"


def _check_pair(
    settings: tuple[str, str], pair: tuple[Path, Path], named: bool, what: str, context: ssl.SSLContext
) -> None:
    """A certificate (``what``) and its private key: both readable, and they load together in
    ``context``, so a mismatched pair is one line here rather than a traceback later."""
    cert_setting, key_setting = settings
    _readable_file(cert_setting, pair[0], _dev_fix(cert_setting, named, what))
    _readable_file(key_setting, pair[1], _dev_fix(key_setting, named, "its private key (PEM)"))
    try:
        context.load_cert_chain(str(pair[0]), str(pair[1]))
    except (ssl.SSLError, ValueError):
        raise problem(
            cert_setting,
            f"{pair[0]} and {pair[1]} do not load as a certificate and its private key",
            f"check {cert_setting} and {key_setting} name a matching PEM pair",
        ) from None


def check_fhir_tls(settings: Settings, *, dev_certs_later: bool = False) -> None:
    """The FHIR CA and the agent's client certificate exist and load. ``dev_certs_later``: the default
    development files are made by the command itself (``up``), so only named files are checked."""
    ca_setting, cert_setting, key_setting = (
        "VOICE_AGENT_FHIR_CA_FILE",
        "VOICE_AGENT_FHIR_CLIENT_CERT",
        "VOICE_AGENT_FHIR_CLIENT_KEY",
    )
    ca, pair = settings.ca_file, settings.client_cert_pair
    ca_named = settings.fhir_ca_file is not None
    pair_named = settings.fhir_client_cert is not None
    ca_fix = _dev_fix(ca_setting, ca_named, "the clinic CA's certificate (PEM)")
    if ca is not None and (ca_named or not dev_certs_later):
        _readable_file(ca_setting, ca, ca_fix)
        try:
            ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        except (ssl.SSLError, ValueError):
            raise problem(ca_setting, f"{ca} holds no PEM certificate", ca_fix) from None
    if pair is not None and (pair_named or not dev_certs_later):
        _check_pair(
            (cert_setting, key_setting),
            pair,
            pair_named,
            "the agent's client certificate (PEM)",
            ssl.create_default_context(),
        )


def check_serve_tls(settings: Settings, *, dev_certs_later: bool = False) -> None:
    """``serve``'s TLS certificate and key exist and load (uvicorn would fail later with a traceback)."""
    cert_setting, key_setting = "VOICE_AGENT_SERVE_TLS_CERT", "VOICE_AGENT_SERVE_TLS_KEY"
    try:
        pair = settings.serve_tls_pair
    except ServeTlsMissing as exc:
        raise problem(cert_setting, str(exc)) from None
    named = settings.serve_tls_cert is not None
    if pair is None or (dev_certs_later and not named):
        return
    _check_pair(
        (cert_setting, key_setting),
        pair,
        named,
        "the server certificate (PEM)",
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
    )


def check_named_files(settings: Settings) -> None:
    """Other files a running agent opens, when the settings name them."""
    named = {
        "VOICE_AGENT_SIEM_CA_FILE": settings.siem_ca_file,
        "VOICE_AGENT_LLM_MODEL_PATH": settings.llm_model_path,
        "VOICE_AGENT_TTS_VOICE_PATH": settings.tts_voice_path,
    }
    if settings.sip_enabled:
        named |= {
            "VOICE_AGENT_SIP_TLS_CERT": settings.sip_tls_cert,
            "VOICE_AGENT_SIP_TLS_CA_FILE": settings.sip_tls_ca_file,
        }
    for setting, path in named.items():
        if path is not None:
            _readable_file(setting, path, f"point {setting} at an existing file, or unset it")
    if settings.stt_model_path is not None and not settings.stt_model_path.is_dir():
        raise problem(
            "VOICE_AGENT_STT_MODEL_PATH",
            f"{settings.stt_model_path} is not a directory",
            "point it at a CTranslate2 Whisper model directory, or unset it",
        )


def check_fhir_answers(settings: Settings) -> None:
    """One unaudited request for the server's capability statement (no patient data), over the agent's
    own mutual-TLS client: a wrong address or certificate is named at start-up, not at the first call."""
    from voice_agent import wiring

    async def ping() -> None:
        async with wiring.gateway(settings) as fhir:
            await fhir.ping()

    url = settings.fhir_base_url
    try:
        asyncio.run(ping())
    except FhirAuthenticationError:
        raise problem(
            "VOICE_AGENT_FHIR_CA_FILE",
            f"the FHIR server at {url} and the agent could not authenticate each other over TLS",
            "check that VOICE_AGENT_FHIR_CA_FILE signed the server's certificate and that the server "
            "accepts VOICE_AGENT_FHIR_CLIENT_CERT",
        ) from None
    except FhirError as exc:
        fix = (
            "start the sandbox (`voice-agent dev fhir --detach`), or point it at the clinic's FHIR server"
            if settings.uses_dev_sandbox
            else "check the address, and that the server runs and lets this host in"
        )
        raise problem("VOICE_AGENT_FHIR_BASE_URL", f"{url} did not answer as FHIR ({exc})", fix) from None


def check_sandbox(settings: Settings, command: str) -> None:
    """Commands that load synthetic patients or run the sandbox refuse a clinic's FHIR server."""
    if not settings.uses_dev_sandbox:
        raise problem(
            "VOICE_AGENT_FHIR_BASE_URL",
            f"`voice-agent {command}` runs on the development sandbox only, not {settings.fhir_base_url}",
            f"unset it (the sandbox is https://127.0.0.1:{settings.sandbox_port}/fhir), "
            "or use `voice-agent serve` for the clinic's server",
        )


def iso_day(value: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def bootstrap(
    *,
    reach_fhir: bool = True,
    serving: bool = False,
    dev_certs_later: bool = False,
    sandbox_only: str | None = None,
) -> Settings:
    """Settings, then no core dumps and owner-only files, then one redacting log set-up, in that order,
    before anything can log or write; then the configuration checks, so a mistake is one line and exit 2
    before models load or a call is taken. ``dev_certs_later``: the command makes the development files;
    ``sandbox_only``: the command (``up``) runs the development sandbox and nothing else."""
    settings = load_settings()
    if sandbox_only is not None:
        check_sandbox(settings, sandbox_only)
    report = harden_process()
    configure_logging(settings)
    check_fhir_tls(settings, dev_certs_later=dev_certs_later)
    if serving:
        check_serve_tls(settings, dev_certs_later=dev_certs_later)
    check_named_files(settings)
    check_audit_keys(settings)
    if reach_fhir:
        check_fhir_answers(settings)
    log.info("process hardened: %s", report.summary())
    return settings
