"""Workers that start together on a new PostgreSQL database each create the tables they need: none may
fail on the others' CREATE TABLEs (a UniqueViolation on ``pg_type`` once stopped a worker in CI's
scale-out test). Real PostgreSQL, several engines, released together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, MetaData, create_engine, inspect

from harness.postgres import PostgresServer, postgres_server_fixture
from voice_agent.audit import alerts, attempts, store, workers
from voice_agent.audit.store import create_tables
from voice_agent.console import sessions, throttle, users
from voice_agent.escalations import store as escalations
from voice_agent.ingress.telephony import spent_tokens

postgres_server = postgres_server_fixture()

SCHEMAS: tuple[MetaData, ...] = (
    store.metadata,
    workers.metadata,
    attempts.metadata,
    alerts.metadata,
    spent_tokens.metadata,
    escalations.metadata,
    users.metadata,
    sessions.metadata,
    throttle.metadata,
)


def boot(engine: Engine, start: threading.Barrier) -> None:
    """One worker's start: every table it needs, each created as the product creates it."""
    start.wait()
    with engine.begin() as conn:
        for schema in SCHEMAS:
            create_tables(conn, schema)


def test_workers_starting_together_on_a_new_database_all_get_their_tables(
    postgres_server: PostgresServer,
) -> None:
    for _ in range(3):  # a race shows only sometimes: three fresh databases, six workers on each
        url = postgres_server.create_database()
        engines = [create_engine(url) for _ in range(6)]
        start = threading.Barrier(len(engines))

        with ThreadPoolExecutor(len(engines)) as pool:
            for done in [pool.submit(boot, engine, start) for engine in engines]:
                done.result()  # any worker's failure fails the test
        wanted = {table for schema in SCHEMAS for table in schema.tables}
        assert wanted <= set(inspect(engines[0]).get_table_names())
        for engine in engines:
            engine.dispose()
