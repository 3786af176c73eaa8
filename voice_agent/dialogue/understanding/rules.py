"""Deterministic understanding: patterns over the caller's words, disambiguated by the question asked.

Why rules at all: they answer in microseconds on every turn, never invent a practitioner, a slot or a
date, and they are the safety net when the LLM is absent, slow or wrong. Their confidence is honest
(>= 0.85 only when a clear pattern matched and the current question got its answer; < 0.6 when guessing;
UNKNOWN <= 0.3), so the hybrid backend asks the LLM exactly when the rules are unsure.

Interpretation rules (dates, times and numbers: see :mod:`.spoken`):

* Guardrails (:mod:`.guardrails`) run first and win: emergency and crisis -> EMERGENCY, then
  CHANGE_RULES, OTHER_PERSON, MEDICAL_ADVICE, all at 0.95.
* Names (after "full name?"): given = every word but the last, family = the last word. A hyphenated
  or apostrophe surname is one word; surname particles (O, Mc, de, la, van, ...) before the last word
  join the family name while a given name remains ("Siobhan O Brien" -> Siobhan / O Brien,
  "Al Ng" -> Al / Ng). "Smith, John" (with a comma) is family first. Text is kept as said, except that an
  all-lower or all-upper name is title-cased. The dialogue tries the other splits itself.
* Practitioners: accent-, case- and punctuation-blind match on the full name, the surname or one part
  of a double-barrelled surname, the given name, or an alias; a trailing "s" is tolerated ("doctor
  parks"), and one spelling slip for names of five letters or more. A bare given name, or a surname of
  four letters or fewer (Park: "where do I park?"), counts only after "doctor", "with", "see" and the
  like, or when the question was about whom. Ambiguous or unknown -> no practitioner and
  confidence <= 0.5.
* Visit types: code, display, aliases and common phrasings (physical/check-up, follow up, shot/vaccine,
  video/virtual/phone visit, new patient/first visit), only when the phrase points at exactly one of
  the clinic's visit types.
* Options: "the first/second/last one", "number two", "the 10:30", "the one with Dr. Park", "the
  Friday one", matched against what was just offered; a pick that is not unique is no pick.
* "look at an appointment" is read as Whisper's mishearing of "book an appointment", with confidence
  0.55 so the LLM, when there is one, has the last word.
* Yes/no: a whole utterance of affirmations ("yeah that's right thanks") is a sure AFFIRM; a leading
  "yes" before other words is a likely one; "yes, no, wait" is UNKNOWN. After "anything else?" a "no"
  is NOTHING_ELSE. A task named after any question ("actually, cancel it") switches the task.
* Only a clear booking verb, a practitioner or a visit type makes a bare answer a BOOK; a date alone
  after "How can I help?" is PROVIDE_INFO at 0.5.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Final

from .base import (
    DirectoryEntry,
    Expectation,
    Intent,
    Offered,
    Slots,
    UnderstandingContext,
    Understood,
    VisitTypeEntry,
)
from .corrections import corrected
from .guardrails import intent_of, screen_folded
from .spoken import MAX_CHARS, WEEKDAYS, When, find_phone, fold, parse_birth_date, parse_when, spoken_numbers

__all__ = ["RulesUnderstanding"]

log = logging.getLogger(__name__)

SURE: Final = 0.95
HIGH: Final = 0.9
MEDIUM: Final = 0.75
GUESS: Final = 0.5
NOTHING: Final = 0.2

_CHOOSING: Final = frozenset({Expectation.CHOOSE_SLOT, Expectation.CHOOSE_APPOINTMENT})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# --------------------------------------------------------------------------------------------------
# Normalisation

_YES_SOUNDS: Final = re.compile(r"\b(?:uh[ -]?huh|mm[ -]?hmm+|mhm+|mm+ hm+)\b")
_MERIDIEM_DOTS: Final = re.compile(r"\b([ap])\. ?m\b\.?")
_MERIDIEM_GLUED: Final = re.compile(r"(\d)([ap])m\b")
_MERIDIEM_SPACED: Final = re.compile(r"(\d) ([ap]) m\b")
_OCLOCK: Final = re.compile(r"\bo ?clock\b")
_NON_WORD: Final = re.compile(r"[^\w\s:/.\-]|_")
_LONE_PUNCT: Final = re.compile(r"(?<!\d)[:/.]|[:/.](?!\d)")
_HYPHEN: Final = re.compile(r"(?<!\d)-|-(?!\d)")
_MOMENT: Final = re.compile(r"\b(?:just |wait |hold on |hang on )?(?:a|one) (?:second|sec|minute|moment)\b")
_FILLER: Final = re.compile(r"\b(?:um+|uh+|uhm+|erm+|er|ah+|hmm+|hm+|mm+|eh|you know|i mean)\b")


@dataclass(frozen=True)
class _Text:
    raw: str  # capped original: names keep their accents and case
    folded: str  # lower-case, accent-free: what the guardrails read
    words: str  # no punctuation, apostrophes or fillers: what the intent patterns read
    num: str  # ``words`` with spoken numbers as digits: dates, times, options, phone numbers


def _prepare(utterance: str) -> _Text:
    raw = utterance[:MAX_CHARS]
    folded = fold(raw)
    text = _YES_SOUNDS.sub(" yes ", folded.replace("'", ""))
    text = _MERIDIEM_DOTS.sub(r"\1m", text)
    text = _MERIDIEM_SPACED.sub(r"\1 \2m", _MERIDIEM_GLUED.sub(r"\1 \2m", text))
    text = _OCLOCK.sub(" oclock ", text)
    text = _HYPHEN.sub(" ", _LONE_PUNCT.sub(" ", _NON_WORD.sub(" ", text)))
    text = _FILLER.sub(" ", _MOMENT.sub(" moment ", text))
    words = " ".join(text.split())
    return _Text(raw, folded, words, spoken_numbers(words))


# --------------------------------------------------------------------------------------------------
# Intent patterns (over ``_Text.words``)

_RESCHEDULE: Final = _rx(
    r"\bre ?schedul\w*",
    r"\bre ?book\w*",
    r"\bmove (?:my|the|it|that|this|our)\b",
    r"\b(?:change|switch|shift|swap|adjust) (?:the |my |that |this |our )?(?:appointment|appt|time|date|day"
    r"|booking|visit|slot)s?\b",
    r"\b(?:push|bump|put) (?:it|my appointment|the appointment|that|this) (?:back|forward|off|later"
    r"|earlier|up)\b",
    r"\bbring (?:it|my appointment|the appointment|that) (?:forward|earlier|up)\b",
    r"\bpostpon\w*",
)
_RESCHEDULE_WEAK: Final = re.compile(r"\b(?:different|another|other|new) (?:time|day|date)\b")
_CANCEL: Final = _rx(
    r"\bcancel\w*\b(?! (?:policy|fee|fees|charge))",
    r"\bcall off\b",
    r"\b(?:remove|delete|drop|scrap) (?:my|the|that|this) (?:appointment|appt|booking|visit)\b",
    r"\b(?:dont|no longer) need (?:the|my|that) appointment\b",
)
_CANCEL_WEAK: Final = re.compile(
    r"\b(?:cant|cannot|can not|wont be able to|not able to|unable to|wont) "
    r"(?:make|come|attend|keep|be there)\b"
)
_CANT_CLAUSE: Final = re.compile(
    r"\b(?:cant|cannot|can not|wont be able to|not able to|unable to|wont) "
    r"(?:make|come|attend|keep|be there|do)\b.*?(?=\b(?:can we|could we|can i|could i|how about|what about"
    r"|maybe|instead|but|do you have|is there|lets|would|move|switch|change)\b|$)"
)
_LIST: Final = _rx(
    r"\bwhen (?:is|s|was) (?:my|our) (?:next |upcoming |scheduled |current |existing )?(?:appointment|appt"
    r"|visit|booking)\b",
    r"\bwhat (?:time|day|date) is (?:my|our)\b",
    r"\b(?:do|did) i (?:have|got) (?:anything|any appointments?|an appointment|something|a booking"
    r"|any bookings?|appointments?) (?:booked|scheduled|coming up|set up|made|on file|with you|lined up)\b",
    r"\b(?:do|did) i (?:have|got) (?:any|an) (?:upcoming )?(?:appointments?|bookings?)\b",
    r"\b(?:what|which) appointments? (?:do i have|have i got|am i (?:booked|scheduled))",
    r"\bam i (?:booked|scheduled|on the schedule|down for)\b",
    r"\b(?:check|confirm|verify|look up|list|tell me|read me|remind me (?:of|about)|find|review|check on"
    r"|see) (?:on )?(?:my|our) (?:upcoming |next |existing |current |scheduled )?(?:appointment|appointments"
    r"|appt|booking|bookings|visit|visits)\b",
    r"\b(?:my|our) (?:upcoming|next|scheduled|existing|current) (?:appointments?|visits?|bookings?)\b",
    r"\bwhen am i (?:coming in|seeing|supposed to|due|booked|scheduled|in)\b",
    r"\bwhen do i (?:come in|see|have)\b",
    r"\b(?:list|all) (?:of )?my appointments\b",
)
_AVAILABILITY: Final = _rx(
    r"\bwhat (?:do|did|would|does) (?:you|u|ya|they|he|she|dr \w+|doctor \w+|the doctor)(?: guys)? have\b",
    r"\bwhat (?:times?|days?|slots?|dates?|appointments?|openings?|availability)\b(?! (?:is|was) my\b)",
    r"\b(?:is|are) (?:dr|doctor) \w+(?: \w+)? (?:free|available|open|in|working|around|off|booked|busy)\b",
    r"\b(?:is|are) (?:the doctor|she|he|they|anyone|anybody|someone|somebody|anything) (?:free|available"
    r"|open|in|working)\b",
    r"\bany (?:openings?|availability|slots?|spots?|appointments? (?:available|open|left|free)|times? "
    r"(?:available|open|free))\b",
    r"\b(?:whats|what is) (?:available|open|free|(?:your|the) (?:next|1st|first|earliest|soonest))\b",
    r"\b(?:do|does) (?:you|dr \w+|doctor \w+|she|he|they|the doctor)(?: guys)? (?:have|got) (?:anything"
    r"|any\w*|something|an opening|openings|availability|time|room|space|a slot|slots|a spot)\b",
    r"(?<!im )(?<!i am )\bavailab\w*",
    r"\bopenings?\b",
    r"\bwhen (?:is|can|could|would|will|does) (?:dr|doctor|the doctor|someone|anyone|she|he)\b",
    r"\bwhen can i (?:come in|get in|be seen|see|get an appointment|get seen)\b",
    r"\bhow soon can\b",
)
_BOOK: Final = _rx(
    r"\bbook(?:ing|ed)?\b",
    r"\bmake (?:an? |another |a new |one more )?(?:appointment|appt|booking|reservation)\b",
    r"\b(?:schedule|set up|arrange|get|need|want|like|request|require) (?:me )?(?:in )?(?:for )?(?:an? "
    r"|another |a new |one more |my )?(?:appointment|appt|physical|check ?up|consultation|consult|visit|exam"
    r"|flu shot|shot|vaccine|vaccination|follow up|telehealth|video visit)\b",
    r"\bsee (?:a |the |my )?(?:dr|doctor|physician|provider|nurse|someone|somebody)\b",
    r"\bcome in (?:for|to see|and see)\b",
    r"\b(?:like|want|need|wanna|have) to come in\b(?! (?:early|late))",
    r"^(?:(?:an?|new|one) )?appointment(?: please| thanks| thank you)*$",
    r"\ba new appointment\b",
    r"\bappointment (?:with|for)\b",
    r"\bschedul(?:e|ing)\b",
    r"\bfit me in\b",
    r"\bget (?:me )?in to see\b",
    r"\bbe seen\b",
)
_BOOK_AGAIN: Final = re.compile(
    r"\b(?:book|make|schedule|get|set up) (?:a new|another|a different|one for|it for|me for|for)\b"
    r"|\band (?:re)?book\b"
)
_BOOK_MISHEARD: Final = re.compile(
    r"\b(?:like to|want to|wanna|need to|can i|could i|id like to) (?:look|look at|lock|cook) (?:an?|another"
    r"|a new|in an?) (?:appointment|appt|visit|physical|check ?up)\b"
)
_HUMAN: Final = _rx(
    r"\b(?:speak|talk|transfer|connect|put|patch|get)(?: me)?(?: through)? (?:to|with|me to)? ?(?:an? |the "
    r"|some |your |a real |a live |an actual |real |live )?(?:person|human|human being|someone|somebody"
    r"|receptionist|operator|representative|rep|agent|staff|staff member|front desk|nurse"
    r"|secretary|manager)\b",
    r"\b(?:operator|representative|receptionist|front desk|real person|live person|actual person"
    r"|human being|a human|live agent|human agent|real agent|customer service)\b",
    r"^(?:an? |the )?(?:agent|human|person|operator|representative)(?: please)?$",
    r"\btransfer me\b",
)
_NOT_HUMAN_QUESTION: Final = re.compile(
    r"\b(?:are you|am i talking to) (?:a |an )?(?:real|human|robot|person|bot)"
)
_REPEAT: Final = _rx(
    r"\brepeat\b",
    r"\bsay (?:that|it|those|them|the \w+) again\b",
    r"\bcome again\b",
    r"\bpardon\b",
    r"\bwhat did you (?:just )?say\b",
    r"\b(?:didnt|did not|couldnt|could not|cant|cannot) (?:catch|hear|understand|get) (?:that|you|it|what you"
    r"|the)\b",
    r"\b(?:one more|once more) time\b",
    r"\bsay again\b",
    r"\bgo (?:over|through) (?:that|those|them|it) again\b",
    r"\bread (?:that|those|them|it|the \w+) (?:again|back)\b",
    r"\bsorry what\b",
    r"\bwhat was that\b",
    r"\bspeak up\b",
    r"\bslow down\b",
    r"^(?:what|huh|sorry|im sorry|pardon|pardon me|eh|excuse me|say what)$",
)
_GOODBYE: Final = _rx(
    r"\b(?:bye|goodbye|good bye|bye bye|byebye|see you|see ya|talk (?:to you )?later|take care|cheers)\b",
    r"\bhave a (?:good|nice|great|lovely|wonderful) (?:day|one|night|evening|afternoon|weekend)\b",
    r"\b(?:im|i am|ill|i will|gonna|going to) hang(?:ing)? up\b",
)
_NOTHING_ELSE: Final = _rx(
    r"\b(?:thats|that is|that was|itll be|that will be|thatll be) (?:all|it|everything)\b",
    r"\bnothing (?:else|more)\b",
    r"\b(?:im|i am|were|we are) (?:good|all set|fine|done|set|all good|sorted)\b",
    r"\ball (?:set|good|done)\b",
    r"\bthat should be (?:it|all)\b",
    r"\bthats all i need(?:ed)?\b",
    r"^no(?: thanks?| thank you)+$",
)


def _phrases(*texts: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(p.split()) for text in texts for p in text.split("|"))


# Whole-utterance answers are matched phrase by phrase over the words, not by one regex: a regex of
# overlapping alternatives under a star backtracks exponentially on "yes that one that one ... x".
_AFFIRM_CORE: Final = _phrases(
    "yes|yeah|yep|yup|ya|yah|yea|yes sir|yes maam|sure|sure thing|certainly|correct|right|ok|okay|okey",
    "alright|all right|absolutely|definitely|perfect|great|exactly|indeed|affirmative|of course|please do",
    "fine|good|cool|awesome|sounds good|sounds great|sounds perfect|sounds fine|that works|works for me",
    "that would be great|that would be perfect|that would work|thatd be great|thatll work|go ahead",
    "go for it|do it|do that|book it|book that|book me|lets do it|lets do that|lets book it|confirm",
    "confirmed|yes please|thats right|that is right|thats correct|that is correct|thats fine|thats perfect",
    "thats great|thats good|you got it|i do|i would|it is|true|totally|for sure|you bet|yes it is",
    "yes i am|yes i do|it does|that does|go on|please book it|that sounds good|that sounds great",
)
_AFFIRM_EXTRA: Final = _phrases(
    "please|thanks|thank you|oh|so|and|that|one|it|then|very much|much|well|ah|sir|maam"
)
_AFFIRM_LEAD: Final = re.compile(
    r"^(?:oh |well |so )?(?:yes|yeah|yep|yup|ya|yea|yah|sure|correct|ok|okay|alright|all right|absolutely"
    r"|definitely|perfect|great|exactly|of course|right)\b"
)
_AFFIRM_PHRASE: Final = re.compile(
    r"\b(?:thats (?:right|correct|perfect)|that is (?:right|correct)|please do|go ahead|book it|book that"
    r"|lets do (?:it|that)|sounds (?:good|great|perfect)|(?<!doesnt )(?<!dont )(?<!wont )(?<!not )"
    r"(?:that|it) works|works for me|yes please|that would be (?:great|perfect|fine)|please book"
    r"|you got it)\b"
)
_DENY_CORE: Final = _phrases(
    "no|nope|nah|na|negative|not really|not quite|not exactly|neither|neither one|neither of those",
    "neither of them|neither of these|none|none of those|none of them|none of these|incorrect|wrong",
    "thats wrong|thats not right|that is not right|thats not correct|not correct|thats incorrect",
    "i dont think so|dont|do not|dont book it|please dont|no way|not at all|not that|not that one",
    "not those|nothing|i dont want that|i dont want it|i dont want those|i dont want them",
    "i dont want any of those|i dont want any of them|that doesnt work|it doesnt work|those dont work",
    "that wont work|it wont work|those wont work|doesnt work|wont work|not good|no good|none work",
    "none of them work|none of those work",
)
_DENY_EXTRA: Final = _phrases(
    "thanks|thank you|sorry|for me|actually|that|one|though|oh|please|either|well|ah|um"
)
_LONGEST_PHRASE: Final = max(len(p) for p in _AFFIRM_CORE | _AFFIRM_EXTRA | _DENY_CORE | _DENY_EXTRA)


def _only(words: str, core: frozenset[tuple[str, ...]], extra: frozenset[tuple[str, ...]]) -> bool:
    """Whether the words are nothing but known phrases, at least one of them from ``core`` (linear)."""
    tokens = words.split()
    if len(tokens) > 20:
        return False
    reach = [0] * (len(tokens) + 1)  # 0: unreachable, 1: reachable, 2: reachable through a core phrase
    reach[0] = 1
    for i in range(len(tokens)):
        if not reach[i]:
            continue
        for j in range(i + 1, min(len(tokens), i + _LONGEST_PHRASE) + 1):
            piece = tuple(tokens[i:j])
            if piece in core:
                reach[j] = 2
            elif piece in extra:
                reach[j] = max(reach[j], reach[i])
    return reach[-1] == 2


_DENY_LEAD: Final = re.compile(r"^(?:oh |well |actually )?(?:no|nope|nah|not really|neither|none)\b")
_DENY_PHRASE: Final = re.compile(
    r"\b(?:none of (?:those|them|these)|neither (?:of (?:those|them|these)|one)|(?:that|those|these|it|they)"
    r" (?:doesnt|dont|does not|do not|wont|will not) work|thats (?:not right|wrong|incorrect|not correct"
    r"|not it)|that is (?:not right|wrong|incorrect)|not (?:that|those) ones?|dont book|do not book"
    r"|i dont think so|thats not me)\b"
)
_DENY_WORD: Final = re.compile(
    r"\b(?:no|nope|nah)\b(?! (?:problem|worries|rush|hurry|preference|idea|matter))"
)
_HESITATION: Final = re.compile(r"\b(?:wait|hold on|hang on|let me think|not sure|i dont know|maybe)\b")
_SAME_NUMBER: Final = re.compile(
    r"\b(?:this|same|my|the) (?:number|phone|cell)"
    r"(?: (?:im|i am) calling (?:from|on)| is fine| works| is good)?\b"
    r"|\bnumber (?:im|i am) calling (?:from|on)\b"
)
_PHONE_CUE: Final = re.compile(
    r"\b(?:number|phone|cell|mobile|call me|reach me|call back|callback|call me back|text me)\b"
)
_SELF_INTRO: Final = re.compile(r"\b(?:my name is|my names|this is|i am|im) \w+(?: \w+)?")
_NAME_CUE: Final = re.compile(r"\b(?:dr|doctor|with|see|seeing|saw|prefer|is)\b")
_DOCTOR_WORD: Final = re.compile(r"\b(?:dr|doctor) (?P<w>[a-z]{2,})\b")


# --------------------------------------------------------------------------------------------------
# Directory: practitioners and visit types, compiled once per clinic directory

_PARTICLES: Final = _words(
    "o mc mac de del della der den van von da di du dos das la le st saint ter ten bin ibn al el ben y"
)
_TITLE: Final = re.compile(r"^(?:dr|doctor|prof|professor|mr|mrs|ms|miss|mx|nurse)\.?\s+")
_DEGREE: Final = re.compile(r",?\s+(?:md|do|np|pa|rn|phd|dds|fnp|dnp|pa c)\.?$")
_NON_NAME: Final = re.compile(r"[^a-z0-9' \-]+")
_SEPARATORS: Final = re.compile(r"[ '\-]+")
_DOUBLES: Final = re.compile(r"(.)\1+")
# Words that are never a practitioner's name, so "doctor appointment" is not an unknown doctor and
# fuzzy matching does not turn common words into names.
_COMMON: Final = _words(
    "the a an and or of to in on at for with from by about is are was be been am do does did have has had "
    "can could would should will may might must not no yes please thanks thank you your my me we our us "
    "i it its this that these those there here what when where who why how which appointment appointments "
    "appt office visit visits today tomorrow tonight morning afternoon evening week weeks month next this "
    "monday tuesday wednesday thursday friday saturday sunday available free open anytime someone anyone "
    "book booking cancel reschedule schedule see seen speak talk call calling back soon soonest earliest "
    "first second third last earlier later time times slot slots physical checkup check follow shot flu "
    "vaccine video phone number doctor doctors dr office again other another else instead either neither "
    "none whoever whichever said says like want need needs just only also maybe right okay sure after "
    "before about around early late people person patient patients there their they them then than "
    "about would wants really think thing things please"
)


def _pattern_for(name: str, *, plural: bool = True) -> str:
    pieces = [re.escape(p) for p in _SEPARATORS.split(name) if p]
    return r"\b" + " ?".join(pieces) + (r"(?:s|es)?\b" if plural else r"\b")


def _phonetic(word: str) -> str:
    word = word.replace("ph", "f").replace("ck", "k").replace("'", "").replace("-", "").replace(" ", "")
    return _DOUBLES.sub(r"\1", word)


def _within_one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + 1 :] == b[i + 1 :] if len(a) == len(b) else a[i:] == b[i + 1 :]


def _clean_display(display: str) -> list[str]:
    text = _NON_NAME.sub(" ", fold(display)).strip()
    text = _DEGREE.sub("", _TITLE.sub("", text))
    return text.split()


def _split_words(words: list[str], key: list[str] | None = None) -> tuple[list[str], list[str]]:
    """given = all but the last word, family = the last word plus any particles before it."""
    keys = key if key is not None else words
    k = len(words) - 1
    while k - 1 >= 1 and keys[k - 1] in _PARTICLES:
        k -= 1
    return words[:k], words[k:]


@dataclass(frozen=True)
class _DirectoryMatcher:
    # (schedule_id, strength, pattern, needs a cue): a bare given name or a short surname that is also an
    # English word ("Park": "where do I park?") counts only after "doctor", "with", "see" ... or when the
    # question was about whom.
    keys: tuple[tuple[str, int, re.Pattern[str], bool], ...]
    any_key: re.Pattern[str]  # one pass to skip the per-key loop when no practitioner is named
    fuzzy: tuple[tuple[str, str], ...]  # (phonetic name, schedule_id)
    displays: dict[str, str]  # folded display -> schedule_id, to read Offered.practitioners either way


@lru_cache(maxsize=64)
def _directory(entries: tuple[DirectoryEntry, ...]) -> _DirectoryMatcher:
    keys: list[tuple[str, int, re.Pattern[str], bool]] = []
    fuzzy: list[tuple[str, str]] = []
    displays: dict[str, str] = {}
    for entry in entries:
        if len(entry.schedule_id) > 80:
            continue  # cannot be returned in a Slots; never matched
        displays[" ".join(_clean_display(entry.display))] = entry.schedule_id
        displays[fold(entry.display).strip()] = entry.schedule_id
        words = _clean_display(entry.display)
        if not words:
            continue
        given, family_words = _split_words(words)
        family = " ".join(family_words)
        if given:
            keys.append((entry.schedule_id, 3, re.compile(_pattern_for(" ".join([*given, family]))), False))
            first = given[0]
            if len(first) >= 3:
                keys.append((entry.schedule_id, 1, re.compile(_pattern_for(first, plural=False)), True))
                if len(first) >= 5:
                    fuzzy.append((_phonetic(first), entry.schedule_id))
        short = len(_phonetic(family)) <= 4
        keys.append((entry.schedule_id, 2, re.compile(_pattern_for(family)), short))
        fuzzy.append((_phonetic(family), entry.schedule_id))
        for part in re.split(r"[ \-]+", family):
            if part != family and len(part) >= 4 and part not in _PARTICLES:
                keys.append((entry.schedule_id, 2, re.compile(_pattern_for(part)), len(part) <= 4))
                if len(part) >= 5:
                    fuzzy.append((_phonetic(part), entry.schedule_id))
        for alias in entry.aliases:
            alias_words = _NON_NAME.sub(" ", fold(alias)).split()
            if alias_words:
                keys.append((entry.schedule_id, 3, re.compile(_pattern_for(" ".join(alias_words))), False))
    any_key = re.compile("|".join(p.pattern for _, _, p, _ in keys) or r"(?!x)x")
    return _DirectoryMatcher(tuple(keys), any_key, tuple(f for f in fuzzy if len(f[0]) >= 5), displays)


@dataclass(frozen=True)
class _PractitionerMatch:
    schedule_id: str | None
    mentioned: bool  # a practitioner was named, even if not resolved
    fuzzy: bool = False


def _match_practitioner(
    words: str, entries: tuple[DirectoryEntry, ...], *, eager: bool
) -> _PractitionerMatch:
    """``eager``: the question was about whom, so a bare or misspelt name is taken as a practitioner."""
    matcher = _directory(entries)
    best: dict[str, int] = {}
    if matcher.any_key.search(words):
        cued = eager or _NAME_CUE.search(words) is not None
        for schedule_id, strength, pattern, needs_cue in matcher.keys:
            if (cued or not needs_cue) and strength > best.get(schedule_id, 0) and pattern.search(words):
                best[schedule_id] = strength
    if best:
        top = max(best.values())
        winners = [sid for sid, strength in best.items() if strength == top]
        return _PractitionerMatch(winners[0] if len(winners) == 1 else None, True)
    mentioned = any(m.group("w") not in _COMMON for m in _DOCTOR_WORD.finditer(words))
    if eager or mentioned or _NAME_CUE.search(words) is not None:
        found = _fuzzy_practitioner(words, matcher)
        if found:
            return _PractitionerMatch(found.pop() if len(found) == 1 else None, True, True)
    return _PractitionerMatch(None, mentioned)


def _fuzzy_practitioner(words: str, matcher: _DirectoryMatcher) -> set[str]:
    """One slip of spelling ("O'Connel", "Sophia"), compared on a rough phonetic form."""
    tokens = words.split()
    candidates = {t for t in tokens if len(t) >= 5 and t not in _COMMON}
    candidates |= {a + b for a, b in itertools.pairwise(tokens) if len(a) <= 2 and b not in _COMMON}
    found: set[str] = set()
    for token in candidates:
        for variant in {_phonetic(token), _phonetic(token.rstrip("s"))}:
            for key, sid in matcher.fuzzy:
                if abs(len(key) - len(variant)) <= 1 and _within_one_edit(variant, key):
                    found.add(sid)
    return found


_CONCEPTS: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (
        ("physical", "annual", "wellness", "check up", "checkup"),
        r"\bphysicals?\b(?! therap)|\bcheck ?ups?\b(?! on)|\bannual (?:exam|visit|checkup|check up)\b"
        r"|\bwellness (?:visit|exam|check)\b|\byearly (?:exam|physical|checkup|check up)\b"
        r"|\broutine (?:exam|checkup|check up)\b|\bwell visit\b",
    ),
    (("follow",), r"\bfollow ?ups?\b|\bre ?check\b"),
    (
        ("vaccin", "immuni", "shot"),
        r"\bshots?\b|\bvaccin\w*|\bimmuni[sz]\w*|\bboosters?\b|\bjabs?\b",
    ),
    (
        ("tele", "virtual", "video", "remote"),
        r"\bvideo (?:visit|call|appointment|chat|consult\w*)\b|\bvirtual(?:ly)?\b|\btele ?health\b"
        r"|\btele ?medicine\b|\btele ?visit\b|\bphone (?:visit|appointment|consult\w*|call appointment)\b"
        r"|\bonline (?:visit|appointment)\b|\bby (?:phone|video)\b|\bzoom\b",
    ),
    (
        ("new patient", "first visit", "new client"),
        r"\bnew patient\b|\bfirst (?:visit|appointment)\b|\bfirst time (?:patient|here|visiting|coming)\b"
        r"|\bnever been (?:here|there|seen|before)\b|\bhavent been (?:here|seen) before\b"
        r"|\bnew to (?:the|your|this) (?:clinic|practice|office)\b|\bestablish care\b",
    ),
)
_VISIT_SUFFIX: Final = re.compile(r" (?:visit|appointment|appt)$")


@lru_cache(maxsize=64)
def _visit_types(entries: tuple[VisitTypeEntry, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    matchers: list[tuple[str, re.Pattern[str]]] = []
    labels: dict[str, str] = {}
    for entry in entries:
        if len(entry.code) > 60:
            continue
        names = {fold(entry.code), fold(entry.display), *(fold(a) for a in entry.aliases)}
        label = " ".join(re.sub(r"[^a-z0-9]+", " ", fold(f"{entry.code} {entry.display}")).split())
        labels[entry.code] = label
        for name in names:
            words = " ".join(re.sub(r"[^a-z0-9]+", " ", name.replace("'", "")).split())
            for variant in {words, _VISIT_SUFFIX.sub("", words)}:
                if variant and variant not in ("visit", "appointment"):
                    matchers.append((entry.code, re.compile(_pattern_for(variant))))
    for markers, pattern in _CONCEPTS:
        codes = [code for code, label in labels.items() if any(marker in label for marker in markers)]
        if len(codes) == 1:
            matchers.append((codes[0], re.compile(pattern)))
    return tuple(matchers)


def _match_visit_type(words: str, entries: tuple[VisitTypeEntry, ...]) -> tuple[str | None, bool]:
    """(the code, whether the phrase was ambiguous between several visit types)."""
    codes = {code for code, pattern in _visit_types(entries) if pattern.search(words)}
    if len(codes) == 1:
        return codes.pop(), False
    return None, len(codes) > 1


# --------------------------------------------------------------------------------------------------
# Options: "the second one", "the 10:30", "the one with Dr. Park"

_NOT_AN_OPTION: Final = re.compile(
    r"\b1st (?:available|thing|time|opening|possible|one available|slot available)\b"
)
_OPTION_INDEX: Final = re.compile(
    r"\b(?:option|number|choice|slot|no) (?P<n>[1-9])\b|(?<![\d:])\b(?P<o>[1-9])(?:st|nd|rd|th)\b(?! of\b)"
    r"|^(?:the |number |option )?(?P<b>[1-9])(?: one| please| thanks| thank you| is fine| works)*$"
    r"|^(?:the )?(?P<one>one)(?: please| thanks| thank you)*$"
)
_OPTION_LAST: Final = re.compile(
    r"\b(?:the )?(?:last|final|bottom) ?(?:one|option|slot|time|choice)?\b(?! (?:week|month|year|name))"
)
_OPTION_MIDDLE: Final = re.compile(r"\b(?:the )?middle(?: one)?\b")
_OPTION_EARLIEST: Final = re.compile(
    r"\b(?:the )?(?:earlier|earliest|sooner|soonest) (?:one|option|slot|time)\b"
)
_OPTION_LATEST: Final = re.compile(r"\b(?:the )?(?:later|latest) (?:one|option|slot|time)\b")
_OPTION_TIME: Final = re.compile(
    r"(?<![\d:/.])\b(?P<h>\d{1,2})(?:[:.](?P<m>[0-5]\d)| (?P<ms>[0-5]\d)\b)?(?! ?(?:st|nd|rd|th)\b)"
    r"(?: ?(?P<mer>am|pm|oclock))?\b"
)
_OPTION_TIME_PREP: Final = re.compile(r"(?:\bthe|\bat|\bfor) $")
_NOT_OPTION: Final = re.compile(r"\bnot (?:the )?(?:\d\w*|last|middle|earlier|later)\b")
_WEEKDAY_WORDS: Final = re.compile(r"\b(" + "|".join(WEEKDAYS) + r")s?\b")
_PART_OF_DAY: Final = re.compile(r"\b(morning|afternoon|evening)\b")


@dataclass(frozen=True)
class _Option:
    option: int | None
    attempted: bool  # the caller tried to pick but the pick fits several offers (or none by position)
    negated: bool = False


def _local(start: datetime, now: datetime) -> datetime:
    if start.tzinfo is not None and now.tzinfo is not None:
        return start.astimezone(now.tzinfo)
    return start


def _match_option(t: _Text, ctx: UnderstandingContext, practitioner: str | None) -> _Option:
    offered: Offered = ctx.offered
    count = max(len(offered.starts), len(offered.practitioners))
    limit = count if count else 3
    num = _NOT_AN_OPTION.sub(" ", t.num)
    negated = _NOT_OPTION.search(num) is not None

    m = _OPTION_INDEX.search(num)
    if m:
        n = 1 if m.group("one") else int(m.group("n") or m.group("o") or m.group("b"))
        return _Option(n if n <= limit else None, True, negated)
    if count and _OPTION_LAST.search(num):
        return _Option(count, True, negated)
    if count == 3 and _OPTION_MIDDLE.search(num):
        return _Option(2, True, negated)
    starts = [_local(s, ctx.now) for s in offered.starts]
    if starts and _OPTION_EARLIEST.search(num):
        return _Option(starts.index(min(starts)) + 1, True, negated)
    if starts and _OPTION_LATEST.search(num):
        return _Option(starts.index(max(starts)) + 1, True, negated)
    if not count:
        return _Option(None, False)

    candidates = set(range(count))
    attempted = False
    if starts:
        times = []
        for tm in _OPTION_TIME.finditer(num):
            prefix = num[max(0, tm.start() - 5) : tm.start()]
            if tm.group("m") or tm.group("ms") or tm.group("mer") or _OPTION_TIME_PREP.search(prefix):
                times.append(tm)
        if times:
            attempted = True
            hits: set[int] = set()
            for tm in times:
                hour, minute = int(tm.group("h")), int(tm.group("m") or tm.group("ms") or 0)
                mer = tm.group("mer")
                for i, s in enumerate(starts):
                    same_hour = (
                        s.hour == (hour % 12 + (12 if mer == "pm" else 0))
                        if mer in ("am", "pm")
                        else s.hour % 12 == hour % 12
                    )
                    if same_hour and s.minute == minute:
                        hits.add(i)
            candidates &= hits
        weekdays = {WEEKDAYS.index(w) for w in _WEEKDAY_WORDS.findall(num)}
        if weekdays:
            attempted = True
            candidates &= {i for i, s in enumerate(starts) if s.weekday() in weekdays}
        else:
            when = parse_when(num, ctx.now.date(), ordinals_are_days=False)
            if when.date_from is not None or when.date_to is not None:
                attempted = True
                lo = when.date_from or date.min
                hi = when.date_to or date.max
                candidates &= {i for i, s in enumerate(starts) if lo <= s.date() <= hi}
        part = _PART_OF_DAY.search(num)
        if part:
            attempted = True
            bounds = {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24)}[part.group(1)]
            candidates &= {i for i, s in enumerate(starts) if bounds[0] <= s.hour < bounds[1]}
    if practitioner is not None and offered.practitioners:
        attempted = True
        displays = _directory(ctx.practitioners).displays
        candidates &= {
            i
            for i, p in enumerate(offered.practitioners)
            if p == practitioner or displays.get(fold(p).strip()) == practitioner
        }
    if attempted and len(candidates) == 1:
        return _Option(candidates.pop() + 1, True, negated)
    # Several offers fit: an unfinished pick. None fits: a new wish ("what about Thursday"), not a pick.
    return _Option(None, attempted and len(candidates) > 1, negated)


# --------------------------------------------------------------------------------------------------
# Names

_APOSTROPHES: Final = str.maketrans("\u2019\u2018`", "'" * 3)
_NAME_TOKEN: Final = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*|,|\d")
_NAME_LEADS: Final[tuple[tuple[str, ...], ...]] = tuple(
    sorted(
        (
            tuple(lead.split())
            for lead in (
                "my full name is",
                "my full names",
                "my name is",
                "my names",
                "the name is",
                "the names",
                "full name is",
                "name is",
                "names",
                "name",
                "this is",
                "it is",
                "its",
                "i am",
                "im",
                "it s",
                "i m",
                "yes",
                "yeah",
                "yep",
                "sure",
                "ok",
                "okay",
                "hi",
                "hello",
                "hey",
                "so",
                "well",
                "oh",
                "um",
                "umm",
                "uh",
                "er",
                "erm",
                "ah",
                "hmm",
                "sorry",
                "of course",
                "certainly",
                "thats",
                "that is",
                "its actually",
                "actually",
                # titles: "Dr. Mary Jane O'Neil", "Mrs. Okafor"
                "doctor",
                "dr",
                "mr",
                "mrs",
                "ms",
                "miss",
                "mister",
                "missus",
                "professor",
                "prof",
            )
        ),
        key=len,
        reverse=True,
    )
)
_INTRODUCING: Final = frozenset({"name", "names", "this", "its", "im", "am", "is", "s", "m"})
_NAME_TRAILERS: Final[tuple[tuple[str, ...], ...]] = (
    ("thank", "you"),
    ("thanks",),
    ("please",),
    ("speaking",),
    ("here",),
)
_NAME_STOP: Final = _words(
    "i me my mine you your we our us he she him her they them it its this that these those is am are was "
    "were be been being do does did have has had can could would should shall must not no yes yeah yep "
    "ok okay sure please thanks thank hello hi hey bye goodbye the a an and or but if then so of to in on "
    "at for with from by about as into like just also what when where who whom why how which want wanna "
    "need needed book booking cancel reschedule appointment appointments schedule calling call called "
    "speak talk person human someone somebody doctor dr help repeat again sorry name names first last "
    "full birth date born dob birthday here there speaking know dont im ive id ill thats whats theres "
    "hes shes youre isnt arent wasnt cant wont didnt doesnt correct right wrong um uh er erm ah hmm oh "
    "well actually really very today tomorrow monday tuesday wednesday thursday friday saturday sunday "
    "morning afternoon evening time number phone visit physical checkup check follow shot vaccine "
    "operator agent representative front desk sir maam why spell spelled spelling said say"
)
_NAME_MARKERS: Final = re.compile(r"\b(?:born|date of birth|birth date|birthday|dob)\b")
_COMMA = ","


@dataclass(frozen=True)
class _Name:
    given: str | None
    family: str | None
    introduced: bool  # "my name is ...": the words are a name even outside the name question
    clean: bool  # nothing but the name was said


def _key(token: str) -> str:
    return fold(token).replace("'", "")


def _capitalise(word: str) -> str:
    return re.sub(r"[^\W\d_]+", lambda m: m.group()[:1].upper() + m.group()[1:].lower(), word)


def _strip_leads(tokens: list[str]) -> tuple[list[str], bool]:
    introduced = False
    changed = True
    while changed and tokens:
        changed = False
        while tokens and tokens[0] == _COMMA:
            tokens = tokens[1:]
            changed = True
        keys = [_key(t) for t in tokens[:4]]
        for lead in _NAME_LEADS:
            if tuple(keys[: len(lead)]) == lead and len(tokens) > len(lead):
                introduced = introduced or any(w in _INTRODUCING for w in lead)
                tokens = tokens[len(lead) :]
                changed = True
                break
    return tokens, introduced


def _strip_trailers(tokens: list[str]) -> list[str]:
    changed = True
    while changed and tokens:
        changed = False
        if tokens[-1] == _COMMA:
            tokens = tokens[:-1]
            changed = True
            continue
        keys = tuple(_key(t) for t in tokens[-2:])
        for trailer in _NAME_TRAILERS:
            if keys[-len(trailer) :] == trailer and len(tokens) > len(trailer):
                tokens = tokens[: -len(trailer)]
                changed = True
                break
    return tokens


def _join_spelled(tokens: list[str]) -> list[str]:
    """Join a spelled-out name ("J O H N" -> "John"): Whisper writes spelled letters apart."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token.isalpha():
            run.append(token)
            continue
        out.extend(["".join(run).capitalize()] if len(run) >= 3 else run)
        run = []
        if token:
            out.append(token)
    return out


