"""Real workers (``taskq worker``, fork executor, Redis) reporting to a local
Rollbar: what reaches Rollbar for permanent failures, retries, hard timeouts,
killed children, lost workers and an unreachable Rollbar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_rollbar import FakeRollbar, unused_endpoint, wait_for

from taskq_rollbar import fingerprint
from worker_procs import WorkerPool, lines, rebind, running

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.slow, pytest.mark.redis]

TIMEOUT = "taskq_core.exceptions:JobTimeoutException"


class Workers(WorkerPool):
    """`taskq worker` processes for rollbar_app, with Rollbar settings."""

    def __init__(self, url: str, trace_dir: Path) -> None:
        super().__init__(url, trace_dir, app="rollbar_app:tq", pythonpath=[HERE])

    def start_reporting(
        self,
        *args: str,
        endpoint: str | None,
        settings: dict[str, Any] | None = None,
        token: str | None = "worker-token",
    ) -> subprocess.Popen[bytes]:
        """Start a worker; ``token`` and ``endpoint`` reach it as ROLLBAR_*
        variables, ``settings`` as its PLUGIN_CONFIG["rollbar"]."""
        env = {"TASKQ_TEST_ROLLBAR": json.dumps(settings or {})}
        if token is not None:
            env["ROLLBAR_ACCESS_TOKEN"] = token
        if endpoint is not None:
            env["ROLLBAR_ENDPOINT"] = endpoint
        return self.start(*args, env=env)

    def burst_reporting(
        self, endpoint: str | None, settings: dict[str, Any] | None = None, **options: Any
    ) -> float:
        """Run a burst worker to its end; return how long it took."""
        started = time.monotonic()
        proc = self.start_reporting("--burst", endpoint=endpoint, settings=settings, **options)
        assert proc.wait(timeout=60) == 0, self.log(len(self.procs) - 1)
        return time.monotonic() - started


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workers]:
    with running(Workers(redis_url, tmp_path), monkeypatch) as pool:
        yield pool


@pytest.fixture
def app(workers: Workers) -> Any:
    """rollbar_app, its TaskQ talking to this session's Redis (to enqueue)."""
    import rollbar_app

    rebind(rollbar_app.tq, workers.url)
    return rollbar_app


def test_one_item_per_permanent_failure_none_for_retries(
    workers: Workers, app: Any, fake_rollbar: FakeRollbar
) -> None:
    """Three tasks that fail for good and one that fails twice before failing
    for good: four items, one per task, all at error; nothing for the two
    retried runs; every item names the worker, its host and the task; no
    argument is included."""
    ids = {app.charge.delay(f"customer{i}", card="4111-0000-0000-1111").id for i in range(3)}
    ids.add(app.flaky.delay("flaky").id)
    workers.burst_reporting(fake_rollbar.endpoint)
    assert lines(workers.trace_dir / "flaky") == ["run"] * 3
    items = fake_rollbar.data
    assert len(items) == 4
    assert {item["custom"]["task_id"] for item in items} == ids
    assert {item["level"] for item in items} == {"error"}
    assert fake_rollbar.tokens == ["worker-token"] * 4
    by_func: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_func.setdefault(item["custom"]["func"], []).append(item)
    assert [i["custom"]["executions"] for i in by_func["rollbar_app:flaky"]] == [3]
    worker_ids = {item["custom"]["worker_id"] for item in items}
    assert len(worker_ids) == 1
    assert worker_ids.pop() in workers.log()
    for item in items:
        assert item["custom"]["host"]
        assert "PaymentDeclined" in item["body"]["message"]["body"]
        assert "4111-0000-0000-1111" not in json.dumps(item)
        assert "args" not in item["custom"]


def test_retries_reported_when_asked(workers: Workers, app: Any, fake_rollbar: FakeRollbar) -> None:
    """report_retries and include_args: warnings for the retried runs, an
    error for the last, each with the arguments."""
    app.flaky.delay("flaky")
    workers.burst_reporting(fake_rollbar.endpoint, {"report_retries": True, "include_args": True})
    items = fake_rollbar.data
    assert [(i["level"], i["custom"]["executions"]) for i in items] == [
        ("warning", 1),
        ("warning", 2),
        ("error", 3),
    ]
    assert all(i["custom"]["args"] == ["flaky"] for i in items)


