"""Phone calls from the clinic's phone system, end to end: SIPp callers through the kamailio edge
(``deploy/sip/kamailio.cfg``) to ``voice-agent serve`` with SIP on, G.711 RTP both ways, the whole voice
pipeline and the FHIR sandbox. Nothing is mocked.

SIPp speaks each caller's side as a timeline of piper lines with room for the agent's replies; what the
agent said is captured off the wire (tcpdump on ``lo``) and heard with the product's own Whisper. The
tests assert what a caller or the clinic would notice: the words the caller heard, the transfer to the
front desk (the REFER's target) or the callback it fell back to, and that the agent hung up (its BYE) when
each conversation was over. Booking by voice over SIP, eight times over two workers, is test_scale_out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from harness.browser import Line
from harness.real_parts import needs
from harness.sandbox import Sandbox
from harness.sip.calls import (
    answered_within,
    caller_speech,
    heard_text,
    place_calls,
    said_in_order,
)
from harness.sip.edge import Edge, sip_request
from harness.sip.sipp import Caller
from harness.voice_server import SipAgent
from voice_agent.audit import Keyring
from voice_agent.dialogue import templates
from voice_agent.escalations import EscalationStore
from voice_agent.phone_numbers import to_e164
from voice_agent.pipeline.stt import Vocabulary

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

pytestmark = needs("sipp", "kamailio", "kamcmd", "tcpdump")


def escalations(sip_agent: SipAgent) -> EscalationStore:
    """The server's own escalation store (its audit database and key), read from outside."""
    product = sip_agent.server.product
    return EscalationStore.open(f"sqlite:///{product / 'audit.db'}", Keyring.from_file(product / "audit.key"))


async def test_asking_for_the_front_desk_transfers_the_call_or_else_books_a_callback(
    sandbox: Sandbox, sip_agent: SipAgent, edge: Edge, whisper: WhisperModel, tmp_path: Path
) -> None:
    """Two callers at once ask for a person: one's front desk takes the transfer, the other's does not
    (the PBX reports 503), and only that caller is promised, and gets, a callback."""
    taken, missed = sandbox.clinic.patients_tagged("pool")[:2]
    ask = "Can I speak to someone at the front desk?"
    transferred = [Line(ask, answered_within(templates.TRANSFERRING))]
    called_back = [
        Line(ask, answered_within(templates.TRANSFERRING + " " + templates.TRANSFER_FAILED_CALLBACK))
    ]
    with escalations(sip_agent) as store:
        before = {e.id for e in store.queue(limit=500)}
    ok, failed = await asyncio.gather(
        place_calls(tmp_path / "taken", edge, [Caller(taken.phone, caller_speech(transferred))]),
        place_calls(
            tmp_path / "missed",
            edge,
            [Caller(missed.phone, caller_speech(called_back))],
            transfer_result="503 Service Unavailable",
        ),
    )
    for placed, result in ((ok, "200 OK"), (failed, "503 Service Unavailable")):
        call = placed.run.calls[0]
        assert placed.run.returncode == 0, placed.report()
        assert call.refer_to == sip_agent.front_desk, placed.report()  # blind transfer to the front desk
        assert call.transfer_reported == result and call.bye_from_agent, placed.report()

    # Key words in order, not whole phrases: tiny.en has heard the agent say "put you to the front desk"
    # over G.711. First the transfer is announced; only the caller the desk did not take hears it fail.
    heard = await heard_text(whisper, ok.heard[0], Vocabulary())
    assert said_in_order(heard, "hold", "put you", "front desk") and "call you back" not in heard, heard
    heard = await heard_text(whisper, failed.heard[0], Vocabulary())
    assert said_in_order(heard, "hold", "put you", "front desk", "reach", "call you back"), heard
    with escalations(sip_agent) as store:  # one callback: for the caller the desk did not take
        new = [e for e in store.queue(limit=500) if e.id not in before]
        assert [e.category for e in new] == ["caller_request"]
        opened = store.get(new[0].id, "staff-test")  # the number staff will call: the caller ID
        assert opened.callback_number == to_e164(missed.phone)


def test_an_unlisted_source_is_not_answered_whatever_its_via_says(sip_agent: SipAgent) -> None:
    """Straight at the worker, past the edge: the kernel drops an INVITE from 127.0.0.2 that names the
    allowed 127.0.0.1 in its Via (the old check believed it), and the caller learns nothing, not even a
    refusal; the allowed source is still answered."""
    port = sip_agent.sip_port
    forged = sip_request(
        "127.0.0.1", port, "INVITE", source="127.0.0.2", via="127.0.0.1", user="clinic", timeout=3
    )
    assert forged is None
    assert sip_request("127.0.0.1", port, "OPTIONS", source="127.0.0.2", timeout=2) is None
    assert sip_request("127.0.0.1", port, "OPTIONS", user="agent") == "SIP/2.0 200 OK"