def _labelled_name(tokens: list[str]) -> tuple[list[str], list[str]] | None:
    """A name given field by field ("first name John, last name Smith"), in either order."""
    keys = [_key(t) for t in tokens]
    markers: list[tuple[int, int, str]] = []
    for i, k in enumerate(keys):
        nxt = keys[i + 1] if i + 1 < len(keys) else ""
        if k == "first" and nxt == "name":
            markers.append((i, i + 2, "given"))
        elif k in ("last", "family", "sur") and nxt == "name":
            markers.append((i, i + 2, "family"))
        elif k == "surname":
            markers.append((i, i + 1, "family"))
    if {kind for *_, kind in markers} != {"given", "family"}:
        return None
    parts: dict[str, list[str]] = {}
    for index, (_, end, kind) in enumerate(markers):
        stop = markers[index + 1][0] if index + 1 < len(markers) else len(tokens)
        parts[kind] = [
            t
            for t, k in zip(tokens[end:stop], keys[end:stop], strict=True)
            if k not in _NAME_STOP and t != _COMMA
        ]
    if not parts.get("given") or not parts.get("family"):
        return None
    return parts["given"], parts["family"]


def _name_run(tokens: list[str]) -> tuple[list[str], bool]:
    """The leading run of name-like tokens, and whether anything but a name followed."""
    run: list[str] = []
    for token in tokens:
        if token == _COMMA or token.isdigit() or _key(token) in _NAME_STOP:
            return run, True
        run.append(token)
    return run, False


