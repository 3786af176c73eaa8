"""A patient cancels an appointment from the call page, end to end: ``voice-agent serve`` over TLS against
the private FHIR sandbox (the voice tests' shared server), headless Chromium on the page with a fake
microphone speaking the caller's side (piper), WebRTC, the whole voice pipeline, and FHIR read back
afterwards. Nothing is mocked.

The fake microphone plays one WAV from the moment the page opens it, so the caller's side is a script
with room for each answer. The dialogue is a state machine (voice_agent/dialogue/conductor.py), so the
script follows what it asks: the task, full name, date of birth, which appointment, confirmation, and
"anything else?". Only what a caller would notice is asserted: the page said it was connected, the call
ended, the appointment is cancelled, and the page never showed a word of the conversation. Two shorter
calls check the page's own controls: Hang up frees the line, and a caller is told when all are busy.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from harness.browser import (
    MIC_RATE,
    Line,
    caller_wav,
    chromium,
    open_page,
    said_at,
    speaking_seconds,
)
from harness.caller_audio import silence, write_wav
from harness.real_parts import needs
from harness.sandbox import Sandbox
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server, worker_metric
from voice_agent.dialogue import speech, templates
from voice_agent.sandbox.clinic import SyntheticPatient

pytestmark = needs("chromium")

#: Mary-Jane Smith-Jones: three upcoming appointments in the seeded clinic, so she is asked which one,
#: and still has some left for the other tests that use her.
CALLER = "hyphenated"

#: Connecting (ICE, DTLS, pipeline start) and the greeting, before the caller's first words.
LEAD_SECONDS = 4 + speaking_seconds(templates.GREETING.format(clinic="the clinic"))
#: From the end of the caller's words to the agent's first audio: end of turn, Whisper, the reply's
#: first sentence from piper. About 2 s on two cores; more leaves room for a busy machine.
TURN_SECONDS = 4.0
#: An appointment as the agent says it ("your follow-up visit with Dr. ... on Tuesday the 9th at 10 AM").
APPOINTMENT = "your annual physical with Dr. Sofía Hernández-Ruiz on Wednesday, December 30th at 10:30 AM"

#: Everything the status line may ever say: statuses only, never the conversation.
STATUSES = {
    "Ready",
    "Asking for your microphone…",
    "Connecting…",
    "Connected",
    "Connected — the assistant is speaking",
    "Connected — the assistant is listening",
    "Call ended",
}
BUSY = "All of the clinic's lines are busy. Please try again in a few minutes."


def answered_within(reply: str) -> float:
    """How long the caller waits after a line: the turn, the agent's reply, and a margin. Waiting too
    long is harmless (the agent asks "Are you still there?" after 10 s); too short interrupts it."""
    return TURN_SECONDS + speaking_seconds(reply) + 2.0


def spoken_birth_date(born: date) -> str:
    """ "July 14th 1962": without the comma, which piper turns into a pause long enough to end the turn."""
    return f"{born:%B} {speech.ordinal(born.day)} {born.year}"


def caller_script(patient: SyntheticPatient, appointments: int) -> list[Line]:
    """What the caller says, each line waiting for the reply the policy gives to it."""
    verified = templates.VERIFIED + " "
    if appointments > 1:
        listing = speech.choices([APPOINTMENT] * min(appointments, 3))
        after_birth_date = verified + templates.WHICH_APPOINTMENT.format(options=listing)
    else:
        after_birth_date = verified + templates.CONFIRM_CANCEL.format(appointment=APPOINTMENT)
    lines = [
        Line("I'd like to cancel my appointment.", answered_within(templates.VERIFY_INTRO)),
        Line(f"{patient.given} {patient.family}", answered_within(templates.ASK_BIRTH_DATE)),
        Line(spoken_birth_date(patient.birth_date), answered_within(after_birth_date)),
    ]
    if appointments > 1:
        lines.append(
            Line("The first one.", answered_within(templates.CONFIRM_CANCEL.format(appointment=APPOINTMENT)))
        )
    lines += [
        Line("Yes, please.", answered_within(templates.CANCELLED.format(appointment=APPOINTMENT))),
        Line("No, that's all, thank you.", answered_within(templates.GOODBYE.format(clinic="the clinic"))),
    ]
    return lines


def appointments_of(sandbox: Sandbox, patient_id: str) -> list[dict[str, Any]]:
    """The patient's appointments as FHIR holds them, read with the seeder's identity, not the agent's."""
    with sandbox.raw() as raw:
        bundle = raw.get("Appointment", params={"patient": f"Patient/{patient_id}", "_count": 100}).json()
    return [entry["resource"] for entry in bundle.get("entry", [])]


def upcoming(sandbox: Sandbox, patient_id: str) -> list[dict[str, Any]]:
    """Booked and in the future, in the order the agent lists them (start, then id)."""
    now = sandbox.clock()
    return sorted(
        (
            a
            for a in appointments_of(sandbox, patient_id)
            if a["status"] == "booked" and datetime.fromisoformat(a["start"]) > now
        ),
        key=lambda a: (datetime.fromisoformat(a["start"]), a["id"]),
    )


def server_certificate(sandbox: Sandbox) -> Path:
    """The certificate ``voice-agent serve`` presents: the dev one, which Chromium is told to accept."""
    return sandbox.certs.path("server.pem")


#: What the server log says about a call, for a failure's message (the shared server logs at DEBUG).
_LOG_DIGEST = re.compile(r"dialogue|User started speaking|call session|WARNING|ERROR|Shutting down")


