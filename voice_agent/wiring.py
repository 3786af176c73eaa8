"""Builds the process-wide objects from settings, so every entry point wires them the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from fhir_adapters import AccessRecorder, FhirGateway, Scheduling, TransportConfig
from voice_agent.clock import clock_for
from voice_agent.settings import Settings


def transport_config(settings: Settings) -> TransportConfig:
    return TransportConfig(
        base_url=settings.fhir_base_url,
        ca_file=settings.ca_file,
        client_cert=settings.client_cert_pair,
        connect_timeout=settings.fhir_connect_timeout_seconds,
        read_timeout=settings.fhir_read_timeout_seconds,
    )


def gateway(
    settings: Settings,
    *,
    recorder: AccessRecorder | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FhirGateway:
    return FhirGateway.connect(
        transport_config(settings),
        recorder=recorder,
        max_page=settings.fhir_max_page,
        read_retries=settings.fhir_read_retries,
        transport=transport,
    )


def clock(settings: Settings) -> Callable[[], datetime]:
    """The agent's "now" (the development sandbox may start it elsewhere: ``clock_start``)."""
    return clock_for(settings.zone, settings.clock_start)


def scheduling(
    settings: Settings, fhir: FhirGateway, *, now: Callable[[], datetime] | None = None
) -> Scheduling:
    return Scheduling(
        fhir,
        zone=settings.zone,
        horizon_days=settings.booking_horizon_days,
        schedule_ids=settings.clinic_schedule_ids or None,
        clock=now or clock(settings),
    )