def _heard_as(words: list[str], spelled: str) -> int:
    """How many of the last ``words`` are the surname the caller then spelled ("Okon Quo" for
    "Okonkwo"): the count whose joined letters are closest to the spelling; at least one, and a given
    name is always left."""
    target = _key(spelled)
    scores = [
        (difflib.SequenceMatcher(None, "".join(_key(w) for w in words[-k:]), target).ratio(), k)
        for k in range(1, len(words))
    ]
    return max(scores)[1]


#: "P as in Peter", "N for Nancy", "M like Mike": the letter alone.
_SPELLED_AS: Final = re.compile(r"\b([^\W\d_])\s*(?:,\s*)?(?:as in|for|like)\s+[^\W\d_]+\b", re.IGNORECASE)


def _extract_name(raw: str) -> _Name | None:
    text = unicodedata.normalize("NFC", raw).translate(_APOSTROPHES)
    text = _SPELLED_AS.sub(lambda m: m.group(1).upper(), text)
    tokens = _NAME_TOKEN.findall(text)
    keys = [_key(t) for t in tokens]
    for i in range(1, len(keys)):
        if keys[i] in ("born", "dob", "birthday") or keys[i : i + 3] == ["date", "of", "birth"]:
            tokens = tokens[:i]
            break
    labelled = _labelled_name(tokens)
    introduced = labelled is not None
    if labelled is not None:
        given_words, family_words = labelled
        clean = True
    else:
        tokens, introduced = _strip_leads(tokens)
        tokens = _strip_trailers(tokens)
        if not tokens:
            return None
        given_words, family_words, clean = [], [], True
        if _COMMA in tokens:
            cut = tokens.index(_COMMA)
            left, left_rest = _name_run(tokens[:cut])
            after = [t for t in tokens[cut + 1 :] if t != _COMMA]
            right, right_rest = _name_run(after)
            if (
                left
                and not left_rest
                and len(left) >= 2
                and len(after) >= 3
                and all(len(t) == 1 for t in after)
            ):
                # "John Parke, P A R K": the spelling is the surname, whatever was heard for it
                surname = "".join(after).capitalize()
                family_words, given_words = [surname], _join_spelled(left[: -_heard_as(left, surname)])
            elif left and right and not left_rest and not right_rest and len(left) <= 4 and len(right) <= 3:
                # "Smith, John"; "Van der Linde, Gretchen": family first, with its particles
                family_words, given_words = _join_spelled(left), _join_spelled(right)
            elif left and not left_rest:
                tokens, clean = tokens[:cut], False
            elif right and not right_rest:
                tokens, clean = tokens[cut + 1 :], False
        if not family_words:
            run, rest = _name_run(tokens)
            run = _join_spelled(run)
            clean = clean and not rest
            if not run or len(run) > 5:
                return None
            if len(run) == 1:
                given_words = run
            else:
                given_words, family_words = _split_words(run, [_key(w) for w in run])
    words = [*given_words, *family_words]
    if not words or any(len(w) > 40 for w in words):
        return None
    joined = " ".join(words)
    if joined.islower() or joined.isupper():
        given_words = [_capitalise(w) for w in given_words]
        family_words = [_capitalise(w) for w in family_words]
    given = " ".join(given_words) or None
    family = " ".join(family_words) or None
    if (given and len(given) > 60) or (family and len(family) > 60):
        return None
    return _Name(given, family, introduced, clean)


