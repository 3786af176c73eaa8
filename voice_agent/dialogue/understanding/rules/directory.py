"""Practitioners and visit types: the clinic's directory compiled once into matchers, and the caller's
words matched against them without ever inventing a practitioner or a visit type."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from ..base import DirectoryEntry, VisitTypeEntry
from ..spoken import fold
from .normalise import _words
from .patterns import _DOCTOR_WORD, _NAME_CUE

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
