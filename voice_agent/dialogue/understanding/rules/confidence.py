"""The confidence levels the rules answer with, in one place so every turn is honest on the same scale
(the hybrid backend asks the LLM below its threshold)."""

from __future__ import annotations

from typing import Final

SURE: Final = 0.95
HIGH: Final = 0.9
MEDIUM: Final = 0.75
GUESS: Final = 0.5
NOTHING: Final = 0.2
