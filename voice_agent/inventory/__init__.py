"""The PHI inventory and data-flow map (``voice-agent inventory``): from the settings ``serve`` would load,
every component that creates, receives, keeps or sends PHI, the controls on each, the flows between them,
and findings wherever the configuration is weaker than the safe defaults. docs/inventory.md shows it."""

from __future__ import annotations

from .build import build_inventory
from .render import FORMATS, render
from .schema import SCHEMA_VERSION, Component, Finding, Flow, Inventory, NotInUse

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "Component",
    "Finding",
    "Flow",
    "Inventory",
    "NotInUse",
    "build_inventory",
    "render",
]
