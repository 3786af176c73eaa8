"""The SIP allow-list as the kernel enforces it: real sockets on the loopback (all of 127/8 is local on
Linux, so 127.0.0.2 is a second sender), the filter attached exactly as the SIP ingress attaches it, and
datagrams or connections sent from listed and unlisted sources whatever they claim to be."""

from __future__ import annotations

import ipaddress
import socket
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice_agent.ingress.sip.source_filter import (
    SourceFilterError,
    allow_only,
    compile_allow_list,
    signalling_sockets,
    socket_inodes,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux socket filter")


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def delivered(receiver: socket.socket, source: str) -> bool:
    """Send one datagram from ``source`` (a forged Via in it changes nothing) and see if it arrives."""
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.bind((source, 0))
        port = receiver.getsockname()[1]
        target = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        sender.sendto(b"INVITE sip:agent SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\n\r\n", (target, port))
    receiver.settimeout(0.3)
    try:
        receiver.recv(2048)
    except TimeoutError:
        return False
    return True


def test_only_listed_sources_reach_a_udp_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        assert delivered(receiver, "127.0.0.2")  # before: anyone
        allow_only(receiver.fileno(), [net("127.0.0.1/32"), net("10.0.0.0/8")])
        assert delivered(receiver, "127.0.0.1")
        assert not delivered(receiver, "127.0.0.2")
        assert not delivered(receiver, "127.0.0.3")


def test_a_dual_stack_socket_matches_each_family_on_its_own_list() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as receiver:
        receiver.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        receiver.bind(("::", 0))
        allow_only(receiver.fileno(), [net("127.0.0.2/32"), net("::1/128")])
        assert delivered(receiver, "127.0.0.2")  # IPv4 on a v6 socket is matched as IPv4
        assert not delivered(receiver, "127.0.0.1")
        assert delivered(receiver, "::1")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("::1", 0))
        allow_only(receiver.fileno(), [net("fd00::/8"), net("127.0.0.0/8")])
        assert not delivered(receiver, "::1")


def test_a_listener_refuses_connections_from_unlisted_sources() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        allow_only(listener.fileno(), [net("127.0.0.1/32")])
        port = listener.getsockname()[1]
        for source, admitted in (("127.0.0.1", True), ("127.0.0.2", False)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
                client.bind((source, 0))
                client.settimeout(1.0)
                try:
                    client.connect(("127.0.0.1", port))
                    connected = True
                except (TimeoutError, OSError):
                    connected = False
            assert connected is admitted


def test_the_stack_sockets_are_found_and_connected_ones_left_alone() -> None:
    before = set(socket_inodes())
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as idle,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
    ):
        udp.bind(("127.0.0.1", 0))
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        idle.bind(("127.0.0.1", 0))  # bound, not listening: nobody can send to it
        opened = socket_inodes()
        found = {opened[inode] for inode in signalling_sockets(set(opened) - before)}
        assert found == {udp.fileno(), listener.fileno()}


def test_too_many_networks_for_one_filter_fail_loudly() -> None:
    with pytest.raises(SourceFilterError, match="too many"):
        compile_allow_list([net(f"10.{i // 256}.{i % 256}.0/24") for i in range(100)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8), st.integers(8, 32))
def test_every_listed_network_compiles_to_a_program_the_kernel_accepts(
    addresses: list[int], prefix: int
) -> None:
    networks = [ipaddress.ip_network((a, prefix), strict=False) for a in addresses]
    networks += [ipaddress.ip_network((a << 96, prefix * 4), strict=False) for a in addresses]
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        allow_only(sock.fileno(), networks)  # the kernel's verifier rejects a malformed program