# --------------------------------------------------------------------------------------------------
# Cues and slots for one utterance


@dataclass(frozen=True)
class _Cues:
    human: bool
    repeat: bool
    goodbye: bool
    nothing_else: bool
    affirm: int  # 2: the whole utterance affirms; 1: it leads with or contains an affirmation
    deny: int
    task: Intent | None
    task_confidence: float


def _cues(words: str, expecting: Expectation, when_found: bool) -> _Cues:
    task: Intent | None = None
    task_confidence = 0.0
    book = _BOOK.search(words) is not None
    cancel = _CANCEL.search(words) is not None
    if _RESCHEDULE.search(words) or (cancel and _BOOK_AGAIN.search(words)):
        task, task_confidence = Intent.RESCHEDULE, HIGH
    elif cancel:
        task, task_confidence = Intent.CANCEL, HIGH
    elif _CANCEL_WEAK.search(words):
        task, task_confidence = (Intent.RESCHEDULE, MEDIUM) if when_found or book else (Intent.CANCEL, 0.7)
    elif _LIST.search(words):
        task, task_confidence = Intent.LIST_APPOINTMENTS, HIGH
    elif book:
        task, task_confidence = Intent.BOOK, HIGH
    elif _AVAILABILITY.search(words):
        task, task_confidence = Intent.ASK_AVAILABILITY, HIGH
    elif expecting in (Expectation.TASK, Expectation.ANYTHING_ELSE) and _RESCHEDULE_WEAK.search(words):
        task, task_confidence = Intent.RESCHEDULE, 0.7
    elif _BOOK_MISHEARD.search(words):
        task, task_confidence = Intent.BOOK, 0.55
    affirm = (
        2
        if _only(words, _AFFIRM_CORE, _AFFIRM_EXTRA)
        else 1
        if _AFFIRM_LEAD.match(words) or _AFFIRM_PHRASE.search(words)
        else 0
    )
    deny = (
        2
        if _only(words, _DENY_CORE, _DENY_EXTRA)
        else 1
        if _DENY_LEAD.match(words) or _DENY_PHRASE.search(words)
        else 0
    )
    if affirm and not deny and _DENY_WORD.search(words):
        deny = 1  # "yes, no, wait": a change of mind
    if deny and affirm == 2:
        affirm = 0 if _DENY_LEAD.match(words) else affirm
    if affirm and deny == 2:
        deny = 0 if _AFFIRM_LEAD.match(words) else deny
    return _Cues(
        human=_HUMAN.search(words) is not None and not _NOT_HUMAN_QUESTION.search(words),
        repeat=_REPEAT.search(words) is not None,
        goodbye=_GOODBYE.search(words) is not None,
        nothing_else=_NOTHING_ELSE.search(words) is not None,
        affirm=affirm,
        deny=deny,
        task=task,
        task_confidence=task_confidence,
    )


