"""What the SIP ingress reads off an INVITE (who is calling), the registrar it lets answer, and the front
desk's hours."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import pytest

from voice_agent.ingress.sip.stack import caller_number, registrar_networks
from voice_agent.opening_hours import OpeningHours
from voice_agent.settings import Settings


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


def test_the_registrar_is_let_through_by_address() -> None:
    assert registrar_networks(None) == []
    assert registrar_networks("10.0.0.9:5060") == [ipaddress.ip_network("10.0.0.9/32")]
    assert registrar_networks("[fd00::9]:5061") == [ipaddress.ip_network("fd00::9/128")]
    assert ipaddress.ip_network("127.0.0.1/32") in registrar_networks("localhost")


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
    with pytest.raises(ValueError, match="over 32"):
        many = tuple(ipaddress.IPv4Network(f"10.0.{i}.0/24") for i in range(33))
        Settings(sip_enabled=True, sip_allowed_sources=many)
    with pytest.raises(ValueError, match="not everyone"):
        Settings(sip_enabled=True, sip_allowed_sources=(ipaddress.IPv4Network("0.0.0.0/0"),))
    with pytest.raises(ValueError, match="sip_tls_cert"):
        Settings(sip_enabled=True, sip_transport="tls")
    with pytest.raises(ValueError, match="SIP URI"):
        Settings(front_desk_sip_uri="frontdesk at the pbx")
    with pytest.raises(ValueError, match="opening hours"):
        Settings(front_desk_hours="weekdays")
