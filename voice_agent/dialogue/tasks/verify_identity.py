"""``VerifyIdentity -> PatientRef``: the caller's name and date of birth, matched to exactly one record.

A name heard over the phone is the fragile signal; the date of birth (spoken or keyed) and a spelled
surname are the robust ones. So when the name and date do not match one record exactly, the caller is
asked to spell their last name, and the record is then looked up by that spelling and the date, with the
heard given name only having to sound like the record's (``Scheduling.find_patient_spelled``). The
surname may be keyed instead, one press per letter (``Scheduling.find_patient_keyed``): the keys must
spell the record's surname exactly, and a wrong keyed surname fails as a wrong spelling does. The
spelling is asked for after every inexact match, whether or not anything was found, so the question
itself tells the caller nothing; a wrong name or date still never verifies.

The heard given name is only trusted (compared by sound) when the name was heard clearly and the surname
heard agrees with the one spelled. Otherwise - a name heard only as ordinary words ("Siobhan Okonkwo" as
"your honor, Conquale"), or a surname heard wrong ("Okonquo" for OKONKWO), whose given name came through
the same bad line - the first name is spelled or keyed too and compared as the surname is; mumbling
never skips the check. Whether that second spelling is asked depends only on what the caller said,
never on the records.

The call's failed attempts are counted on the call (never reset by anything the caller does), and across
calls by the identity gate; every failure gets the same words at the same attempt, whether no record
matched, one with another birth date, several the calling number could not tell apart, or the name is
locked: the caller learns nothing of the records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fhir_adapters import GivenSpelling, PatientRef
from fhir_adapters.keypad import keypad_digits
from fhir_adapters.spelling import spelled_alike
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.context import CallContext
from voice_agent.dialogue.keypad import keyed_date, keyed_surname
from voice_agent.dialogue.reply import SPELLING_STATES, State
from voice_agent.dialogue.tasks.base import Ask, Closed, DialogueTask, Done, Step
from voice_agent.dialogue.understanding import Understood, spoken
from voice_agent.dialogue.understanding.rules.confidence import HIGH
from voice_agent.privacy import remember_name

__all__ = ["MAX_VERIFICATION_ATTEMPTS", "VerifyIdentity", "verification_spent"]

MAX_VERIFICATION_ATTEMPTS = 3
_NAME_SPLITS = 3


def verification_spent(call: CallContext) -> bool:
    """The call's failed attempts are used up: there is no path back into verification in it."""
    return call.session.patient is None and call.failed_attempts >= MAX_VERIFICATION_ATTEMPTS


def closed() -> Closed:
    return Closed("verification_failed", templates.VERIFY_FAILED_FINAL, end_if_declined=True)


