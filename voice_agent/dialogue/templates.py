"""Every sentence the agent can say. Short, speakable, no markup; slots are filled only with values from
FHIR (via ``speech``) or fixed text. A clinic can reword them here without touching the policy."""

from __future__ import annotations

GREETING = (
    "Thank you for calling {clinic}. This is the automated scheduling assistant. "
    "I can book, cancel, or reschedule your appointments. How can I help you today?"
)
ASK_TASK = (
    "How can I help you today? I can book, cancel, or reschedule an appointment, or tell you when yours are."
)
VERIFY_INTRO = (
    "I can help with that. First I need to confirm who I'm speaking with. What is your first and last name?"
)
ASK_NAME = "What is your first and last name?"
ASK_NAME_AGAIN = "Sorry, I didn't get your full name. Could you tell me your first and last name?"
ASK_BIRTH_DATE = "Thank you. And what is your date of birth?"
ASK_BIRTH_DATE_AGAIN = (
    "Sorry, I didn't get that date. Please say your date of birth, for example March 3rd, 1985, "
    "or key it in as month, day, and year."
)
VERIFY_FAILED_RETRY = (
    "I'm sorry, I couldn't verify those details. Let's try again. What is your first and last name?"
)
VERIFY_FAILED_FINAL = (
    "I'm sorry, I wasn't able to verify your identity. "
    "I can have someone from the front desk call you back. Would you like that?"
)
VERIFIED = "Thank you, you're verified."
# Asked whenever name and date did not match one record exactly, whatever was or was not found: the
# spelling is the robust signal a misheard name lacks, and asking every time tells the caller nothing.
# It may be keyed too (one press per letter, T9-style): a keypad is heard exactly where a name is not.
SPELL_SURNAME_QUESTION = (
    "Could you spell your last name for me, letter by letter? "
    "Or key it in on your keypad, one press per letter, then press pound."
)
ASK_SPELL_SURNAME = f"Thank you. {SPELL_SURNAME_QUESTION}"
# The same question after a spoken date of birth, which it reads back: a date misheard on the line
# ("July 25" as "July 26") would otherwise fail the whole attempt in silence. The caller hears only what
# they said, never anything from the records; a correction ("No, July 25th") is taken at this question.
ASK_SPELL_SURNAME_HEARD_DATE = "Thank you. I heard {born}. " + SPELL_SURNAME_QUESTION
ASK_SPELL_SURNAME_AGAIN = "Sorry, I didn't get that. Could you spell your last name, one letter at a time?"
# After a name heard only as ordinary words: its first name is compared by spelling too (never skipped).
ASK_SPELL_GIVEN = (
    "Thank you. And your first name, letter by letter? You can key it in the same way, then press pound."
)
ASK_SPELL_GIVEN_AGAIN = "Sorry, I didn't get that. Could you spell your first name, one letter at a time?"
ASK_SPELL_SURNAME_KEYED_AGAIN = (
    "Sorry, I couldn't use those keys. Please key the name with one press per letter, "
    "using the keys 2 to 9, then press pound. Or just spell it."
)

NO_APPOINTMENTS = "I don't see any upcoming appointments for you."
YOUR_APPOINTMENTS_ONE = "You have one upcoming appointment: {first}."
YOUR_APPOINTMENTS_MANY = "You have {count} upcoming appointments. {listing}."
AND_MORE = "There are {more} more after that."
AND_ONE_MORE = "There is one more after that."

ASK_PREFERENCE = "Do you have a preferred day, time, or doctor? Or I can find the first available time."
OFFER_SLOTS = "I have openings {options}. Which would you like?"
OFFER_ONE_SLOT = "The first time I have is {option}. Would you like that?"
NO_SLOTS = "I'm sorry, I don't have anything free {window}. Would you like the first available time instead?"
NO_SLOTS_NEAREST = (
    "I'm sorry, I don't have anything free {window}. The nearest I have is {option}. Would you like that?"
)
NOT_OFFERED_BY = (
    "{practitioner} doesn't see patients for {visit}, but {others} can. "
    "Would you like the first available time for that instead?"
)
NOT_OFFERED_ANYWHERE = (
    "I'm sorry, that isn't a visit I can book here. Would you like the first available time instead?"
)
BEYOND_HORIZON = (
    "I'm sorry, I can only book as far ahead as {day}, so I can't offer anything {window} yet. "
    "Would you like the first available time instead?"
)
NO_SLOTS_AT_ALL = (
    "I'm sorry, I don't see any open times in the next few weeks. "
    "I can have someone from the front desk call you back. Would you like that?"
)
WHICH_SLOT = "Which one would you like? I have openings {options}."
CONFIRM_BOOK = "{option}. Shall I book it?"
CONFIRM_BOOK_VISIT = "{option}, for {visit}. Shall I book it?"
BOOKED = "You're booked: {appointment}. Is there anything else I can help with?"
SLOT_TAKEN = "I'm sorry, that time was just taken by someone else."
NOT_BOOKED = "No problem, I haven't booked anything. Would you like a different time?"

