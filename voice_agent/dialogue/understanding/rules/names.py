"""Names: the caller's given and family name from an answer to "full name?", kept as said, through
leads, trailers, spelled letters, labelled fields and family-first commas."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from ..spoken import fold
from ..spoken.letters import COMMA as _COMMA
from ..spoken.letters import TOKENS as _NAME_TOKEN
from ..spoken.letters import letters_said_as, said_mark, spelled_word
from .directory import _split_words
from .normalise import _words

_APOSTROPHES: Final = str.maketrans("\u2019\u2018`", "'" * 3)
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


@dataclass(frozen=True)
class _Name:
    given: str | None
    family: str | None
    introduced: bool  # "my name is ...": the words are a name even outside the name question
    clean: bool  # nothing but the name was said
    spelled: bool = False  # the whole answer was letters: one word, exactly as spelled


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
        mark = said_mark(token)
        if (len(token) == 1 and token.isalpha()) or (mark is not None and run):
            run.append(mark or token)  # "O apostrophe B R I E N": the mark inside the word
            continue
        letters = sum(t.isalpha() for t in run)
        out.extend([_capitalise("".join(run).lower())] if letters >= 3 else run)
        run = []
        if token:
            out.append(token)
    return out


def _only_spelled(tokens: list[str]) -> str | None:
    """The word, when the whole answer is letters (with commas, hyphens or apostrophes between them)."""
    spelled = spelled_word(tokens)
    return _capitalise(spelled.lower()) if spelled is not None else None


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


#: Words that make an answer to "your name?" something other than a name ("it's about my appointment").
_NOT_A_NAME: Final = _words(
    "appointment appointments book booking cancel reschedule schedule doctor dr help speak talk person "
    "human someone somebody operator agent representative repeat again spell spelled time today tomorrow "
    "born birth date dob birthday number phone emergency pain hurt wait what why how who when where "
    "know remember forgot sorry not rather say said yes no"
)


def _as_heard(tokens: list[str]) -> list[str] | None:
    """A name misheard into ordinary words ("Siobhan Okonkwo" as "shout on to Kanbo", "been an NNG YN"):
    every word said, as the name, when nothing but a name can have been meant. Only the first word is
    then the given name; the rest, the surname as heard. Verification never trusts such a name alone:
    it fails the exact match and goes on to the spelling and the birth date."""
    words = [t for t in tokens if t != _COMMA]
    if not 2 <= len(words) <= 5 or any(t.isdigit() or _key(t) in _NOT_A_NAME for t in words):
        return None
    return [_capitalise(w) if w.islower() else w for w in words]


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


def _extract_name(raw: str) -> _Name | None:
    text = unicodedata.normalize("NFC", raw).translate(_APOSTROPHES)
    text = letters_said_as(text)
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
        spelled = _only_spelled(tokens)
        if spelled is not None:  # "O K O N K W O", "N G", "O apostrophe B R I E N": one word, spelled
            return _Name(spelled, None, introduced, True, spelled=True)
        given_words, family_words, clean = [], [], True
        said = tokens
        if _COMMA in tokens:
            cut = tokens.index(_COMMA)
            left, left_rest = _name_run(tokens[:cut])
            after = [t for t in tokens[cut + 1 :] if t != _COMMA]
            right, right_rest = _name_run(after)
            letters = [said_mark(t) or t for t in after]
            if (
                left
                and not left_rest
                and len(left) >= 2
                and all(len(t) == 1 for t in letters)
                and (
                    sum(t.isalpha() for t in letters) >= 3
                    # a short surname spelled back as it was heard ("Al Ng, N G")
                    or (len(letters) == 2 and _key("".join(letters)) == _key(left[-1]))
                )
            ):
                # "John Parke, P A R K": the spelling is the surname, whatever was heard for it
                surname = _capitalise("".join(letters).lower())
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
            if len(run) <= 1 and (rest or said is not tokens):  # a name misheard as words
                run = _as_heard(said) or run
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