def digest(log: str) -> str:
    return "\n".join(line[:300] for line in log.splitlines() if _LOG_DIGEST.search(line))


def test_a_patient_cancels_an_appointment_by_calling_from_the_browser(
    sandbox: Sandbox, voice_server: VoiceServer, tmp_path: Path
) -> None:
    patient = sandbox.clinic.patient(CALLER)
    before = upcoming(sandbox, patient.id)
    assert before, "the seeded caller has no upcoming appointment left"
    target, others = before[0], before[1:]  # "the first one"
    microphone = tmp_path / "caller.wav"
    script = caller_script(patient, len(before))
    seconds = caller_wav(microphone, script, lead_seconds=LEAD_SECONDS)

    with voice_server.client() as server:  # a call still winding down would slow this one's replies
        assert calls_settle_at(server, 0, timeout_seconds=30), "a previous test's call still holds a line"
    logged = len(voice_server.log_text())
    with chromium(microphone, trust_certificate=server_certificate(sandbox)) as browser:
        call = open_page(browser, voice_server.base_url)
        page_before = call.text()
        call.press("Call")
        ended = call.wait_until_over(timeout_seconds=seconds + 60)
        if not ended:
            call.press("Hang up")  # free the line for the next test
        statuses, page_after, stored, errors = call.statuses(), call.text(), call.stored(), call.errors
        shown = call.timeline()
    said = "\n".join(
        f"{said_at(script, i, lead_seconds=LEAD_SECONDS):7.1f} s  caller: line {i + 1} of {len(script)}"
        for i in range(len(script))
    )  # line numbers, not words: the report may land in CI logs, and the words hold the name
    report = (
        f"statuses: {statuses}\npage errors: {errors}\n"
        f"page statuses, timed:\n{shown}\nthe caller's lines, timed from the same moment:\n{said}\n"
        f"server exited: {voice_server.process.poll()}\n"  # not None: something stopped it mid-call
        f"server log:\n{digest(voice_server.log_text()[logged:])}"
    )

    assert any(status.startswith("Connected") for status in statuses), report
    assert ended and statuses[-1] == "Call ended", report  # the agent said goodbye and hung up
    by_id = {a["id"]: a for a in appointments_of(sandbox, patient.id)}
    assert by_id[target["id"]]["status"] == "cancelled", report
    assert all(by_id[a["id"]]["status"] == "booked" for a in others), report

    # The page showed statuses and nothing else: no transcript, no name, nothing stored.
    assert set(statuses) <= STATUSES, report
    assert page_after.replace("Call ended", "Ready") == page_before
    for word in (patient.given, patient.family, str(patient.birth_date.year), "verified", "cancelled"):
        assert word.casefold() not in page_after.casefold()
    assert stored == 0
    assert not errors, report


def test_hanging_up_ends_the_call_and_frees_the_line(
    sandbox: Sandbox, voice_server: VoiceServer, tmp_path: Path
) -> None:
    """The Hang up button, not the agent, ends the call: the page says so and the server's line is free
    again (a line held by a gone caller would count against the clinic's concurrent-call limit)."""
    microphone = tmp_path / "quiet.wav"
    write_wav(microphone, silence(1.0, MIC_RATE), MIC_RATE)
    with (
        voice_server.client() as server,
        chromium(microphone, trust_certificate=server_certificate(sandbox)) as browser,
    ):
        assert calls_settle_at(server, 0), "a previous test's call still holds a line"
        call = open_page(browser, voice_server.base_url)
        call.press("Call")
        call.wait_for_status("Connected", timeout_seconds=30)
        assert calls_settle_at(server, 1)
        call.press("Hang up")
        assert call.statuses()[-1] == "Call ended"
        assert call.page.get_by_role("button", name="Call", exact=True).is_enabled()
        assert call.page.get_by_role("button", name="Hang up").is_disabled()
        assert not call.errors
        assert calls_settle_at(server, 0), digest(voice_server.log_text()[-20_000:])


def calls_settle_at(server: httpx.Client, calls: int, timeout_seconds: float = 15) -> bool:
    """Whether the server's count of calls on the line reaches ``calls`` in time (a call's pipeline
    winds down for a moment after either side hangs up)."""
    deadline = time.monotonic() + timeout_seconds
    while (now := worker_metric(server, CALLS_ACTIVE)) != calls and time.monotonic() < deadline:
        time.sleep(0.25)
    return bool(now == calls)


CALLS_ACTIVE = "voice_agent_worker_calls_active"


def test_a_caller_is_told_when_every_line_is_busy(sandbox: Sandbox, tmp_path: Path) -> None:
    """With the clinic's one line taken, the next caller is refused (503) and the page says why."""
    microphone = tmp_path / "quiet.wav"
    write_wav(microphone, silence(1.0, MIC_RATE), MIC_RATE)
    server = start_voice_server(sandbox, tmp_path / "product", VOICE_AGENT_MAX_CONCURRENT_CALLS="1")
    try:
        with chromium(microphone, trust_certificate=server_certificate(sandbox)) as browser:
            first, second = open_page(browser, server.base_url), open_page(browser, server.base_url)
            first.press("Call")
            first.wait_for_status("Connected", timeout_seconds=30)
            second.press("Call")
            assert second.wait_until_over(timeout_seconds=30)
            assert second.statuses()[-1] == BUSY
            assert second.page.locator("#status.error").count() == 1  # shown as an error, not a status
            first.press("Hang up")
    finally:
        stop_voice_server(server)
