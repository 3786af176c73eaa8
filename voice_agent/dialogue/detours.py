"""Detours from the task the caller came for, each written once: the guardrails (an emergency, advice,
someone else's record, a rule change), the callback offer and its answer, a transfer to the front desk
and its failure, and the fallback when FHIR fails. The caller always hears why, and what happens next."""

from __future__ import annotations

import logging

from fhir_adapters import (
    FhirError,
)
from voice_agent.dialogue import templates
from voice_agent.dialogue.flow import Active, CallbackOffer, ConductorParts
from voice_agent.dialogue.ports import Category
from voice_agent.dialogue.reply import Reply, State
from voice_agent.dialogue.tasks.base import Ask
from voice_agent.dialogue.tasks.collect_callback import CallbackAnswer, CollectCallback
from voice_agent.dialogue.understanding.guardrails import Guardrail

log = logging.getLogger(__name__)

__all__ = ["Detours"]


class Detours(ConductorParts):
    """Mixed into ``Conversation``: hand-offs to staff and what a declined offer goes back to."""

    async def _transfer_failed(self) -> Reply:
        """The front desk could not be reached: the hand-off becomes a callback, and the caller hears so."""
        category = self._callback.category if self._callback is not None else "caller_request"
        self._callback = CallbackOffer(category, end_if_declined=True)
        if self.session.caller_number:
            await self._escalate(category, urgent=False, number=self.session.caller_number)
            return self._end(templates.TRANSFER_FAILED_CALLBACK, "escalated")
        collect = CollectCallback(templates.TRANSFER_FAILED_ASK_NUMBER, asking_number=True)
        return await self._run(
            Active(collect, self._on_callback_answer), Ask(templates.TRANSFER_FAILED_ASK_NUMBER)
        )

    async def _guardrail(self, guard: Guardrail) -> Reply:
        if self.on_guardrail is not None:
            await self.on_guardrail(guard)
        if guard.kind in ("emergency", "crisis"):
            await self._escalate("emergency" if guard.kind == "emergency" else "crisis", urgent=True)
            text = templates.EMERGENCY if guard.kind == "emergency" else templates.CRISIS
            return self._end(text, "escalated")
        if guard.kind == "change_rules":
            self._stall = True
            return self._say(templates.RULES_REFUSAL.format(question=self._question()))
        category: Category = "medical_question" if guard.kind == "medical_advice" else "other_person_request"
        if self.state in (State.CALLBACK_OFFER, State.CALLBACK_NUMBER):
            self._callback = CallbackOffer(category, False, None, State.TASK)
        else:
            self._callback = CallbackOffer(category, False, self._active, self._idle)
        text = templates.NO_MEDICAL_ADVICE if guard.kind == "medical_advice" else templates.ONLY_YOUR_OWN
        return await self._run(Active(CollectCallback(text), self._on_callback_answer), Ask(text))

    async def _on_callback_answer(self, answer: CallbackAnswer, said: str) -> Reply:
        callback = self._callback or CallbackOffer("caller_request", end_if_declined=True)
        if answer.number:
            return await self._escalate_and_end(answer.number)
        if answer.accepted:
            return await self._accept_callback()
        if callback.end_if_declined or answer.goodbye:
            return self._end(templates.CALLBACK_DECLINED_END, "goodbye")
        self._active, self._idle, self._callback = callback.resume, callback.resume_state, None
        return self._say(templates.CALLBACK_DECLINED.format(question=self._question()))

    async def _accept_callback(self) -> Reply:
        if self._can_transfer():
            # A person now rather than a callback later; ``transfer_failed`` falls back to the callback.
            return self._end(templates.TRANSFERRING, "transferred", transfer=True)
        if self.session.caller_number:
            return await self._escalate_and_end(self.session.caller_number)
        collect = CollectCallback(templates.ASK_CALLBACK_NUMBER, asking_number=True)
        return await self._run(Active(collect, self._on_callback_answer), collect.ask_number())

    async def _escalate_and_end(self, number: str) -> Reply:
        category = self._callback.category if self._callback is not None else "caller_request"
        # Urgent hand-offs (emergency, crisis) never wait for a callback offer; these are all routine.
        await self._escalate(category, urgent=False, number=number)
        return self._end(templates.CALLBACK_CONFIRMED, "escalated")

    def _system_trouble(self, error: FhirError) -> Reply:
        log.warning("scheduling operation failed (%s)", type(error).__name__)
        self._callback = CallbackOffer("system_error", end_if_declined=True)
        return self._offer(templates.SYSTEM_TROUBLE)

    def _offer(self, text: str) -> Reply:
        """Ask the callback question ``text`` (the offer ``self._callback`` describes)."""
        collect = CollectCallback(text)
        self._active = Active(collect, self._on_callback_answer)
        collect.asked = text
        return self._say(text)

    def _can_transfer(self) -> bool:
        return self.live_transfer is not None and self.live_transfer()

    async def _escalate(self, category: Category, *, urgent: bool, number: str | None = None) -> None:
        await self.escalations.escalate(
            category=category,
            urgent=urgent,
            patient=self.session.patient,
            callback_number=number or self.session.caller_number,
            session=self.session,
        )
