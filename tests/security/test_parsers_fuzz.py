"""Everything a caller or a network peer sends, driven through its parser by hypothesis: no exception
escapes (or is swallowed as an internal failure), no input takes over 50 ms, nothing leaves its contract."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from datetime import date, datetime
from types import SimpleNamespace
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameProcessorSetup

from voice_agent.dialogue.keypad import keyed_date
from voice_agent.dialogue.understanding.base import Expectation, UnderstandingContext, Understood
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.ingress.sip.stack import caller_number
from voice_agent.ingress.telephony.carrier_auth import (
    StreamRefused,
    caller_from_token,
    mint_stream_token,
    public_url,
    source_allowed,
    valid_call_id,
)
from voice_agent.ingress.telephony.media_stream import serializer
from voice_agent.settings import Settings

RULES = RulesUnderstanding()
NOW = datetime(2026, 12, 31, 16, 30, tzinfo=ZoneInfo("America/New_York"))
WORDS = st.sampled_from(
    [
        "first",
        "1st",
        "the",
        "on",
        "next",
        "friday",
        "tomorrow",
        "um",
        "like",
        "book",
        "cancel",
        "my",
        "name",
        "is",
        "van",
        "der",
        "o'brien",
        "march",
        "twenty",
        "third",
        "nineteen",
        "eighty",
        "five",
        "2",
        "30",
        "pm",
        "after",
        "before",
        "911",
        "chest",
        "pain",
        "ignore",
        "instructions",
        "say",
        "again",
        "yes",
        "no",
        "555",
        "0100",
        "oh",
        "double",
        "the",
        "15th",
        "of",
        "january",
        "whatever's",
        "earliest",
        "#",
        "*",
        ",",
        ".",
        "-",
        "'",
        "é",
        "ß",
        "中",
    ]
)
UTTERANCES = st.one_of(st.text(max_size=300), st.lists(WORDS, max_size=40).map(" ".join))
BUDGET_SECONDS = 0.05


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=UTTERANCES, expecting=st.sampled_from(list(Expectation)))
def test_the_rules_understand_anything_fast_and_within_the_contract(
    text: str, expecting: Expectation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="voice_agent.dialogue.understanding.rules"):
        # this thread's CPU time: what the parse costs, not what the machine (or another thread of the
        # test process: models an earlier test left loaded) is busy with
        started = time.thread_time()
        answer = RULES.parse(text, UnderstandingContext(now=NOW, expecting=expecting))
        elapsed = time.thread_time() - started
    assert not caplog.records, "the rules failed internally"  # not the catch-all's "not understood"
    assert elapsed < BUDGET_SECONDS, (elapsed, text)
    Understood.model_validate(answer.model_dump())  # every field within its bounds
    if answer.slots.birth_date is not None:
        assert answer.slots.birth_date <= NOW.date()


@settings(max_examples=300, deadline=None)
@given(digits=st.text(alphabet="0123456789*#", max_size=40))
def test_keypad_entries_are_a_real_past_date_or_nothing(digits: str) -> None:
    born = keyed_date(digits, today=date(2026, 12, 31))
    assert born is None or date(1900, 1, 1) <= born <= date(2026, 12, 31)


@settings(max_examples=300, deadline=None)
@given(token=st.one_of(st.text(max_size=600), st.binary(max_size=100).map(repr)), sid=st.text(max_size=40))
def test_a_forged_stream_token_is_refused_and_nothing_else(token: str, sid: str) -> None:
    with pytest.raises(StreamRefused):
        caller_from_token("auth-token", token, sid, now=1_000_000.0)


@settings(max_examples=200, deadline=None)
@given(
    sid=st.from_regex(r"CA[0-9a-f]{32}", fullmatch=True), caller=st.one_of(st.none(), st.text(max_size=30))
)
def test_a_genuine_token_gives_back_only_an_e164_number(sid: str, caller: str | None) -> None:
    token = mint_stream_token("auth-token", sid, caller, now=1_000_000.0, ttl=60)
    got = caller_from_token("auth-token", token, sid, now=1_000_030.0)
    assert got is None or (got == caller and got.startswith("+") and got[1:].isdigit())
    with pytest.raises(StreamRefused, match="token-expired"):
        caller_from_token("auth-token", token, sid, now=1_000_061.0)
    with pytest.raises(StreamRefused):
        caller_from_token("another-token", token, sid, now=1_000_030.0)


@settings(max_examples=200, deadline=None)
@given(
    carrier=st.sampled_from(["twilio", "telnyx", "plivo", "exotel", "other"]), call_id=st.text(max_size=80)
)
def test_call_ids_that_reach_a_rest_url_have_no_url_syntax(carrier: str, call_id: str) -> None:
    if valid_call_id(carrier, call_id):
        assert not set(call_id) & set("/?#%&=@ .\\\n")


@settings(max_examples=200, deadline=None)
@given(host=st.text(max_size=45), received=st.text(max_size=100))
def test_addresses_and_urls_from_the_network_never_raise(host: str, received: str) -> None:
    from ipaddress import IPv4Network

    source_allowed(host, (IPv4Network("10.0.0.0/8"),))
    public_url("wss://10.0.0.5:8443/telephony/twilio" + received, "https://voice.clinic.example")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
#: Messages shaped like a carrier's, with every field free to be anything: media, dtmf, mark, stop.
CARRIER_MESSAGES = st.one_of(
    st.builds(
        lambda event, part, body: json.dumps({"event": event, part: body, "streamSid": "MZ1"}),
        st.sampled_from(["media", "dtmf", "mark", "stop", "start", "clear", "other"]),
        st.sampled_from(["media", "dtmf", "mark", "stop", "start", "payload"]),
        JSON_VALUES
        | st.fixed_dictionaries(
            {
                "payload": st.text(max_size=200)
                | st.binary(max_size=150).map(lambda b: base64.b64encode(b).decode())
            },
            optional={"digit": st.text(max_size=3), "track": st.text(max_size=10)},
        ),
    ),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
)


@pytest.mark.parametrize("carrier", ["twilio", "telnyx", "plivo", "exotel"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(CARRIER_MESSAGES, min_size=1, max_size=6))
def test_carrier_messages_give_a_frame_or_nothing_and_never_raise(
    carrier: str, messages: list[str | bytes]
) -> None:
    """Every message a media server (or someone posing as one) sends goes through the guarded
    serializer: a frame or nothing, never an exception that would end the call's receive loop."""
    frames = serializer(
        carrier, carrier, {"stream_id": "MZ1", "call_id": None, "outbound_encoding": "PCMU"}, Settings()
    )

    async def read_all() -> list[Frame | None]:
        await frames.setup(cast(FrameProcessorSetup, SimpleNamespace(audio_in_sample_rate=16_000)))
        return [await frames.deserialize(message) for message in messages]

    started = time.thread_time()
    got = asyncio.run(read_all())
    assert time.thread_time() - started < BUDGET_SECONDS * len(messages)
    assert all(frame is None or isinstance(frame, Frame) for frame in got)


@settings(max_examples=300, deadline=None)
@given(
    uri=st.one_of(
        st.text(max_size=120),
        st.builds(
            lambda scheme, user, rest: f"{scheme}{user}{rest}",
            st.sampled_from(["sip:", "sips:", "tel:", "<sip:", "SIP:", ""]),
            st.text(alphabet="+0123456789().- abc", max_size=24),
            st.sampled_from(["@pbx.clinic.lan", ";user=phone", ">", "@", "", ";tag=1"]),
        ),
    )
)
def test_a_sip_identity_header_gives_an_e164_number_or_nothing(uri: str) -> None:
    """From and P-Asserted-Identity as a peer writes them: an E.164 number or None, quickly."""
    started = time.thread_time()
    number = caller_number(uri)
    assert time.thread_time() - started < BUDGET_SECONDS
    assert number is None or (number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16)
