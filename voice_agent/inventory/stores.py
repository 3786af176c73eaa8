"""Where PHI is read from or kept, and who looks at it: FHIR, the audit and escalation database, the staff
console, metrics and logs.

Facts here come from ``fhir_adapters`` (transport, scope), ``voice_agent.audit``, ``voice_agent.escalations``,
``voice_agent.console`` and ``voice_agent.privacy``.
"""

from __future__ import annotations

from typing import get_args
from urllib.parse import urlsplit

from fhir_adapters.scope import ALLOWED, ALLOWED_ELEMENTS
from voice_agent.audit.events import StaffRole

from .addresses import Database, database, public_url
from .builder import WORKER, Builder, default, duration

#: What each console role sees (voice_agent.console.routes); a new role must be described here.
ROLE_SCOPE: dict[str, str] = {
    "front-desk": "the escalation queue: opens, claims and resolves escalations",
    "compliance": "the audit trail, its export and the integrity check",
    "admin": (
        "accounts: add and reset (a one-time enrolment link, never a password), role, second factor, "
        "unlock, disable"
    ),
}


def fhir_server(b: Builder) -> None:
    s = b.s
    url = public_url(s.fhir_base_url)
    plain = urlsplit(s.fhir_base_url).scheme == "http"
    findings: list[str] = []
    if plain:
        findings.append(
            b.flag(
                "fhir-plain-http",
                "fhir-server",
                f"FHIR at {url} over plain HTTP: names, birth dates and appointments cross the network "
                "UNENCRYPTED (fhir_allow_plain_http)",
                "fhir_base_url",
                "fhir_allow_plain_http",
            )
        )
    elif s.fhir_allow_plain_http:
        b.flag(
            "fhir-plain-http-allowed",
            "fhir-server",
            "fhir_allow_plain_http is on: a plain http:// FHIR URL would be accepted (this one is https)",
            "fhir_allow_plain_http",
        )
    pair = s.client_cert_pair
    if pair is None:
        findings.append(
            b.flag(
                "fhir-no-client-cert",
                "fhir-server",
                "fhir_require_client_cert is off and no client certificate is set: the agent does not prove "
                "its identity to FHIR (no mutual TLS)",
                "fhir_require_client_cert",
                "fhir_client_cert",
            )
        )
    if not plain and s.ca_file is None:
        findings.append(
            b.flag(
                "fhir-ca-not-pinned",
                "fhir-server",
                "no fhir_ca_file: the FHIR server is checked against every CA the system trusts, not only "
                "the clinic's",
                "fhir_ca_file",
            )
        )
    if plain:
        wire = ["plain HTTP, NOT encrypted"]
    else:
        wire = [
            f"mutual TLS: the agent's client certificate {pair[0]}"
            if pair
            else "TLS without a client certificate",
            f"server pinned to the CA {s.ca_file} (the system CAs are not trusted)"
            if s.ca_file
            else "server checked against the system's CAs",
            "TLS 1.2 or later; proxy and CA-bundle environment variables ignored; no redirects",
        ]
    scope = "; ".join(
        f"{kind} ({', '.join(sorted(ALLOWED[kind]))}: {', '.join(sorted(ALLOWED_ELEMENTS[kind]))})"
        for kind in ALLOWED
    )
    controls = [
        *wire,
        f"scope, checked before the network: {scope}",
        "search criteria travel in POST bodies: no name, birth date or phone number in a URL",
        "every access audited (purpose, resource type, ids, outcome), refusals included",
        f"reads retried {s.fhir_read_retries} times, writes never",
    ]
    if s.clinic_schedule_ids:
        controls.append(f"limited to the Schedules {', '.join(s.clinic_schedule_ids)}")
    sandbox = " (development sandbox)" if s.uses_dev_sandbox else ""
    b.add(
        "fhir-server",
        "FHIR server" + sandbox,
        "fhir-server",
        location=url,
        phi=(
            "patient name and birth date: search criteria, read back to verify the caller",
            "the phone number on record (compared with the calling number)",
            "appointments: practitioner, date and time, visit type, status",
            "free slots per practitioner",
            "for the staff console: a patient's name and birth date, read as an escalation is opened",
        ),
        controls=controls,
    )
    if plain:
        control = "none: plain HTTP"
    else:
        control = ("mutual TLS" if pair else "TLS") + (", CA pinned" if s.ca_file else "")
    b.flow(
        WORKER,
        "fhir-server",
        ("name, birth date, phone (verification)", "appointments, slots"),
        protocol="FHIR R4 REST over " + ("HTTP" if plain else "HTTPS"),
        control=control,
        encrypted=not plain,
        findings=findings,
    )