@dataclass
class _Found:
    """Slots read from the utterance and how sure they are."""

    when: When
    wish: bool  # dates or times were asked for, not only named as the ones that do not work
    practitioner: _PractitionerMatch
    visit_type: str | None
    visit_ambiguous: bool
    phone: str | None
    option: _Option

    @property
    def preferences(self) -> bool:
        return self.when.found or self.practitioner.schedule_id is not None or self.visit_type is not None

    @property
    def unsure(self) -> bool:
        """Something was said that could not be resolved: the answer must not look confident."""
        p = self.practitioner
        return self.visit_ambiguous or (p.mentioned and p.schedule_id is None)

    def slots(self, *, include_option: bool = True) -> dict[str, object]:
        w = self.when
        out: dict[str, object] = {
            "date_from": w.date_from,
            "date_to": w.date_to,
            "time_not_before": w.not_before,
            "time_not_after": w.not_after,
            "practitioner": self.practitioner.schedule_id,
            "visit_type": self.visit_type,
        }
        if self.phone is not None:
            out["phone"] = self.phone
        if w.open_ended:
            out["soonest"] = True
        if include_option and self.option.option is not None and not self.option.negated:
            out["option"] = self.option.option
        return {k: v for k, v in out.items() if v is not None}


def _find(t: _Text, ctx: UnderstandingContext) -> _Found:
    exp = ctx.expecting
    callback = exp is Expectation.CALLBACK
    phone = find_phone(t.num) if callback or _PHONE_CUE.search(t.words) else None
    wish = True  # the dates said are ones the caller wants (not "I can't make it Tuesday")
    if phone is not None or callback:
        when = When()
    else:
        today, days = ctx.now.date(), exp not in _CHOOSING
        when = parse_when(t.num, today, ordinals_are_days=days)
        cant = _CANT_CLAUSE.search(t.num)
        if cant is not None and when.found:
            # "I can't make it Tuesday, can we do Wednesday": the day that does not work is not a wish.
            rest = parse_when(
                t.num[: cant.start()] + " " + t.num[cant.end() :], today, ordinals_are_days=days
            )
            if rest.date_from is not None or rest.date_to is not None:
                when = rest
            else:
                wish = False
    words = t.words if exp in _CHOOSING else _SELF_INTRO.sub(" ", t.words)
    practitioner = (
        _match_practitioner(words, ctx.practitioners, eager=exp is Expectation.PREFERENCE or exp in _CHOOSING)
        if ctx.practitioners
        else _PractitionerMatch(None, False)
    )
    visit_type, ambiguous = _match_visit_type(t.words, ctx.visit_types) if ctx.visit_types else (None, False)
    option = _match_option(t, ctx, practitioner.schedule_id) if exp in _CHOOSING else _Option(None, False)
    return _Found(when, wish and when.found, practitioner, visit_type, ambiguous, phone, option)