class VerifyIdentity(DialogueTask[PatientRef]):
    def __init__(self) -> None:
        self.state = State.NAME
        self._name: tuple[str, str] | None = None
        self._born: date | None = None
        self._heard_clearly = False  # the name reader was sure of the name: its given name can be compared
        self._asked_again = False  # the name was asked for again once already
        self._family: tuple[str | None, str | None] = (None, None)  # the surname as (spelled, keyed)
        self._born_spoken = False  # the date was heard, not keyed: it is read back, and may be corrected

    async def start(self, call: CallContext) -> Step[PatientRef]:
        if verification_spent(call):
            return closed()
        return Ask(templates.VERIFY_INTRO)

    async def handle(self, answer: Understood, call: CallContext) -> Step[PatientRef]:
        if verification_spent(call):
            return closed()
        slots = answer.slots
        if self.state in SPELLING_STATES:
            spelled = _spelled(slots.given_name, slots.family_name)
            if spelled is None and slots.birth_date is not None and self._correctable():
                # "No, July 25th": the date read back was misheard; the new one is looked up as the first
                # was (and the first counts as a failed try, so a correction is no free guess)
                return await self._verify(slots.birth_date, call, spoken=True)
            if spelled is None:
                return Ask(self._spell_again(), stalled=True)
            remember_name(spelled)  # scrubbed from this call's log lines, as the heard name is
            return await self._spelling(call, letters=spelled)
        if self.state is State.BIRTH_DATE and not (slots.given_name and slots.family_name):
            if slots.birth_date is None:
                return Ask(templates.ASK_BIRTH_DATE_AGAIN, stalled=True)
            return await self._verify(slots.birth_date, call, spoken=True)
        heard = slots.given_name or slots.family_name
        if not (slots.given_name and slots.family_name) and not (heard and self._asked_again):
            self._asked_again = self.state is State.NAME
            return Ask(templates.ASK_NAME_AGAIN, stalled=True)
        # a name (again, or corrected at the date question): the last one said is the one checked. A
        # name heard as one word twice ("Xiaobanakanko") goes on to the birth date and the spellings
        # rather than round the same question until the progress limit.
        self._name = (slots.given_name or "", slots.family_name or heard or "")
        self._heard_clearly = answer.confidence >= HIGH and bool(slots.given_name and slots.family_name)
        remember_name(f"{slots.given_name} {slots.family_name}")
        if slots.birth_date is not None:
            return await self._verify(slots.birth_date, call, spoken=True)
        self.state = State.BIRTH_DATE
        return Ask(templates.ASK_BIRTH_DATE)

    async def keyed(self, digits: str, call: CallContext) -> Step[PatientRef] | None:
        if self.state in SPELLING_STATES:
            keys = keyed_surname(digits)
            if keys is None:
                return Ask(templates.ASK_SPELL_SURNAME_KEYED_AGAIN, stalled=True)
            return await self._spelling(call, keys=keys)
        if self.state is not State.BIRTH_DATE:
            return None
        born = keyed_date(digits, today=call.today())
        if born is None:
            return Ask(templates.ASK_BIRTH_DATE_KEYED_AGAIN, stalled=True)
        return await self._verify(born, call)

    def question(self) -> str:
        if self.state is State.SPELL_SURNAME:
            return templates.ASK_SPELL_SURNAME
        if self.state is State.SPELL_GIVEN:
            return templates.ASK_SPELL_GIVEN
        return templates.ASK_BIRTH_DATE if self.state is State.BIRTH_DATE else templates.ASK_NAME

    def complete(self, words: str, call: CallContext) -> bool:
        text = spoken.spoken_numbers(spoken.fold(words))
        if self.state is State.BIRTH_DATE:
            born, _ = spoken.parse_birth_date(text, call.today())
            return born is not None
        return False  # a name: whether it is whole is not known from the words alone

    def awaits_more(self, words: str, call: CallContext) -> bool:
        if self.state in SPELLING_STATES:
            # letters come with pauses between them: "O K O ... N K W O" is one answer
            return spoken.spelled_so_far(words)
        if self.state is not State.BIRTH_DATE:
            return False
        born, said = spoken.parse_birth_date(spoken.spoken_numbers(spoken.fold(words)), call.today())
        return born is None and said

    def _claimed(self, call: CallContext) -> dict[str, str | None]:
        assert self._name is not None
        return {
            "name": " ".join(self._name),
            "number": call.session.caller_number,
            "source": call.session.source,
        }

    def _correctable(self) -> bool:
        """A spoken date was read back with the surname question, and nothing is spelled yet."""
        return self.state is State.SPELL_SURNAME and self._born_spoken and self._family == (None, None)

    async def _verify(self, born: date, call: CallContext, *, spoken: bool = False) -> Step[PatientRef]:
        claimed = self._claimed(call)
        assert self._name is not None
        if self._born is not None and born != self._born:
            # another date after one that matched nobody (a correction, or the date again after a "no"):
            # the first was a try, counted as any failed one is, without saying so
            await _count_failure(claimed, call)
            if call.failed_attempts >= MAX_VERIFICATION_ATTEMPTS:
                return await self._failed(claimed, call, counted=True)
        found: list[PatientRef] = []
        if call.gate is None or not await call.gate.locked(**claimed):  # locked: no lookup at all
            for given, family in name_splits(*self._name):
                for ref in await call.scheduling.find_patient(given=given, family=family, birth_date=born):
                    if ref not in found:
                        found.append(ref)
                if found:
                    break
            found = await _told_apart(found, call)
        if len(found) == 1:
            self._name = None
            return Done(found[0], said=templates.VERIFIED)
        # Not one exact match (none, several, or locked): the spelling, asked for in every case alike,
        # with a spoken date read back (what the caller said, never what a record holds).
        self._born, self._born_spoken, self.state = born, spoken, State.SPELL_SURNAME
        if spoken:
            return Ask(templates.ASK_SPELL_SURNAME_HEARD_DATE.format(born=speech.birth_date(born)))
        return Ask(templates.ASK_SPELL_SURNAME)

    def _spell_again(self) -> str:
        if self.state is State.SPELL_GIVEN:
            return templates.ASK_SPELL_GIVEN_AGAIN
        return templates.ASK_SPELL_SURNAME_AGAIN

    async def _spelling(
        self, call: CallContext, *, letters: str | None = None, keys: str | None = None
    ) -> Step[PatientRef]:
        """A spelling (``letters``) or keys arrived: the surname's, then (after a name not heard
        clearly) the first name's too; then the lookup."""
        if self.state is State.SPELL_SURNAME:
            self._family = (letters, keys)
            if not (self._heard_clearly and self._surname_heard_right(letters, keys)):
                self.state = State.SPELL_GIVEN
                return Ask(templates.ASK_SPELL_GIVEN)
            return await self._verify_spelled(call, None)
        return await self._verify_spelled(call, GivenSpelling(letters=letters, keys=keys))

    def _surname_heard_right(self, letters: str | None, keys: str | None) -> bool:
        """Whether the surname heard agrees with the one spelled or keyed: if it was misheard, the given
        name, heard in the same breath, is no better, and is spelled too. A comparison of the caller's
        own words, never of the records, so asking reveals nothing."""
        assert self._name is not None
        heard = self._name[1]
        if keys is not None:
            return keypad_digits(heard) == keys
        return letters is not None and spelled_alike(heard, letters) and spelled_alike(letters, heard)

    async def _verify_spelled(self, call: CallContext, given: GivenSpelling | None) -> Step[PatientRef]:
        """The surname as spelled or keyed, with the birth date already given (and the first name spelled
        or keyed, ``given``, when it was not heard clearly): one record, or the same failure whichever
        way the names came and whatever was found."""
        assert self._name is not None and self._born is not None
        claimed = self._claimed(call)
        found: list[PatientRef] = []
        family, keys = self._family
        if call.gate is None or not await call.gate.locked(**claimed):
            heard_given, born = self._name[0], self._born
            if keys is not None:
                found = await call.scheduling.find_patient_keyed(
                    heard_given=heard_given, keys=keys, birth_date=born, given=given
                )
            elif family is not None:
                found = await call.scheduling.find_patient_spelled(
                    heard_given=heard_given, family=family, birth_date=born, given=given
                )
            found = await _told_apart(found, call)
        if len(found) == 1:
            self._name = self._born = None
            self._family = (None, None)
            return Done(found[0], said=templates.VERIFIED)
        return await self._failed(claimed, call)

    async def _failed(
        self, claimed: dict[str, str | None], call: CallContext, *, counted: bool = False
    ) -> Step[PatientRef]:
        self._name = self._born = None
        self._asked_again = self._born_spoken = False
        self._family = (None, None)
        if not counted:
            await _count_failure(claimed, call)
        if call.failed_attempts >= MAX_VERIFICATION_ATTEMPTS:
            return closed()
        self.state = State.NAME
        return Ask(templates.VERIFY_FAILED_RETRY)


