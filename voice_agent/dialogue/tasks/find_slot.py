"""``FindSlot -> SlotOffer``: what the caller wants of a time, up to three free slots read out, and the
one they pick (only among those read out). When nothing matches, the true reason and the nearest
alternative: the calendar is not open that far yet, the named doctor does not offer that visit type (and
who does), or nothing in the window asked for (and the first time after it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from fhir_adapters import AppointmentInfo, SlotOffer, TimeOfDay, VisitType
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.context import MAX_OFFERED, CallContext, clock_words, join
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.tasks.base import Ask, Closed, DialogueTask, Done, Step
from voice_agent.dialogue.understanding import Intent, Slots, Understood

__all__ = ["FindSlot", "Preferences"]


@dataclass
class Preferences:
    """What the caller wants of a slot; every field came through validated ``Slots``."""

    date_from: date | None = None
    date_to: date | None = None
    not_before: time | None = None
    not_after: time | None = None
    schedule_id: str | None = None
    visit_type: str | None = None
    after: datetime | None = None  # "other times": strictly later than what was offered

    def merge(self, slots: Slots) -> bool:
        """Fold in what the caller just said; True if anything changed. The last value said wins."""
        changed = False
        if slots.soonest:  # the first available: what was said before about days and times no longer holds
            self.date_from = self.date_to = self.not_before = self.not_after = self.after = None
            changed = True
        if slots.date_from is not None or slots.date_to is not None:
            self.date_from, self.date_to, self.after, changed = slots.date_from, slots.date_to, None, True
        if slots.time_not_before is not None or slots.time_not_after is not None:
            self.not_before, self.not_after, changed = slots.time_not_before, slots.time_not_after, True
        if slots.practitioner is not None:
            self.schedule_id, changed = slots.practitioner, True
        if slots.visit_type is not None:
            self.visit_type, changed = slots.visit_type, True
        return changed

    def would_change(self, slots: Slots) -> bool:
        return replace(self).merge(slots)

    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.date_from, self.date_to, self.not_before, self.not_after, self.schedule_id)
        )


class FindSlot(DialogueTask[SlotOffer]):
    """``target``: the appointment being moved (its slots are never offered; its practitioner and visit
    type are kept unless the caller asks for another)."""

    def __init__(
        self, prefs: Preferences, *, target: AppointmentInfo | None = None, opening: str = ""
    ) -> None:
        self.state = State.PREFERENCE
        self.prefs = prefs
        self.target = target
        self.offers: list[SlotOffer] = []
        self._opening = opening or templates.ASK_PREFERENCE
        self._kept_schedule: str | None = None

    async def start(self, call: CallContext) -> Step[SlotOffer]:
        if self.target is not None and self.prefs.schedule_id is None:
            directory = await call.clinic()
            same = [s for s in directory.schedules if s.practitioner == self.target.practitioner]
            if len(same) == 1:  # the practitioner of the appointment being moved, unless asked otherwise
                self._kept_schedule = same[0].schedule_id
        if self.prefs.any():
            return await self.offer(call)
        self.state = State.PREFERENCE
        return Ask(self._opening)

    async def handle(self, answer: Understood, call: CallContext) -> Step[SlotOffer]:
        if self.state is State.RELAX:
            return await self._on_relax(answer, call)
        if self.state is State.CHOOSE_SLOT:
            return await self.revise(answer, call)
        self.prefs.merge(answer.slots)
        return await self.offer(call)

    def question(self) -> str:
        return templates.ASK_PREFERENCE if self.state is State.PREFERENCE else self.asked

    async def revise(self, answer: Understood, call: CallContext) -> Step[SlotOffer]:
        """An answer to the slots read out: one of them, other times, or a new day or time."""
        slots = answer.slots
        if slots.option is not None and slots.option <= len(self.offers):
            return Done(self.offers[slots.option - 1])
        if len(self.offers) == 1 and answer.intent is Intent.AFFIRM:
            return Done(self.offers[0])
        if self.prefs.merge(slots):
            return await self.offer(call)
        if answer.intent in (Intent.DENY, Intent.NOTHING_ELSE) and self.offers:
            # strictly later than every time read out (the slot search's start is inclusive)
            self.prefs.after = max(o.start for o in self.offers) + timedelta(seconds=1)
            return await self.offer(call)
        spoken = speech.offers(self.offers, call.zone, today=call.today())
        return Ask(templates.WHICH_SLOT.format(options=spoken), stalled=True)

    def reopen(self) -> Ask:
        """The caller said no to the time read back: ask afresh."""
        self.state = State.PREFERENCE
        return Ask(templates.NOT_BOOKED)

    async def taken(self, offer: SlotOffer, call: CallContext) -> Step[SlotOffer]:
        """The chosen slot was booked by someone else first: the next ones after it."""
        self.prefs.after = offer.start - timedelta(seconds=1)
        return await self.offer(call, templates.SLOT_TAKEN)

    def visit(self, call: CallContext) -> VisitType | None:
        if self.prefs.visit_type is None and self.target is not None:
            return self.target.visit_type
        return call.visit_type(self.prefs.visit_type)

    async def _on_relax(self, answer: Understood, call: CallContext) -> Step[SlotOffer]:
        if answer.slots.soonest and answer.slots.practitioner is None:
            # "The first available time." answers "Would you like the first available time instead?"
            self.prefs = Preferences(visit_type=self.prefs.visit_type)
        if self.prefs.merge(answer.slots):
            return await self.offer(call)
        if answer.intent is Intent.AFFIRM:
            self.prefs = Preferences(visit_type=self.prefs.visit_type)
            self._kept_schedule = None
            return await self.offer(call)
        if answer.intent in (Intent.DENY, Intent.NOTHING_ELSE):
            self.state = State.PREFERENCE
            return Ask(templates.ASK_PREFERENCE)
        return Ask(templates.ASK_PREFERENCE, stalled=True)

    def _schedules(self) -> list[str] | None:
        schedule = self.prefs.schedule_id or self._kept_schedule
        return [schedule] if schedule else None

    async def offer(self, call: CallContext, prefix: str = "") -> Step[SlotOffer]:
        await call.clinic()  # the directory first: the visit type asked for is looked up in it
        prefs, today, visit = self.prefs, call.today(), self.visit(call)
        start = call.at_midnight(prefs.date_from) if prefs.date_from else None
        if prefs.after is not None:
            start = max(start, prefs.after) if start else prefs.after
        end = call.at_midnight(prefs.date_to + timedelta(days=1)) if prefs.date_to else None
        window = TimeOfDay(prefs.not_before, prefs.not_after) if prefs.not_before or prefs.not_after else None
        offers = await self._free(call, start=start, end=end, window=window, visit=visit)
        if not offers and self._kept_schedule and prefs.schedule_id is None:
            # the same practitioner has nothing: anyone who offers the visit
            self._kept_schedule = None
            offers = await self._free(call, start=start, end=end, window=window, visit=visit)
        if offers:
            self.offers = offers
            self.state = State.CHOOSE_SLOT
            if len(offers) == 1:
                spoken = speech.offer(offers[0], call.zone, today=today)
                return Ask(join(prefix, templates.OFFER_ONE_SLOT.format(option=spoken)))
            options = speech.offers(offers, call.zone, today=today)
            return Ask(join(prefix, templates.OFFER_SLOTS.format(options=options)))
        return await self._nothing(call, prefix, visit)

    async def _free(
        self,
        call: CallContext,
        *,
        start: datetime | None,
        end: datetime | None,
        window: TimeOfDay | None,
        visit: VisitType | None,
    ) -> list[SlotOffer]:
        offers = await call.scheduling.find_free_slots(
            start=start,
            end=end,
            schedule_ids=self._schedules(),
            visit_type=visit,
            time_of_day=window,
            limit=MAX_OFFERED,
        )
        if self.target is not None:
            offers = [o for o in offers if o.slot_id not in self.target.slot_ids]
        return offers

    async def _nothing(self, call: CallContext, prefix: str, visit: VisitType | None) -> Step[SlotOffer]:
        prefs, today = self.prefs, call.today()
        directory = await call.clinic()
        if prefs.schedule_id and visit is not None:
            named = directory.schedule(prefs.schedule_id)
            if named is not None and all(v.code != visit.code for v in named.visit_types):
                # the named doctor does not offer this visit at all: say so, and who does
                others = [
                    s.practitioner
                    for s in directory.schedules
                    if any(v.code == visit.code for v in s.visit_types)
                ]
                self.state = State.RELAX
                prefs.schedule_id = None
                text = templates.NOT_OFFERED_BY.format(
                    practitioner=named.practitioner,
                    visit=speech.article(speech.visit(visit)),
                    others=speech.joined(others) if others else "",
                )
                return Ask(join(prefix, text if others else templates.NOT_OFFERED_ANYWHERE))
        if prefs.date_from is not None:
            limit = await call.scheduling.bookable_until(schedule_ids=self._schedules(), visit_type=visit)
            last_day = (limit - timedelta(microseconds=1)).astimezone(call.zone).date()
            if prefs.date_from > last_day:  # not "nothing free": the calendar is not open yet
                self.state = State.RELAX
                beyond = templates.BEYOND_HORIZON.format(
                    day=speech.day(last_day, today=today), window=self._describe(call)
                )
                return Ask(join(prefix, beyond))
        if prefs.any():
            nearest = await self._nearest(call, visit)
            self.state = State.RELAX
            if nearest is not None:
                # the nearest time outside what was asked, offered as one option (a yes books it)
                self.offers, self.state = [nearest], State.CHOOSE_SLOT
                option = speech.offer(nearest, call.zone, today=today)
                text = templates.NO_SLOTS_NEAREST.format(window=self._describe(call), option=option)
                return Ask(join(prefix, text))
            return Ask(join(prefix, templates.NO_SLOTS.format(window=self._describe(call))))
        return Closed("cannot_complete", join(prefix, templates.NO_SLOTS_AT_ALL), end_if_declined=False)

    async def _nearest(self, call: CallContext, visit: VisitType | None) -> SlotOffer | None:
        """The first free time after the caller's window (the same practitioner if one was named)."""
        prefs = self.prefs
        start = call.at_midnight(prefs.date_from) if prefs.date_from else None
        found = await self._free(call, start=start, end=None, window=None, visit=visit)
        return found[0] if found else None

    def _describe(self, call: CallContext) -> str:
        prefs, today, parts = self.prefs, call.today(), []
        directory = call.directory
        if prefs.schedule_id and directory and (s := directory.schedule(prefs.schedule_id)):
            parts.append(f"with {s.practitioner}")
        if prefs.date_from is not None:
            if prefs.date_to in (None, prefs.date_from):
                parts.append(speech.on_day(prefs.date_from, today=today))
            else:
                assert prefs.date_to is not None
                first, last = speech.day(prefs.date_from, today=today), speech.day(prefs.date_to, today=today)
                parts.append(f"between {first} and {last}")
        if prefs.not_before and prefs.not_after:
            parts.append(f"between {clock_words(prefs.not_before)} and {clock_words(prefs.not_after)}")
        elif prefs.not_before:
            parts.append(f"after {clock_words(prefs.not_before)}")
        elif prefs.not_after:
            parts.append(f"before {clock_words(prefs.not_after)}")
        return " ".join(parts) or "then"
