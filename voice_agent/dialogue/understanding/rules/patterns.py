"""Intent and cue patterns over ``_Text.words``: the phrases that name a task, a yes or a no, a goodbye,
a wish for a person; kept apart from the code that weighs them."""

from __future__ import annotations

import re
from typing import Final


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


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
    # the question inside a sentence: "can you tell me when my appointment is", "I forgot what time it is"
    r"\b(?:when|what (?:time|day|date)) (?:my|our) (?:next |upcoming )?(?:appointment|appt|visit|booking)s?"
    r" (?:is|was|are)\b",
    r"\b(?:forgot|forget|dont remember|not sure) (?:when|what time|what day) (?:my|our|it)\b",
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
