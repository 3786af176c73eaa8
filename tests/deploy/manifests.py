"""The deployment tree, its Kubernetes overlays, and finding manifests among the rendered documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("single-clinic", "multi-worker")

Manifest = dict[str, Any]


def only(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_of(docs: list[Manifest], kind: str) -> Iterator[Manifest]:
    return (d for d in docs if d["kind"] == kind)