def audit_database(b: Builder) -> None:
    s = b.s
    info = database(s.audit_url)
    controls = [
        "AES-256-GCM per record; each record names its key id, so keys rotate by appending one "
        "(voice-agent audit keygen) and old records still decrypt",
        _keys(b),
        "hash-chained (SHA-256) with an HMAC'd head: voice-agent audit verify names any changed, deleted, "
        "reordered or inserted record",
        "escalations: patient id and callback number sealed with the same keys, padded to a fixed size, "
        "bound to the escalation and its call",
        f"audit events kept {s.audit_retention_days} days; voice-agent audit purge deletes older ones (run "
        "it on a schedule; each purge is audited)",
        f"resolved escalations deleted {s.escalation_retention_days} days after resolution (serve checks "
        f"every {duration(s.escalation_purge_interval_seconds)}; each purge audited)",
        "writes fail closed: a call does not start, and a FHIR access is not treated as done, without "
        "its audit event",
        "the rows the console trusts (staff accounts, recovery codes, sessions, escalations) carry an HMAC "
        "under the audit keys, checked at every read: a row written in SQL without the keys is refused "
        "and raises a record-tampered alert",
    ]
    _retention(b)
    if info is None or info.dialect not in ("sqlite", "postgresql"):
        b.flag(
            "audit-database-url-invalid",
            "audit-database",
            "audit_database_url is not an sqlite:/// or postgresql+psycopg:// URL: the agent will not start",
            "audit_database_url",
        )
        location, protocol, wire, encrypted, finding = (
            "(unparseable URL, not shown)",
            "SQL",
            "unknown",
            False,
            None,
        )
    elif info.sqlite_file is not None:
        location = f"SQLite file {info.sqlite_file}"
        controls.append(
            "file mode 0600 in a directory created 0700; deleted escalations' pages zeroed (secure_delete) "
            "and the WAL truncated; workers on this host share it (writers serialised)"
        )
        protocol, wire, encrypted, finding = "SQLite, local file", "local file", False, None
    else:
        location = info.url
        full, wire, encrypted, finding = _postgres_tls(b, info)
        controls.append(f"PostgreSQL connection: {full}")
        protocol = "PostgreSQL"
    b.add(
        "audit-database",
        "Audit trail and escalations database",
        "database",
        location=location,
        phi=(
            "escalations: the patient's FHIR id and a callback number (sealed)",
            "audit events: actor, purpose, resource type and ids, outcome, times; no names, birth dates, "
            "phone numbers or transcripts (sealed)",
            "staff accounts, recovery codes, enrolment links and console sessions: argon2id hashes, sealed "
            "TOTP secrets, recovery-code digests, HMACs of link and session tokens (not PHI)",
            "login throttling: HMACs of source addresses and of account-address pairs, with times; no "
            "address is kept (not PHI)",
            "breach-detection signals and alerts: kind, an HMAC of the scope, times (not PHI)",
            "worker heartbeats and open-session rows: worker names, random session ids, times (not PHI)",
        ),
        controls=controls,
    )
    b.flow(
        WORKER,
        "audit-database",
        ("sealed audit events and escalations",),
        protocol=protocol,
        control=wire,
        encrypted=encrypted,
        findings=(finding,),
    )


def audit_checkpoints(b: Builder) -> None:
    s = b.s
    siem = "; each also sent to the SIEM" if s.siem_syslog or s.siem_webhook_url else ""
    b.add(
        "audit-checkpoints",
        "Audit checkpoints (a file on each worker's host)",
        "file",
        part_of=WORKER,
        location=f"file {s.audit_checkpoint_path}",
        phi=(),
        controls=(
            "one line each: the chain's newest seq and hash, the purge anchor, a time, the worker id, a key "
            "id and an HMAC under the audit keys; no PHI",
            f"appended (mode 0600, fsync) every {duration(s.audit_checkpoint_interval_seconds)} and at "
            f"shutdown, outside the database{siem}",
            "voice-agent audit verify --checkpoints fails when the trail lacks a checkpointed record or "
            "ends before the newest checkpoint (newest events deleted behind a restored head)",
        ),
    )
    b.flow(
        WORKER,
        "audit-checkpoints",
        (),
        protocol="local file",
        control="signed lines (HMAC)",
        encrypted=False,
    )


