"""The edge proxy on its own (``deploy/sip/kamailio.cfg`` as deployed, on a free port): only allow-listed
PBX addresses get in, a worker that stops answering its health checks is taken out of rotation, and the
edge's log names no caller. A few hand-written SIP requests over UDP; no agent needed."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from harness.real_parts import needs
from harness.sip.edge import CALLER, Edge, free_udp_port, running_edge, sip_request, wait_for_workers

pytestmark = needs("sipp", "kamailio", "kamcmd", "tcpdump")


def request(edge: Edge, method: str, *, source: str = "127.0.0.1", user: str | None = None) -> str:
    status = sip_request(edge.host, edge.port, method, source=source, user=user)
    assert status is not None, f"the edge did not answer {method}"
    return status


class Worker:
    """A stand-in for a worker that only records what the edge forwards (and answers it): the edge's own
    behaviour is under test, the agent behind it is tested in test_sip_calls."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", free_udp_port()))
        self.sock.settimeout(0.2)
        self.invites: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = data.decode(errors="replace")
            if message.startswith("SIP/2.0") or message.startswith("ACK"):
                continue
            if message.startswith("INVITE"):
                self.invites.append(message)
            echoed = [
                h
                for h in message.split("\r\n")
                if h.split(":")[0] in ("Via", "From", "To", "Call-ID", "CSeq")
            ]
            status = "200 OK" if message.startswith("OPTIONS") else "486 Busy Here"
            reply = (
                f"SIP/2.0 {status}\r\n" + "".join(f"{h}\r\n" for h in echoed) + "Content-Length: 0\r\n\r\n"
            )
            self.sock.sendto(reply.encode(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


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


def test_a_forged_via_does_not_get_in_and_only_an_asserting_peer_names_the_caller(tmp_path: Path) -> None:
    worker = Worker()
    try:
        with running_edge(
            tmp_path,
            [("127.0.0.1", worker.port)],
            allowed=("127.0.0.1", "127.0.0.3"),
            asserting=("127.0.0.3",),
        ) as edge:
            wait_for_workers(edge)
            # an unlisted sender writing a listed peer's address in its Via is still refused
            forged = sip_request(
                edge.host, edge.port, "INVITE", source="127.0.0.2", via="127.0.0.1", user="clinic"
            )
            assert forged is not None and forged.startswith("SIP/2.0 403")
            assert not worker.invites

            asserted = f"P-Asserted-Identity: <sip:{CALLER}@trunk.invalid>"
            for source in ("127.0.0.1", "127.0.0.3"):
                status = sip_request(
                    edge.host, edge.port, "INVITE", source=source, user="clinic", headers=[asserted]
                )
                assert status is not None and status.startswith("SIP/2.0 486")
            pbx, trunk = worker.invites
            assert "P-Asserted-Identity" not in pbx  # a PBX that does not attest numbers: removed
            assert asserted in trunk  # the attesting trunk's number reaches the worker
    finally:
        worker.close()
