"""Round trips to Redis per operation: the efficiency budget of the Redis broker.

Counted at the socket: one ``send_packed_command`` is one request (a pipeline
sends all its commands at once)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.connection

from taskq_core import Task, TaskQ

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worker_app


class Counter:
    def __init__(self) -> None:
        self.sends = 0


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter()
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        counter.sends += 1
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return counter


@pytest.fixture
def tq(redis_url: str, redis_client: Any) -> Iterator[TaskQ]:
    app = TaskQ(redis_url, config={"STATS_INTERVAL": 0})
    app.get_queue_sizes("warm-up")  # connect and load scripts outside the count
    yield app
    app.broker.close()


def test_enqueue_is_one_round_trip(tq: TaskQ, sends: Counter) -> None:
    """`delay` costs one request, whatever the options (once the script is
    loaded: the first use of a script may add a SCRIPT LOAD)."""
    tq.delay(worker_app.record, args=["warm-up"])
    before = sends.sends
    tq.delay(worker_app.record, args=["x"])
    tq.delay(worker_app.record, args=["y"], unique=True, max_queue_size=10, priority=5)
    assert sends.sends - before == 2


def test_bulk_enqueue_is_one_round_trip(tq: TaskQ, sends: Counter) -> None:
    """`delay_many` of 200 tasks costs one request."""
    tasks = [Task(tq, worker_app.record, args=[str(i)]) for i in range(200)]
    assert len(tq.delay_many(tasks)) == 200
    assert sends.sends == 1
    assert tq.get_queue_sizes("default")["queued"] == 200


def _worker_requests(tq: TaskQ, sends: Counter, n: int) -> int:
    for i in range(n):
        tq.delay(worker_app.record, args=["rt", str(i)], queue="rt")
    before = sends.sends
    tq.run_worker(queues=["rt"], executor="sync", burst=True)
    assert tq.get_queue_stats() == {}
    return sends.sends - before


def test_worker_spends_at_most_three_round_trips_per_plain_task(
    tq: TaskQ, sends: Counter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain successful task costs the worker at most 3 requests (the budget);
    a worker serving one queue sends a task's outcome together with the next
    pop, so it needs about one. Measured as the slope between a short and a long
    burst run, so the fixed start and stop cost cancels out."""
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    short = _worker_requests(tq, sends, 10)
    long = _worker_requests(tq, sends, 60)
    per_task = (long - short) / 50
    assert per_task <= 1.2, (short, long)


def _commands(client: Any) -> int:
    """Commands the server ran (``INFO commandstats``), INFO itself left out."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def _worker_commands(tq: TaskQ, client: Any, n: int) -> tuple[int, int]:
    """Redis commands of enqueueing ``n`` plain tasks, and of a burst worker
    running them (every command a script runs counts, EVALSHA too)."""
    before = _commands(client)
    for i in range(n):
        tq.delay(worker_app.record, args=["cmd", str(i)], queue="cmd")
    enqueued = _commands(client)
    tq.run_worker(queues=["cmd"], executor="sync", burst=True)
    assert tq.get_queue_stats() == {}
    return enqueued - before, _commands(client) - enqueued


def test_worker_spends_at_most_twelve_redis_commands_per_plain_task(
    tq: TaskQ, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command budget of a plain successful task: at most 12 Redis
    commands for the worker (its outcome and the next pop: 9) and 9 for
    ``delay``. Measured as the slope between a short and a long run."""
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    short = _worker_commands(tq, redis_client, 10)
    long = _worker_commands(tq, redis_client, 60)
    enqueue, work = ((b - a) / 50 for a, b in zip(short, long, strict=True))
    assert enqueue <= 9, (short, long)
    assert work <= 12, (short, long)


def test_batch_queue_amortizes_round_trips(
    redis_url: str,
    redis_client: Any,
    sends: Counter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``BATCH_QUEUES`` a worker pops up to N tasks in one request and stores
    their outcomes in one more: well under one request per task."""
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    tq = TaskQ(redis_url, config={"STATS_INTERVAL": 0, "BATCH_QUEUES": {"rt": 10}})
    tq.get_queue_sizes("warm-up")
    try:
        short = _worker_requests(tq, sends, 10)
        long = _worker_requests(tq, sends, 110)
    finally:
        tq.broker.close()
    per_task = (long - short) / 100
    assert per_task <= 0.5, (short, long)
