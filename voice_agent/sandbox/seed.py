"""Load the synthetic clinic into the sandbox as transaction bundles.

Uses its own client identity (the seeder certificate): creating Patients and Schedules is exactly what
the agent's gateway refuses to do, so seeding cannot go through it.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable
from typing import Any

import httpx

from voice_agent.sandbox.certs import DevCerts


class SeedError(RuntimeError):
    pass


def seeder_client(base_url: str, certs: DevCerts) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(*(str(p) for p in certs.seeder))
    return httpx.Client(base_url=base_url.rstrip("/") + "/", verify=context, trust_env=False, timeout=120)


def load_bundles(
    base_url: str, certs: DevCerts, bundles: Iterable[tuple[str, dict[str, Any]]]
) -> dict[str, int]:
    """POST each transaction bundle in order; returns how many entries each one wrote."""
    written: dict[str, int] = {}
    with seeder_client(base_url, certs) as client:
        for name, bundle in bundles:
            response = client.post(
                "",
                content=json.dumps(bundle).encode(),
                headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
            )
            if response.status_code != 200:
                raise SeedError(f"Loading bundle {name!r} failed with HTTP {response.status_code}.")
            entries = response.json().get("entry") or []
            bad = [
                e for e in entries if not str((e.get("response") or {}).get("status", "")).startswith("20")
            ]
            if bad:
                raise SeedError(f"Bundle {name!r}: {len(bad)} entries were not stored.")
            written[name] = len(entries)
    return written
