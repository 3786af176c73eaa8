"""The inventory as text (for people), JSON (for tools; schema in docs/inventory.md) or a Mermaid data-flow
diagram (``flowchart LR``, the clinic network as a subgraph, flows with a finding dashed and red)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .schema import Component, Flow, Inventory

ZONE_NAMES = {"clinic": "clinic network", "outside": "outside the clinic"}
_FINDING_COLOUR = "#c0392b"


def to_text(inventory: Inventory) -> str:
    d = inventory.deployment
    counts = Counter(f.severity for f in inventory.findings)
    summary = (
        ", ".join(f"{counts[level]} {level}" for level in ("high", "medium", "low"))
        if inventory.findings
        else "none"
    )
    out = [
        "PHI inventory (voice-agent inventory)",
        f"worker id: {d.worker_id or 'derived at start from the host name and pid'}; "
        f"workers with these settings: {d.workers}",
        f"development sandbox: {'yes' if d.development_sandbox else 'no'}",
        f"findings: {summary}",
        "",
        "COMPONENTS",
    ]
    for c in inventory.components:
        where = ZONE_NAMES[c.zone] + (f", in {c.part_of}" if c.part_of else "")
        out += ["", f"{c.id}: {c.name}", f"  kind: {c.kind} ({where})", f"  location: {c.location}"]
        out += _items("addresses", c.addresses)
        out += _items("PHI", c.phi or ("none",))
        out += _items("controls", c.controls)
        out += _items("findings", [_finding_line(inventory, fid) for fid in c.findings])
    out += ["", "DATA FLOWS", ""]
    for flow in inventory.flows:
        out += [
            f"{flow.source} → {flow.target}",
            f"  PHI: {', '.join(flow.phi) or 'none'}",
            f"  over: {flow.protocol}",
            f"  control: {flow.control}",
        ]
        out += [f"  finding: {fid}" for fid in flow.findings]
    if inventory.not_in_use:
        out += ["", "NOT IN USE", ""]
        out += [f"  {n.id} ({n.name}): {n.reason}" for n in inventory.not_in_use]
    out += ["", "FINDINGS", ""]
    out += [
        f"  [{f.severity}] {f.id} on {f.component} ({', '.join(f.settings)}): {f.message}"
        for f in inventory.findings
    ] or ["  none: no setting is weaker than its safe default"]
    return "\n".join(out) + "\n"


def _items(title: str, items: tuple[str, ...] | list[str]) -> list[str]:
    return [f"  {title}:", *(f"    - {item}" for item in items)] if items else []


def _finding_line(inventory: Inventory, finding_id: str) -> str:
    finding = next(f for f in inventory.findings if f.id == finding_id)
    return f"[{finding.severity}] {finding.id}: {finding.message}"


def to_json(inventory: Inventory) -> str:
    return inventory.model_dump_json(by_alias=True, indent=2) + "\n"


def to_mermaid(inventory: Inventory) -> str:
    out = ["flowchart LR"]
    by_host: dict[str | None, list[Component]] = {}
    for c in inventory.components:
        by_host.setdefault(c.part_of, []).append(c)
    hosts = {c.id for c in inventory.components if c.id in by_host}
    outside = [c for c in inventory.components if c.zone == "outside" and c.part_of is None]
    inside = [c for c in inventory.components if c.zone == "clinic" and c.part_of is None]
    out += [f"  {_node(c)}" for c in outside]
    out.append('  subgraph clinic["Clinic network"]')
    for c in inside:
        if c.id in hosts:
            title = "In the worker" if inventory.deployment.workers == 1 else "In each worker"
            out.append(f'    subgraph {_id(c.id)}_host["{title}"]')
            out += [f"      {_node(member)}" for member in (c, *by_host[c.id])]
            out.append("    end")
        else:
            out.append(f"    {_node(c)}")
    out.append("  end")
    red: list[str] = []
    for index, flow in enumerate(inventory.flows):
        out.append(f"  {_edge(flow)}")
        if flow.findings:
            red.append(str(index))
    if red:
        out.append(f"  linkStyle {','.join(red)} stroke:{_FINDING_COLOUR},stroke-width:2px")
    flagged = [_id(c.id) for c in inventory.components if c.findings]
    if flagged:
        out.append(f"  classDef finding stroke:{_FINDING_COLOUR},stroke-width:3px")
        out.append(f"  class {','.join(flagged)} finding")
    return "\n".join(out) + "\n"


def _id(component_id: str) -> str:
    return component_id.replace("-", "_")


def _label(value: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    return value.replace('"', "#quot;").replace("|", "/").replace(";", ",")


def _node(c: Component) -> str:
    label = f"{_label(c.name)}<br/>{_label(c.location.split('?')[0])}"  # a URL's options: see the text
    if c.kind == "database":
        return f'{_id(c.id)}[("{label}")]'
    if c.kind == "client":
        return f'{_id(c.id)}(["{label}"])'
    return f'{_id(c.id)}["{label}"]'


def _edge(flow: Flow) -> str:
    label = _label(", ".join(flow.phi) or "no PHI") + "<br/>" + _label(flow.control)
    arrow = "-.->" if flow.findings else "-->"
    return f'{_id(flow.source)} {arrow}|"{label}"| {_id(flow.target)}'


Renderer = Callable[[Inventory], str]
FORMATS: dict[str, Renderer] = {"text": to_text, "json": to_json, "mermaid": to_mermaid}


def render(inventory: Inventory, fmt: str) -> str:
    return FORMATS[fmt](inventory)
