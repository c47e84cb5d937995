"""taskq's PostgreSQL broker (``postgresql://``, ``postgres://``), on psycopg 3.

Tasks live in your database: workers pop them with ``SELECT ... FOR UPDATE
SKIP LOCKED``, wake up on ``LISTEN/NOTIFY``, and ``tq.delay(...,
connection=conn)`` enqueues inside your own transaction::

    tq = TaskQ("postgresql://app@db.example/app")
    with psycopg.connect("postgresql://app@db.example/app") as conn:
        conn.execute("INSERT INTO orders ...")
        tq.delay(send_receipt, args=[order_id], connection=conn)
    # committed: the task runs; rolled back: there is no task

It is built like core's SQLite broker, one module per section: ``_store``
(connections, transactions, the schema check), ``_rows`` (the row helpers),
``_moves`` (enqueue, pop, heartbeat, finish), ``_recovery`` (lost runs, due
tasks), ``_ending`` (the end of a run both share), ``_inspection``
(inspection and repair), ``_coordination`` (locks, queue slots, rate limits,
notifications) and ``broker``, where :class:`PostgresBroker` composes them;
``_schema`` holds the tables and their migrations (:func:`schema_statements`
is the SQL ``taskq db upgrade`` runs), ``_connection`` the pool, ``_listener``
the ``LISTEN`` connection, ``_keys`` the advisory lock keys and ``_codec`` the
checks of what goes in and out.
"""

from __future__ import annotations

from taskq_postgres._schema import CHANNEL, schema_statements
from taskq_postgres._schema import CURRENT_VERSION as SCHEMA_VERSION
from taskq_postgres.broker import PostgresBroker

__all__ = ["CHANNEL", "SCHEMA_VERSION", "PostgresBroker", "schema_statements"]
