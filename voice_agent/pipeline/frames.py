"""Frames for putting a call through to the front desk; only a transport that can transfer acts on them."""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import ControlFrame, SystemFrame


@dataclass
class TransferCallFrame(ControlFrame):
    """Downstream, behind the reply that announces it: once that has been heard, transfer the call.

    Ordered with the audio (not a system frame), so the announcement is played first. It names no
    address: where the call goes is the transport's configuration, never the dialogue's choice."""


@dataclass
class TransferOutcomeFrame(SystemFrame):
    """Upstream from the transport: whether the transfer was accepted. On success the call then ends."""

    succeeded: bool