def test_hard_timeout_and_killed_child_are_reported(
    workers: Workers, app: Any, fake_rollbar: FakeRollbar
) -> None:
    """A task that sleeps past hard_timeout=0.5 and one whose child ignores the
    alarm (killed by the parent) are each reported once as JobTimeoutException."""
    sleepy = app.sleep_past_timeout.delay(10)
    hung = app.hang_ignoring_alarm.delay()
    elapsed = workers.burst_reporting(fake_rollbar.endpoint)
    items = {item["custom"]["task_id"]: item for item in fake_rollbar.data}
    assert len(fake_rollbar.data) == 2
    assert set(items) == {sleepy.id, hung.id}
    for item in items.values():
        assert item["custom"]["exception_name"] == TIMEOUT
        assert item["title"].endswith("failed in default: JobTimeoutException")
        assert item["level"] == "error"
    assert elapsed < 20


def test_lost_worker_is_reported_by_the_worker_that_finds_it(
    workers: Workers, app: Any, fake_rollbar: FakeRollbar
) -> None:
    """A worker killed with SIGKILL mid-task: the next worker, finding the task's
    heartbeat expired, reports it once (JobTimeoutException, "worker lost")."""
    task = app.slow.delay("lost", 60)
    first = workers.start_reporting(endpoint=fake_rollbar.endpoint)
    wait_for(lambda: "started" in lines(workers.trace_dir / "lost"), 15, "task started")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    second = workers.start_reporting(endpoint=fake_rollbar.endpoint)
    (item,) = fake_rollbar.wait_for(1, timeout=20)
    assert item["custom"]["task_id"] == task.id
    assert item["custom"]["exception_name"] == TIMEOUT
    assert "worker lost" in item["body"]["message"]["body"]
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=10) == 0
    assert len(fake_rollbar.data) == 1


def test_subqueues_of_one_root_share_a_fingerprint(
    workers: Workers, app: Any, fake_rollbar: FakeRollbar
) -> None:
    """email.CUSTOMER1 and email.CUSTOMER2 failures get one fingerprint and
    title; a failure in another root gets another."""
    app.tq.delay(app.charge, args=["a"], queue="email.CUSTOMER1")
    app.tq.delay(app.charge, args=["b"], queue="email.CUSTOMER2")
    app.tq.delay(app.charge, args=["c"], queue="sms")
    workers.burst_reporting(fake_rollbar.endpoint)
    by_queue = {item["custom"]["queue"]: item for item in fake_rollbar.data}
    one, two, other = (by_queue[q] for q in ("email.CUSTOMER1", "email.CUSTOMER2", "sms"))
    expected = fingerprint("email", "rollbar_app:charge", "rollbar_app:PaymentDeclined")
    assert one["fingerprint"] == two["fingerprint"] == expected
    assert other["fingerprint"] != expected
    assert one["title"] == two["title"]


def test_worker_keeps_processing_while_rollbar_is_down(workers: Workers, app: Any) -> None:
    """Nobody listens at the endpoint: the worker runs every task, stores every
    failure, and exits 0 promptly."""
    for i in range(4):
        app.charge.delay(f"c{i}")
        app.record.delay("ok", value=str(i))
    elapsed = workers.burst_reporting(unused_endpoint())
    assert sorted(lines(workers.trace_dir / "ok")) == ["0", "1", "2", "3"]
    assert app.tq.get_queue_stats() == {"default": {"error": 4}}
    assert elapsed < 15


def test_worker_is_not_held_up_by_a_slow_rollbar(workers: Workers, app: Any) -> None:
    """A Rollbar that takes 5 s to answer (requests time out after 2 s): three
    failures and three other tasks run back to back, without waiting for it,
    and the stopping worker waits at most flush_timeout before it exits."""
    server = FakeRollbar(delay=5.0)
    try:
        app.stamp.delay("span")
        for i in range(3):
            app.charge.delay(f"c{i}")
            app.record.delay("ok", value=str(i))
        app.stamp.delay("span")
        elapsed = workers.burst_reporting(server.endpoint, {"timeout": 2.0, "flush_timeout": 0.5})
        assert sorted(lines(workers.trace_dir / "ok")) == ["0", "1", "2"]
        first, last = (float(x) for x in lines(workers.trace_dir / "span"))
        assert last - first < 3.0  # waiting for Rollbar would take 3 x 2 s
        assert "rollbar reports not sent before exit" in workers.log()
        assert server.data  # the first report reached it
        assert elapsed < 10
    finally:
        server.stop()


def test_inert_without_token_says_so_once(
    workers: Workers, app: Any, fake_rollbar: FakeRollbar
) -> None:
    """No token: the worker says once that reporting is off, sends nothing and
    processes its tasks."""
    app.charge.delay("a")
    app.charge.delay("b")
    workers.burst_reporting(fake_rollbar.endpoint, token=None)
    output = workers.log()
    assert output.count('"rollbar reporting off"') == 1
    assert "ROLLBAR_ACCESS_TOKEN" in output
    assert app.tq.get_queue_stats() == {"default": {"error": 2}}
    assert fake_rollbar.data == []
