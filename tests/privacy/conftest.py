"""Fixtures for the privacy tests: configure logging for one test, then put the process back."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from loguru import logger

from voice_agent.privacy import configure_logging
from voice_agent.privacy.log_setup import UVICORN_LOGGERS
from voice_agent.settings import Settings

Configure = Callable[..., Settings]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """``configure(log_level="DEBUG", ...)`` runs the real set-up; teardown restores what it changed."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_uvicorn = {
        name: (lg.handlers[:], lg.propagate, lg.level)
        for name in UVICORN_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    saved_hooks = (sys.excepthook, threading.excepthook, sys.unraisablehook)

    def run(**kwargs: object) -> Settings:
        settings = Settings(**kwargs)  # type: ignore[arg-type]
        configure_logging(settings)
        return settings

    yield run

    logger.remove()
    logger.add(sys.stderr)
    logging.captureWarnings(False)
    sys.excepthook, threading.excepthook, sys.unraisablehook = saved_hooks
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in saved_root[0]:
        root.addHandler(handler)
    root.setLevel(saved_root[1])
    for name, (handlers, propagate, level) in saved_uvicorn.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.setLevel(level)