WHICH_APPOINTMENT = "Which appointment: {options}?"
CONFIRM_CANCEL = "That's {appointment}. Shall I cancel it?"
CANCELLED = "It's cancelled: {appointment}. Is there anything else I can help with?"
NOT_CANCELLED = "Okay, I've left it as it is. Is there anything else I can help with?"
RESCHEDULE_WHEN = "Let's move {appointment}. When would you like instead?"
CONFIRM_RESCHEDULE = "I'll move {appointment} to {option}. Shall I go ahead?"
RESCHEDULED = "Done. {appointment}. Is there anything else I can help with?"
RESCHEDULE_FAILED = (
    "I'm sorry, I couldn't move it, so your original appointment stands: {appointment}. "
    "Is there anything else I can help with?"
)
NOT_RESCHEDULED = "Okay, your appointment stays as it is. Is there anything else I can help with?"

ANYTHING_ELSE = "Is there anything else I can help with?"
GOODBYE = "Thank you for calling {clinic}. Goodbye."
DIDNT_CATCH = "Sorry, I didn't catch that. {question}"
TOO_MANY_MISUNDERSTANDINGS = (
    "I'm having trouble understanding. I can have someone from the front desk call you back. "
    "Would you like that?"
)
SYSTEM_TROUBLE = (
    "I'm sorry, I'm having trouble reaching the schedule right now. "
    "I can have someone from the front desk call you back. Would you like that?"
)

EMERGENCY = (
    "If this is a medical emergency, please hang up now and dial 9 1 1. I'm also alerting our staff. Goodbye."
)
CRISIS = (
    "If you are thinking about harming yourself, please call or text 9 8 8, the Suicide and Crisis Lifeline, "
    "right now, or dial 9 1 1. I'm also alerting our staff. Goodbye."
)
NO_MEDICAL_ADVICE = (
    "I'm not able to give medical advice or discuss results or prescriptions. "
    "I can have a member of our clinical staff call you back. Would you like that?"
)
ONLY_YOUR_OWN = (
    "I can only help with your own appointments. The other person is welcome to call us themselves. "
    "Would you like a member of staff to call you back?"
)
RULES_REFUSAL = "I can only help with booking, cancelling, or rescheduling your own appointments. {question}"
ASK_CALLBACK_NUMBER = "What is the best number to call you back on?"

# --- a live transfer (a SIP call, with a front-desk address configured, within its hours) ---
#: When the call can be put through, each callback offer above is worded as a transfer instead.
TRANSFER_OFFERS = {
    "I can have someone from the front desk call you back.": ("I can put you through to the front desk now."),
    "I can have a member of our clinical staff call you back.": (
        "I can put you through to our front desk now."
    ),
    "Would you like a member of staff to call you back?": (
        "Would you like me to put you through to our front desk?"
    ),
}
TRANSFERRING = "Please hold while I put you through to the front desk."
TRANSFER_FAILED_CALLBACK = (
    "I'm sorry, I couldn't reach the front desk. Someone from the front desk will call you back. Goodbye."
)
TRANSFER_FAILED_ASK_NUMBER = (
    "I'm sorry, I couldn't reach the front desk, so someone will call you back. "
    "What is the best number to call you back on?"
)
CALLBACK_CONFIRMED = "Thank you. Someone from the front desk will call you back. Goodbye."
CALLBACK_DECLINED = "Okay. {question}"
CALLBACK_DECLINED_END = "Okay. Please call us again whenever you're ready. Goodbye."
NO_PROGRESS_END = (
    "I'm sorry, I'm not able to help with this over the phone. Please call the front desk. Goodbye."
)
SYSTEM_TROUBLE_GOODBYE = (
    "I'm sorry, something went wrong on my side. Please call again in a few minutes. Goodbye."
)
STILL_THERE = "Are you still there?"
KEYPAD_NOT_NOW = "Sorry, I can't take keypad entry for that. Please say your answer. {question}"
ASK_BIRTH_DATE_KEYED_AGAIN = (
    "Sorry, that wasn't a date I could use. Please key your date of birth as two digits for the month, "
    "two for the day, and four for the year, then press pound. Or just say it."
)
CALL_TOO_LONG = (
    "I'm sorry, this call has reached its time limit, so I'm going to end it now. "
    "Please call again if there's more I can help with. Goodbye."
)
TIMED_OUT = (
    "I haven't heard anything for a while, so I'm going to end this call. Please call again anytime. Goodbye."
)
#: The worker is being stopped (an upgrade, a scale-in) and its drain bound has run out.
SHUTTING_DOWN = "I'm sorry, I have to end this call now. Please call back and we'll help you then. Goodbye."
