"""How a spelled surname heard over the phone is compared with a record's (``fhir_adapters.spelling``):
slips between letters whose names sound alike pass, other surnames do not, short names hardly bend."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_adapters.spelling import first_letters, letter_distance, spelled_alike


@pytest.mark.parametrize(
    ("heard", "recorded"),
    [
        ("OKONKNO", "Okonkwo"),  # espeak-ng through tiny.en: W heard as N
        ("NEUYTN", "Nguyen"),  # G as E, E as T: both in the E-set
        ("QUIFBE", "Quispe"),  # S as F, P as B
        ("WAFHINTTON", "Washington"),
        ("YMAMODO", "Yamamoto"),
        ("OBRIEN", "O'Brien"),
        ("MUNOZ", "Muñoz"),
    ],
)
def test_a_spelling_with_telephone_slips_is_the_surname(heard: str, recorded: str) -> None:
    assert spelled_alike(heard, recorded)


@pytest.mark.parametrize(
    ("heard", "recorded"),
    [
        ("SMITH", "Okonkwo"),
        ("WHITFIELD", "Okonkwo"),
        ("OKAFOR", "Okonkwo"),
        ("NOLAN", "Nguyen"),
        ("ROSS", "Moss"),  # short names allow one alike-sounding letter only
        ("COLE", "Bold"),
        ("", "Okonkwo"),
    ],
)
def test_another_surname_is_not(heard: str, recorded: str) -> None:
    assert not spelled_alike(heard, recorded)


def test_alike_letter_names_cost_half() -> None:
    assert letter_distance("B", "D") == 0.5 and letter_distance("B", "K") == 1.0
    assert first_letters("N G U Y E N") == "mn" and first_letters("Okonkwo") == "o"
    assert first_letters("Bold") == "bcdegptvz"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20))
def test_an_exact_spelling_always_matches_and_its_first_letter_is_searched(name: str) -> None:
    assert spelled_alike(name.upper(), name)
    assert name[0] in first_letters(name)
