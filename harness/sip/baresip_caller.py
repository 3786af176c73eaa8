"""A real SIP peer in its own process (baresip allows one stack per process): call the agent with a given
signalling transport and media encryption, play a timeline of caller speech and keypad presses, listen,
and report as JSON whether the call was answered and how much was heard (the audio goes to ``--out``).

    python -m harness.sip.baresip_caller URI --transport tls --srtp mandatory --ca CA --listen 8 --out F.pcm \
        --timeline '[{"at": 12.0, "say": "line.pcm"}, {"at": 30.0, "keys": "07141962#"}]'

``say`` files are 8 kHz 16-bit mono PCM; they are written into baresip's transmit buffer a little ahead
of its clock, as a phone's microphone would deliver them. Times are seconds after the call is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

_LEAD_BYTES = 960  # 60 ms at 8 kHz: enough for baresip's clock, little to discard


async def _speak(call: Any, pcm: bytes) -> None:
    from baresip import BaresipError

    while pcm:
        with contextlib.suppress(BaresipError):
            room = _LEAD_BYTES - call.audio.info().tx_buffered
            if room > 0:
                pcm = pcm[call.audio.write(pcm[: room - room % 2]) :]
        await asyncio.sleep(0.01)


async def _play(call: Any, timeline: list[dict[str, Any]], answered: float) -> None:
    for step in sorted(timeline, key=lambda s: float(s["at"])):
        await asyncio.sleep(max(0.0, answered + float(step["at"]) - time.monotonic()))
        if "say" in step:
            await _speak(call, Path(step["say"]).read_bytes())
        if "keys" in step:
            await call.send_dtmf(step["keys"])


async def call(args: argparse.Namespace) -> dict[str, object]:
    from baresip import Account, BaresipError, Config, Runtime, UserAgent

    runtime = Runtime()
    extra = f"sip_listen {args.host}:{args.port}\n" + (f"sip_cafile {args.ca}\n" if args.ca else "")
    await runtime.start(Config(net_interface=args.host, extra_config_text=extra))
    try:
        encryption = {"off": (), "optional": ("mediaenc=srtp",), "mandatory": ("mediaenc=srtp-mand",)}
        agent = await UserAgent.create(
            runtime,
            Account(
                user=args.user,
                domain=f"{args.host}:{args.port}",
                password="",
                reg_interval=0,
                transport=args.transport,
                extra_params=encryption[args.srtp],
            ),
        )
        placed = await agent.dial(args.uri)
        try:
            await placed.wait_established(timeout=args.answer_within)
        except BaresipError as error:
            return {"established": False, "error": type(error).__name__}
        answered = time.monotonic()
        player = asyncio.create_task(_play(placed, json.loads(args.timeline), answered))
        heard = bytearray()
        while time.monotonic() < answered + args.listen and placed.state.value != "closed":
            with contextlib.suppress(BaresipError):
                heard += placed.audio.read(8000)
            await asyncio.sleep(0.02)
        player.cancel()
        Path(args.out).write_bytes(bytes(heard))
        hung_up_by_agent = placed.state.value == "closed"
        if not hung_up_by_agent:
            with contextlib.suppress(BaresipError):
                await placed.hangup()
        return {"established": True, "bytes": len(heard), "rate": 8000, "agent_hung_up": hung_up_by_agent}
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    parser.add_argument("--srtp", choices=("off", "optional", "mandatory"), default="off")
    parser.add_argument("--ca")
    parser.add_argument("--user", default="15550170009")
    parser.add_argument("--host", default="127.0.0.1", help="the caller's own address (127.0.0.2: elsewhere)")
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--listen", type=float, default=8.0)
    parser.add_argument("--answer-within", type=float, default=10.0)
    parser.add_argument("--timeline", default="[]")
    parser.add_argument("--out", default="/dev/null")
    print(json.dumps(asyncio.run(call(parser.parse_args()))))


if __name__ == "__main__":
    main()
