"""The conductor's steps per intent: book and availability (verify, find a slot, confirm, book),
cancel (verify, choose the appointment, confirm), reschedule (verify, choose, find a slot keeping the
practitioner and visit type, confirm) and list. Each step runs one task and says what follows its result;
every operation is bound to the call's verified patient (``CallContext.patient``)."""

from __future__ import annotations

from fhir_adapters import (
    AppointmentInfo,
    NotThisPatientsAppointment,
    PatientRef,
    RescheduleFailed,
    SlotOffer,
    SlotUnavailable,
)
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.context import join
from voice_agent.dialogue.flow import Active, ConductorParts, Task
from voice_agent.dialogue.listing import capital, listing
from voice_agent.dialogue.reply import Reply, State
from voice_agent.dialogue.tasks.choose_appointment import ChooseAppointment
from voice_agent.dialogue.tasks.confirm import Confirm
from voice_agent.dialogue.tasks.find_slot import FindSlot, Preferences
from voice_agent.dialogue.tasks.verify_identity import VerifyIdentity, closed, verification_spent
from voice_agent.dialogue.understanding import Slots, Understood

__all__ = ["IntentSteps"]


class IntentSteps(ConductorParts):
    """Mixed into ``Conversation``: the per-intent sequences."""

    async def _begin(self, task: Task, slots: Slots) -> Reply:
        self._task = task
        self._prefs = Preferences()
        self._prefs.merge(slots)
        self._find, self._target, self._chosen = None, None, None
        if self.session.patient is None:
            verify = VerifyIdentity()
            return await self._run(Active(verify, self._verified), await verify.start(self.call))
        return await self._start_task()

    async def _verify_first(self, answer: Understood) -> Reply:
        if verification_spent(self.call):
            return await self._run(Active(VerifyIdentity(), self._verified), closed())
        verify = VerifyIdentity()
        return await self._run(Active(verify, self._verified), await verify.handle(answer, self.call))

    async def _verified(self, patient: PatientRef, said: str) -> Reply:
        self.session.patient = patient
        if self._task is None:
            self._go_idle(State.TASK)
            return self._say(join(said, templates.ASK_TASK))
        return await self._start_task(said)

    async def _start_task(self, prefix: str = "") -> Reply:
        if self._task in (Task.BOOK, Task.AVAILABILITY):
            find = self._find = FindSlot(self._prefs)
            return await self._run(Active(find, self._slot_chosen), await find.start(self.call), prefix)
        await self.call.clinic()
        found = await self.scheduling.upcoming_appointments(self.call.patient(), now=self.call.now())
        appointments = [self.call.named(a) for a in found]
        if self._task is Task.LIST:
            self._go_idle(State.ANYTHING_ELSE)
            return self._say(
                join(
                    prefix, listing(appointments, self.zone, today=self.call.today()), templates.ANYTHING_ELSE
                )
            )
        if not appointments:
            self._go_idle(State.ANYTHING_ELSE)
            return self._say(join(prefix, templates.NO_APPOINTMENTS, templates.ANYTHING_ELSE))
        if len(appointments) == 1:
            return await self._with_target(appointments[0], prefix)
        choose = ChooseAppointment(appointments)
        return await self._run(
            Active(choose, self._appointment_chosen), await choose.start(self.call), prefix
        )

    async def _appointment_chosen(self, appointment: AppointmentInfo, said: str) -> Reply:
        if self._answer is not None:  # "the one with Dr. Okafor, in the afternoon": the afternoon stands
            self._prefs.merge(self._answer.slots.model_copy(update={"date_from": None, "date_to": None}))
        return await self._with_target(appointment, said)

    async def _with_target(self, appointment: AppointmentInfo, prefix: str = "") -> Reply:
        self._target = appointment
        spoken = speech.appointment(appointment, self.zone, today=self.call.today())
        if self._task is Task.CANCEL:
            confirm = Confirm(templates.CONFIRM_CANCEL.format(appointment=spoken))
            return await self._run(
                Active(confirm, self._cancel_confirmed), await confirm.start(self.call), prefix
            )
        find = self._find = FindSlot(
            self._prefs, target=appointment, opening=templates.RESCHEDULE_WHEN.format(appointment=spoken)
        )
        return await self._run(Active(find, self._slot_chosen), await find.start(self.call), prefix)

    async def _slot_chosen(self, offer: SlotOffer, said: str) -> Reply:
        self._chosen = offer
        today = self.call.today()
        option = speech.offer(offer, self.zone, today=today)
        visit = self._find.visit(self.call) if self._find is not None else None
        if self._task is Task.RESCHEDULE and self._target is not None:
            current = speech.appointment(self._target, self.zone, today=today)
            question = templates.CONFIRM_RESCHEDULE.format(appointment=current, option=option)
        elif visit is None:
            question = templates.CONFIRM_BOOK.format(option=option)
        else:
            question = templates.CONFIRM_BOOK_VISIT.format(
                option=option, visit=speech.article(speech.visit(visit))
            )
        confirm = Confirm(question)
        return await self._run(Active(confirm, self._slot_confirmed), await confirm.start(self.call), said)

    async def _slot_confirmed(self, yes: bool, said: str) -> Reply:
        if yes:
            return await self._commit()
        assert self._find is not None
        self._chosen = None
        return await self._run(Active(self._find, self._slot_chosen), self._find.reopen(), said)

    async def _cancel_confirmed(self, yes: bool, said: str) -> Reply:
        if yes:
            return await self._commit()
        self._go_idle(State.ANYTHING_ELSE)
        return self._say(templates.NOT_CANCELLED)

    async def _commit(self) -> Reply:
        patient, today = self.call.patient(), self.call.today()
        find, target, chosen = self._find, self._target, self._chosen
        try:
            if self._task is Task.CANCEL:
                assert target is not None
                done = self.call.named(await self.scheduling.cancel(patient, target.appointment_id))
                self._go_idle(State.ANYTHING_ELSE)
                spoken = speech.appointment(done, self.zone, today=today)
                return self._say(templates.CANCELLED.format(appointment=spoken))
            assert chosen is not None and find is not None
            visit = find.visit(self.call)
            if self._task is Task.RESCHEDULE:
                assert target is not None
                done = self.call.named(
                    await self.scheduling.reschedule(
                        patient, target.appointment_id, chosen.slot_id, visit_type=visit
                    )
                )
                self._go_idle(State.ANYTHING_ELSE)
                spoken = capital(speech.appointment(done, self.zone, today=today))
                return self._say(templates.RESCHEDULED.format(appointment=spoken))
            done = self.call.named(await self.scheduling.book(patient, chosen.slot_id, visit_type=visit))
        except SlotUnavailable:
            assert find is not None and chosen is not None
            self._chosen = None
            return await self._run(Active(find, self._slot_chosen), await find.taken(chosen, self.call))
        except RescheduleFailed:
            assert target is not None
            self._go_idle(State.ANYTHING_ELSE)
            spoken = speech.appointment(target, self.zone, today=today)
            return self._say(templates.RESCHEDULE_FAILED.format(appointment=spoken))
        except NotThisPatientsAppointment:
            self._go_idle(State.ANYTHING_ELSE)
            return self._say(join(templates.NO_APPOINTMENTS, templates.ANYTHING_ELSE))
        self._go_idle(State.ANYTHING_ELSE)
        return self._say(
            templates.BOOKED.format(appointment=speech.appointment(done, self.zone, today=today))
        )