def _understood(intent: Intent, confidence: float, slots: dict[str, object] | None = None) -> Understood:
    return Understood(intent=intent, slots=Slots.model_validate(slots or {}), confidence=confidence)


def _capped(confidence: float, found: _Found) -> float:
    if found.unsure:
        return min(confidence, GUESS)
    if found.practitioner.fuzzy:
        return min(confidence, MEDIUM)
    return confidence


# --------------------------------------------------------------------------------------------------
# Turns


def _name_turn(t: _Text, ctx: UnderstandingContext, cues: _Cues) -> Understood:
    name = _extract_name(t.raw)
    slots: dict[str, object] = {}
    birth: date | None = None
    marker = _NAME_MARKERS.search(t.num)
    if marker is not None:
        birth, _ = parse_birth_date(t.num[marker.end() :], ctx.now.date())
        if birth is not None:
            slots["birth_date"] = birth
    if name is not None and (name.introduced or not (cues.human or cues.repeat or cues.task or cues.goodbye)):
        slots.update(given_name=name.given, family_name=name.family)
        slots = {k: v for k, v in slots.items() if v is not None}
        confidence = (HIGH if name.clean else MEDIUM) if name.given and name.family else 0.45
        return _understood(Intent.PROVIDE_INFO, confidence, slots)
    if cues.human:
        return _understood(Intent.HUMAN, HIGH)
    if cues.repeat:
        return _understood(Intent.REPEAT, HIGH)
    if cues.task is not None:
        return _understood(cues.task, min(cues.task_confidence, 0.8))
    if cues.goodbye:
        return _understood(Intent.GOODBYE, HIGH)
    if cues.deny:
        return _understood(Intent.DENY, 0.7)
    if cues.affirm:
        return _understood(Intent.AFFIRM, GUESS)
    return _understood(Intent.UNKNOWN, NOTHING)


