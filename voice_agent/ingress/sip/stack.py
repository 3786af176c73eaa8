"""SIP from the clinic's own phone system: one baresip stack per worker process answers INVITEs (routed to
it by the PBX, the trunk's edge or the kamailio proxy in ``deploy/sip``) and runs each call's pipeline.

Only the addresses in ``sip_allowed_sources`` reach the stack at all (the kernel drops every other packet:
``source_filter``); the caller number is believed only from a ``P-Asserted-Identity`` those peers
attest, when ``sip_trust_asserted_identity`` says they do; the stack never executes a REFER a caller
sends (a transfer request can steer a bot into dialling anywhere: toll fraud), and it never logs a SIP
message (they carry caller numbers): its logger is held at WARNING and every line passes the redactor.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from voice_agent.ingress.calls import CallRegistry, CallsFull, refused
from voice_agent.ingress.sip.source_filter import (
    Network,
    SourceFilterError,
    allow_only,
    signalling_sockets,
    socket_inodes,
)
from voice_agent.ingress.sip.transport import SipTransport
from voice_agent.opening_hours import OpeningHours
from voice_agent.phone_numbers import to_e164
from voice_agent.pipeline.call import VoiceEngine, run_voice_call
from voice_agent.settings import Settings

if TYPE_CHECKING:
    from baresip import Call, Runtime, UserAgent

log = logging.getLogger(__name__)

#: G.711 on the wire: the agent's audio leaves the pipeline at the wire's rate (no second resampling).
SIP_AUDIO_RATE = 8000
_PHONE_USER = re.compile(r"^(?:sips?|tel):(\+?[0-9][0-9().\-]{5,20})(?:[@;]|$)")


def caller_number(uri: str | None) -> str | None:
    """The calling number from the From (or P-Asserted-Identity) URI's user part, as E.164; anything that
    is not a phone number (an extension name, "anonymous") gives None."""
    match = _PHONE_USER.match((uri or "").strip().strip("<>"))
    return to_e164(match.group(1)) if match else None


class SipIngress:
    """Owns the worker's baresip runtime and user agent; ``run()`` answers until cancelled."""

    def __init__(self, engine: VoiceEngine, calls: CallRegistry) -> None:
        self._engine = engine
        self._settings: Settings = engine.agent.settings
        self._calls = calls
        self._hours = OpeningHours.parse(self._settings.front_desk_hours)
        self._runtime: Runtime | None = None
        self._agent: UserAgent | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SipIngress]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def start(self) -> None:
        from baresip import Account, Config, RegistrationError, Runtime, UserAgent

        s = self._settings
        before = set(socket_inodes())
        runtime = Runtime(native_log_level="warning")
        await runtime.start(
            Config(
                net_interface=s.sip_host,
                max_concurrent_calls=s.sip_max_calls,
                expose_headers=("Via", "P-Asserted-Identity"),
                rtp_timeout=s.sip_rtp_timeout_seconds,
                extra_config_text=self._stack_config(),
            )
        )
        self._runtime = runtime
        registering = s.sip_registrar is not None
        account = Account(
            user=s.sip_user,
            domain=s.sip_registrar if registering else f"{s.sip_host}:{s.sip_port}",  # type: ignore[arg-type]
            password=s.sip_password.get_secret_value() if s.sip_password else "",
            auth_user=s.sip_auth_user,
            reg_interval=s.sip_register_seconds if registering else 0,
            transport=s.sip_transport,
            audio_codecs=("pcmu", "pcma"),
            # catchall: answer whatever user the PBX dials here ("clinic", a DID), not only sip_user
            extra_params=("catchall=yes", *_media_encryption(s.sip_srtp)),
        )
        # "reject": a REFER from a caller is refused (603), never executed.
        self._agent = await UserAgent.create(runtime, account, transfer_policy="reject")
        self._agent.on_incoming(self._incoming)
        self._filter_sources(before)
        if registering:
            try:
                await self._agent.register()
                log.info("SIP: registered with the PBX")
            except RegistrationError as error:  # the stack keeps retrying; calls routed by address still work
                log.error("SIP: registration with the PBX failed (%s); retrying", type(error).__name__)
        log.info(
            "SIP: answering on %s:%d over %s (SRTP %s, at most %d calls)",
            s.sip_host,
            s.sip_port,
            s.sip_transport,
            s.sip_srtp,
            s.sip_max_calls,
        )

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._agent is not None and self._settings.sip_registrar is not None:
            with contextlib.suppress(Exception):
                await self._agent.unregister(timeout=2)
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None

    def front_desk_open(self) -> bool:
        return self._settings.front_desk_sip_uri is not None and self._hours.is_open(
            self._engine.agent.clock()
        )

    # ------------------------------------------------------------------ calls

    def _filter_sources(self, before: set[int]) -> None:
        """Put the allow-list (and the registrar, whose answers arrive on the same socket) on every
        signalling socket the stack opened; without one, SIP does not start."""
        opened = socket_inodes()
        sockets = signalling_sockets(set(opened) - before)
        if not sockets:
            raise SourceFilterError("found no SIP socket to put the source allow-list on")
        allowed = [*self._settings.sip_allowed_sources, *registrar_networks(self._settings.sip_registrar)]
        for inode in sockets:
            allow_only(opened[inode], allowed)
        log.info("SIP: only %d allowed source network(s) can reach the stack", len(allowed))

    def _stack_config(self) -> str:
        s = self._settings
        lines = [f"sip_listen {_host_port(s.sip_host, s.sip_port)}", f"rtp_ports {s.sip_rtp_ports}"]
        if s.sip_tls_cert is not None:
            lines.append(f"sip_certificate {s.sip_tls_cert}")
        if s.sip_tls_ca_file is not None:
            lines += [f"sip_cafile {s.sip_tls_ca_file}", "sip_verify_server yes"]
        return "\n".join(lines) + "\n"

    def _incoming(self, call: Call) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer(self, call: Call) -> None:
        from baresip import BaresipError

        # The From header is whatever the caller's device wrote; only the edge's assertion is a number.
        asserted = call.headers.get("P-Asserted-Identity")
        number = caller_number(asserted) if self._settings.sip_trust_asserted_identity else None
        try:
            self._calls.reserve()
        except CallsFull:
            with contextlib.suppress(BaresipError):
                await call.reject()
            await refused(self._engine.agent.auditor, self._engine.agent.detector, "sip", "ceiling")
            return
        try:
            await call.answer()
            await call.wait_established(timeout=10)
        except BaresipError as error:
            self._calls.release()
            log.warning("SIP: a call could not be answered (%s)", type(error).__name__)
            return
        transport = SipTransport(call, transfer_to=self._settings.front_desk_sip_uri)
        self._calls.start(
            run_voice_call(
                self._engine,
                transport,
                ingress="sip",
                caller_number=number,
                audio_out_sample_rate=SIP_AUDIO_RATE,
                live_transfer=self.front_desk_open,
            ),
            reserved=True,
        )


def registrar_networks(registrar: str | None) -> list[Network]:
    """The registrar's addresses as one-host networks (it answers REGISTER on the signalling socket)."""
    if registrar is None:
        return []
    host = registrar.split(";")[0].rsplit("@", 1)[-1]
    host = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except socket.gaierror as error:
        raise SourceFilterError(f"sip_registrar's host does not resolve ({error.strerror})") from None
    return [ipaddress.ip_network(info[4][0]) for info in infos]


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _media_encryption(srtp: str) -> tuple[str, ...]:
    """baresip's account ``mediaenc``: SDES-keyed SRTP, offered (optional) or required (mandatory)."""
    return {"off": (), "optional": ("mediaenc=srtp",), "mandatory": ("mediaenc=srtp-mand",)}[srtp]
