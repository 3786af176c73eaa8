"""Understanding backends: rules (always on), an LLM (optional), and the hybrid of the two."""

from .base import (
    DirectoryEntry,
    Expectation,
    Intent,
    Offered,
    Slots,
    Understanding,
    UnderstandingContext,
    Understood,
    VisitTypeEntry,
)

__all__ = [
    "DirectoryEntry",
    "Expectation",
    "Intent",
    "Offered",
    "Slots",
    "Understanding",
    "UnderstandingContext",
    "Understood",
    "VisitTypeEntry",
]