def _birth_turn(t: _Text, ctx: UnderstandingContext, cues: _Cues) -> Understood:
    birth, said = parse_birth_date(t.num, ctx.now.date())
    if birth is not None:
        return _understood(Intent.PROVIDE_INFO, HIGH, {"birth_date": birth})
    if cues.human:
        return _understood(Intent.HUMAN, HIGH)
    if cues.repeat:
        return _understood(Intent.REPEAT, HIGH)
    if said:
        return _understood(Intent.PROVIDE_INFO, 0.4)  # a date, but not a valid past one: ask again
    if cues.task is not None:
        return _understood(cues.task, min(cues.task_confidence, 0.8))
    if cues.goodbye:
        return _understood(Intent.GOODBYE, HIGH)
    if cues.deny:
        return _understood(Intent.DENY, 0.7)
    return _understood(Intent.UNKNOWN, NOTHING)


def _choose_turn(cues: _Cues, found: _Found, count: int) -> Understood | None:
    option = found.option
    if option.option is not None and option.negated:
        return _understood(Intent.DENY, MEDIUM, found.slots(include_option=False))
    if option.option is not None:
        return _understood(Intent.CHOOSE_OPTION, HIGH, {"option": option.option})
    if cues.deny and not (cues.task and found.when.found):
        return _understood(Intent.DENY, SURE if cues.deny == 2 else HIGH, found.slots(include_option=False))
    if option.attempted:
        return _understood(Intent.CHOOSE_OPTION, 0.45)
    if cues.affirm and cues.task is None:
        if count == 1:
            return _understood(Intent.AFFIRM, HIGH, {"option": 1})
        return _understood(Intent.AFFIRM, GUESS)
    return None


