"""``tq.delay(..., connection=conn)``: the task is written in the caller's own
transaction, uncommitted; a rollback leaves no task (and wakes no worker), a
commit makes it runnable and notifies at commit. Also the connections it
refuses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from taskq_core import Task, TaskQ
from taskq_core.states import State
from taskq_postgres import PostgresBroker

pytestmark = pytest.mark.postgres

Q = "default"
#: what the test tasks did, in this process
DONE: list[str] = []


def record(label: str) -> None:
    """A task function."""
    DONE.append(label)


@pytest.fixture
def tq(clean_url: str) -> Iterator[TaskQ]:
    app = TaskQ(clean_url, config={"SELECT_TIMEOUT": 0.1, "STATS_INTERVAL": 0})
    app.broker.check()  # listening from now on
    yield app
    app.broker.close()


@pytest.fixture
def conn(clean_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An application connection (psycopg's default: not autocommit)."""
    with psycopg.connect(clean_url) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)")
        connection.execute("TRUNCATE orders")
        connection.commit()
        yield connection


def _sizes(tq: TaskQ) -> dict[str, int]:
    return tq.get_queue_sizes(Q)


def test_a_rolled_back_transaction_leaves_no_task(
    tq: TaskQ, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """The order and its task are written together; the rollback undoes both:
    no task, no data, and no notification ever reaches a worker."""
    tq.broker.wait_for_activity(0.01)
    conn.execute("INSERT INTO orders VALUES (1)")
    task = tq.delay(record, args=["rolled back"], connection=conn)
    assert task.state is State.QUEUED
    assert _sizes(tq)["queued"] == 0  # not visible to others before a commit
    conn.rollback()
    assert _sizes(tq) == {"queued": 0, "scheduled": 0, "active": 0}
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    conn.commit()
    with pytest.raises(Exception, match=r"not queued|missing"):
        Task.from_id(tq, Q, State.QUEUED, task.id)
    assert tq.broker.wait_for_activity(0.3) == set()


def test_a_committed_transaction_makes_the_task_run(
    tq: TaskQ, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """After the commit the task is queued, the notification arrives (not
    before the commit), and a worker runs it."""
    tq.broker.wait_for_activity(0.01)
    conn.execute("INSERT INTO orders VALUES (2)")
    tq.delay(record, args=["committed"], connection=conn)
    assert tq.broker.wait_for_activity(0.3) == set()  # NOTIFY waits for the commit
    conn.commit()
    assert tq.broker.wait_for_activity(5) == {Q}
    assert _sizes(tq)["queued"] == 1
    DONE.clear()
    tq.run_worker(burst=True, executor="sync")
    assert DONE == ["committed"]


def test_the_forms_of_transaction(tq: TaskQ, clean_url: str) -> None:
    """Inside an explicit ``conn.transaction()`` block the task commits with
    the block; on an autocommit connection outside any block the enqueue is
    committed at once (as every statement there is); ``Task.delay`` takes
    ``connection=`` too; a connection with another row factory works."""
    with psycopg.connect(clean_url, autocommit=True, row_factory=dict_row) as conn:
        with conn.transaction():
            Task(tq, record, args=["in block"]).delay(connection=conn)
            assert _sizes(tq)["queued"] == 0
        assert _sizes(tq)["queued"] == 1
        tq.delay(record, args=["autocommit"], connection=conn)
        assert _sizes(tq)["queued"] == 2
        with pytest.raises(RuntimeError), conn.transaction():
            tq.delay(record, args=["undone"], connection=conn)
            raise RuntimeError("the block fails")
        assert _sizes(tq)["queued"] == 2


def test_a_scheduled_and_a_unique_task_in_a_transaction(
    tq: TaskQ, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """``when=`` schedules inside the transaction; a unique task that is
    already pending keeps its place (created=False) inside one too."""
    import datetime as dt

    scheduled = tq.delay(record, args=["later"], when=dt.timedelta(hours=1), connection=conn)
    first = tq.delay(record, args=["u"], unique=True, connection=conn)
    conn.commit()
    second = tq.delay(record, args=["u"], unique=True, connection=conn)
    conn.commit()
    assert scheduled.state is State.SCHEDULED
    assert first.id == second.id
    assert _sizes(tq) == {"queued": 1, "scheduled": 1, "active": 0}


def test_the_task_lock_is_held_until_the_commit(tq: TaskQ, clean_url: str) -> None:
    """While a transaction holds a new unique task, another enqueue of it
    waits for that transaction instead of making a second copy; after the
    commit it finds the pending copy."""
    results: list[bool] = []
    with psycopg.connect(clean_url) as conn:
        tq.delay(record, args=["one"], unique=True, connection=conn)
        other = TaskQ(clean_url)

        def enqueue_again() -> None:
            task = Task(other, record, args=["one"], unique=True)
            task.delay()
            results.append(task.state is State.QUEUED)

        thread = threading.Thread(target=enqueue_again)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waiting for our transaction
        conn.commit()
        thread.join(10)
        other.broker.close()
    assert results == [True]
    assert _sizes(tq)["queued"] == 1


def test_connections_it_cannot_use_are_refused(tq: TaskQ, clean_url: str) -> None:
    """Something that is not a psycopg connection: TypeError naming the
    broker; a closed connection, one whose transaction failed, or one to
    another database: ValueError saying why. Nothing is written."""
    with pytest.raises(TypeError, match=r"postgres broker .* psycopg\.Connection"):
        tq.delay(record, args=["x"], connection=object())
    closed = psycopg.connect(clean_url)
    closed.close()
    with pytest.raises(ValueError, match="closed connection"):
        tq.delay(record, args=["x"], connection=closed)
    with psycopg.connect(clean_url) as failed:
        with pytest.raises(psycopg.errors.UndefinedTable):
            failed.execute("SELECT * FROM no_such_table")
        with pytest.raises(ValueError, match="transaction failed"):
            tq.delay(record, args=["x"], connection=failed)
    base, _ = clean_url.rsplit("/", 1)
    with (
        psycopg.connect(f"{base}/postgres") as elsewhere,
        pytest.raises(ValueError, match="would never run"),
    ):
        tq.delay(record, args=["x"], connection=elsewhere)
    assert _sizes(tq) == {"queued": 0, "scheduled": 0, "active": 0}


def test_the_notification_is_sent_once_per_commit(
    tq: TaskQ, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Many tasks in one transaction wake the workers once per queue."""
    tq.broker.wait_for_activity(0.01)
    for number in range(20):
        tq.delay(record, args=[f"n{number}"], connection=conn)
    tq.delay(record, args=["other"], queue="other", connection=conn)
    conn.commit()
    deadline = time.monotonic() + 5
    seen: set[str] = set()
    while seen != {Q, "other"} and time.monotonic() < deadline:
        seen |= tq.broker.wait_for_activity(1)
    assert seen == {Q, "other"}
    assert tq.broker.wait_for_activity(0.2) == set()
    assert isinstance(tq.broker, PostgresBroker)
