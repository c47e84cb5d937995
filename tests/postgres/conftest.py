"""Fixtures of the PostgreSQL broker tests, on the private server of the
root ``postgres_url`` fixture: a database emptied of tasks for each test
(``clean_url``), a broker on it (``pg_broker``), and a database of its own
with no taskq tables at all (``fresh_url``) for the tests of the schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pg_helpers import empty_tables

from taskq_postgres import PostgresBroker


@pytest.fixture
def clean_url(postgres_url: str) -> str:
    """The test database with every taskq table emptied (the tables are
    created by the first broker that uses the database)."""
    empty_tables(postgres_url)
    return postgres_url


@pytest.fixture
def pg_broker(clean_url: str) -> Iterator[PostgresBroker]:
    """A broker on the emptied test database."""
    broker = PostgresBroker(clean_url)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def fresh_url(postgres_url: str) -> Iterator[str]:
    """A new database of its own, without taskq's tables; dropped afterwards."""
    base, _ = postgres_url.rsplit("/", 1)
    name = f"taskq_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