def _keys(b: Builder) -> str:
    s = b.s
    if s.audit_keys is not None and s.audit_key_file is not None:
        b.flag(
            "audit-key-unusable",
            "audit-database",
            "both audit_keys and audit_key_file are set: the agent refuses to choose and will not start",
            "audit_keys",
            "audit_key_file",
        )
        return "keys: both VOICE_AGENT_AUDIT_KEYS and VOICE_AGENT_AUDIT_KEY_FILE set (refused)"
    if s.audit_keys is not None:
        return "keys from VOICE_AGENT_AUDIT_KEYS (a secret store; never shown), outside the database"
    path = s.audit_key_path
    if path is None:
        b.flag(
            "audit-key-unusable",
            "audit-database",
            "no audit key configured (audit_key_file or audit_keys): the agent will not start",
            "audit_key_file",
            "audit_keys",
        )
        return "keys: none configured (the agent will not start)"
    dev = "; made on first use for the development sandbox" if s.audit_key_file is None else ""
    return f"keys in {path}, outside the database (refused unless owner-only, mode 0600{dev})"


def _retention(b: Builder) -> None:
    s = b.s
    if s.audit_retention_days < default("audit_retention_days"):
        b.flag(
            "audit-retention-short",
            "audit-database",
            f"audit events are purged after {s.audit_retention_days} days, less than the default "
            f"{default('audit_retention_days')} (6 years)",
            "audit_retention_days",
        )
    if s.escalation_retention_days > default("escalation_retention_days"):
        b.flag(
            "escalation-retention-long",
            "audit-database",
            f"resolved escalations (patient id, callback number) are kept {s.escalation_retention_days} "
            f"days, longer than the default {default('escalation_retention_days')}",
            "escalation_retention_days",
        )


#: sslmode -> (the finding, the control in full, in short, encrypted, what is wrong). Others: not required.
_SSLMODES: dict[str, tuple[str | None, str, str, bool, str]] = {
    "verify-full": (None, "TLS, server certificate and host name verified", "TLS, server verified", True, ""),
    "verify-ca": (
        "database-tls-hostname-unchecked",
        "TLS, server CA verified, host name not",
        "TLS, host name unchecked",
        True,
        "the PostgreSQL server's CA is checked but not its host name",
    ),
    "require": (
        "database-tls-unverified",
        "TLS, server NOT verified",
        "TLS, server NOT verified",
        True,
        "TLS without checking the PostgreSQL server's certificate",
    ),
}


def _postgres_tls(b: Builder, info: Database) -> tuple[str, str, bool, str | None]:
    """What protects the connection to PostgreSQL, from the URL's sslmode (libpq's default: prefer): the
    control in full, in short (a diagram's edge), whether it is encrypted, and the finding if any."""
    mode = info.sslmode or "prefer"
    if info.local:
        return f"local connection ({info.host or 'Unix socket'}; sslmode={mode})", "local", False, None
    rule, full, short, encrypted, wrong = _SSLMODES.get(
        mode,
        (
            "database-tls-not-required",
            "TLS not required",
            f"TLS not required (sslmode={mode})",
            False,
            f"the connection to {info.host} may be unencrypted; sealed records, staff account data and the "
            "database login cross the network",
        ),
    )
    finding = None
    if rule is not None:
        libpq = " (libpq's default)" if info.sslmode is None else ""
        message = f"sslmode={mode}{libpq}: {wrong} (set sslmode=verify-full)"
        finding = b.flag(rule, "audit-database", message, "audit_database_url")
    return f"{full} (sslmode={mode})", short, encrypted, finding


