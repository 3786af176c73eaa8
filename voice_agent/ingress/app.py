"""``voice-agent serve``: one FastAPI app for the patient page, WebRTC signalling, carrier media streams,
health and metrics. The agent, models and voice server start before the first request is accepted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voice_agent.console import prepare_app, running_console
from voice_agent.ingress.calls import CallRegistry
from voice_agent.ingress.readiness import PROBES, ReadinessProbe
from voice_agent.ingress.source_limits import SourceLimits
from voice_agent.ingress.telephony.media_stream import telephony_router
from voice_agent.ingress.webrtc.signalling import webrtc_router
from voice_agent.pipeline.call import voice_engine
from voice_agent.runtime import runtime
from voice_agent.settings import Settings

STATIC = Path(__file__).parent / "static"

#: The page loads nothing from anywhere else, and nothing may frame it.
_SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    "Cache-Control": "no-store",
}
#: The staff console (/staff): the same, except that its forms post to itself and it needs no microphone.
_CONSOLE_HEADERS = {
    **_SECURITY_HEADERS,
    "Content-Security-Policy": _SECURITY_HEADERS["Content-Security-Policy"].replace(
        "form-action 'none'", "form-action 'self'"
    ),
    "Permissions-Policy": "microphone=(), camera=(), geolocation=()",
}


def create_app(settings: Settings) -> FastAPI:
    calls = CallRegistry(settings.max_concurrent_calls)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            runtime(settings, checkpoints=True) as agent,
            voice_engine(agent) as engine,
            contextlib.AsyncExitStack() as sip,
            running_console(app, agent),
        ):
            limits = SourceLimits(
                offers_per_minute=settings.offers_per_source_minute,
                streams_per_minute=settings.streams_per_source_minute,
            )
            app.include_router(webrtc_router(engine, calls, limits))
            app.include_router(telephony_router(engine, calls, limits))
            if settings.sip_enabled:
                from voice_agent.ingress.sip.stack import (
                    SipIngress,  # loads the native SIP stack only when on
                )

                await sip.enter_async_context(SipIngress(engine, calls).running())
            app.state.engine = engine
            app.state.readiness = ReadinessProbe(calls, agent.fhir, engine)

            async def drain() -> None:
                agent.worker.draining = True  # the heartbeat publishes it beside the trail
                await calls.drain(settings.drain_seconds, lambda: agent.sessions.end_all("shutdown"))

            app.state.drain = drain
            try:
                yield
            finally:
                await calls.shutdown()

    app = FastAPI(
        title="clinic voice agent", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        console = request.url.path == "/staff" or request.url.path.startswith("/staff/")
        response.headers.update(_CONSOLE_HEADERS if console else _SECURITY_HEADERS)
        if not settings.serve_allow_plain_http:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)  # none: a browser asks anyway, and a 404 is noise in its console

    # The public side says only whether to send traffic here: how many calls a worker carries, its
    # ceiling, its name and what is not ready are for Prometheus on the worker's own address (/metrics,
    # which the front blocks): a caller probing for a quiet moment or a worker to pick learns nothing.
    @app.get("/healthz")
    async def health() -> dict[str, str]:
        """Liveness: the process serves. (Whether it should get calls is /readyz.)"""
        PROBES.labels("healthz").inc()
        engine = getattr(app.state, "engine", None)
        return {"status": "ok" if engine is not None and engine.voice.alive() else "starting"}

    @app.get("/readyz")
    async def readiness() -> JSONResponse:
        """Readiness: 200 only with the models loaded, FHIR answering and the worker not draining."""
        PROBES.labels("readyz").inc()
        probe: ReadinessProbe | None = getattr(app.state, "readiness", None)
        ready = probe is not None and (await probe.check()).ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    if settings.metrics_enabled:

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> PlainTextResponse:
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    prepare_app(app)
    return app
