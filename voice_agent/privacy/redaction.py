"""Scrubs PHI out of text before it reaches a log line, an exception dump or any other output.

HIPAA's "no PHI at rest" covers logs: a log line that carries a caller's name, date of birth or phone
number is a record of PHI that outlives the call. This module replaces such values with
``[redacted:<kind>]`` while leaving the technical tokens that make logs useful (session UUIDs, FHIR ids
such as ``pat-001`` or ``slot-okafor-20261124-0900``, status codes, timings) untouched.

Two passes run on every line:

* one precompiled pattern for PHI with a known *shape* (dates, phone numbers, emails, SSNs, MRNs,
  street addresses), and
* a per-call pattern for the *names* this call has learned, kept in a :mod:`contextvars` registry so
  each call's names are scrubbed from its own log lines and nothing outlives the call.

Both patterns list protected tokens first, so a name or a digit run inside a FHIR id or a UUID is kept.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

__all__ = [
    "PHI_KINDS",
    "NameRegistry",
    "Redactor",
    "current_names",
    "known_names",
    "redact",
    "remember_name",
]

#: Every kind that can appear in a ``[redacted:<kind>]`` marker.
PHI_KINDS: Final = ("name", "date", "phone", "email", "mrn", "address", "ssn")

# --------------------------------------------------------------------------------------------------
# Protected technical tokens: matched before any PHI shape at the same place and returned unchanged.
# --------------------------------------------------------------------------------------------------

#: Prefixes of the FHIR logical ids this product mints or reads (``pat-001``, ``slot-okafor-...``).
DEFAULT_ID_PREFIXES: Final = (
    "pat",
    "patient",
    "slot",
    "slots",
    "appt",
    "appointment",
    "sched",
    "schedule",
    "prac",
    "practitioner",
    "role",
    "loc",
    "location",
    "org",
    "enc",
    "esc",
    "req",
    "call",
    "sess",
)
_FHIR_TYPES = "Patient|Slot|Schedule|Appointment|Practitioner|PractitionerRole|Location|Organization"
_KEEP_REDACTED = r"\[redacted:[a-z]+\]"  # already scrubbed: keeps redaction idempotent
_UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}(?![\w-])"
_HEX = r"[0-9a-f]{32,}(?![\w-])"  # digests, trace ids


def _fhir_ids(id_prefixes: Iterable[str]) -> str:
    """FHIR references (``Patient/pat-001``) and logical ids with a known prefix (``slot-okafor-...``)."""
    prefixes = "|".join(sorted({re.escape(p) for p in id_prefixes}, key=len, reverse=True))
    # Case-sensitive: the ids are lowercase, while "Pat-Smith" is a caller's name, not an id.
    return (
        rf"(?-i:(?:{_FHIR_TYPES})/[A-Za-z0-9.\-]{{1,64}}"
        rf"|(?:{prefixes})-[a-z0-9][a-z0-9.\-]{{0,63}}(?<![.\-]))"
    )


# --------------------------------------------------------------------------------------------------
# Shapes of PHI.
# --------------------------------------------------------------------------------------------------

_ONES = "one|two|three|four|five|six|seven|eight|nine"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_ONES_ORD = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth"
_TEENS_ORD = (
    "tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth"
)
_SEP = r"[\s-]+"

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?!\w)\.?"
)
_DAY_NUM = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?(?!\w)"
_DAY_WORD = (
    rf"(?:(?:twenty|thirty){_SEP}(?:{_ONES_ORD}|{_ONES})|twentieth|thirtieth|{_TEENS_ORD}|{_ONES_ORD}"
    rf"|twenty|thirty|{_TEENS}|{_ONES})(?!\w)"
)
_DAY = rf"(?:{_DAY_NUM}|{_DAY_WORD})"
_YEAR_NUM = r"(?:\d{4}|'\d{2})(?!\w)"
_YEAR_WORD = (
    rf"(?:(?:nineteen|twenty){_SEP}(?:hundred|oh{_SEP}(?:{_ONES})|(?:{_TENS})(?:{_SEP}(?:{_ONES}))?"
    rf"|{_TEENS})|two{_SEP}thousand(?:{_SEP}and)?(?:{_SEP}(?:(?:{_TENS})(?:{_SEP}(?:{_ONES}))?"
    rf"|{_TEENS}|{_ONES}))?)(?!\w)"
)
_YEAR = rf"(?:{_YEAR_NUM}|{_YEAR_WORD})"
_D_DAY = r"(?:3[01]|[12]\d|0?[1-9])"
_D_MONTH = r"(?:1[0-2]|0?[1-9])"
#: 29th of February 1988 / 29 Feb / the third of march (digit- or word-led)
_DAY_FIRST_DATE = rf"{_DAY}\s+(?:day\s+)?(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"

_UNITS = r"\s?(?:ms|us|µs|ns|bytes|B|kB|KB|KiB|MB|MiB|GB|GiB)(?!\w)"
_STREET_SUFFIX = (
    r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|terrace|ter|way"
    r"|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|plaza|alley|row)"
)
_NOT_STREET_WORD = (
    r"(?!(?:for|with|the|to|of|in|at|on|from|by|and|or|is|are|was|were|has|have|ms|slots?|items?"
    r"|appointments?|patients?|calls?|results?|records?|times?|attempts?|retries|seconds?|minutes?)(?!\w))"
)
_APARTMENT = r"(?:,?\s*(?:apt|apartment|suite|ste|unit|fl|floor|rm|room|#)\.?\s*#?\s*[A-Za-z0-9-]{1,6}(?!\w))"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_SPOKEN_DIGIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_STATES = (
    r"(?-i:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI"
    r"|S[CD]|T[NX]|UT|V[AT]|W[AIVY])"
)

#: Alternatives that start at a digit, ``(`` or ``+`` (not inside a word or a decimal), in priority
#: order. Each is ``(kind, guard, pattern)``: the guard is a cheap look-ahead that fails at once at most
#: token starts, because Python's ``re`` pays for every alternative it enters.
_DIGIT_LED: Final = (
    # IPv4 addresses (a caller's browser in SDP/ICE lines, a client in a server line): an identifier
    # under HIPAA. Loopback and the unspecified address stay readable.
    (
        "ip",
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d",
        rf"(?<![\d.])(?!127\.0\.0\.1(?![\d])|0\.0\.0\.0(?![\d])){_OCTET}(?:\.{_OCTET}){{3}}(?![\d]|\.\d)",
    ),
    ("ssn", r"\d{3}[-\s]\d\d[-\s]", r"\d{3}-\d{2}-\d{4}(?![\w-])"),
    ("ssn", r"\d{3}\s\d\d\s", r"\d{3}\s\d{2}\s\d{4}(?![\w.])"),
    # 2026-02-29, 1988/02/29
    ("date", r"\d{4}[-/.]", rf"(?<![:/-])\d{{4}}(?P<isosep>[-/.]){_D_MONTH}(?P=isosep){_D_DAY}(?!\d)"),
    # 02/29/1988, 2/29/88, 02-29-1988 (US) and 29/02/1988 (day first)
    (
        "date",
        r"\d\d?[/-]\d",
        rf"(?<![:/-]){_D_DAY}(?P<numsep>[/-]){_D_DAY}(?P=numsep)(?:\d{{4}}|\d{{2}})(?![\w/-])",
    ),
    # 29.02.1988 (four-digit year, so version numbers such as 0.0.66 survive)
    ("date", r"\d\d?\.\d\d?\.\d{4}", rf"{_D_DAY}\.{_D_DAY}\.\d{{4}}(?![\w.])"),
    ("date", r"\d\d?(?:st|nd|rd|th)?\s", _DAY_FIRST_DATE),
    # +1 (555) 123-4567, 1-555-123-4567, 555.123.4567, 5551234567, +15551234567
    (
        "phone",
        r"[(+]|\d{3}[\s.-]?\d{3}|1[\s.-]?[(\d]",
        r"(?<!\+)(?:\+?1[\s.-]?)?(?:\(\d{3}\)[\s.-]?|\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}(?!\w|\.\d)",
    ),
    # 7-digit local number: 555-1234 / 555 1234 (no dot: 123.4567 is a float)
    ("phone", r"\d{3}[\s-]\d{4}", r"(?<![+-])\d{3}[\s-]\d{4}(?![\w-]|\.\d)"),
    # 123 Main Street, 45 Oak Ave Apt 3, 9 N. Elm St., 100 West 5th Avenue Suite 200
    (
        "address",
        r"\d{1,6}[A-Za-z]?\s+[A-Za-z]",
        rf"(?<![:/-])\d{{1,6}}[A-Za-z]?(?:\s+{_NOT_STREET_WORD}[A-Za-z0-9'.-]+){{1,4}}?\s+{_STREET_SUFFIX}"
        rf"(?!\w)\.?{_APARTMENT}?",
    ),
    # any run of 6+ digits that is not a decimal fraction or a size/duration
    ("mrn", r"\d{6}", rf"\d{{6,}}(?!\w|\.\d|{_UNITS})"),
)

#: Alternatives that start at the beginning of a word, in priority order, with their guards.
_WORD_LED: Final = (
    # February 1988, march nineteen eighty five
    ("date", "[jfmasond]", rf"{_MONTH},?\s+{_YEAR}"),
    # February 29, 1988 / Feb 29th / march third nineteen eighty five
    ("date", "[jfmasond]", rf"{_MONTH}\s+(?:the\s+)?{_DAY}(?:,?\s+(?:of\s+|in\s+)?{_YEAR})?"),
    ("date", rf"[eftnsow][a-z]+(?:[\s-]+[a-z]+)?\s+(?:day\s+)?(?:of\s+)?{_MONTH}", _DAY_FIRST_DATE),
    # spoken digits: "five five five one two three four" (7 or more)
    ("phone", "[zoteafsn]", rf"{_SPOKEN_DIGIT}(?:[\s,-]+{_SPOKEN_DIGIT}){{6,}}(?!\w)"),
    # PO Box 123, P.O. Box 456, post office box 7
    ("address", "p", r"(?:p\.?\s?o\.?|post\s+office)\s*box\s+\d+(?!\w)"),
    # ZIP code after a state: NY 10001, MA 02139-1234
    ("address", r"(?-i:[A-Z][A-Z],?\s+\d)", rf"{_STATES},?\s+\d{{5}}(?:-\d{{4}})?(?![\w-])"),
    # MRN-0012345, A1234567, MR#1234567
    ("mrn", r"[a-z]{1,4}[-#:]?\d", r"[A-Za-z]{1,4}[-#:]?\d{5,}(?![\w-])"),
)

_EMAIL: Final = (
    ("email", r"[\w.%+-]+@", r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)"),
    # spoken: "mary smith at gmail dot com"
    (
        "email",
        r"[\w.]+\s+at\s",
        r"[\w.]+\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)*\s+dot\s+(?:com|org|net|edu|gov|us|io)(?!\w)",
    ),
)

#: A label names the kind; the value after it is redacted even when short (``MRN 4521``).
_LABELLED: Final = (
    (
        "mrn",
        r"(?:mrn|medical\s+record(?:\s+(?:number|no\.?|#))?|chart\s+(?:number|no\.?|#)|member\s+id)",
        r"(?=[A-Za-z-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,}",
    ),
    ("ssn", r"(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)", r"\d[\d -]{6,}\d"),
    ("date", r"(?:dob|d\.o\.b\.|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)", r"\d[\d/.-]{4,}\d"),
)

#: FHIR search parameters that carry PHI in a query string (``?family=Smith&birthdate=1988-02-29``).
_QUERY_PARAMS: Final = (
    ("name", "family|given|name|phonetic"),
    ("date", "birthdate|dob"),
    ("phone", "phone|telecom"),
    ("email", "email"),
    ("address", r"address(?:-[a-z]+)?"),
    ("mrn", "identifier|mrn"),
)


def _static_pattern(id_prefixes: Iterable[str], *, emails: bool) -> tuple[re.Pattern[str], dict[str, str]]:
    """Build the one-pass pattern; returns it and a map from group name to PHI kind.

    Python's ``re`` pays for every alternative tried at every position, so the alternatives are
    grouped behind two cheap guards (start of a number, start of a word): only token starts pay for
    the full list. Protected tokens come first in each group, so a match inside them cannot win.
    Emails are a separate variant, used only when the line has an ``@`` or a spoken "dot".
    """
    kinds: dict[str, str] = {}

    def tag(kind: str, guard: str, pattern: str) -> str:
        group = f"{kind}{len(kinds)}"
        kinds[group] = kind
        return f"(?={guard})(?P<{group}>{pattern})"

    def email() -> list[str]:
        return [tag(*alternative) for alternative in _EMAIL] if emails else []

    query = []
    for kind, params in _QUERY_PARAMS:
        group = f"q{kind}"
        kinds[group] = kind
        query.append(rf"(?P<{group}>(?P<{group}_p>(?:{params})(?::[a-z]+)?=)[^&\s\"'#]+)")
    labelled = []
    for kind, label, value in _LABELLED:
        group = f"l{kind}"
        kinds[group] = kind
        labelled.append(rf"(?=[mcdbs])(?P<{group}>(?P<{group}_p>{label}\s*(?:#|no\.?)?\s*[:#=]?\s*){value})")

    digit_led = [
        rf"(?=[0-9a-f]{{8}})(?P<keep>{_UUID}|{_HEX})",
        *email(),
        *(tag(*alternative) for alternative in _DIGIT_LED),
    ]
    word_led = [
        rf"(?=[0-9a-f]{{8}})(?P<keep_h>{_UUID}|{_HEX})",
        rf"(?=[a-z]+[-/])(?P<keep_w>{_fhir_ids(id_prefixes)})",
        rf"(?<=[?&;])(?:{'|'.join(query)})",
        *labelled,
        *email(),
        *(tag(*alternative) for alternative in _WORD_LED),
    ]
    pattern = "|".join(
        (
            f"(?P<keep_r>{_KEEP_REDACTED})",
            rf"(?=[0-9(+])(?<![\w.])(?:{'|'.join(digit_led)})",
            rf"(?=[A-Za-z])(?<![\w.])(?:{'|'.join(word_led)})",
        )
    )
    return re.compile(pattern, re.IGNORECASE), kinds


def _name_pass_pattern(id_prefixes: Iterable[str], names: str) -> re.Pattern[str]:
    """The name pass; FHIR ids are kept because they may hold a practitioner's surname."""
    return re.compile(
        rf"(?P<keep>{_KEEP_REDACTED})|(?=[^\W\d_])(?<!\w)"
        rf"(?:(?<![.-])(?P<keep_w>{_fhir_ids(id_prefixes)})|(?<!\[redacted:)(?P<name>{names})(?!\w))",
        re.IGNORECASE,
    )


