"""Process-level hardening: no crash dumps, no readable files, no fault dumps.

A core dump is a copy of the process memory, and the process memory holds the call: audio,
transcripts, the patient's name and date of birth. HIPAA's "no PHI at rest" therefore means no core
files, no ptrace/``/proc/<pid>/mem`` reads by other processes of the same user, and no file the
product writes (a temp file, a socket) readable by anyone but the service account.
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import os
import sys
from dataclasses import dataclass, field

__all__ = ["HardeningReport", "harden_process"]

log = logging.getLogger(__name__)

#: Owner-only: any file or directory the product creates is unreadable by group and others.
SAFE_UMASK = 0o077
_PR_SET_DUMPABLE = 4


@dataclass(frozen=True)
class HardeningReport:
    """What :func:`harden_process` applied, for one start-up log line."""

    core_dumps_disabled: bool
    not_dumpable: bool
    umask: int
    previous_umask: int
    faulthandler_disabled: bool
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        parts = [
            f"core dumps {'off' if self.core_dumps_disabled else 'NOT off'}",
            f"dumpable {'no' if self.not_dumpable else 'YES'}",
            f"umask {self.umask:04o} (was {self.previous_umask:04o})",
            f"faulthandler {'disabled' if self.faulthandler_disabled else 'was off'}",
        ]
        return "process hardening: " + ", ".join(parts) + "".join(f"; {n}" for n in self.notes)


def _disable_core_dumps(notes: list[str]) -> bool:
    try:
        import resource
    except ImportError:  # not a Unix
        notes.append("RLIMIT_CORE unavailable on this OS")
        return False
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as error:
        notes.append(f"RLIMIT_CORE not set ({type(error).__name__})")
        return False
    return resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)


def _set_not_dumpable(notes: list[str]) -> bool:
    """prctl(PR_SET_DUMPABLE, 0): no core even if a limit is raised later, and no same-user ptrace."""
    if not sys.platform.startswith("linux"):
        log.debug("prctl(PR_SET_DUMPABLE) is Linux-only; skipped on %s", sys.platform)
        notes.append("prctl unavailable on this OS")
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError) as error:
        log.debug("prctl(PR_SET_DUMPABLE) unavailable: %s", type(error).__name__)
        notes.append("prctl unavailable")
        return False
    if result != 0:
        notes.append(f"prctl(PR_SET_DUMPABLE) failed (errno {ctypes.get_errno()})")
        return False
    return True


#: Environment switches that make a library write caller audio or data to disk, or phone home.
_UNSAFE_ENV = ("PIPECAT_SMART_TURN_LOG_DATA",)


def _no_library_telemetry(notes: list[str]) -> None:
    """pipecat's smart-turn writes every turn's audio to ./smart_turn_audio_log when an env flag is set;
    onnxruntime's telemetry is switched off in ``voice_agent/__init__`` (it must be, before its import)."""
    for name in _UNSAFE_ENV:
        if os.environ.pop(name, None) is not None:
            notes.append(f"{name} was set and is ignored")
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"


def harden_process() -> HardeningReport:
    """Refuse core dumps, make the process non-dumpable, set umask 077, and stop faulthandler dumps.

    Call once at start-up, before any call is taken. Irreversible by design: a hard limit of 0 cannot
    be raised again by this process. Side effect worth knowing: a non-dumpable process cannot be
    attached to by debuggers or profilers running as the same user (py-spy needs root).
    """
    notes: list[str] = []
    core = _disable_core_dumps(notes)
    not_dumpable = _set_not_dumpable(notes)
    previous = os.umask(SAFE_UMASK)
    fault = faulthandler.is_enabled()
    if fault:
        faulthandler.disable()
    faulthandler.cancel_dump_traceback_later()
    _no_library_telemetry(notes)
    return HardeningReport(
        core_dumps_disabled=core,
        not_dumpable=not_dumpable,
        umask=SAFE_UMASK,
        previous_umask=previous,
        faulthandler_disabled=fault,
        notes=tuple(notes),
    )
