"""Every finding the inventory can raise: a stable id, a severity and what it means.

``high``: PHI can cross a network unencrypted, reach a log, or the agent will not start as configured.
``medium``: a safeguard is weaker than its default (identity, automatic logoff, retention, verification).
``low``: a flag that allows something weaker without it being used yet, or hygiene.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import Severity


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("serve-tls-missing", "high", "no certificate for voice-agent serve: it will not start"),
        Rule("serve-plain-http", "medium", "page, signalling, media streams and console over plain HTTP"),
        Rule("fhir-plain-http", "high", "FHIR traffic (names, birth dates, appointments) over plain HTTP"),
        Rule("fhir-plain-http-allowed", "low", "plain-HTTP FHIR allowed by a flag (the URL is https)"),
        Rule("fhir-no-client-cert", "medium", "no client certificate: the agent does not prove its identity"),
        Rule("fhir-ca-not-pinned", "medium", "FHIR server checked against the system CAs, not the clinic's"),
        Rule("llm-plain-http", "high", "caller words to the LLM endpoint over plain HTTP"),
        Rule(
            "llm-plain-http-loopback", "low", "caller words to an LLM endpoint on this host over plain HTTP"
        ),
        Rule("llm-plain-http-allowed", "low", "plain-HTTP LLM endpoint allowed by a flag (not in use)"),
        Rule("sip-media-unencrypted", "high", "SIP call audio (RTP) unencrypted: SRTP off"),
        Rule("sip-media-srtp-optional", "medium", "SRTP optional: a peer may still send plain RTP"),
        Rule("sip-signalling-unencrypted", "medium", "SIP signalling (calling numbers) not over TLS"),
        Rule("sip-srtp-keys-in-clear", "high", "SRTP keys (SDES) travel in clear SIP"),
        Rule("sip-peer-unverified", "medium", "SIP over TLS without a CA: peers are not verified"),
        Rule("sip-public-address", "high", "the SIP stack listens on a public address"),
        Rule("sip-all-interfaces", "low", "the SIP stack listens on every interface"),
        Rule("sip-broad-allow-list", "low", "sip_allowed_sources names a wide network"),
        Rule("session-idle-timeout", "medium", "call sessions end later than the 15-minute logoff"),
        Rule("staff-idle-timeout", "medium", "console sessions end later than the 15-minute logoff"),
        Rule("staff-session-max-hours", "low", "console sessions last longer than a 12-hour shift"),
        Rule("staff-lockout-weaker", "low", "more failed logins allowed, or a shorter lockout"),
        Rule("audit-key-unusable", "high", "no usable audit key setting: the agent will not start"),
        Rule("audit-database-url-invalid", "high", "the audit database URL is not SQLite or PostgreSQL"),
        Rule("audit-retention-short", "medium", "audit events kept for less than the default 6 years"),
        Rule("escalation-retention-long", "low", "resolved escalations (PHI) kept longer than 30 days"),
        Rule("database-tls-not-required", "medium", "the PostgreSQL connection may be unencrypted"),
        Rule("database-tls-unverified", "medium", "PostgreSQL over TLS without checking the server"),
        Rule("database-tls-hostname-unchecked", "low", "PostgreSQL server CA checked but not its host name"),
        Rule("log-caller-speech", "high", "what callers say is written to the logs (redacted)"),
    )
}
