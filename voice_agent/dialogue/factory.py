"""One way to make a call's ``Conversation`` from a running agent, for every channel (text, voice, SIP)."""

from __future__ import annotations

from functools import partial
from typing import Any

from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.handoff import StoreHandoff
from voice_agent.dialogue.understanding.guardrails import Guardrail
from voice_agent.runtime import Runtime


def conversations(agent: Runtime) -> partial[Conversation]:
    """A factory taking ``session=`` and ``understanding=``: everything else is the process's."""
    settings = agent.settings

    async def audit_guardrail(guard: Guardrail) -> None:
        await agent.auditor.guardrail(guard.kind)

    options: dict[str, Any] = {
        "scheduling": agent.scheduling,
        "escalations": StoreHandoff(agent.escalations, agent.detector),
        "zone": settings.zone,
        "clock": agent.clock,
        "gate": agent.gate,
        "clinic_name": settings.clinic_name,
        "on_guardrail": audit_guardrail,
        "practitioner_aliases": dict(settings.practitioner_aliases),
        "visit_type_aliases": dict(settings.visit_type_aliases),
    }
    return partial(Conversation, **options)
