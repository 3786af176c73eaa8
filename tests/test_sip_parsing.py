"""What the SIP ingress reads off an INVITE (who sent it, who is calling) and the front desk's hours."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import pytest

from voice_agent.ingress.hours import OpeningHours
from voice_agent.ingress.sip import caller_number, sent_by
from voice_agent.settings import Settings


@pytest.mark.parametrize(
    ("via", "host"),
    [
        ("SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK-1", "10.1.2.3"),
        ("SIP/2.0/TCP 10.1.2.3;branch=z9hG4bK-1;rport", "10.1.2.3"),
        ("SIP/2.0/TLS [fd00::5]:5061;branch=z9hG4bK-1", "fd00::5"),
        ("SIP/2.0/UDP 10.9.9.9:5060;branch=a, SIP/2.0/UDP 203.0.113.7;branch=b", "10.9.9.9"),
    ],
)
def test_the_sending_hop_is_the_top_via(via: str, host: str) -> None:
    assert sent_by(via) == ipaddress.ip_address(host)


@pytest.mark.parametrize("via", [None, "", "garbage", "SIP/2.0/UDP pbx.clinic.lan:5060;branch=x"])
def test_a_via_without_an_address_names_no_source(via: str | None) -> None:
    assert sent_by(via) is None  # and so is refused: a name cannot be matched to an allowed network


@pytest.mark.parametrize(
    ("uri", "number"),
    [
        ("sip:+15550142222@10.0.0.5:5060", "+15550142222"),
        ("<sip:5550142222@pbx.clinic.lan>", "+15550142222"),
        ("sip:15550142222@pbx;user=phone", "+15550142222"),
        ("tel:+44-20-7946-0000", "+442079460000"),
        ("sip:anonymous@anonymous.invalid", None),
        ("sip:frontdesk@pbx.clinic.lan", None),
        ("sip:204@pbx.clinic.lan", None),  # an internal extension is not a callback number
        (None, None),
    ],
)
def test_the_caller_number_is_taken_only_when_it_is_a_phone_number(
    uri: str | None, number: str | None
) -> None:
    assert caller_number(uri) == number


def test_opening_hours() -> None:
    hours = OpeningHours.parse("Mo-Fr 08:00-17:00; Sa 09:00-12:00")
    monday_9, monday_17 = datetime(2026, 11, 23, 9, 0), datetime(2026, 11, 23, 17, 0)
    assert hours.is_open(monday_9) and not hours.is_open(monday_17)
    assert hours.is_open(datetime(2026, 11, 28, 11, 59)) and not hours.is_open(datetime(2026, 11, 28, 12, 0))
    assert not hours.is_open(datetime(2026, 11, 29, 10, 0))  # Sunday
    always = OpeningHours.parse("Mo-Su 00:00-24:00")
    assert always.is_open(datetime(2026, 11, 29, 23, 59))
    assert OpeningHours.parse("Fr-Mo 10:00-11:00").is_open(datetime(2026, 11, 29, 10, 30))  # wraps the week


@pytest.mark.parametrize("text", ["Mon-Fri 8-5", "Mo-Fr 17:00-08:00", "Xx 08:00-09:00", "Mo-Fr 25:00-26:00"])
def test_bad_opening_hours_fail_loudly(text: str) -> None:
    with pytest.raises(ValueError):
        OpeningHours.parse(text)


def test_sip_settings_refuse_an_open_door_and_a_bad_front_desk_address() -> None:
    with pytest.raises(ValueError, match="not everyone"):
        Settings(sip_enabled=True, sip_allowed_sources=(ipaddress.IPv4Network("0.0.0.0/0"),))
    with pytest.raises(ValueError, match="sip_tls_cert"):
        Settings(sip_enabled=True, sip_transport="tls")
    with pytest.raises(ValueError, match="SIP URI"):
        Settings(front_desk_sip_uri="frontdesk at the pbx")
    with pytest.raises(ValueError, match="opening hours"):
        Settings(front_desk_hours="weekdays")
