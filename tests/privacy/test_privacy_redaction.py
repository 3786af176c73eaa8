"""The redactor on its own: every PHI shape goes, every technical token stays, names are per call."""

from __future__ import annotations

import asyncio

import pytest

from voice_agent.privacy import Redactor, current_names, known_names, redact, remember_name

R = Redactor()

PHI = [
    # dates, written and spoken
    ("date", "DOB 2026-02-29 on file", "2026-02-29"),
    ("date", "born 02/29/1988", "02/29/1988"),
    ("date", "born 2/9/88.", "2/9/88"),
    ("date", "born 29.02.1988", "29.02.1988"),
    ("date", "born February 29, 1988", "February 29, 1988"),
    ("date", "on the 29th of February 1988", "29th of February 1988"),
    ("date", "seen Feb 29th", "Feb 29th"),
    ("date", "caller said march third nineteen eighty five", "march third nineteen eighty five"),
    (
        "date",
        "the twenty first of june two thousand and three",
        "twenty first of june two thousand and three",
    ),
    ("date", "born in March 1985", "March 1985"),
    # phones
    ("phone", "call 555-123-4567 now", "555-123-4567"),
    ("phone", "call (555) 123-4567", "(555) 123-4567"),
    ("phone", "call +1 555 123 4567", "+1 555 123 4567"),
    ("phone", "call 1-555-123-4567", "1-555-123-4567"),
    ("phone", "call 555.123.4567", "555.123.4567"),
    ("phone", "call 5551234567", "5551234567"),
    ("phone", "call +15551234567", "+15551234567"),
    ("phone", "local 555-1234", "555-1234"),
    ("phone", "it is five five five one two three four", "five five five one two three four"),
    # emails
    ("email", "mail mary.smith+clinic@example.org", "mary.smith+clinic@example.org"),
    ("email", "it's mary at gmail dot com", "mary at gmail dot com"),
    # MRNs
    ("mrn", "chart MRN-0012345", "0012345"),
    ("mrn", "id A1234567 found", "A1234567"),
    ("mrn", "record 00123456", "00123456"),
    ("mrn", "MRN: 4521", "4521"),
    # addresses
    ("address", "lives at 123 Main Street", "123 Main Street"),
    ("address", "lives at 45 Oak Ave Apt 3", "45 Oak Ave Apt 3"),
    ("address", "send to PO Box 123", "PO Box 123"),
    ("address", "send to P.O. Box 456", "P.O. Box 456"),
    ("address", "Springfield, MA 02139", "MA 02139"),
    # SSNs
    ("ssn", "SSN 123-45-6789", "123-45-6789"),
    ("ssn", "ssn 123 45 6789", "123 45 6789"),
    ("ssn", "social security number 123456789", "123456789"),
]


@pytest.mark.parametrize(("kind", "text", "phi"), PHI)
def test_each_phi_shape_is_redacted(kind: str, text: str, phi: str) -> None:
    out = R.redact(text)
    assert phi not in out
    assert f"[redacted:{kind}]" in out


def test_ip_addresses_are_redacted_loopback_kept() -> None:
    """A caller's address (browser SDP and ICE candidates, a client in a server line) is an identifier."""
    redactor = Redactor()
    line = "candidate:1 1 udp 2122260223 192.168.1.23 54321 typ host; peer 203.0.113.9:443; local 127.0.0.1"
    out = redactor.redact(line)
    assert "192.168.1.23" not in out and "203.0.113.9" not in out and "127.0.0.1" in out
    assert out.count("[redacted:ip]") == 2


TECHNICAL = [
    "session 123e4567-e89b-12d3-a456-426614174000 started",
    "booked Slot/slot-okafor-20261124-0900 for Patient/pat-001",
    "slot-okafor-20261124-0900 appt-007 sched-okafor prac-okafor",
    '127.0.0.1:51234 - "PUT /fhir/Appointment/appt-007 HTTP/1.1" 412',
    "status 412 Precondition Failed in 12.5 ms",
    "pipecat 0.0.66, tls1.3, port 8443, 127.0.0.1:8443, 0.0.0.0:8080",
    "took 1234 ms, retry 2 of 3, 3/10 slots, 0:00:12.345 uptime",
    "took 1234567 ns, 1048576 bytes, ratio 0.0123456",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Found 12 free slots between 09:00 and 17:30",
]


