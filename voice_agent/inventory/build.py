"""Settings -> Inventory: every component that creates, receives, keeps or sends PHI, as configured."""

from __future__ import annotations

from voice_agent.settings import Settings

from . import calls, stores
from .builder import Builder
from .schema import Deployment, Inventory

#: Until the settings carry it (VOICE_AGENT_DRAIN_SECONDS), the drain bound ``serve`` uses by default.
DEFAULT_DRAIN_SECONDS = 120.0


def build_inventory(settings: Settings, *, workers: int = 1) -> Inventory:
    """The inventory of one worker's settings; ``workers`` says how many run the same settings."""
    b = Builder(settings)
    calls.worker(
        b, workers=workers, drain_seconds=float(getattr(settings, "drain_seconds", DEFAULT_DRAIN_SECONDS))
    )
    calls.speech(b)
    calls.dialogue_model(b)
    calls.browser_callers(b)
    calls.phone_callers(b)
    stores.fhir_server(b)
    stores.audit_database(b)
    stores.audit_checkpoints(b)
    stores.staff_console(b)
    stores.metrics(b)
    stores.logs(b)
    # A worker id derived at start names the serving process (host-pid), not this one: shown only when set.
    worker_id = getattr(settings, "worker_id", None) if "worker_id" in settings.model_fields_set else None
    return b.inventory(
        Deployment(
            worker_id=worker_id,
            workers=workers,
            development_sandbox=settings.uses_dev_sandbox,
        )
    )
