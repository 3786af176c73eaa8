"""Model-independent safety screen, run on every caller turn before any understanding.

Why here and not in a model: an emergency must be recognised even when no LLM is configured, the
LLM is slow, or a caller talks it round. The screen is deliberately lexical and conservative: a
false "emergency" costs the caller a sentence about 911; a missed one could cost a life.

Kinds (the policy acts on the kind; ``category`` is for the audit trail and never holds caller words):

* ``emergency``: chest pain, breathing trouble, stroke signs, severe bleeding, unconsciousness, severe
  allergic reaction, overdose, seizure -> tell the caller to hang up and dial 911.
* ``crisis``: suicidal thoughts or self-harm -> the 988 Suicide & Crisis Lifeline.
* ``medical_advice``: a question about the caller's health, results or medication. Mentions of results,
  prescriptions or symptoms inside a booking request ("a follow-up for my results") are not advice.
* ``other_person``: another person's appointments or details.
* ``change_rules``: attempts to re-instruct the agent (prompt injection, role play, privilege claims).

Negation is handled for the obvious cases only: "no chest pain, just a checkup" is not an emergency,
but "no, I have chest pain" is (a comma or "but" ends the negated clause).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from .base import Intent
from .spoken import fold

__all__ = ["GUARDED_INTENTS", "Guardrail", "GuardrailKind", "intent_of", "screen", "screen_folded"]

GuardrailKind = Literal["emergency", "crisis", "medical_advice", "other_person", "change_rules"]


@dataclass(frozen=True)
class Guardrail:
    """What tripped: the kind the policy acts on and a fixed category name for the audit trail."""

    kind: GuardrailKind
    category: str

    @classmethod
    def for_intent(cls, intent: Intent) -> Guardrail:
        """The guardrail for an intent a backend (e.g. the LLM) raised although the screen did not trip."""
        kind = _INTENT_KINDS.get(intent)
        if kind is None:
            raise ValueError(f"{intent.value} is not a guardrail intent")
        return cls(kind, "raised_by_understanding")


_INTENT_KINDS: Final[dict[Intent, GuardrailKind]] = {
    Intent.EMERGENCY: "emergency",
    Intent.MEDICAL_ADVICE: "medical_advice",
    Intent.OTHER_PERSON: "other_person",
    Intent.CHANGE_RULES: "change_rules",
}
#: The intents a backend may raise that the policy treats as a guardrail (the one list of them).
GUARDED_INTENTS: Final = frozenset(_INTENT_KINDS)


def intent_of(kind: GuardrailKind) -> Intent:
    """The intent an understanding backend reports for a tripped screen (a crisis is an emergency)."""
    return Intent.EMERGENCY if kind == "crisis" else next(i for i, k in _INTENT_KINDS.items() if k == kind)


@dataclass(frozen=True)
class _Rule:
    kind: GuardrailKind
    category: str
    pattern: re.Pattern[str]
    negation_window: int  # words before the match searched for a negator; 0 = never negated
    booking_suppresses: bool = False  # a booking request mentioning this is not a question


_REL: Final = (
    r"(?:wife|husband|hubby|spouse|partner|mother|mom|mum|mommy|mama|father|dad|daddy|papa|son|daughter"
    r"|child|children|kid|kids|baby|babys|boy|girl|brother|sister|grandmother|grandma|granny|nana"
    r"|grandfather|grandpa|grandson|granddaughter|grandchild|grandkids?|aunt|uncle|niece|nephew|cousin"
    r"|friend|boyfriend|girlfriend|fiance|fiancee|neighbou?r|roommate|parents?|in laws?|mother in law"
    r"|father in law|stepson|stepdaughter|stepmom|stepmother|stepdad|stepfather|relative)"
)
_THINGS: Final = (
    r"(?:instructions?|rules|prompts?|guidelines|programming|directions|directives|commands|restrictions"
    r"|policies|policy|guardrails|constraints|training|protocols?|system message|safety)"
)

_TABLE: Final[tuple[tuple[GuardrailKind, str, str, int, bool], ...]] = (
    (
        "emergency",
        "chest_pain",
        r"\bchest (?:pains?|pressure|tightness|discomfort|hurts|is (?:tight|hurting|heavy|killing me)"
        r"|feels (?:tight|heavy|like))\b|\b(?:pain|pressure|tightness|squeezing|crushing) (?:in|on) "
        r"(?:my|his|her|the|their) chest\b|\b(?:my|his|her|their) chest (?:hurts|is hurting|feels)\b"
        r"|\bheart attack\b",
        4,
        False,
    ),
    (
        "emergency",
        "breathing",
        r"\b(?:cant|cannot|can not|couldnt|unable to|struggling to|hard to|barely) (?:breathe|breath"
        r"|catch (?:my|his|her|their) breath|get (?:any )?air)\b|\b(?:trouble|difficulty|difficulties"
        r"|problems?|hard time|struggling) (?:with )?breathing\b|\b(?:shortness|short) of breath\b"
        r"|\b(?:not|stopped|isnt|is not|hes not|shes not) breathing\b|\bgasping\b|\bchoking\b"
        r"|\bturning blue\b",
        4,
        False,
    ),
    (
        "emergency",
        "stroke",
        r"\b(?:face|mouth|smile) (?:is |was |started |seems |has )?(?:drooping|droopy|dropping|sagging)\b"
        r"|\b(?:drooping|droopy) (?:face|mouth|eye|smile)\b|\bslurr\w*\b"
        r"|\b(?:arm|leg|hand) (?:is |went |feels |suddenly |has gone |is suddenly )?(?:weak|limp|dead)\b"
        r"|\b(?:numb(?:ness)?|weak(?:ness)?|paralyz\w*|tingling) (?:on|in|down) (?:one|the left|the right"
        r"|(?:my|his|her) (?:left|right)) side\b|\bone side of (?:my|his|her|their|the) (?:body|face)\b"
        r"|\bsudden(?:ly)? (?:confus\w*|numb\w*|weak\w*|(?:cant|can not|cannot) (?:see|speak|talk|walk))"
        r"|\bhaving a stroke\b|\bstroke (?:symptoms|signs)\b",
        4,
        False,
    ),
    (
        "emergency",
        "bleeding",
        r"\b(?:severe|severely|heavy|heavily|serious|uncontrolled|profuse|profusely|a lot of|lots of"
        r"|massive) bleed\w*|\bbleeding (?:heavily|badly|a lot|profusely|everywhere|so much|really bad"
        r"|nonstop|non stop)\b|\b(?:wont|will not|doesnt|does not|cant|cannot|can not|couldnt|not) "
        r"stop(?:ping)? (?:the )?bleed\w*|\b(?:losing|lost) (?:a lot of|so much|lots of) blood\b"
        r"|\bblood (?:everywhere|wont stop|is everywhere)\b|\bbleeding wont stop\b",
        4,
        False,
    ),
    (
        "emergency",
        "unconscious",
        r"\bunconscious\b|\bpass(?:ed|ing) out\b|\bunresponsive\b|\bcollapsed\b|\bblack(?:ed|ing) out\b"
        r"|\bfaint(?:ed|ing)\b|\b(?:wont|will not|cant|cannot|can not) wake (?:him|her|them)(?: up)?\b"
        r"|\b(?:he|she|they) (?:wont|will not|isnt|is not|arent) wak(?:e|ing) up\b",
        4,
        False,
    ),
    (
        "emergency",
        "allergic_reaction",
        r"\b(?:severe|serious|bad|major|anaphylactic) allergic reaction\b|\banaphyla\w*"
        r"|\bthroat (?:is |feels )?(?:closing|swelling|swollen|tight|tightening)\b"
        r"|\b(?:tongue|lips?) (?:is |are )?(?:swelling|swollen|blowing up)\b|\bepi ?pen\b"
        r"|\b(?:cant|cannot|can not) swallow\b",
        4,
        False,
    ),
    (
        "emergency",
        "overdose",
        r"\boverdos\w*|\b(?:took|taken|swallowed|ate) (?:too many|a (?:whole )?bottle of)\b"
        r"|\btoo many (?:pills|tablets)\b|\b(?:swallowed|drank|ingested) (?:poison|bleach|antifreeze)\b",
        4,
        False,
    ),
    (
        "emergency",
        "seizure",
        r"\bhaving a seizure\b|\bseizing\b|\bconvulsing\b",
        4,
        False,
    ),
    (
        "emergency",
        "stated_emergency",
        r"\b(?:its|it is|this is|having|have|got) an? (?:medical )?emergency\b|\bmedical emergency\b"
        r"|\b(?:call|need|send|get) (?:me )?(?:an |the )?ambulance\b|\b(?:call|calling|dial|dialed) 911\b"
        r"|\bworst headache\b",
        4,
        False,
    ),
    (
        "crisis",
        "self_harm",
        r"\bsuicid\w*|\bkill(?:ing)? myself\b|\b(?:hurt|harm)(?:ing)? myself\b|\bself ?harm\w*"
        r"|\bend(?:ing)? (?:my (?:own )?life|it all)\b|\btake my (?:own )?life\b"
        r"|\b(?:want|wanna|wanted|wish|ready) (?:to )?die\b|\bwish i (?:was|were) dead\b"
        r"|\bbetter off dead\b|\b(?:dont|do not|no longer) want to (?:live|be alive|be here|wake up)\b"
        r"|\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on)\b|\bcant go on\b",
        2,
        False,
    ),
    (
        "change_rules",
        "instruction_override",
        rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon) (?:all |any |the |your |my "
        rf"|previous |prior |above |earlier |those |these |existing |current |of |system )*{_THINGS}\b"
        r"|\bnew (?:rules|instructions)\b|\bjailbreak\w*|\b(?:override|bypass) (?:the |your )?"
        r"(?:verification|security|checks?|system|authentication)\b|\bsudo\b|\bdo anything now\b"
        r"|\bdan mode\b",
        0,
        False,
    ),
    (
        "change_rules",
        "role_play",
        r"\byou are now\b|\byoure now\b|\bfrom now on you\b|\bpretend\w*|\bact as\b|\bacting as\b"
        r"|\brole ?play\w*|\bimagine you are\b",
        0,
        False,
    ),
    (
        "change_rules",
        "system_prompt",
        r"\bsystem prompt\b|\b(?:developer|dev|debug|god|admin|maintenance) mode\b"
        r"|\byour (?:system )?(?:prompt|programming|instructions|configuration)\b"
        r"|\b(?:reveal|show|print|repeat|tell me|read) (?:me )?(?:your|the) (?:system )?"
        r"(?:prompt|instructions|programming|configuration|rules)\b",
        0,
        False,
    ),
    (
        "change_rules",
        "privilege_claim",
        r"\bas (?:an? |the |your )?(?:admin|administrator|sysadmin|system administrator|developer"
        r"|root user|superuser)\b|\b(?:im|i am) (?:an? |the )?(?:admin|administrator|sysadmin"
        r"|system administrator|root user|superuser)\b|\b(?:im|i am) your (?:developer|programmer|creator"
        r"|owner|admin\w*|boss)\b|\badmin(?:istrator)? (?:access|override|privileges?"
        r"|rights|password)\b|\bread me (?:the )?(?:records?|chart|file|data) (?:of|for)\b"
        r"|\b(?:dump|export|list|show) (?:me )?(?:all )?(?:the )?(?:patients|patient records|database)\b",
        0,
        False,
    ),
    (
        "other_person",
        "relative",
        rf"\b(?:my|our) {_REL}s?\b(?! (?:told|said|says|suggested|recommended|thinks|drove|will drive"
        r"|is driving|dropped|reminded|gave me|wants me to|wanted me to|made me|doctor|physician))",
        3,
        False,
    ),
    (
        "other_person",
        "third_party",
        r"\b(?:someone|somebody) else\w*|\banother (?:patient|person|persons)\b"
        r"|\bother (?:patients?|people)|\bon behalf of\b|\bfamily members?\b"
        r"|\b(?:his|her|their) (?:appointments?|records?|results?"
        r"|chart|file|information|info|details|date of birth|birthday|phone number|number|address"
        r"|visits?|bookings?)\b|\b(?:can|could|would) you (?:please )?look up (?!my\b|me\b|when\b|if\b"
        r"|whether\b|what time\b|our\b)\w+|\blook up (?:the |a )?(?:patient|records?|chart|file"
        r"|phone number|number|address|appointments?) (?:of|for)\b|\b(?:what|whats) (?:is )?(?:the )?"
        r"(?:phone number|number|address|date of birth|birthday|email) (?:of|for) (?!the (?:clinic|office"
        r"|front desk|practice|pharmacy|lab)\b|your\b|you\b)\w+|\bis (?!this\b|that\b|it\b|there\b|dr\b"
        r"|doctor\b|he\b|she\b)\w+(?: \w+)? a patient\b|\b(?:does|did) (?!dr\b|doctor\b|it\b|that\b"
        r"|this\b|i\b|you\b)\w+(?: \w+)? have an appointment\b|\bwho else (?:has|is booked|is coming"
        r"|is scheduled)\b|\bwhose appointment\b|\bpatient list\b|\b(?:read|give|tell|show) me (?:the )?"
        r"(?:records?|chart|file|details|information|info) (?:of|for|on|about)\b",
        3,
        False,
    ),
    (
        "medical_advice",
        "medication",
        r"\bwhat (?:medicine|medication|meds|pills?|drug|antibiotic)s? (?:should|can|do|could)\b"
        r"|\bwhat (?:should|can|could) i take\b"
        r"|\b(?:should|can|could|do) i (?:take|stop taking|keep taking|double|skip|mix|increase|decrease) "
        r"(?!(?:the|that|this|a|an|it|them|one|those|these|slot|appointment|time|whichever|any|either"
        r"|another|\d+\w*)\b)\w+|\bhow (?:much|many|often) "
        r"(?:\w+ ){0,3}(?:should|can|do) i take\b|\bdosage\b|\b(?:what|which|right|correct) dose\b"
        r"|\bside effects?\b|\bdrug interactions?\b|\b(?:is it|is this|is that) (?:safe|ok|okay|alright"
        r"|fine) to (?:take|mix|drink|stop)\b",
        4,
        False,
    ),
    (
        "medical_advice",
        "results",
        r"\b(?:what|how) (?:are|were|did|do|about) my (?:\w+ ){0,2}(?:results?|labs?|bloodwork|blood work"
        r"|scans?|biopsy|report)\b|\b(?:are|is|were) my (?:\w+ ){0,2}(?:results?|labs?|bloodwork"
        r"|blood work|scans?|biopsy|report) (?:back|in|ready|normal|ok|okay|good|bad|fine|abnormal"
        r"|positive|negative|available)\b|\b(?:tell|give|read|send|email) me my (?:\w+ ){0,2}(?:results?"
        r"|labs?|bloodwork|blood work|report)\b|\b(?:can|could) you (?:tell|give|read|check|look at|see) "
        r"(?:me )?my (?:\w+ ){0,2}(?:results?|labs?|bloodwork)\b|\bresults? (?:say|show|mean)\b"
        r"|\bwhat do (?:my|the) (?:\w+ ){0,2}(?:results?|labs?|numbers|levels) (?:mean|say|show)\b"
        r"|\b(?:did|have) my (?:\w+ ){0,2}(?:results?|labs?|bloodwork) come (?:back|in)\b"
        r"|\bi (?:want|need|would like|d like) to (?:know|hear) my (?:\w+ ){0,2}results?\b",
        4,
        False,
    ),
    (
        "medical_advice",
        "triage",
        r"\b(?:is it|is this|is that|could it be|could this be|might it be|might this be) (?:serious"
        r"|dangerous|bad|contagious|cancer|infected|an infection|broken|something serious|covid|the flu"
        r"|strep)\b|\bshould i (?:be (?:worried|concerned)|worry|go to (?:the )?(?:er|hospital"
        r"|emergency room|urgent care)|see a doctor|get (?:it|this|that) checked|ice|rest)\b"
        r"|\bdo i need (?:to go to (?:the )?(?:er|hospital)|stitches|antibiotics|an x ?ray|surgery)\b"
        r"|\bwhat (?:could|might|would|do you think) (?:it|this|that) (?:be|is)\b"
        r"|\b(?:can|could) you (?:diagnose|tell me what i have)\b|\bwhat do i have\b"
        r"|\bdo i have (?:a |an |the )?(?:covid|flu|cancer|diabetes|infection|strep|pneumonia|uti|fever"
        r"|concussion|allergy|allergies|std|sti|virus)\b|\bwhat are the symptoms\b|\bsymptoms of\b"
        r"|\bhow (?:do i|can i|to|should i) (?:treat|get rid of|cure|fix|heal)\b",
        4,
        False,
    ),
    (
        "medical_advice",
        "symptom_question",
        r"\b(?:i have|ive got|ive had|im having|i feel|i got|i think i have)\b.*\b(?:what should i"
        r"|should i|is (?:it|this|that) (?:serious|normal|bad|ok|okay)|do i need|what do i)\b",
        4,
        True,
    ),
    (
        "medical_advice",
        "prescription",
        r"\brefills?\b|\bprescriptions?\b|\brenew (?:my )?(?:\w+ )?(?:meds|medication|medicine|script)\b"
        r"|\bmy (?:meds|medications?|medicines?|pills)\b",
        4,
        True,
    ),
    (
        "medical_advice",
        "results_mention",
        r"\b(?:my|the) (?:\w+ ){0,2}(?:results?|labs|bloodwork|blood work|biopsy|pathology|diagnosis)\b",
        4,
        True,
    ),
)
_RULES: Final = tuple(
    _Rule(kind, category, re.compile(pattern), window, suppress)
    for kind, category, pattern, window, suppress in _TABLE
)

_BOOKING: Final = re.compile(
    r"\b(?:book\w*|schedul\w*|appointment|appt|follow ?up|visit|come in|set up|see (?:the |a |my )?"
    r"(?:doctor|dr)|reschedul\w*|cancel\w*|slot)\b"
)
_CLAUSE_END: Final = re.compile(r"\||\b(?:but|though|although|however|except|anyway)\b")
_NEGATORS: Final = frozenset(
    [
        "not",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "never",
        "without",
        "nor",
        "neither",
        "havent",
        "hasnt",
        "hadnt",
        "denies",
        "deny",
        "nothing",
    ]
)
_NO_MODIFIERS: Final = frozenset({"more", "real", "bad", "severe", "major", "longer", "actual"})
_PUNCT: Final = re.compile(r"[.,;:!?]+")
_OTHER: Final = re.compile(r"[^\w|]+|_")


def _prepare(folded: str) -> str:
    """Apostrophes dropped ("can't" -> "cant"), clause punctuation kept as "|" for the negation check."""
    text = _PUNCT.sub(" | ", folded.replace("'", ""))
    return " ".join(_OTHER.sub(" ", text).split())


def _negated(text: str, start: int, window: int) -> bool:
    if window == 0:
        return False
    clause = _CLAUSE_END.split(text[:start])[-1]
    words = clause.split()[-window:]
    if any(w in _NEGATORS for w in words):
        return True
    # "no" negates what follows it directly ("no chest pain", "no more bleeding"), not a whole clause
    # ("no I have chest pain" without the comma Whisper may drop).
    return bool(words) and (
        words[-1] == "no" or (len(words) >= 2 and words[-2] == "no" and words[-1] in _NO_MODIFIERS)
    )


def screen_folded(folded: str) -> Guardrail | None:
    """:func:`screen` on text already passed through :func:`spoken.fold`."""
    text = _prepare(folded)
    booking: bool | None = None
    for rule in _RULES:
        for m in rule.pattern.finditer(text):
            if _negated(text, m.start(), rule.negation_window):
                continue
            if rule.booking_suppresses:
                if booking is None:
                    booking = _BOOKING.search(text) is not None
                if booking:
                    break
            return Guardrail(rule.kind, rule.category)
    return None


def screen(utterance: str) -> Guardrail | None:
    """The first guardrail the utterance trips, most urgent first, or None."""
    return screen_folded(fold(utterance))