async def _count_failure(claimed: dict[str, str | None], call: CallContext) -> None:
    """One failed attempt: on the call, and across calls by the identity gate."""
    if call.gate is not None:
        await call.gate.failed(**claimed)
    call.failed_attempts += 1


def name_splits(given: str, family: str) -> Sequence[tuple[str, str]]:
    """The split as heard first, then the other ways to cut a multi-word name ("Mary Jane Smith Jones")."""
    words = f"{given} {family}".split()
    splits = [(given, family)]
    for cut in range(1, len(words)):
        candidate = (" ".join(words[:cut]), " ".join(words[cut:]))
        if candidate not in splits:
            splits.append(candidate)
    return splits[:_NAME_SPLITS]


async def _told_apart(found: list[PatientRef], call: CallContext) -> list[PatientRef]:
    """Two records share this name and birth date: the attested calling number may tell them apart
    (never the number alone: it only narrows what name and date already matched)."""
    if len(found) > 1 and call.session.caller_number:
        number = call.session.caller_number
        found = [ref for ref in found if await call.scheduling.phone_on_record(ref, number)]
    return found


def _spelled(given: str | None, family: str | None) -> str | None:
    """The surname the caller spelled, as the name reader gave it back: the one word of an answer that
    was only letters ("O K O N K W O" -> "Okonkwo"), or the surname of a name said with its spelling."""
    return family or given
