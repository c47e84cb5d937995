"""Retry policies that misbehave at run time (Decision 17), with real
`taskq worker` processes against a real Redis, where a policy returning inf
used to crash the worker (the Redis broker refuses a non-finite due time):
the task fails permanently with a record naming the policy and what it
returned, and the worker goes on."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from taskq_core import State, Task
from taskq_core.cli import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from worker_procs import WorkerPool, bound_app, lines, running  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, tmp_path, app="policy_app:tq", pythonpath=[HERE])
    with running(pool, monkeypatch) as started:
        yield started


@pytest.fixture
def app(workers: WorkerPool) -> Any:
    return bound_app("policy_app", workers.url)


def policy_error(app: Any, task: Task) -> str:
    stored = Task.from_id(app.tq, task.queue, State.ERROR, task.id, load_executions=10)
    (record,) = stored.executions
    return str(record["policy_error"])


@pytest.mark.parametrize("executor", ["fork", "sync"])
def test_inf_nan_negative_and_raising_policies_fail_their_tasks(
    workers: WorkerPool, app: Any, executor: str
) -> None:
    """Four failing tasks whose policies return inf, NaN, -5 and raise
    SystemExit, then a good task: the --burst worker exits 0, each failing
    task is in error with one record naming its policy and what it did, and
    the good task ran."""
    bad = {
        "returned inf": app.tq.delay(app.fail, args=["a"], retry_method=(app.returns, [math.inf])),
        "returned nan": app.tq.delay(app.fail, args=["b"], retry_method=(app.returns, [math.nan])),
        "returned -5": app.tq.delay(app.fail, args=["c"], retry_method=(app.returns, [-5])),
        "raised SystemExit: the policy exits": app.tq.delay(
            app.fail, args=["d"], retry_method=app.exits
        ),
    }
    app.tq.delay(app.record, args=["good"])
    workers.burst("--executor", executor)
    assert lines(workers.trace_dir / "good") == ["ran"]
    assert app.tq.get_queue_stats() == {"default": {"error": 4}}
    for shown, task in bad.items():
        message = policy_error(app, task)
        assert message.startswith("retry policy policy_app:"), message
        assert shown in message
        assert message.endswith("the task failed permanently")
    shown_task = bad["returned inf"]
    result = CliRunner().invoke(
        main, ["task", "default", "error", shown_task.id, "--url", workers.url], prog_name="taskq"
    )
    assert result.exit_code == 0, result.output
    assert f"policy error: {policy_error(app, shown_task)}" in result.output.splitlines()


def test_a_lost_task_whose_policy_returns_inf_is_failed_not_a_crash_loop(
    workers: WorkerPool, app: Any
) -> None:
    """A task left active by a worker that died, whose policy returns inf:
    the next worker's recovery pass fails it with the "worker lost" record
    naming the policy, instead of crashing on it (and again on restart)."""
    task = app.tq.delay(app.fail, args=["lost"], retry=True, retry_method=(app.returns, [math.inf]))
    (popped,) = app.tq.broker.pop("default", 1, "a-worker-that-died", 1.0)
    assert popped.id == task.id
    time.sleep(1.6)  # past ACTIVE_TASK_UPDATE_TIMEOUT
    app.tq.delay(app.record, args=["after"])
    workers.burst()
    assert lines(workers.trace_dir / "after") == ["ran"]
    stored = Task.from_id(app.tq, "default", State.ERROR, task.id, load_executions=10)
    (record,) = stored.executions
    assert record["exception_name"] == "taskq_core.exceptions:JobTimeoutException"
    assert "retry policy policy_app:returns(inf) returned inf" in record["policy_error"]
    assert app.tq.get_queue_stats() == {"default": {"error": 1}}
