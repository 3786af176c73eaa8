"""Signed checkpoints of the audit chain's tail, kept where the database cannot rewrite them.

Why: the head row's HMAC covers only the newest seq and hash. Someone who can write the database can save
the head row, later delete the newer events and put the saved head back; chain and head then agree and
``voice-agent audit verify`` passes. So ``serve`` writes a checkpoint (seq, chain hash, purge anchor, time,
worker, key id, and an HMAC under the keyring's ``audit-checkpoint`` purpose) every
``audit_checkpoint_interval_seconds`` and at shutdown: one JSON line appended (``O_APPEND``, one
``write``, ``fsync``, mode 0600) to a file on the worker's host, and sent to the SIEM (syslog, webhook)
when one is configured. ``voice-agent audit verify --checkpoints [PATH]...`` then fails when a checkpoint's
HMAC does not verify, when the trail no longer holds a checkpointed seq with that exact hash, or when the
trail ends before the newest checkpoint. A checkpoint below the purge anchor is checked against the anchor
when it names the anchor's seq, and is otherwise reported as not checkable (its record was purged).

Several workers may share one database and one file: each checkpoints the head it read in one snapshot
(``AuditTrail.vouched_head``: its HMAC checked and the newest record matching it), and each line goes out
in a single ``write`` on an ``O_APPEND`` descriptor, so lines from different processes never interleave on
a local filesystem. Lines need not be in seq order; verification uses every one.

Residual risk (docs/architecture.md, threat model): someone who holds both the database and the
checkpoint host (or the audit key, to sign new checkpoints) can still rewrite history consistently;
events written after the newest checkpoint can be deleted undetected until the next one is written (up to
an interval; a killed worker writes no shutdown checkpoint). Ship checkpoints to the SIEM, where neither
the database nor the worker's host can reach them, and shorten the interval to narrow that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from prometheus_client import Counter

from .crypto import KEY_ID_PATTERN, Keyring
from .store import HeadRecord, canonical_time
from .trail import AuditIntegrityError, AuditTrail

log = logging.getLogger(__name__)

#: The keyring purpose checkpoints are MACed under: a head or session-token MAC is never a valid one.
CHECKPOINT_PURPOSE = "audit-checkpoint"
CHECKPOINT_VERSION = 1
#: Findings listed before the rest are only counted (as ``verify`` does).
MAX_FINDINGS = 1000

WRITTEN = Counter(
    "voice_agent_audit_checkpoints_total", "Audit checkpoints written, by outcome.", ["outcome"]
)

_HASH = re.compile(r"^[0-9a-f]{64}$")
_WORKER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_FIELDS = ("v", "seq", "hash", "anchor_seq", "anchor_hash", "at", "worker", "key_id", "mac")
_MAX_LINE = 4096


class CheckpointError(Exception):
    """A checkpoint could not be written (the file is unusable). Messages name the path, nothing else."""


@dataclass(frozen=True)
class Checkpoint:
    """What one worker saw at the head of the chain, and when, signed with the audit keys."""

    seq: int
    hash: str
    anchor_seq: int
    anchor_hash: str
    at: datetime  # aware UTC, microseconds
    worker: str
    key_id: str
    mac: str = ""

    def message(self) -> bytes:
        return (
            f"voice-agent-audit/checkpoint/v{CHECKPOINT_VERSION}|{self.seq}|{self.hash}|{self.anchor_seq}|"
            f"{self.anchor_hash}|{canonical_time(self.at)}|{self.worker}|{self.key_id}"
        ).encode()

    @classmethod
    def of(cls, head: HeadRecord, keyring: Keyring, *, at: datetime, worker: str) -> Checkpoint:
        at = at.astimezone(UTC)
        unsigned = cls(head.seq, head.hash, head.anchor_seq, head.anchor_hash, at, worker, keyring.active_id)
        return replace(unsigned, mac=keyring.mac(unsigned.message(), purpose=CHECKPOINT_PURPOSE))

    def signed_by(self, keyring: Keyring) -> bool:
        return keyring.check_mac(self.message(), self.key_id, self.mac, purpose=CHECKPOINT_PURPOSE)

    def fields(self) -> dict[str, Any]:
        """The JSON form (also what the SIEM receives): no PHI, only positions, hashes, a time, names."""
        return {
            "v": CHECKPOINT_VERSION,
            "seq": self.seq,
            "hash": self.hash,
            "anchor_seq": self.anchor_seq,
            "anchor_hash": self.anchor_hash,
            "at": canonical_time(self.at),
            "worker": self.worker,
            "key_id": self.key_id,
            "mac": self.mac,
        }

    def to_line(self) -> bytes:
        return json.dumps(self.fields(), separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> Checkpoint:
        """Strict: exactly the fields written, of their types and shapes; ``ValueError`` says what not."""
        if len(line) > _MAX_LINE:
            raise ValueError("longer than any checkpoint")
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("not JSON") from None
        if not isinstance(data, dict) or sorted(data) != sorted(_FIELDS):
            raise ValueError("not a checkpoint object (fields missing or unexpected)")
        if data["v"] != CHECKPOINT_VERSION or type(data["v"]) is not int:
            raise ValueError(f"unknown checkpoint version {data['v']!r}")
        for name in ("seq", "anchor_seq"):
            if type(data[name]) is not int or data[name] < 0:
                raise ValueError(f"{name} is not a sequence number")
        for name in ("hash", "anchor_hash", "mac"):
            if not isinstance(data[name], str) or not _HASH.fullmatch(data[name]):
                raise ValueError(f"{name} is not a SHA-256 hex digest")
        if not isinstance(data["worker"], str) or not _WORKER.fullmatch(data["worker"]):
            raise ValueError("worker is not a worker id")
        if not isinstance(data["key_id"], str) or not KEY_ID_PATTERN.fullmatch(data["key_id"]):
            raise ValueError("key_id is not a key id")
        try:
            at = datetime.strptime(data["at"], _TIME_FORMAT).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            raise ValueError("at is not a UTC time") from None
        return cls(
            data["seq"], data["hash"], data["anchor_seq"], data["anchor_hash"], at,
            data["worker"], data["key_id"], data["mac"],
        )  # fmt: skip


# ---------------------------------------------------------------------- the file


class CheckpointFile:
    """One JSON line per checkpoint, appended and synced; never rewritten or truncated by the agent."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        """One ``write`` on an ``O_APPEND`` descriptor (whole lines, whoever else appends), then ``fsync``.

        A line cut short by a crash is ended first, so it cannot swallow the next checkpoint."""
        data = checkpoint.to_line()
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW  # read: the last byte
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise CheckpointError(f"cannot open {self.path} for appending ({exc.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise CheckpointError(f"{self.path} is not a regular file")
            if info.st_mode & 0o077 and info.st_uid == os.geteuid():
                os.fchmod(fd, 0o600)  # ours and wider than it should be; another owner's set-up is theirs
            if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
                data = b"\n" + data
            if os.write(fd, data) != len(data):
                raise CheckpointError(f"a short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)  # the new file's name survives a power cut too
            finally:
                os.close(directory)


@dataclass
class ReadResult:
    entries: list[tuple[str, Checkpoint]] = field(default_factory=list)
    #: (where, what): lines that are not checkpoints, files that cannot be read.
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Files that do not exist (a failure unless the trail is still empty).
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_checkpoints(paths: Iterable[Path]) -> ReadResult:
    """Every checkpoint in ``paths``, each with where it was (``path line N``). Blank lines are skipped;
    a last line without its newline is a write cut short and only noted."""
    result = ReadResult()
    for path in paths:
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            result.missing.append(str(path))
            continue
        except OSError as exc:
            result.unreadable.append((str(path), f"cannot be read ({exc.strerror})"))
            continue
        lines = content.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            if number == len(lines):
                result.notes.append(f"{where} has no newline (a write cut short?); not checked")
                continue
            try:
                result.entries.append((where, Checkpoint.parse(line)))
            except ValueError as exc:
                result.unreadable.append((where, f"not a checkpoint: {exc}"))
    return result


# ---------------------------------------------------------------------- writing


class CheckpointSink(Protocol):
    """Somewhere else a checkpoint goes (the clinic's SIEM: ``siem.SyslogSink``, ``siem.WebhookSink``)."""

    async def send_checkpoint(self, checkpoint: Checkpoint) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Checkpointer:
    """Takes and writes checkpoints for one worker. ``write`` blocks (the database, ``fsync``); the
    coroutines run it off the event loop and then send the checkpoint to the sinks."""

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        file: CheckpointFile,
        *,
        worker: str,
        sinks: Sequence[CheckpointSink] = (),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._trail = trail
        self._keyring = keyring
        self.file = file
        self._worker = worker
        self._sinks = tuple(sinks)
        self._clock = clock

    def write(self) -> Checkpoint:
        """Checkpoint the head as read now (refused, with ``AuditIntegrityError``, if it is forged)."""
        head = self._trail.vouched_head()
        checkpoint = Checkpoint.of(head, self._keyring, at=self._clock(), worker=self._worker)
        self.file.append(checkpoint)
        return checkpoint

    async def checkpoint(self) -> Checkpoint | None:
        """Write one and send it on; a failure is logged (its class only) and counted, never raised: the
        agent keeps taking calls, and a missing checkpoint shows as a longer gap between them."""
        try:
            checkpoint = await asyncio.to_thread(self.write)
        except Exception as error:
            WRITTEN.labels("failed").inc()
            # These two say only a path and an OS reason, or which check failed; anything else: its class.
            known = isinstance(error, (CheckpointError, AuditIntegrityError))
            log.error("could not write an audit checkpoint: %s", error if known else type(error).__name__)
            return None
        WRITTEN.labels("written").inc()
        log.info("audit checkpoint written: seq %d", checkpoint.seq)
        for sink in self._sinks:
            try:
                await sink.send_checkpoint(checkpoint)
            except Exception as error:  # the file has it; the SIEM's own failure counter says the rest
                log.warning("could not send an audit checkpoint to the SIEM (%s)", type(error).__name__)
        return checkpoint

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """One now (a restart anchors what the last run wrote), one every ``interval`` seconds, and once
        ``stop`` is set, one last: after anything written before it was set (the shutdown checkpoint)."""
        while not stop.is_set():
            await self.checkpoint()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        await self.checkpoint()


# ---------------------------------------------------------------------- verifying

FindingKind = Literal["unreadable", "forged", "missing", "rewritten", "anchor", "truncated", "none"]


@dataclass(frozen=True)
class CheckpointFinding:
    kind: FindingKind
    detail: str
    #: ``path line N``; None: about the trail as a whole.
    where: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        if self.where is None:
            place = "trail"
        else:
            place = self.where if self.seq is None else f"{self.where} (seq {self.seq})"
        return f"{place}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class CheckpointReport:
    sources: tuple[str, ...]
    checked: int
    keyed: bool
    newest: Checkpoint | None
    problems: tuple[CheckpointFinding, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        where = ", ".join(self.sources)
        checks = "HMAC, seq and hash" if self.keyed else "seq and hash only"
        if self.ok:
            newest = ""
            if self.newest is not None:
                at = canonical_time(self.newest.at)
                newest = f"; newest seq {self.newest.seq}, written {at} by {self.newest.worker}"
            lines = [
                f"Checkpoints intact: {self.checked} in {where} match the trail{newest}; checked {checks}."
            ]
        else:
            lines = [f"Checkpoints FAILED ({self.checked} in {where}; checked {checks}):"]
            lines += [f"  {problem}" for problem in self.problems]
        return lines + [f"Note: {note}" for note in self.notes]


def verify_checkpoints(trail: AuditTrail, paths: Sequence[Path]) -> CheckpointReport:
    """Check the trail against every checkpoint in ``paths``: each must be signed with the audit keys,
    and the trail must still hold its seq with its hash (or have purged it), and reach the newest one.

    The rows themselves are ``AuditTrail.verify``'s to vouch for; run both (the CLI does)."""
    keyring = trail.keyring
    read = read_checkpoints(paths)
    problems = [CheckpointFinding("unreadable", what, where) for where, what in read.unreadable]
    notes = list(read.notes)
    if keyring is None:
        notes.append("no key: checkpoint HMACs not checked")
    trusted: list[tuple[str, Checkpoint]] = []
    for where, checkpoint in read.entries:
        if keyring is not None and checkpoint.key_id not in keyring.keys:
            problems.append(
                CheckpointFinding(
                    "forged",
                    f"signed with key {checkpoint.key_id!r}, not in the keyring",
                    where,
                    checkpoint.seq,
                )
            )
        elif keyring is not None and not checkpoint.signed_by(keyring):
            problems.append(
                CheckpointFinding(
                    "forged", "its HMAC does not verify: the line was edited or forged", where, checkpoint.seq
                )
            )
        else:
            trusted.append((where, checkpoint))

    head, stored = trail.hashes(checkpoint.seq for _, checkpoint in trusted)
    newest = max((checkpoint for _, checkpoint in trusted), key=lambda c: c.seq, default=None)
    if head is None:
        problems.append(CheckpointFinding("missing", "the trail has no head record to check against"))
    else:
        purged = 0
        for where, checkpoint in trusted:
            found = _check(checkpoint, head, stored, where)
            if found == "purged":
                purged += 1
            elif found is not None:
                problems.append(found)
        if purged:
            notes.append(
                f"{purged} checkpoint(s) below the purge anchor (seq {head.anchor_seq}) not checkable: "
                "their records were purged"
            )
        if newest is not None and head.seq < newest.seq:
            problems.append(
                CheckpointFinding(
                    "truncated",
                    f"the trail ends at seq {head.seq}, but a checkpoint written "
                    f"{canonical_time(newest.at)} by {newest.worker} vouches for seq {newest.seq}: newer "
                    "events were deleted and an older head put back (or an older backup restored)",
                )
            )
        for path in read.missing:
            if head.seq > 0:
                problems.append(CheckpointFinding("unreadable", "no checkpoint file here", path))
            else:
                notes.append(f"no checkpoint file at {path} (the trail is still empty)")
        if not read.entries and not read.unreadable and not read.missing and head.seq > 0:
            problems.append(
                CheckpointFinding("none", f"no checkpoints, but the trail holds events up to seq {head.seq}")
            )
    problems.sort(key=lambda problem: problem.where is not None)  # the trail as a whole first, as verify does
    if len(problems) > MAX_FINDINGS:
        notes.append(f"{len(problems) - MAX_FINDINGS} further problems not listed")
    return CheckpointReport(
        sources=tuple(str(path) for path in paths),
        checked=len(read.entries),
        keyed=keyring is not None,
        newest=newest,
        problems=tuple(problems[:MAX_FINDINGS]),
        notes=tuple(notes),
    )


def _check(
    checkpoint: Checkpoint, head: HeadRecord, stored: dict[int, str], where: str
) -> CheckpointFinding | Literal["purged"] | None:
    seq = checkpoint.seq
    if checkpoint.anchor_seq > head.anchor_seq:
        return CheckpointFinding(
            "anchor",
            f"written when the trail was purged through seq {checkpoint.anchor_seq}; it is now anchored at "
            f"seq {head.anchor_seq}: an older state of the database was put back",
            where,
            seq,
        )
    if checkpoint.anchor_seq == head.anchor_seq and checkpoint.anchor_hash != head.anchor_hash:
        return CheckpointFinding(
            "anchor", f"the purge anchor (seq {head.anchor_seq}) was replaced", where, seq
        )
    if seq < head.anchor_seq:
        return "purged"
    if seq == head.anchor_seq:
        if checkpoint.hash != head.anchor_hash:
            return CheckpointFinding(
                "rewritten", f"the purge anchor (seq {seq}) is not the record this checkpoint saw", where, seq
            )
        return None
    if seq > head.seq:
        return CheckpointFinding(
            "missing",
            f"beyond the trail's head (seq {head.seq}): deleted, and an older head put back",
            where,
            seq,
        )
    if seq not in stored:
        return CheckpointFinding("missing", f"seq {seq} is not in the trail: deleted", where, seq)
    if stored[seq] != checkpoint.hash:
        return CheckpointFinding(
            "rewritten",
            f"seq {seq} is not the record this checkpoint saw: the chain was rewritten",
            where,
            seq,
        )
    return None


__all__ = [
    "CHECKPOINT_PURPOSE",
    "Checkpoint",
    "CheckpointError",
    "CheckpointFile",
    "CheckpointFinding",
    "CheckpointReport",
    "CheckpointSink",
    "Checkpointer",
    "read_checkpoints",
    "verify_checkpoints",
]
