"""One script ends a worker's runs and pops its next tasks (``finish_pop.lua``):
whatever the runs and the queue hold, ``finish_many_then_pop`` leaves the same
tasks, records and answers as ``finish`` for each run followed by ``pop``.

Two brokers with different prefixes share the private server: the same random
history is played on both, then one ends the runs and pops in one call and the
other one step at a time. The script reads every run's owner and data and the
data of the tasks at the head of the queue before any run ends; the histories
include what makes that early read stale (a run that queues a task again, a
run of an id that is also queued, an id given twice, another worker's run).
"""

from __future__ import annotations

from typing import Any

import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from taskq_core.broker import EnqueueRequest, FinishRequest, StoredTask
from taskq_core.states import State
from taskq_redis import RedisBroker

Q = "fp"
IDS = ["a", "b", "c", "d"]
WORKERS = ["w1", "w2"]
OUTCOMES = ["done", "done", "retry", "error", "requeue"]


def _snapshot(broker: RedisBroker) -> dict[str, Any]:
    """What a broker holds, without the times (the brokers run at different
    moments): per state the ids in order with payload, priority and records.
    Runs ended by one script share the server's time, so tasks failed together
    tie in error: that state is compared in id order."""

    def view(task: StoredTask) -> tuple[Any, ...]:
        records = [r.get("n") for r in task.executions]
        return (task.id, task.payload, task.priority, task.executions_count, records, task.missing)

    held = {
        state.value: [view(t) for t in broker.list_tasks(Q, state, limit=100, load_executions=9)[1]]
        for state in State
    }
    held[State.ERROR.value].sort()
    return {"states": held, "queues": {s.value: Q in broker.queues(s) for s in State}}


def _popped(task: StoredTask) -> tuple[Any, ...]:
    return (task.id, task.payload, task.priority, task.executions_count, task.meta_error)


def _enqueue(draw: st.DrawFn, task_id: str) -> tuple[Any, ...]:
    unique = draw(st.sampled_from([True, True, False]))
    priority = draw(st.sampled_from([0, 0, 5]))
    when = draw(st.sampled_from([None, None, None, -5.0, 60.0]))
    return ("enqueue", task_id, unique, priority, when)


def _history(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Every id enqueued, some popped (mostly by w1, the worker that ends runs
    below), some enqueued again (twins of running tasks), maybe one failed."""
    steps = [_enqueue(draw, task_id) for task_id in draw(st.permutations(IDS))]
    steps.append(("pop", draw(st.integers(1, 3)), "w1"))
    if draw(st.booleans()):
        steps.append(("pop", 1, "w2"))
    again = draw(st.lists(st.sampled_from(IDS), max_size=3))
    steps += [_enqueue(draw, task_id) for task_id in again]
    if draw(st.integers(0, 3)) == 0:
        steps.append(("fail", draw(st.sampled_from(IDS))))
    if draw(st.booleans()):
        steps.append(("pop", 1, "w1"))
    return steps


def _runs(draw: st.DrawFn, held: list[str]) -> list[tuple[Any, ...]]:
    """Runs to end: mostly of tasks the worker holds, sometimes of any id
    (another worker's, not active, or one given twice)."""
    pick = st.sampled_from(held) if held else st.sampled_from(IDS)
    return draw(
        st.lists(
            st.tuples(
                st.one_of(pick, pick, pick, st.sampled_from(IDS)),
                st.sampled_from(OUTCOMES),
                st.sampled_from([None, -1.0, 30.0]),
                st.booleans(),
                st.sampled_from([None, 1]),
            ),
            max_size=5,
        )
    )


def _play(broker: RedisBroker, history: list[tuple[Any, ...]], counter: list[int]) -> None:
    for step in history:
        if step[0] == "enqueue":
            _, task_id, unique, priority, when = step
            counter[0] += 1
            payload = f"{task_id}-{counter[0]}".encode()
            at = None if when is None else broker.time() + when
            broker.enqueue(EnqueueRequest(task_id, Q, payload, at, priority, unique))
        elif step[0] == "pop":
            broker.pop(Q, step[1], step[2], 10.0)
        else:
            # end its run as an error, whoever owns it
            for worker in WORKERS:
                counter[0] += 1
                broker.finish(Q, step[1], worker, "error", execution={"n": counter[0]})


def _requests(broker: RedisBroker, runs: list[tuple[Any, ...]]) -> list[FinishRequest]:
    now = broker.time()
    requests = []
    for number, (task_id, outcome, when, with_record, cap) in enumerate(runs):
        offset = -1.0 if outcome == "retry" and when is None else when
        requests.append(
            FinishRequest(
                task_id,
                outcome,
                None if offset is None else now + offset,
                {"n": 1000 + number} if with_record else None,
                cap,
            )
        )
    return requests


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_finish_many_then_pop_equals_finish_each_then_pop(
    redis_url: str, redis_client: redis.Redis, data: st.DataObject
) -> None:
    history = data.draw(st.composite(_history)(), label="history")
    redis_client.flushall()
    one = RedisBroker(url=redis_url, prefix="one")
    steps = RedisBroker(url=redis_url, prefix="steps")
    try:
        for broker in (one, steps):
            _play(broker, history, [0])
        assert _snapshot(one) == _snapshot(steps)
        held = [t.id for t in one.list_tasks(Q, State.ACTIVE)[1]]
        runs = data.draw(st.composite(_runs)(held), label="runs")
        limit = data.draw(st.integers(0, 4), label="limit")
        queued = {t.id for t in one.list_tasks(Q, State.QUEUED)[1]}
        for task_id, outcome, *_ in runs:
            if task_id in held:
                event(f"run of an active task: {outcome}")
                if task_id in queued:
                    event("run of an active task that is also queued")
        ended, popped = one.finish_many_then_pop(Q, "w1", _requests(one, runs), limit, 10.0)
        expected = [
            steps.finish(
                Q,
                r.task_id,
                "w1",
                r.outcome,
                when=r.when,
                execution=r.execution,
                max_stored_executions=r.max_stored_executions,
            )
            for r in _requests(steps, runs)
        ]
        expected_popped = steps.pop(Q, limit, "w1", 10.0) if limit > 0 else []
        assert ended == expected
        assert [_popped(t) for t in popped] == [_popped(t) for t in expected_popped]
        assert _snapshot(one) == _snapshot(steps)
        assert one.take_dropped() == steps.take_dropped()
    finally:
        one.close()
        steps.close()
