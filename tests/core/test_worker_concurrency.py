"""Many tasks at once in one worker (``--concurrency N``), on the memory
broker: threads and asyncio executors in this process."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import concurrent_tasks as ct
import pytest

from taskq_core import Task, TaskQ
from taskq_core.broker import FinishRequest
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.exceptions import JobTimeoutException
from taskq_core.execution import run_group
from taskq_core.executors import Executor, Finished, Run
from taskq_core.executors.base import ExecutorHost
from taskq_core.runners import run_to_end
from taskq_core.states import State


@pytest.fixture
def app() -> Iterator[TaskQ]:
    tq = TaskQ(broker=MemoryBroker(), config={"STATS_INTERVAL": 0})
    ct.APP["tq"] = tq
    yield tq
    ct.APP.clear()


def _error_names(app: TaskQ) -> list[str]:
    _, tasks = Task.tasks_from_queue(app, "default", State.ERROR, load_executions=1)
    return [str(t.executions[-1].get("exception_name")) for t in tasks]


@pytest.mark.parametrize("executor", ["threads", "sync"])
def test_threads_run_n_tasks_at_once_each_with_its_own_current_task(
    app: TaskQ, executor: str
) -> None:
    """With ``concurrency=4``, four tasks run at the same time (they meet at a
    barrier of four), and each sees itself as ``current_task``."""
    ct.reset(4)
    tasks = [app.delay(ct.meet, args=[f"t{i}"]) for i in range(4)]
    app.run_worker(executor=executor, concurrency=4, burst=True)
    assert ct.highest() == 4
    assert sorted((label, tid) for label, tid, _ in ct.seen) == sorted(
        (f"t{i}", t.id) for i, t in enumerate(tasks)
    )
    assert app.get_queue_stats() == {}


def test_threads_with_one_slot_run_one_at_a_time(app: TaskQ) -> None:
    """``concurrency=1`` (the default) never runs two tasks at once."""
    ct.reset(1)
    for i in range(3):
        app.delay(ct.meet, args=[f"t{i}"])
    app.run_worker(executor="threads", burst=True)
    assert ct.highest() == 1
    assert len(ct.seen) == 3


def test_a_stuck_thread_fails_its_task_and_the_others_go_on(app: TaskQ) -> None:
    """A task past its hard timeout fails with JobTimeoutException (its thread
    is interrupted) while the other slots keep running tasks."""
    ct.reset(1)
    app.delay(ct.spin_for, args=[30], hard_timeout=0.3)
    quick = [app.delay(ct.record_value, args=[i]) for i in range(5)]
    started = time.time()
    app.run_worker(executor="threads", concurrency=2, burst=True)
    assert time.time() - started < 10
    assert _error_names(app) == ["taskq_core.exceptions:JobTimeoutException"]
    assert {tid for _, tid, _ in ct.seen} >= {t.id for t in quick}


def test_tasks_that_end_at_their_deadline_never_cost_a_slot(app: TaskQ) -> None:
    """Tasks that end just as their hard timeout passes race the interrupt
    with their own end; each ends done or failed with JobTimeoutException,
    the interrupt never reaches a slot's next task nor ends its thread, and
    the worker (two slots) runs every task."""
    app.configure(
        config={"STATS_INTERVAL": 0, "ACTIVE_TASK_UPDATE_TIMEOUT": 0.5, "SELECT_TIMEOUT": 0.1}
    )
    ct.reset(1)
    racing = [app.delay(ct.spin_for, args=[0.03], hard_timeout=0.03) for _ in range(60)]
    after = [app.delay(ct.record_value, args=[i]) for i in range(4)]
    app.run_worker(executor="threads", concurrency=2, burst=True)
    sizes = app.get_queue_sizes("default")
    assert (sizes["queued"], sizes["active"]) == (0, 0)
    names = _error_names(app)
    assert set(names) <= {"taskq_core.exceptions:JobTimeoutException"}
    assert len(names) <= len(racing)
    assert {tid for _, tid, _ in ct.seen} == {t.id for t in after}  # each ran, none failed


def test_one_slot_goes_on_after_its_task_is_interrupted(app: TaskQ) -> None:
    """With one slot, a task past its hard timeout fails and its thread,
    interrupted, returns: the slot is free again and the worker runs the
    other tasks (it does not take the slot for lost)."""
    ct.reset(1)
    app.delay(ct.spin_for, args=[30], hard_timeout=0.3)
    quick = [app.delay(ct.record_value, args=[i]) for i in range(3)]
    app.run_worker(executor="threads", concurrency=1, burst=True)
    assert _error_names(app) == ["taskq_core.exceptions:JobTimeoutException"]
    assert {tid for _, tid, _ in ct.seen} == {t.id for t in quick}
    assert app.get_queue_stats() == {"default": {"error": 1}}


@pytest.mark.parametrize("executor", ["threads", "asyncio"])
def test_all_slots_abandoned_exits_the_worker(app: TaskQ, executor: str) -> None:
    """When every slot holds a thread stuck past its hard timeout where an
    interrupt cannot reach it (threads; asyncio's threads for sync tasks),
    and still there ACTIVE_TASK_UPDATE_TIMEOUT later, the worker records the
    timeouts and exits (for its supervisor to start a fresh one); the other
    tasks stay queued."""
    app.configure(
        config={
            "STATS_INTERVAL": 0,
            "ACTIVE_TASK_UPDATE_TIMER": 0.1,
            "ACTIVE_TASK_UPDATE_TIMEOUT": 0.5,
            "SELECT_TIMEOUT": 0.1,
        }
    )
    for _ in range(2):
        app.delay(ct.sleep_for, args=[5], hard_timeout=0.2)
    waiting = app.delay(ct.record_value, args=["later"])
    started = time.time()
    app.run_worker(executor=executor, concurrency=2, burst=True)
    assert time.time() - started < 4  # it did not wait for the sleeps
    assert _error_names(app) == ["taskq_core.exceptions:JobTimeoutException"] * 2
    assert app.get_queue_sizes("default")["queued"] == 1
    assert Task.from_id(app, "default", State.QUEUED, waiting.id).id == waiting.id


def test_asyncio_runs_many_coroutines_at_once(app: TaskQ) -> None:
    """``async def`` tasks under the asyncio executor run up to N at once on
    one event loop; each sees itself as ``current_task``."""
    ct.reset(1)
    tasks = [app.delay(ct.ameet, args=[f"a{i}", 20]) for i in range(20)]
    started = time.time()
    app.run_worker(executor="asyncio", concurrency=20, burst=True)
    assert ct.highest() == 20
    assert time.time() - started < 5
    assert sorted(tid for _, tid, _ in ct.seen) == sorted(t.id for t in tasks)
    assert app.get_queue_stats() == {}


def test_asyncio_hard_timeout_cancels_the_coroutine(app: TaskQ) -> None:
    """A coroutine past its hard timeout is cancelled and fails with
    JobTimeoutException; a sync task in the same worker runs too."""
    ct.reset(1)
    app.delay(ct.asleep_for, args=[30], hard_timeout=0.3)
    sync = app.delay(ct.record_value, args=["sync"])
    started = time.time()
    app.run_worker(executor="asyncio", concurrency=4, burst=True)
    assert time.time() - started < 10
    assert _error_names(app) == ["taskq_core.exceptions:JobTimeoutException"]
    assert [tid for _, tid, _ in ct.seen] == [sync.id]


def test_asyncio_hard_timeout_interrupts_a_sync_task(app: TaskQ) -> None:
    """A sync task given to the asyncio executor runs in a thread beside the
    loop: past its hard timeout it fails with JobTimeoutException and its
    thread is interrupted (as with threads), so the one slot runs the next
    tasks."""
    ct.reset(1)
    app.delay(ct.spin_for, args=[5], hard_timeout=0.3)
    quick = [app.delay(ct.arecord, args=[str(i)]) for i in range(2)]
    app.run_worker(executor="asyncio", burst=True)
    assert _error_names(app) == ["taskq_core.exceptions:JobTimeoutException"]
    assert {tid for _, tid, _ in ct.seen} == {t.id for t in quick}
    assert app.get_queue_stats() == {"default": {"error": 1}}


@pytest.mark.parametrize("executor", ["sync", "threads"])
def test_async_def_tasks_run_under_every_executor(app: TaskQ, executor: str) -> None:
    """An ``async def`` task runs (on an event loop) under executors that are
    not asyncio too, with its own ``current_task``."""
    ct.reset(1)
    task = app.delay(ct.arecord, args=["x"])
    app.run_worker(executor=executor, burst=True)
    assert ct.seen == [("x", task.id, 1)]


def test_async_def_task_past_its_hard_timeout_is_cancelled_in_a_thread(app: TaskQ) -> None:
    """Under the threads executor an ``async def`` task waits on an event loop
    of its own, where an interrupt does not reach it: the loop cancels it at
    its hard timeout, so its thread returns and the one slot runs the next
    tasks."""
    ct.reset(1)
    stuck = app.delay(ct.asleep_noting_cancel, args=[5], hard_timeout=0.3)
    quick = [app.delay(ct.record_value, args=[i]) for i in range(2)]
    app.run_worker(executor="threads", burst=True)
    assert _error_names(app) == ["taskq_core.exceptions:JobTimeoutException"]
    assert ct.seen[0] == ("cancelled while waiting", stuck.id, 1)
    assert {tid for _, tid, _ in ct.seen[1:]} == {t.id for t in quick}


def test_run_to_end_cancels_an_awaitable_at_its_timeout() -> None:
    """``run_to_end(coroutine, timeout)`` raises JobTimeoutException once the
    timeout passes; a TimeoutError the coroutine raises itself stays one."""
    with pytest.raises(JobTimeoutException, match=r"hard timeout of 0\.1 s"):
        run_to_end(ct.asleep_for(5), 0.1)
    with pytest.raises(TimeoutError, match="did not answer") as info:
        run_to_end(ct.araise_timeout(), 5)
    assert not isinstance(info.value, JobTimeoutException)
    assert run_to_end(ct.asleep_for(0), 5) == "slept"


def test_eager_async_def_task_returns_its_value() -> None:
    """With ALWAYS_EAGER an ``async def`` task runs inline to its end."""
    tq = TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})
    assert Task(tq, ct.asleep_for, args=[0]).execute() == "slept"


def test_concurrency_must_be_a_positive_whole_number(app: TaskQ) -> None:
    """A bad ``concurrency`` is a clear error before anything runs."""
    with pytest.raises(ValueError, match="concurrency must be a whole number >= 1"):
        app.run_worker(concurrency=0, burst=True)
    with pytest.raises(Exception, match="CONCURRENCY"):
        TaskQ(broker=MemoryBroker(), config={"CONCURRENCY": 0})


class _Bunching(Executor):
    """Starts runs without running them; ``wait`` runs every started one and
    reports them all at once, as a busy ``threads`` or ``asyncio`` worker often
    finds several runs over when it wakes up."""

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._started: list[Run] = []

    def free_slots(self) -> int:
        return self.concurrency - len(self._started)

    def running(self) -> list[Run]:
        return list(self._started)

    def start(self, run: Run) -> None:
        self._started.append(run)

    def wait(self, timeout: float) -> list[Finished]:
        runs, self._started = self._started, []
        return [(run, run_group(self.tq, run.tasks, store_tracebacks=False)) for run in runs]


class _CountingBroker(MemoryBroker):
    """The memory broker, noting the size of every finishing call."""

    def __init__(self) -> None:
        super().__init__()
        self.finish_calls: list[int] = []

    def finish_many(
        self, queue: str, worker_id: str, requests: Sequence[FinishRequest]
    ) -> list[bool]:
        self.finish_calls.append(len(requests))
        return super().finish_many(queue, worker_id, requests)


def test_runs_that_end_together_are_stored_in_one_broker_call() -> None:
    """Runs reported over in the same wake-up cost one finishing call for
    all of them, not one each (each task keeps its own outcome)."""
    broker = _CountingBroker()
    tq = TaskQ(broker=broker, config={"STATS_INTERVAL": 0})
    ct.APP["tq"] = tq
    try:
        ct.reset(1)
        ok = [tq.delay(ct.record_value, args=[i]) for i in range(8)]
        bad = tq.delay(ct.fail, args=["x"], retry=False)
        tq.run_worker(executor=_Bunching, concurrency=3, burst=True)
    finally:
        ct.APP.clear()
    assert broker.finish_calls == [3, 3, 3]
    assert sorted(label for label, _, _ in ct.seen) == sorted(str((i,)) for i in range(8))
    _, errored = Task.tasks_from_queue(tq, "default", State.ERROR)
    assert [t.id for t in errored] == [bad.id]
    assert {t.id for t in ok}.isdisjoint(t.id for t in errored)