@pytest.mark.parametrize("text", TECHNICAL)
def test_technical_tokens_survive(text: str) -> None:
    with known_names("Okafor", "Pat Smith"):
        assert R.redact(text) == text


def test_fhir_query_parameters_are_redacted_but_the_rest_of_the_url_is_kept() -> None:
    out = R.redact("GET /fhir/Patient?family=Quixote&given=Zeb&birthdate=1988-02-29&_elements=id,name")
    assert out == (
        "GET /fhir/Patient?family=[redacted:name]&given=[redacted:name]"
        "&birthdate=[redacted:date]&_elements=id,name"
    )


def test_redaction_is_idempotent() -> None:
    once = R.redact("Mary at 555-123-4567 born 02/29/1988, 123 Main Street")
    assert R.redact(once) == once


@pytest.mark.parametrize(
    "text",
    [
        "Mary-Jane Smith-Jones called",
        "mary-jane smith-jones called",
        "MaryJane SmithJones called",
        "Mary Jane Smith Jones called",
        "Smith-Jones, Mary-Jane called",
        "Jane called",
        "SMITH called",
    ],
)
def test_every_part_of_a_known_multi_part_name_is_redacted(text: str) -> None:
    with known_names("Mary-Jane Smith-Jones"):
        out = R.redact(text)
    for part in ("mary", "jane", "smith", "jones"):
        assert part not in out.lower()
    assert out.endswith("called")


@pytest.mark.parametrize(
    "text", ["José Nuñez", "jose nunez", "JOSÉ NUÑEZ", "Jose\u0301 Nun\u0303ez", "Nunez's file"]
)
def test_known_names_match_accent_and_case_insensitively(text: str) -> None:
    with known_names("José Nuñez"):
        out = R.redact(text)
    assert "jos" not in out.lower()
    assert "nu" not in out.lower()


def test_apostrophe_names_are_redacted_with_and_without_punctuation() -> None:
    with known_names("Siobhán O'Brien"):
        for text in ("Siobhan O'Brien", "siobhan obrien", "O\u2019Brien", "O Brien"):
            assert "brien" not in R.redact(text).lower()


def test_a_name_shaped_like_an_id_prefix_is_still_redacted() -> None:
    with known_names("Pat Smith"):
        assert R.redact("Pat-Smith booked pat-001") == "[redacted:name] booked pat-001"


def test_names_are_redacted_only_as_whole_words() -> None:
    with known_names("Ann Lee"):
        assert R.redact("annual report, fleet size, Ann and Lee") == (
            "annual report, fleet size, [redacted:name] and [redacted:name]"
        )


def test_names_are_scoped_to_the_call_and_forgotten_after_it() -> None:
    with known_names("Zebulon") as registry:
        assert redact("Zebulon here") == "[redacted:name] here"
        remember_name("Quixote")
        assert redact("Quixote") == "[redacted:name]"
    assert len(registry) == 0
    assert current_names() is None
    assert redact("Zebulon Quixote") == "Zebulon Quixote"


async def test_concurrent_calls_redact_their_own_names_and_share_with_child_tasks() -> None:
    results: dict[str, str] = {}

    async def call(own: str, other: str) -> None:
        with known_names(own):

            async def learn() -> None:  # e.g. the dialogue task learns the surname
                remember_name(f"{own}son")

            await asyncio.create_task(learn())
            await asyncio.sleep(0)
            results[own] = redact(f"{own} {own}son {other}")

    await asyncio.gather(call("Alice", "Bob"), call("Bob", "Alice"))
    assert results["Alice"] == "[redacted:name] [redacted:name] Bob"
    assert results["Bob"] == "[redacted:name] [redacted:name] Alice"


def test_live_call_names_are_scrubbed_in_threads_that_lack_the_call_context() -> None:
    """Worker threads do not inherit context variables; the names of calls in progress still apply."""
    import threading

    from voice_agent.privacy import Redactor, known_names

    redactor = Redactor()
    seen: list[str] = []
    with known_names("Quenby Zarkovich"):
        worker = threading.Thread(target=lambda: seen.append(redactor.redact("crash for Quenby Zarkovich")))
        worker.start()
        worker.join()
    assert seen and "Quenby" not in seen[0] and "Zarkovich" not in seen[0]
    assert redactor.redact("Quenby") == "Quenby"  # the call ended: its names are forgotten everywhere