def staff_console(b: Builder) -> None:
    s = b.s
    findings: list[str] = []

    def weaker(rule: str, message: str, setting: str) -> None:
        findings.append(b.flag(rule, "staff-console", message, setting))

    if s.staff_idle_timeout_seconds > default("staff_idle_timeout_seconds"):
        weaker(
            "staff-idle-timeout",
            f"an idle console session lasts {duration(s.staff_idle_timeout_seconds)}, longer than the "
            f"{duration(default('staff_idle_timeout_seconds'))} automatic logoff",
            "staff_idle_timeout_seconds",
        )
    if s.staff_session_max_hours > default("staff_session_max_hours"):
        weaker(
            "staff-session-max-hours",
            f"console sessions last up to {s.staff_session_max_hours} h (default "
            f"{default('staff_session_max_hours')} h)",
            "staff_session_max_hours",
        )
    if s.staff_lockout_threshold > default("staff_lockout_threshold"):
        weaker(
            "staff-lockout-weaker",
            f"{s.staff_lockout_threshold} failed logins before a lockout (default "
            f"{default('staff_lockout_threshold')})",
            "staff_lockout_threshold",
        )
    elif s.staff_lockout_seconds < default("staff_lockout_seconds"):
        weaker(
            "staff-lockout-weaker",
            f"a locked account unlocks after {duration(s.staff_lockout_seconds)} (default "
            f"{duration(default('staff_lockout_seconds'))})",
            "staff_lockout_seconds",
        )
    roles = "; ".join(f"{role} ({ROLE_SCOPE[role]})" for role in get_args(StaffRole))
    b.add(
        "staff-console",
        "Staff console (/staff)",
        "staff-console",
        part_of=WORKER,
        location=f"{b.base_url}/staff",
        phi=(
            "the escalation queue: category, urgency, times (no PHI)",
            "an opened escalation: callback number, and the patient's name and birth date read from FHIR "
            "at that moment",
            "the audit trail and its export (compliance): no names, birth dates or phone numbers",
        ),
        controls=(
            f"roles: {roles}",
            "password (argon2id) and a TOTP second factor; one-time recovery codes kept as digests, each "
            "row tagged under the audit keys (one written in SQL opens nothing)",
            "each account's owner sets both through a one-time enrolment link (valid "
            f"{s.staff_enrolment_link_hours} h, kept only as an HMAC): no administrator sets or sees a "
            "password",
            f"{s.staff_lockout_threshold} failed attempts lock an account for "
            f"{duration(s.staff_lockout_seconds)} against addresses that have not signed in to it; an "
            f"address with {s.staff_source_threshold} refused sign-ins within the hour waits "
            f"{s.staff_source_backoff_seconds} s, doubling with each further one; every refusal looks alike",
            "a password reset, second-factor reset, role change or disable ends the account's sessions; "
            "session tokens are kept as HMACs under the audit keys",
            f"automatic logoff after {duration(s.staff_idle_timeout_seconds)} without activity (a warning a "
            f"minute before); every session ends after {s.staff_session_max_hours} h",
            f"cookies {s.staff_session_cookie} and {s.staff_login_cookie}: HttpOnly, Secure, "
            "SameSite=Strict; a CSRF token on every form",
            "every view and change of an escalation, every login, logoff and account change is audited "
            "with the staff user as actor",
            "pages are never cached (no-store) and load nothing from elsewhere (CSP)",
        ),
    )
    b.add(
        "staff-browser",
        "Staff browser",
        "client",
        location="clinic network",
        phi=("an opened escalation: callback number, patient name and birth date",),
        controls=("nothing cached (no-store); the session ends at logoff or when idle",),
    )
    plain = b.plain_http
    b.flow(
        "staff-browser",
        "staff-console",
        ("callback number, patient name and birth date", "audit export"),
        protocol="HTTP" if plain else "HTTPS",
        control=("none: plain HTTP" if plain else "TLS") + "; password + TOTP; roles",
        encrypted=not plain,
        findings=("serve-plain-http" if plain else None, *findings),
    )


def metrics(b: Builder) -> None:
    s = b.s
    if not s.metrics_enabled:
        b.not_in_use("metrics", "Prometheus metrics", "metrics_enabled is false: /metrics is not served")
        return
    b.add(
        "metrics",
        "Prometheus (scrapes /metrics)",
        "monitoring",
        location=f"{b.base_url}/metrics",
        phi=(),
        controls=(
            "counts and durations only: labels are closed sets (ingress, stage, end reason)",
            "/metrics needs no login: limit who can reach the worker's port",
        ),
    )
    b.flow(
        "metrics",
        WORKER,
        (),
        protocol="HTTP scrape" if b.plain_http else "HTTPS scrape",
        control="counts and durations only",
        encrypted=not b.plain_http,
    )


def logs(b: Builder) -> None:
    s = b.s
    phi: tuple[str, ...] = ()
    finding = None
    if s.log_caller_speech:
        phi = ("what callers say, redacted",)
        finding = b.flag(
            "log-caller-speech",
            "logs",
            "log_caller_speech is on: what callers say is written to the logs (after redaction; names the "
            "redactor does not know stay)",
            "log_caller_speech",
        )
    b.add(
        "logs",
        "Logs (standard error)",
        "logs",
        location="standard error of each worker",
        phi=phi,
        controls=(
            f"level {s.log_level}; one redacting handler for every library: names learned in the call, "
            "dates, phone numbers, e-mail addresses and other PHI shapes become [redacted:<kind>]",
            "caller speech logged after redaction (log_caller_speech)"
            if s.log_caller_speech
            else "caller speech is dropped, never logged",
            "no access log (client IP addresses); SIP messages, WebSocket frames, SDP and ICE held "
            "above DEBUG",
            "tracebacks without local variables; uncaught exceptions pass the same redactor",
        ),
    )
    b.flow(
        WORKER,
        "logs",
        phi,
        protocol="stderr",
        control="caller speech logged, redacted" if s.log_caller_speech else "redacted; no caller speech",
        encrypted=False,
        findings=(finding,),
    )