def _confirm_turn(t: _Text, cues: _Cues, found: _Found) -> Understood | None:
    if (cues.affirm and cues.deny) or (cues.affirm != 2 and _HESITATION.search(t.words)):
        return _understood(Intent.UNKNOWN, 0.3)
    if cues.nothing_else and not cues.affirm and cues.task is None:
        return _understood(Intent.NOTHING_ELSE, 0.85)
    if cues.affirm and cues.task in (None, Intent.BOOK):
        confidence = SURE if cues.affirm == 2 else 0.85
        return _understood(Intent.AFFIRM, _capped(confidence, found), found.slots(include_option=False))
    if cues.deny:
        confidence = SURE if cues.deny == 2 else 0.85
        return _understood(Intent.DENY, _capped(confidence, found), found.slots(include_option=False))
    return None


def _callback_turn(t: _Text, cues: _Cues, found: _Found) -> Understood | None:
    phone: dict[str, object] = {"phone": found.phone} if found.phone else {}
    if cues.deny == 2 or (cues.deny and not cues.affirm and not found.phone):
        return _understood(Intent.DENY, SURE if cues.deny == 2 else 0.85)
    if cues.affirm or _SAME_NUMBER.search(t.words):
        return _understood(Intent.AFFIRM, SURE if cues.affirm == 2 or found.phone else HIGH, phone)
    if found.phone:
        return _understood(Intent.PROVIDE_INFO, HIGH, phone)
    if cues.human:
        return _understood(Intent.AFFIRM, MEDIUM)
    return None


def _parse(utterance: str, ctx: UnderstandingContext) -> Understood:
    t = _prepare(utterance)
    if not t.words:
        return _understood(Intent.UNKNOWN, 0.0)
    exp = ctx.expecting
    if exp is Expectation.FULL_NAME:
        return _name_turn(t, ctx, _cues(t.words, exp, False))
    if exp is Expectation.BIRTH_DATE:
        return _birth_turn(t, ctx, _cues(t.words, exp, False))

    found = _find(t, ctx)
    cues = _cues(t.words, exp, found.wish)

    if exp is Expectation.CALLBACK:
        answer = _callback_turn(t, cues, found)
        if answer is not None:
            return answer
    if cues.human:
        return _understood(Intent.HUMAN, HIGH)
    if cues.repeat and cues.task is None and found.option.option is None:
        return _understood(Intent.REPEAT, HIGH)
    if exp in _CHOOSING:
        count = max(len(ctx.offered.starts), len(ctx.offered.practitioners))
        answer = _choose_turn(cues, found, count)
        if answer is not None:
            return answer
    if exp is Expectation.CONFIRM:
        answer = _confirm_turn(t, cues, found)
        if answer is not None:
            return answer
    if exp is Expectation.ANYTHING_ELSE and cues.task is None:
        if cues.goodbye:
            return _understood(Intent.GOODBYE, HIGH)
        if cues.nothing_else or cues.deny:
            return _understood(Intent.NOTHING_ELSE, SURE if cues.nothing_else or cues.deny == 2 else HIGH)
        if cues.affirm == 2:
            return _understood(Intent.AFFIRM, HIGH)

    slots = found.slots(include_option=False)
    if cues.task is not None:
        task = cues.task
        if (
            exp is Expectation.PREFERENCE
            and task in (Intent.BOOK, Intent.ASK_AVAILABILITY)
            and found.preferences
        ):
            task = Intent.PROVIDE_INFO  # mid-booking, "book me with Dr. Park on Friday" answers the question
        return _understood(task, _capped(cues.task_confidence, found), slots)
    if exp is Expectation.PREFERENCE and (found.preferences or found.unsure):
        return _understood(Intent.PROVIDE_INFO, _capped(HIGH, found), slots)
    if cues.goodbye:
        return _understood(Intent.GOODBYE, HIGH)
    if cues.nothing_else:
        return _understood(Intent.NOTHING_ELSE, 0.8)
    if exp is Expectation.TASK and (found.visit_type or found.practitioner.schedule_id):
        return _understood(Intent.BOOK, _capped(0.7, found), slots)  # "a physical with Dr. Park"
    if exp is Expectation.TASK and found.when.open_ended and not (cues.affirm or cues.deny):
        return _understood(Intent.BOOK, 0.55, slots)  # "as soon as possible": likely a booking, not sure
    if cues.affirm:
        return _understood(Intent.AFFIRM, 0.8 if cues.affirm == 2 else 0.6, slots)
    if cues.deny:
        return _understood(Intent.DENY, 0.8 if cues.deny == 2 else 0.6, slots)
    if found.preferences or found.unsure or found.phone:
        return _understood(
            Intent.PROVIDE_INFO,
            _capped(GUESS, found),
            slots,  # an answer to no question asked
        )
    if cues.repeat:
        return _understood(Intent.REPEAT, 0.7)
    return _understood(Intent.UNKNOWN, NOTHING)


class RulesUnderstanding:
    """The always-on backend: deterministic, no I/O, well under a millisecond per utterance."""

    def parse(self, utterance: str, context: UnderstandingContext) -> Understood:
        """Understand one caller turn; never raises, whatever the speech-to-text produced."""
        try:
            if not context.screened:  # the screen once per turn: here, or by the conductor before
                guard = screen_folded(fold(utterance[:MAX_CHARS]))
                if guard is not None:
                    return _understood(intent_of(guard.kind), SURE)
            return corrected(utterance, lambda words: _parse(words, context))
        except Exception as error:  # a live call must go on: an unexpected input is "not understood"
            log.warning("rules understanding failed (%s)", type(error).__name__)  # the type only: no PHI
            return Understood(intent=Intent.UNKNOWN, confidence=0.0)

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        return self.parse(utterance, context)
