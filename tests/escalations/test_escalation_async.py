"""From the event loop: the store runs in worker threads, and urgent escalations wake the console."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest
from pydantic import SecretStr

from voice_agent.audit import AuditTrail, Keyring
from voice_agent.escalations import (
    AsyncEscalationStore,
    EscalationCategory,
    EscalationConflict,
    EscalationStatus,
    EscalationStore,
    ResolutionOutcome,
    UrgentSignal,
    open_escalations,
)
from voice_agent.settings import Settings

if TYPE_CHECKING:
    from tests.backends import Backend


@pytest.fixture
async def escalations(store: EscalationStore) -> AsyncIterator[AsyncEscalationStore]:
    yield AsyncEscalationStore(store)


async def test_the_async_store_runs_off_the_event_loop(
    escalations: AsyncEscalationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real_create = EscalationStore.create

    def spy(self: EscalationStore, **fields: object) -> object:
        threads.append(threading.get_ident())
        return real_create(self, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(EscalationStore, "create", spy)
    created = await escalations.create(
        category=EscalationCategory.CANNOT_COMPLETE, session_id=uuid4(), callback_number="+15551230001"
    )
    assert threads and threads[0] != loop_thread
    assert [entry.id for entry in await escalations.queue()] == [created.id]
    assert (await escalations.get(created.id, "jdoe")).callback_number == "+15551230001"
    assert (await escalations.claim(created.id, "jdoe")).status is EscalationStatus.CLAIMED
    with pytest.raises(EscalationConflict):
        await escalations.claim(created.id, "asmith")
    resolved = await escalations.resolve(created.id, "jdoe", ResolutionOutcome.CALLED_BACK)
    assert resolved.status is EscalationStatus.RESOLVED
    report = await escalations.purge_resolved(resolved.created_at.replace(year=2100))
    assert report.deleted == 1


async def test_urgent_escalations_wake_subscribers_and_normal_ones_do_not(
    escalations: AsyncEscalationStore,
) -> None:
    updates = escalations.urgent.subscribe()
    next_update = asyncio.ensure_future(anext(updates))
    await escalations.create(category=EscalationCategory.CALLER_REQUEST, session_id=uuid4())
    await asyncio.sleep(0.05)
    assert not next_update.done()
    created = await escalations.create(category=EscalationCategory.EMERGENCY, session_id=uuid4())
    assert await asyncio.wait_for(next_update, 5) == 1
    queue = await escalations.queue()
    assert queue[0].id == created.id  # the row is committed before anyone is woken
    await updates.aclose()


async def test_the_signal_does_not_lose_bumps_between_waits() -> None:
    signal = UrgentSignal()
    seen = signal.version
    signal.notify()
    signal.notify()
    assert await asyncio.wait_for(signal.wait(seen), 1) == 2  # bumps before the wait still count
    waiters = [asyncio.ensure_future(signal.wait(2)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    signal.notify()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [3, 3, 3]


def test_open_escalations_uses_the_audit_database_and_keys(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.upper().startswith("VOICE_AGENT_")]:
        monkeypatch.delenv(name)
    keys = f"kenv {base64.b64encode(os.urandom(32)).decode()}"
    settings = Settings(
        dev_dir=tmp_path,
        audit_database_url=backend.url,
        audit_keys=SecretStr(keys),
        service_identity="agent-7",
    )
    with open_escalations(settings) as store:
        created = store.create(category=EscalationCategory.OTHER_PERSON_REQUEST, session_id=uuid4())
    with AuditTrail.open(backend.url, Keyring.from_string(keys)) as trail:
        (item,) = list(trail.export())
    assert item["event"]["actor"] == {"kind": "service", "id": "agent-7"}
    assert item["event"]["resource_ids"] == [str(created.id)]
