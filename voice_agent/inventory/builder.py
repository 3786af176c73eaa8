"""Collects components, flows and findings while ``build`` walks the settings; checks they hold together."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from voice_agent.settings import Settings

from .addresses import host_port
from .findings import RULES
from .schema import Component, Deployment, Finding, Flow, Inventory, NotInUse, Zone

WORKER = "agent-worker"


def env(name: str) -> str:
    return f"VOICE_AGENT_{name.upper()}"


def default(name: str) -> Any:
    """The safe default of a setting, as the settings class declares it."""
    return Settings.model_fields[name].default


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


class Builder:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._components: list[dict[str, Any]] = []
        self._flows: list[Flow] = []
        self._absent: list[NotInUse] = []
        self._findings: list[Finding] = []

    # ------------------------------------------------------------------ the worker's own addresses

    @property
    def plain_http(self) -> bool:
        return self.s.serve_allow_plain_http

    @property
    def base_url(self) -> str:
        scheme = "http" if self.plain_http else "https"
        return f"{scheme}://{host_port(self.s.serve_host, self.s.serve_port)}"

    @property
    def ws_url(self) -> str:
        scheme = "ws" if self.plain_http else "wss"
        return f"{scheme}://{host_port(self.s.serve_host, self.s.serve_port)}"

    # ------------------------------------------------------------------ collecting

    def add(
        self,
        component_id: str,
        name: str,
        kind: str,
        *,
        location: str,
        phi: Iterable[str],
        controls: Iterable[str],
        zone: Zone = "clinic",
        part_of: str | None = None,
        addresses: Iterable[str] = (),
    ) -> None:
        self._components.append(
            {
                "id": component_id,
                "name": name,
                "kind": kind,
                "zone": zone,
                "part_of": part_of,
                "location": location,
                "addresses": tuple(addresses),
                "phi": tuple(phi),
                "controls": tuple(controls),
            }
        )

    def flow(
        self,
        source: str,
        target: str,
        phi: Iterable[str],
        *,
        protocol: str,
        control: str,
        encrypted: bool,
        findings: Iterable[str | None] = (),
    ) -> None:
        self._flows.append(
            Flow(
                source=source,
                target=target,
                phi=tuple(phi),
                protocol=protocol,
                control=control,
                encrypted=encrypted,
                findings=tuple(f for f in findings if f is not None),
            )
        )

    def flag(self, rule_id: str, component: str, message: str, *settings: str) -> str:
        """Record a finding (``settings`` are field names) and return its id, for the flows it concerns."""
        rule = RULES[rule_id]
        self._findings.append(
            Finding(
                id=rule.id,
                severity=rule.severity,
                component=component,
                settings=tuple(env(name) for name in settings),
                message=message,
            )
        )
        return rule.id

    def not_in_use(self, component_id: str, name: str, reason: str) -> None:
        self._absent.append(NotInUse(id=component_id, name=name, reason=reason))

    # ------------------------------------------------------------------ the result

    def inventory(self, deployment: Deployment) -> Inventory:
        ids = [c["id"] for c in self._components]
        if len(set(ids)) != len(ids):
            raise AssertionError(f"duplicate component ids: {ids}")
        for flow in self._flows:
            if flow.source not in ids or flow.target not in ids:
                raise AssertionError(f"a flow names an unknown component: {flow.source} -> {flow.target}")
        for finding in self._findings:
            if finding.component not in ids:
                raise AssertionError(f"finding {finding.id} is on an unknown component {finding.component}")
        components = tuple(
            Component(**c, findings=tuple(f.id for f in self._findings if f.component == c["id"]))
            for c in self._components
        )
        order = {"high": 0, "medium": 1, "low": 2}
        findings = sorted(self._findings, key=lambda f: (order[f.severity], ids.index(f.component), f.id))
        return Inventory(
            deployment=deployment,
            components=components,
            flows=tuple(self._flows),
            not_in_use=tuple(self._absent),
            findings=tuple(findings),
        )
