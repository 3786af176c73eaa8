"""The inventory's typed model: components that create, receive, maintain or transmit PHI, the flows
between them, and findings where the configuration is weaker than the safe defaults.

The JSON form (``voice-agent inventory --format json``) is this model dumped with its serialization
aliases; its schema (``Inventory.model_json_schema(mode="serialization")``) is published in
docs/inventory.md and checked there by the tests, so a change to it is a deliberate, visible one.
Bump ``SCHEMA_VERSION`` when a field is renamed or removed (adding one is compatible).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Severity = Literal["high", "medium", "low"]
#: ``clinic``: inside the clinic's network boundary; ``outside``: beyond it (a caller, a carrier).
Zone = Literal["clinic", "outside"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(_Frozen):
    """A setting that makes a safeguard weaker than its safe default (or stops the agent starting)."""

    id: str = Field(description="Stable rule id, e.g. sip-media-unencrypted (docs/inventory.md lists them).")
    severity: Severity
    component: str = Field(description="The id of the component the setting weakens.")
    settings: tuple[str, ...] = Field(description="The VOICE_AGENT_* variables involved.")
    message: str


class Component(_Frozen):
    """One place PHI is created, received, kept or sent on."""

    id: str = Field(description="Stable id, e.g. agent-worker, fhir-server, audit-database.")
    name: str
    kind: str = Field(description="agent-worker, speech-to-text, text-to-speech, dialogue-model, ...")
    zone: Zone
    part_of: str | None = Field(
        description="The component this one runs inside or beside (in process, or on the same host)."
    )
    location: str = Field(description="Where it is: an address, a URL (no secrets), a file or 'in process'.")
    addresses: tuple[str, ...] = Field(description="Every address it listens on or is reached at.")
    phi: tuple[str, ...] = Field(description="What PHI it creates, receives, keeps or sends; empty: none.")
    controls: tuple[str, ...] = Field(description="The safeguards on it, as configured.")
    findings: tuple[str, ...] = Field(description="Ids of the findings on this component.")


class Flow(_Frozen):
    """PHI (or its absence) crossing from one component to another; ``from`` starts the exchange."""

    source: str = Field(
        validation_alias=AliasChoices("from", "source"),
        serialization_alias="from",
        description="Component id that starts the exchange.",
    )
    target: str = Field(
        validation_alias=AliasChoices("to", "target"),
        serialization_alias="to",
        description="Component id it reaches.",
    )
    phi: tuple[str, ...]
    protocol: str
    control: str = Field(description="The protection on the wire (or 'in process', 'loopback only').")
    encrypted: bool = Field(description="Encrypted in transit (in-process and loopback flows: false).")
    findings: tuple[str, ...] = Field(description="Ids of findings about this flow (e.g. clear media).")


class NotInUse(_Frozen):
    """A component the product has but this configuration does not use, and why."""

    id: str
    name: str
    reason: str


class Deployment(_Frozen):
    worker_id: str | None = Field(
        description="VOICE_AGENT_WORKER_ID when set; null: each worker derives it at start (host-pid)."
    )
    workers: int = Field(description="Workers running these same settings (voice-agent inventory --workers).")
    development_sandbox: bool = Field(description="FHIR is the bundled development sandbox.")


class Inventory(_Frozen):
    schema_version: int = SCHEMA_VERSION
    deployment: Deployment
    components: tuple[Component, ...]
    flows: tuple[Flow, ...]
    not_in_use: tuple[NotInUse, ...]
    findings: tuple[Finding, ...]

    def component(self, component_id: str) -> Component:
        for component in self.components:
            if component.id == component_id:
                return component
        raise KeyError(component_id)
