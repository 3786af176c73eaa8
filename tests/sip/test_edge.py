"""The edge proxy on its own (``deploy/sip/kamailio.cfg`` as deployed, on a free port): only allow-listed
PBX addresses get in, a worker that stops answering its health checks is taken out of rotation, and the
edge's log names no caller. A few hand-written SIP requests over UDP; no agent needed."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from tests.sip.edge import MISSING, Edge, free_udp_port, running_edge, wait_for_workers

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}")

CALLER = "+15550142222"


def request(edge: Edge, method: str, *, source: str = "127.0.0.1", user: str | None = None) -> str:
    """One out-of-dialog request to the edge from ``source``; the status line of its final answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(10)
        host, port = sock.getsockname()
        uri = f"sip:{user}@{edge.address}" if user else f"sip:{edge.address}"
        sdp = f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        body = sdp if method == "INVITE" else ""
        message = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:{CALLER}@{host}:{port}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:{CALLER}@{host}:{port}>\r\n"
            "Max-Forwards: 70\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        sock.sendto(message.encode(), (edge.host, edge.port))
        while True:
            status = sock.recv(65535).decode(errors="replace").splitlines()[0]
            if not status.startswith("SIP/2.0 1"):  # 100 Trying: wait for the final answer
                return status


def test_only_allow_listed_peers_get_in_and_a_silent_worker_leaves_the_rotation(tmp_path: Path) -> None:
    nobody = free_udp_port()  # a worker that never answers
    with running_edge(tmp_path, [("127.0.0.1", nobody)], allowed=("127.0.0.1",)) as edge:
        assert request(edge, "OPTIONS") == "SIP/2.0 200 OK"  # the PBX's keepalive
        assert request(edge, "OPTIONS", source="127.0.0.2").startswith("SIP/2.0 403")
        assert request(edge, "INVITE", source="127.0.0.2", user="clinic").startswith("SIP/2.0 403")
        assert request(edge, "REGISTER", user="clinic").startswith("SIP/2.0 405")

        # health checks: no 200 OK to two OPTIONS in a row, and the worker is out; a call then gets 503
        assert wait_for_workers(edge, active=False) == {f"sip:agent@127.0.0.1:{nobody}": "IP"}
        assert request(edge, "INVITE", user="clinic").startswith("SIP/2.0 503")
        log = edge.log_text()
        assert f"sip:agent@127.0.0.1:{nobody} is DOWN" in log
        assert "refused INVITE from 127.0.0.2" in log
    # caller numbers are PHI-adjacent: at the default log level the edge writes none
    assert CALLER not in edge.log_text() and CALLER[2:] not in edge.log_text()