# --------------------------------------------------------------------------------------------------
# Names known to the current call.
# --------------------------------------------------------------------------------------------------

#: Name particles that are redacted as part of a full name but not alone (they are common words).
_PARTICLES: Final = frozenset(
    {"de", "del", "della", "der", "da", "di", "do", "dos", "du", "la", "le", "van", "von", "den", "ter", "st"}
)
_MULTI_FOLD = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ħ": "h",
    "\u0131": "i",  # dotless i
    "þ": "th",
}
_FOLD_TABLE = str.maketrans(_MULTI_FOLD)
_NAME_SEP = "[\\s\\-'\u2019.,]*"  # whitespace, hyphen, apostrophes, dot, comma
_COMBINING = "[\u0300-\u036f]*"
_WORD_RUN = re.compile(r"[^\W\d_]+")


def _fold_char(char: str) -> str:
    char = char.casefold()
    if char in _MULTI_FOLD:
        return _MULTI_FOLD[char]
    return "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))


def _fold_text(text: str) -> str:
    """Case- and accent-folded ASCII view of ``text``: a cheap test of whether a name can occur."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD_TABLE))
    return folded.encode("ascii", "ignore").decode("ascii")


def _build_variants() -> dict[str, str]:
    """ASCII letter -> character class of every Latin letter that folds to it (é, È, ė ... for e)."""
    variants: dict[str, set[str]] = {}
    for code in list(range(0x41, 0x5B)) + list(range(0x61, 0x7B)) + list(range(0xC0, 0x250)):
        char = chr(code)
        if not char.isalpha():
            continue
        folded = _fold_char(char)
        if len(folded) == 1 and folded.isascii():
            variants.setdefault(folded, set()).update({char, char.lower(), char.upper()})
    return {base: "[" + "".join(sorted(chars)) + "]" for base, chars in variants.items()}


_VARIANTS: Final = _build_variants()
_MULTI_ALTERNATIVES: Final = {"ss": "(?:ss|ß)", "ae": "(?:ae|æ)", "oe": "(?:oe|œ)", "th": "(?:th|þ)"}


def _letters_pattern(run: str) -> str:
    """Accent- and case-insensitive pattern for one run of letters."""
    folded = "".join(_fold_char(c) for c in run)
    out: list[str] = []
    i = 0
    while i < len(folded):
        pair = folded[i : i + 2]
        if pair in _MULTI_ALTERNATIVES:
            out.append(_MULTI_ALTERNATIVES[pair] + _COMBINING)
            i += 2
            continue
        char = folded[i]
        out.append((_VARIANTS.get(char) or re.escape(char)) + _COMBINING)
        i += 1
    return "".join(out)


def _name_alternatives(name: str) -> set[str]:
    """The whole name, each word and each part, any punctuation between parts optional."""
    alternatives: set[str] = set()
    runs = _WORD_RUN.findall(name)
    if not runs:
        return alternatives
    alternatives.add(_NAME_SEP.join(_letters_pattern(r) for r in runs))
    for word in name.split():
        word_runs = _WORD_RUN.findall(word)
        if word_runs and sum(len(r) for r in word_runs) >= 2:
            alternatives.add(_NAME_SEP.join(_letters_pattern(r) for r in word_runs))
    for run in runs:
        if len(run) >= 2 and run.casefold() not in _PARTICLES:
            alternatives.add(_letters_pattern(run))
    return alternatives


class NameRegistry:
    """The names one call has learned (the caller's, the patient's). Thread- and task-safe.

    One registry is shared by every task a call spawns (they inherit the context variable that holds
    it), so a name learned by the dialogue task is scrubbed from the STT task's log lines too. The
    compiled pattern lives on the registry, not in a module cache, so it dies with the call.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._live = False  # True while it is the registry of a call in progress
        self._names: set[str] = set()
        self._compiled: tuple[re.Pattern[str], tuple[str, ...]] | None = None
        self._compiled_for: tuple[str, ...] | None = None
        for name in names:
            self.add(name)

    def add(self, name: str) -> None:
        name = " ".join(name.split())
        if name:
            with self._lock:
                if name in self._names:
                    return
                self._names.add(name)
                self._compiled = None
            if self._live:
                _refresh_live_names()

    def clear(self) -> None:
        """Forget every name (end of call): nothing about the caller stays in memory."""
        with self._lock:
            self._names.clear()
            self._compiled = None

    def snapshot(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._names)

    def _replace(self, names: Iterable[str]) -> None:
        with self._lock:
            self._names = set(names)
            self._compiled = None

    def __len__(self) -> int:
        return len(self._names)

    def compiled(self, id_prefixes: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
        """The name pattern and the folded word runs that gate it; rebuilt only after an ``add``."""
        with self._lock:
            if self._compiled is None or self._compiled_for != id_prefixes:
                alternatives: set[str] = set()
                runs: set[str] = set()
                for name in self._names:
                    alternatives |= _name_alternatives(name)
                    runs.update(_fold_text(run) for run in _WORD_RUN.findall(name))
                if not alternatives:
                    return None
                names = "|".join(sorted(alternatives, key=len, reverse=True))
                self._compiled = (_name_pass_pattern(id_prefixes, names), tuple(sorted(runs)))
                self._compiled_for = id_prefixes
            return self._compiled


_REGISTRY: ContextVar[NameRegistry | None] = ContextVar("voice_agent_known_names", default=None)

# Code that runs outside any call's context (a worker thread, which does not inherit context variables;
# a server or library callback) still has every live call's names scrubbed: their union, kept current.
_LIVE_LOCK = threading.Lock()
_LIVE: set[NameRegistry] = set()
_LIVE_NAMES = NameRegistry()


def _refresh_live_names() -> None:
    with _LIVE_LOCK:
        _LIVE_NAMES._replace(name for registry in _LIVE for name in registry.snapshot())


@contextmanager
def known_names(*names: str) -> Iterator[NameRegistry]:
    """Scope a call: names given here or remembered inside are redacted from this call's log lines.

    On exit the registry is cleared, so no caller name outlives the call in memory.
    """
    registry = NameRegistry(names)
    registry._live = True
    with _LIVE_LOCK:
        _LIVE.add(registry)
    _refresh_live_names()
    token = _REGISTRY.set(registry)
    try:
        yield registry
    finally:
        _REGISTRY.reset(token)
        registry._live = False
        with _LIVE_LOCK:
            _LIVE.discard(registry)
        registry.clear()
        _refresh_live_names()


def remember_name(name: str) -> NameRegistry:
    """Add a name the call just learned. Outside :func:`known_names` it starts a registry for the
    current context only (a task's context), so prefer opening the scope at the start of the call."""
    registry = _REGISTRY.get()
    if registry is None:
        registry = NameRegistry()
        _REGISTRY.set(registry)
    registry.add(name)
    return registry


def current_names() -> NameRegistry | None:
    """The registry of the call this code runs in, if any."""
    return _REGISTRY.get()


# --------------------------------------------------------------------------------------------------
# The redactor.
# --------------------------------------------------------------------------------------------------


class Redactor:
    """Replaces PHI in text with ``[redacted:<kind>]``; cheap enough to run on every log line.

    ``id_prefixes`` lists the prefixes of FHIR logical ids to keep (``pat`` keeps ``pat-001``); a
    clinic whose server mints other ids can extend it.
    """

    def __init__(self, id_prefixes: Iterable[str] = DEFAULT_ID_PREFIXES) -> None:
        prefixes = tuple(id_prefixes)
        self._prefixes = prefixes
        self._lean, self._kinds = _static_pattern(prefixes, emails=False)
        self._full, kinds = _static_pattern(prefixes, emails=True)
        self._kinds.update(kinds)
        self._keeps_prefix = frozenset(g for g in self._kinds if g[0] in "ql")

    def _replace(self, match: re.Match[str]) -> str:
        group = match.lastgroup
        if group is None or group.startswith("keep"):
            return match.group(0)
        kind = self._kinds.get(group, "name")
        if group in self._keeps_prefix:
            return f"{match.group(group + '_p')}[redacted:{kind}]"
        return f"[redacted:{kind}]"

    def redact(self, text: str, names: NameRegistry | None = None) -> str:
        """Scrub ``text``; names come from ``names`` or else from the current call's registry."""
        if not text:
            return text
        pattern = self._full if "@" in text or "dot " in text or "DOT " in text else self._lean
        text = pattern.sub(self._replace, text)
        registry = names if names is not None else (_REGISTRY.get() or _LIVE_NAMES)
        if registry is not None and len(registry):
            compiled = registry.compiled(self._prefixes)
            if compiled is not None:
                name_pattern, runs = compiled
                folded = _fold_text(text)
                if any(run in folded for run in runs):
                    text = name_pattern.sub(self._replace, text)
        return text


_DEFAULT = Redactor()


def redact(text: str) -> str:
    """Scrub ``text`` with the default redactor and the current call's names."""
    return _DEFAULT.redact(text)
