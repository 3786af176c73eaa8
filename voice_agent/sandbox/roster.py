"""Hand-written data for the synthetic clinic: the hard-case patient roster and the random name pools.

Every person, street and town here is invented. Names in the pools are plain ASCII without hyphens or
apostrophes so that the hard-case tags stay exact: a patient tagged "hyphenated" is the only kind of
patient whose name has a hyphen, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Hard-case tags. A patient may carry several.
HYPHENATED = "hyphenated"
APOSTROPHE = "apostrophe"
ACCENTED = "accented"
SAME_NAME = "same-name"
LEAP_DAY = "leap-day"
WITH_APPOINTMENTS = "with-appointments"
NO_APPOINTMENTS = "no-appointments"
MULTI_GIVEN = "multi-given"
SHORT_NAME = "short-name"
PAST_APPOINTMENT = "past-appointment"
POOL = "pool"  # drawn at random from the name pools, changes with the seed

HARD_CASE_TAGS: frozenset[str] = frozenset(
    {
        HYPHENATED,
        APOSTROPHE,
        ACCENTED,
        SAME_NAME,
        LEAP_DAY,
        WITH_APPOINTMENTS,
        NO_APPOINTMENTS,
        MULTI_GIVEN,
        SHORT_NAME,
        PAST_APPOINTMENT,
    }
)


@dataclass(frozen=True)
class RosterEntry:
    given: tuple[str, ...]
    family: str
    birth_date: date
    gender: str  # FHIR administrative gender: male | female | other | unknown
    tags: frozenset[str]
    email: bool = True


# The roster comes first, in this order, so its patients get the same ids (pat-001 ...) for every seed.
ROSTER: tuple[RosterEntry, ...] = (
    RosterEntry(
        ("Mary-Jane",), "Smith-Jones", date(1962, 7, 14), "female", frozenset({HYPHENATED, WITH_APPOINTMENTS})
    ),
    RosterEntry(
        ("Siobhan",), "O'Brien", date(1979, 3, 17), "female", frozenset({APOSTROPHE, WITH_APPOINTMENTS})
    ),
    RosterEntry(("José",), "Muñoz", date(1955, 11, 2), "male", frozenset({ACCENTED, WITH_APPOINTMENTS})),
    RosterEntry(("Zoë",), "Lefèvre", date(2001, 5, 23), "female", frozenset({ACCENTED, NO_APPOINTMENTS})),
    RosterEntry(("John",), "Smith", date(1975, 3, 14), "male", frozenset({SAME_NAME, WITH_APPOINTMENTS})),
    RosterEntry(
        ("John",), "Smith", date(1991, 8, 2), "male", frozenset({SAME_NAME, NO_APPOINTMENTS}), email=False
    ),
    RosterEntry(
        ("Leah",), "Whitfield", date(1988, 2, 29), "female", frozenset({LEAP_DAY, WITH_APPOINTMENTS})
    ),
    RosterEntry(
        ("Anna", "Maria"), "Kowalski", date(1947, 9, 30), "female", frozenset({MULTI_GIVEN, NO_APPOINTMENTS})
    ),
    RosterEntry(
        ("Al",), "Ng", date(1983, 12, 8), "male", frozenset({SHORT_NAME, WITH_APPOINTMENTS}), email=False
    ),
    RosterEntry(
        ("Priya",), "Raman", date(1969, 1, 19), "female", frozenset({WITH_APPOINTMENTS, PAST_APPOINTMENT})
    ),
)

GIVEN_FEMALE: tuple[str, ...] = (
    "Abigail",
    "Alicia",
    "Brenda",
    "Camila",
    "Carmen",
    "Chloe",
    "Dana",
    "Deborah",
    "Ebony",
    "Elena",
    "Emily",
    "Fatima",
    "Grace",
    "Hannah",
    "Imani",
    "Jasmine",
    "Keisha",
    "Laura",
    "Linda",
    "Mei",
    "Megan",
    "Nadia",
    "Olivia",
    "Patricia",
    "Rachel",
    "Rosa",
    "Sarah",
    "Tamika",
    "Valerie",
    "Yesenia",
)

GIVEN_MALE: tuple[str, ...] = (
    "Aaron",
    "Andre",
    "Brandon",
    "Carlos",
    "Christopher",
    "David",
    "Derek",
    "Eduardo",
    "Ethan",
    "Gabriel",
    "Hassan",
    "Isaac",
    "Jamal",
    "Kevin",
    "Luis",
    "Marcus",
    "Michael",
    "Nathan",
    "Omar",
    "Paul",
    "Raymond",
    "Robert",
    "Samuel",
    "Terrence",
    "Thomas",
    "Victor",
    "Wei",
    "William",
    "Xavier",
    "Zachary",
)

FAMILY: tuple[str, ...] = (
    "Adams",
    "Alvarez",
    "Baker",
    "Bennett",
    "Brooks",
    "Campbell",
    "Carter",
    "Chen",
    "Coleman",
    "Diaz",
    "Edwards",
    "Evans",
    "Fischer",
    "Foster",
    "Garcia",
    "Gonzalez",
    "Gupta",
    "Harris",
    "Hughes",
    "Ibrahim",
    "Jackson",
    "Jensen",
    "Johnson",
    "Kim",
    "Lee",
    "Lopez",
    "Martin",
    "Mitchell",
    "Nguyen",
    "Okonkwo",
    "Patel",
    "Perez",
    "Peterson",
    "Quinn",
    "Ramirez",
    "Reyes",
    "Robinson",
    "Sanders",
    "Shah",
    "Sullivan",
    "Taylor",
    "Thompson",
    "Tran",
    "Turner",
    "Walker",
    "Washington",
    "Williams",
    "Wright",
    "Yamamoto",
    "Young",
)

# Invented streets and towns. The states are real, the postal codes are in the unassigned 001xx-004xx range.
STREETS: tuple[str, ...] = (
    "Alderbrook Lane",
    "Birchwhistle Road",
    "Copperfen Street",
    "Dovecote Avenue",
    "Elmquill Drive",
    "Fernhollow Court",
    "Glimmerpine Way",
    "Hazelmoor Boulevard",
    "Ivystone Place",
    "Juniperwick Terrace",
    "Kestrelvale Road",
    "Larkspur Ridge Drive",
)

TOWNS: tuple[tuple[str, str], ...] = (
    ("Amberfield", "MA"),
    ("Bramblewood", "NY"),
    ("Cinderbrook", "NJ"),
    ("Dunmere Falls", "CT"),
    ("Eastwillow", "PA"),
    ("Foxglove Harbor", "RI"),
    ("Greywater", "VT"),
    ("Hollins Crossing", "NH"),
)
