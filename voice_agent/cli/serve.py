"""``voice-agent serve``: take calls (browser WebRTC and carrier media streams) until stopped."""

from __future__ import annotations

import typer

from voice_agent.cli.common import bootstrap, check_serve_tls
from voice_agent.settings import Settings


def run_server(settings: Settings) -> None:
    # Imported here, after ``bootstrap``: pipecat logs at import time, before the redacting set-up.
    import uvicorn

    from voice_agent.ingress.app import create_app

    check_serve_tls(settings)  # done by ``bootstrap`` too; ``up`` makes the dev certificate in between
    tls = settings.serve_tls_pair
    from voice_agent.ingress.server import DrainingServer

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.serve_host,
        port=settings.serve_port,
        log_config=None,  # our redacting log set-up stays the only one
        access_log=False,  # access lines carry client IP addresses, an identifier under HIPAA
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
        ws="auto",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    DrainingServer(config, app).run()


def serve(
    port: int | None = typer.Option(None, help="Listen port (default: VOICE_AGENT_SERVE_PORT, 8080)."),
) -> None:
    """Answer calls: the patient page and WebRTC at /, carrier media streams at /telephony/{carrier}."""
    settings = bootstrap(serving=True)
    if port is not None:
        settings = settings.model_copy(update={"serve_port": port})
    run_server(settings)
