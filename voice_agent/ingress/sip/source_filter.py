"""The SIP allow-list, enforced by the kernel on the packet's real source address.

A SIP message names its sender in its own ``Via`` header, which the sender writes, and baresip tells the
application nothing else about where an INVITE came from. So the allow-list is not checked on the
message at all: a classic BPF socket filter is attached to each of the stack's signalling sockets (its
UDP socket and its TCP/TLS listeners, whose accepted connections inherit the filter), and the kernel
drops every packet whose IP source is outside ``sip_allowed_sources`` before the stack reads a byte.
Nothing is answered to an unlisted sender, so it learns nothing either.

Hand-written because no maintained library compiles an address list to a socket filter (pyroute2 and
scapy do neither for an already-open socket); the program is a few loads and compares.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceFilterError", "allow_only", "compile_allow_list", "signalling_sockets", "socket_inodes"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: linux/filter.h: SO_ATTACH_FILTER, and the offset that addresses the network header from a filter.
_SO_ATTACH_FILTER = 26
_SKF_NET_OFF = -0x100000
#: classic BPF opcodes
_LD_W_ABS, _LD_B_ABS, _ALU_AND_K, _ALU_RSH_K, _JEQ_K, _RET_K = 0x20, 0x30, 0x54, 0x74, 0x15, 0x06
_ACCEPT, _DROP = 0xFFFFFFFF, 0
#: A conditional jump reaches at most 255 instructions ahead.
_MAX_JUMP = 255
#: /proc/net/tcp's state of a listening socket
_LISTEN = "0A"


class SourceFilterError(RuntimeError):
    """The allow-list could not be put on the stack's sockets: SIP must not start without it."""


@dataclass(frozen=True)
class _Ins:
    code: int
    k: int
    jt: str | int = 0  # a label, or 0: the next instruction
    jf: str | int = 0


def _net(offset: int) -> int:
    return (_SKF_NET_OFF + offset) & 0xFFFFFFFF


def compile_allow_list(networks: Sequence[Network]) -> list[tuple[int, int, int, int]]:
    """The filter program (code, jt, jf, k per instruction) that accepts a packet only when its IPv4 or
    IPv6 source lies in one of ``networks``; a dual-stack socket's IPv4 packets are matched as IPv4."""
    program: list[_Ins | str] = [
        _Ins(_LD_B_ABS, _net(0)),
        _Ins(_ALU_RSH_K, 4),
        _Ins(_JEQ_K, 4, jt="v4"),
        _Ins(_JEQ_K, 6, jt="v6", jf="drop"),
        "v4",
    ]
    for net in (n for n in networks if n.version == 4):
        program += [
            _Ins(_LD_W_ABS, _net(12)),
            _Ins(_ALU_AND_K, int(net.netmask)),
            _Ins(_JEQ_K, int(net.network_address), jt="accept"),
        ]
    program += [_Ins(_RET_K, _DROP), "v6"]
    for index, v6 in enumerate(n for n in networks if n.version == 6):
        words = struct.unpack("!4I", v6.network_address.packed)
        masks = struct.unpack("!4I", v6.netmask.packed)
        following = f"v6.{index + 1}"
        for word, (value, mask) in enumerate(zip(words, masks, strict=True)):
            if mask == 0:
                break
            last = word == 3 or masks[word + 1] == 0
            program += [
                _Ins(_LD_W_ABS, _net(8 + 4 * word)),
                _Ins(_ALU_AND_K, mask),
                _Ins(_JEQ_K, value, jt="accept" if last else 0, jf=following),
            ]
        program.append(following)
    program += ["drop", _Ins(_RET_K, _DROP), "accept", _Ins(_RET_K, _ACCEPT)]
    return _assemble(program)


def _assemble(program: list[_Ins | str]) -> list[tuple[int, int, int, int]]:
    labels: dict[str, int] = {}
    instructions: list[_Ins] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)

    def offset(at: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        jump = labels[target] - at - 1
        if not 0 <= jump <= _MAX_JUMP:
            raise SourceFilterError("sip_allowed_sources lists too many networks for one socket filter")
        return jump

    return [(i.code, offset(at, i.jt), offset(at, i.jf), i.k) for at, i in enumerate(instructions)]


def allow_only(fd: int, networks: Sequence[Network]) -> None:
    """Attach the allow-list to the open socket ``fd`` (shared with its owner: the filter is the socket's)."""
    program = compile_allow_list(networks)
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(code))
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError as error:
        raise SourceFilterError(f"the kernel refused the SIP source filter ({error.strerror})") from None
    finally:
        sock.close()


def socket_inodes() -> dict[int, int]:
    """This process's open sockets: inode to file descriptor."""
    if not sys.platform.startswith("linux"):
        raise SourceFilterError("the SIP source filter needs Linux")
    found: dict[int, int] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found[int(target[8:-1])] = int(name)
    return found


def signalling_sockets(inodes: Iterable[int]) -> list[int]:
    """Of ``inodes``, those that are UDP sockets or listening TCP sockets (not connected ones, not
    unix sockets): the ones a new SIP sender reaches."""
    wanted = set(inodes)
    found: list[int] = []
    for table in ("udp", "udp6", "tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            inode = int(fields[9])
            if inode in wanted and (table.startswith("udp") or fields[3] == _LISTEN):
                found.append(inode)
    return found
