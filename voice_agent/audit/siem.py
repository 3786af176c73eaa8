"""Alerts forwarded to the clinic's SIEM: syslog (RFC 5424 over TLS, RFC 5425 octet-counted framing) or
a webhook (JSON over HTTPS, signed with an HMAC the receiver checks). Both are off unless configured.
Audit checkpoints (``checkpoint``: seqs, hashes, a time, a MAC) go the same way, to keep the chain's
tail out of reach of whoever holds the database.

An alert carries its kind, the time and which worker raised it: never a number, name or address, so the
SIEM is not a place PHI can reach. Sending runs off the event loop with a short timeout; a SIEM that is
down costs a log line and a counter, never a call (the alert is in the audit trail already).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import ssl
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import Counter
from rfc5424logging import LOG_AUTH, Rfc5424SysLogHandler
from rfc5424logging.transport import FRAMING_OCTET_COUNTING

from .alerts import RaisedAlert
from .checkpoint import Checkpoint

__all__ = ["SyslogSink", "WebhookSink", "sinks_for"]

FAILURES = Counter("voice_agent_siem_failures_total", "Alerts the SIEM sink could not deliver.", ["sink"])

_APP_NAME = "voice-agent"
_TIMEOUT_SECONDS = 5.0


class SyslogSink:
    """RFC 5424 over TLS (the server's certificate checked against ``ca_file`` or the system's CAs). The
    connection is opened on the first alert and again after any failure."""

    def __init__(self, host: str, port: int, *, ca_file: Path | None, hostname: str) -> None:
        self._address = (host, port)
        self._ca_file = ca_file
        self._hostname = hostname
        self._handler: Rfc5424SysLogHandler | None = None
        self._lock = threading.Lock()
        self._logger = logging.getLogger("voice_agent.siem.syslog")
        self._logger.propagate = False  # these lines go to the SIEM only, not to the process log

    def _send(self, alert: RaisedAlert) -> None:
        self._transmit(
            logging.WARNING,
            "security-alert",
            f"security alert: {alert.kind}",
            {"alert@32473": {"kind": alert.kind}},
            alert.at,
        )

    def _send_checkpoint(self, checkpoint: Checkpoint) -> None:
        data = {name: str(value) for name, value in checkpoint.fields().items()}
        self._transmit(
            logging.INFO,
            "audit-checkpoint",
            f"audit checkpoint: seq {checkpoint.seq}",
            {"checkpoint@32473": data},
            checkpoint.at,
        )

    def _transmit(
        self, level: int, msgid: str, message: str, data: dict[str, dict[str, str]], at: datetime
    ) -> None:
        with self._lock:
            if self._handler is None:
                self._handler = Rfc5424SysLogHandler(
                    address=self._address,
                    socktype=socket.SOCK_STREAM,
                    framing=FRAMING_OCTET_COUNTING,
                    tls_enable=True,
                    tls_ca_bundle=str(self._ca_file) if self._ca_file else None,
                    tls_verify=True,
                    timeout=_TIMEOUT_SECONDS,
                    facility=LOG_AUTH,  # security/authorization, at severity warning
                    hostname=self._hostname,
                    appname=_APP_NAME,
                    utc_timestamp=True,
                )
            record = logging.LogRecord(self._logger.name, level, __file__, 0, message, None, None)
            record.created = at.timestamp()
            record.msgid = msgid
            record.structured_data = data
            try:
                self._handler.transport.transmit(self._handler.build_msg(record))
            except Exception:
                self._handler.close()
                self._handler = None
                raise

    async def send(self, alert: RaisedAlert) -> None:
        try:
            await asyncio.to_thread(self._send, alert)
        except Exception:
            FAILURES.labels("syslog").inc()
            raise

    async def send_checkpoint(self, checkpoint: Checkpoint) -> None:
        """An audit checkpoint (``checkpoint``), at severity info: the SIEM keeps the chain's tail where
        neither the database nor the worker's host can rewrite it."""
        try:
            await asyncio.to_thread(self._send_checkpoint, checkpoint)
        except Exception:
            FAILURES.labels("syslog").inc()
            raise


class WebhookSink:
    """POST one JSON object per alert; ``X-Voice-Agent-Signature: sha256=<hex>`` is the HMAC-SHA256 of
    the body under the shared secret, so the receiver can refuse a forged alert."""

    def __init__(self, url: str, secret: bytes, *, hostname: str, ca_file: Path | None) -> None:
        self._url = url
        self._secret = secret
        self._hostname = hostname
        self._verify = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    async def send(self, alert: RaisedAlert) -> None:
        await self._post(
            {"source": _APP_NAME, "host": self._hostname, "alert": alert.kind, "at": alert.at.isoformat()}
        )

    async def send_checkpoint(self, checkpoint: Checkpoint) -> None:
        """An audit checkpoint, as ``{"source", "host", "checkpoint": {...}}``, signed like an alert."""
        await self._post({"source": _APP_NAME, "host": self._hostname, "checkpoint": checkpoint.fields()})

    async def _post(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        try:
            async with httpx.AsyncClient(
                verify=self._verify, timeout=_TIMEOUT_SECONDS, trust_env=False
            ) as http:
                response = await http.post(
                    self._url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Voice-Agent-Signature": f"sha256={signature}",
                    },
                )
                response.raise_for_status()
        except Exception:
            FAILURES.labels("webhook").inc()
            raise


def sinks_for(
    *,
    syslog: tuple[str, int] | None,
    webhook: str | None,
    webhook_secret: bytes | None,
    ca_file: Path | None,
    hostname: str,
) -> tuple[SyslogSink | WebhookSink, ...]:
    """The configured sinks; each takes alerts (``AlertSink``) and audit checkpoints (``CheckpointSink``)."""
    sinks: list[SyslogSink | WebhookSink] = []
    if syslog is not None:
        sinks.append(SyslogSink(*syslog, ca_file=ca_file, hostname=hostname))
    if webhook is not None and webhook_secret is not None:
        sinks.append(WebhookSink(webhook, webhook_secret, hostname=hostname, ca_file=ca_file))
    return tuple(sinks)
