"""Canary PHI shared by the canary scans: plant a unique synthetic patient in the sandbox, and list every
shape its details could take on disk or in a log."""

from __future__ import annotations

import re
import secrets
from datetime import date

from harness.sandbox import Sandbox


def _letters(n: int) -> str:
    return "".join(
        secrets.choice("bcdfghjklmnpqrstvwxz") + secrets.choice("aeiou") for _ in range(n)
    ).capitalize()


def canary_forms(given: str, family: str, born: date, phone: str) -> list[bytes]:
    """Every shape the canary might take on disk or in a log."""
    digits = re.sub(r"\D", "", phone)
    texts = [
        given, family, f"{given} {family}",
        born.isoformat(), born.strftime("%m/%d/%Y"), born.strftime("%B %d, %Y"), born.strftime("%Y%m%d"),
        born.strftime("%m%d%Y"),  # as keyed on a phone keypad
        phone, digits, digits[-7:], f"{digits[-7:-4]}-{digits[-4:]}",
        " ".join({"-": "hyphen"}.get(c, c) for c in family),  # the surname as the caller spelled it
    ]  # fmt: skip
    forms = set()
    for text in texts:
        for variant in (text, text.lower(), text.upper()):
            forms.add(variant.encode())
            forms.add(variant.encode("utf-16-le"))
    return sorted(forms)


def plant_canary(sandbox: Sandbox, given: str | None = None, family: str | None = None) -> dict[str, str]:
    """A patient no other test knows: random birth date and phone; random name unless one is given (a
    voice call needs a name speech-to-text can hear)."""
    given, family = given or _letters(3), family or f"{_letters(3)}-{_letters(2)}"
    born = date(1930 + secrets.randbelow(70), 1 + secrets.randbelow(12), 1 + secrets.randbelow(28))
    phone = f"+1-555-{secrets.randbelow(900) + 100}-{secrets.randbelow(9000) + 1000}"
    patient_id = f"canary-{secrets.token_hex(4)}"
    with sandbox.raw() as raw:
        response = raw.put(
            f"Patient/{patient_id}",
            json={
                "resourceType": "Patient",
                "id": patient_id,
                "name": [{"family": family, "given": [given]}],
                "birthDate": born.isoformat(),
                "telecom": [{"system": "phone", "value": phone}],
            },
            headers={"Content-Type": "application/fhir+json"},
        )
        assert response.status_code in (200, 201)
    return {
        "CANARY_GIVEN": given,
        "CANARY_FAMILY": family,
        "CANARY_DOB": born.isoformat(),
        "CANARY_PHONE": phone,
        "id": patient_id,
    }
