"""Phone numbers as the agent stores and compares them: E.164 ("+15550142222").

Below both the dialogue (a callback number a caller gives) and the ingress (a carrier's or a SIP
caller's attested number), so neither imports the other for it.
"""

from __future__ import annotations

import re


def to_e164(number: str | None, *, default_country: str = "1") -> str | None:
    """ "(555) 014-2222", "555 014 2222", "+1-555-014-2222" -> "+15550142222"; anything else -> None
    (an unusable number is dropped rather than stored wrong)."""
    if not number:
        return None
    digits = re.sub(r"\D", "", number)
    if number.strip().startswith("+"):
        candidate = f"+{digits}"
    elif len(digits) == 10:
        candidate = f"+{default_country}{digits}"
    elif len(digits) == 11 and digits.startswith(default_country):
        candidate = f"+{digits}"
    else:
        return None
    return candidate if re.fullmatch(r"\+[1-9][0-9]{6,14}", candidate) else None
