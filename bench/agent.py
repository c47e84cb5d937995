"""One side of the benchmark, run in that system's own environment.

``python agent.py SYSTEM ACTION URL [options]`` with SYSTEM one of
:data:`SYSTEMS` (``taskq``, ``tasktiger``, ``dramatiq``, ``huey``, ``saq``)
and ACTION:

- ``versions``: the versions of the system and of redis-py;
- ``probe --modes fork:1,threads:50,...`` (taskq): which executor and
  concurrency this build of taskq accepts, found by running a worker with
  each on an empty queue;
- ``enqueue --tasks N``: N tasks, one call each (the seconds it took);
- ``enqueue_bulk --tasks N`` (taskq): ``delay_many``, 500 per call;
- ``work --mode M --concurrency C``: one worker, in this process, on the
  ``bench`` queue; with ``--burst`` (taskq, TaskTiger) until the queue is
  empty, otherwise until SIGTERM (the harness sends it once every task is
  recorded). For taskq, the round trips to Redis are counted: every socket
  send of redis-py (one per command, one per pipeline), in this process and in
  the children it forks;
- ``latency --record FILE --tasks K``: with a worker already running and
  idle, K tasks one at a time, each enqueued once the one before is recorded.

``--workload noop|sleep`` picks the task (:mod:`bench_tasks`). The result is
the last line of stdout, ``BENCH {json}``. Each system runs in an environment
of its own: TaskTiger needs ``redis<5``, taskq-redis ``redis>=5``, and none
of them should see the others' packages in its RSS.
"""

from __future__ import annotations

# only what every system needs: the agent's imports count in each worker's RSS
import argparse
import json
import os
import signal
import sys
import threading
import time

TYPE_CHECKING = False  # not typing's: importing typing would add to the RSS of some peers
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

QUEUE = "bench"
#: the distribution of each system, for ``versions``
DISTRIBUTIONS = {
    "taskq": "taskq-redis",
    "tasktiger": "tasktiger",
    "dramatiq": "dramatiq",
    "huey": "huey",
    "saq": "saq",
}
SYSTEMS = tuple(DISTRIBUTIONS)


def _sync_task(workload: str) -> Callable[..., Any]:
    import bench_tasks

    return {"noop": bench_tasks.noop, "sleep": bench_tasks.sleep20}[workload]


def _async_task(workload: str) -> Callable[..., Any]:
    import bench_async_tasks

    return {"noop": bench_async_tasks.anoop, "sleep": bench_async_tasks.asleep20}[workload]


# -- round trips ---------------------------------------------------------------


class SendCounter:
    """Counts events in this process and in every child it forks, in shared
    memory: each process adds to a slot of its own, given it at fork time."""

    SLOTS = 1024

    def __init__(self) -> None:
        import mmap

        self._memory = mmap.mmap(-1, 8 * self.SLOTS)  # anonymous, shared with children
        self._counts = memoryview(self._memory).cast("q")
        self._counts[0] = 2  # the next slot for a child; slot 1 is this process's
        self._slot = 1
        self._child_slot = 0
        self._lock = threading.Lock()
        os.register_at_fork(
            before=self._before_fork,
            after_in_parent=self._after_fork,
            after_in_child=self._in_child,
        )

    def add(self) -> None:
        with self._lock:
            self._counts[self._slot] += 1

    def total(self) -> int:
        return sum(self._counts[1:])

    def _before_fork(self) -> None:
        self._lock.acquire()
        self._child_slot = self._counts[0]
        # slots are reused only after SLOTS forks: far more than run at once
        self._counts[0] = self._child_slot + 1 if self._child_slot + 1 < self.SLOTS else 2

    def _after_fork(self) -> None:
        self._lock.release()

    def _in_child(self) -> None:
        self._lock = threading.Lock()
        self._slot = self._child_slot


def _count_sync_sends(counter: SendCounter) -> None:
    import redis.connection

    cls = getattr(redis.connection, "AbstractConnection", redis.connection.Connection)
    original = cls.send_packed_command

    def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        counter.add()
        original(self, command, check_health)

    cls.send_packed_command = send_packed_command


def _count_async_sends(counter: SendCounter, module: Any) -> None:
    cls = getattr(module, "AbstractConnection", None) or module.Connection
    original = cls.send_packed_command

    async def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        counter.add()
        await original(self, command, check_health)

    cls.send_packed_command = send_packed_command


class _PatchOnImport:
    """Counts the sends of ``redis.asyncio`` too, should taskq import it,
    without importing it here (it would add to the worker's RSS)."""

    NAME = "redis.asyncio.connection"

    def __init__(self, counter: SendCounter) -> None:
        self.counter = counter

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.NAME:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader, counter = spec.loader, self.counter
        exec_module = loader.exec_module  # type: ignore[attr-defined]

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _count_async_sends(counter, module)

        loader.exec_module = exec_and_patch  # type: ignore[attr-defined]
        return spec


def count_round_trips() -> SendCounter:
    """Count every request redis-py sends from now on (sync and asyncio)."""
    counter = SendCounter()
    _count_sync_sends(counter)
    if "redis.asyncio.connection" in sys.modules:
        _count_async_sends(counter, sys.modules["redis.asyncio.connection"])
    else:
        sys.meta_path.insert(0, _PatchOnImport(counter))
    return counter


# -- the systems ---------------------------------------------------------------


class Taskq:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        from taskq_core import TaskQ

        self.counter = count_round_trips() if args.action == "work" else None
        config = {"STATS_INTERVAL": 0, "BATCH_QUEUES": {QUEUE: args.batch}}
        self.tq = TaskQ(url, config=config, setup_structlog=True)
        self.args = args

    def _task(self) -> Callable[..., Any]:
        if self.args.mode == "asyncio":
            return _async_task(self.args.workload)
        return _sync_task(self.args.workload)

    def sender(self) -> Callable[[], Any]:
        func, tq = self._task(), self.tq
        return lambda: tq.delay(func, args=[time.time()], queue=QUEUE)

    def enqueue(self, n: int) -> None:
        send = self.sender()
        for _ in range(n):
            send()

    def enqueue_bulk(self, n: int) -> None:
        from taskq_core import Task

        func = self._task()
        for start in range(0, n, 500):
            now = time.time()
            tasks = [
                Task(self.tq, func, args=[now], queue=QUEUE) for _ in range(min(500, n - start))
            ]
            self.tq.delay_many(tasks)

    def _run(self, executor: str, concurrency: int, queue: str, burst: bool) -> None:
        # concurrency= only when asked for: a build without it runs -c 1 all the same
        extra = {"concurrency": concurrency} if concurrency != 1 else {}
        self.tq.run_worker(queues=[queue], executor=executor, burst=burst, **extra)

    def work(self) -> dict[str, Any]:
        self._run(self.args.mode, self.args.concurrency, QUEUE, self.args.burst)
        assert self.counter is not None
        return {"round_trips": self.counter.total()}

    def probe(self, modes: list[tuple[str, int]]) -> dict[str, str | None]:
        """``executor:concurrency`` -> None if this build runs it, else why not."""
        found: dict[str, str | None] = {}
        for executor, concurrency in modes:
            try:
                self._run(executor, concurrency, f"{QUEUE}-probe", True)
            except Exception as exc:  # an unknown executor or argument
                found[f"{executor}:{concurrency}"] = f"{type(exc).__name__}: {exc}"
            else:
                found[f"{executor}:{concurrency}"] = None
        return found


class TaskTiger:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        import redis
        from tasktiger import TaskTiger as Tiger

        self.tiger = Tiger(
            connection=redis.Redis.from_url(url, decode_responses=True),
            config={"STATS_INTERVAL": 0, "BATCH_QUEUES": {QUEUE: args.batch}},
            setup_structlog=True,  # its worker needs structlog configured this way
        )
        self.args = args

    def sender(self) -> Callable[[], Any]:
        func, tiger = _sync_task(self.args.workload), self.tiger
        return lambda: tiger.delay(func, args=[time.time()], queue=QUEUE)

    def enqueue(self, n: int) -> None:
        send = self.sender()
        for _ in range(n):
            send()

    def work(self) -> dict[str, Any]:
        from tasktiger import Worker
        from tasktiger.executor import ForkExecutor, SyncExecutor

        if self.args.concurrency != 1:
            raise SystemExit("a TaskTiger worker runs one task at a time")
        executor = {"fork": ForkExecutor, "sync": SyncExecutor}[self.args.mode]
        # once=True: until the queue is empty; otherwise until SIGTERM
        Worker(self.tiger, queues=[QUEUE], executor_class=executor).run(once=self.args.burst)
        return {}


def _wait_for_sigterm() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


class Dramatiq:
    """Dramatiq's ``Worker`` with N threads in this process (what each worker
    process of ``dramatiq bench --processes 1 --threads N`` runs)."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        self.broker = RedisBroker(url=url)
        dramatiq.set_broker(self.broker)
        self.actor = dramatiq.actor(
            _sync_task(args.workload), queue_name=QUEUE, actor_name=f"bench_{args.workload}"
        )
        self.args = args

    def sender(self) -> Callable[[], Any]:
        actor = self.actor
        return lambda: actor.send(time.time())

    def enqueue(self, n: int) -> None:
        send = self.sender()
        for _ in range(n):
            send()

    def work(self) -> dict[str, Any]:
        from dramatiq import Worker

        worker = Worker(self.broker, queues={QUEUE}, worker_threads=self.args.concurrency)
        worker.start()
        _wait_for_sigterm()
        worker.stop()
        return {}


class Huey:
    """Huey's consumer with N worker threads in this process
    (``huey_consumer bench.huey -k thread -w N``)."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        from huey import RedisHuey

        self.huey = RedisHuey(QUEUE, url=url)  # blocking pops, as by default
        self.task = self.huey.task(name=f"bench_{args.workload}")(_sync_task(args.workload))
        self.args = args

    def sender(self) -> Callable[[], Any]:
        task = self.task
        return lambda: task(time.time())

    def enqueue(self, n: int) -> None:
        send = self.sender()
        for _ in range(n):
            send()

    def work(self) -> dict[str, Any]:
        consumer = self.huey.create_consumer(workers=self.args.concurrency, worker_type="thread")
        consumer.run()  # SIGTERM stops it
        return {}


class Saq:
    """SAQ's ``Worker`` with N jobs at once on this process's event loop (what
    ``saq bench.settings`` runs with ``concurrency`` N)."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        import asyncio

        import bench_async_tasks
        from saq import Queue

        self.queue = Queue.from_url(url, name=QUEUE)
        self.function = {
            "noop": bench_async_tasks.saq_noop,
            "sleep": bench_async_tasks.saq_sleep20,
        }[args.workload]
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.queue.connect())
        self.args = args

    def sender(self) -> Callable[[], Any]:
        name, queue = self.function.__name__, self.queue

        async def send() -> None:
            await queue.enqueue(name, t=time.time())

        return lambda: self.loop.run_until_complete(send())

    def enqueue(self, n: int) -> None:
        name, queue = self.function.__name__, self.queue

        async def send_all() -> None:
            for _ in range(n):
                await queue.enqueue(name, t=time.time())

        self.loop.run_until_complete(send_all())

    def work(self) -> dict[str, Any]:
        from saq import Worker

        worker = Worker(self.queue, functions=[self.function], concurrency=self.args.concurrency)
        self.loop.run_until_complete(worker.start())  # its SIGTERM handler stops it
        return {}


def latency(send: Callable[[], Any], record: str, n: int, gap: float) -> None:
    """Enqueue ``n`` tasks one at a time, each once the one before is recorded
    and ``gap`` seconds more have passed (so the worker is idle again)."""
    from bench_tasks import RECORD

    deadline = time.monotonic() + 60 + n * 0.5
    for _ in range(n):
        before = os.stat(record).st_size
        send()
        while os.stat(record).st_size < before + RECORD.size:
            if time.monotonic() > deadline:
                raise SystemExit("the worker stopped recording tasks")
            time.sleep(0.0005)
        time.sleep(gap)


def _own_rss_kib(field: str) -> int:
    """This process's ``VmRSS`` or ``VmHWM`` (peak) in KiB, from ``/proc``."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("action")
    parser.add_argument("url")
    parser.add_argument("--mode", default="sync", help="taskq/TaskTiger executor")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="BATCH_QUEUES size (taskq, TaskTiger)")
    parser.add_argument("--workload", choices=("noop", "sleep"), default="noop")
    parser.add_argument("--tasks", type=int, default=0)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--record", help="latency: the file the worker records tasks in")
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--modes", default="", help="probe: executor:concurrency,...")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    if args.action == "versions":
        from importlib.metadata import version

        # /proc, not getrusage: a child's ru_maxrss starts at its parent's
        before = _own_rss_kib("VmRSS")
        import redis  # noqa: F401  (what the Redis client alone costs this process)

        out = {
            "version": version(DISTRIBUTIONS[args.system]),
            "redis_py": version("redis"),
            "redis_py_rss_mib": round(_own_rss_kib("VmHWM") / 1024, 1),
            "redis_py_import_mib": round((_own_rss_kib("VmRSS") - before) / 1024, 1),
        }
        print("BENCH " + json.dumps(out), flush=True)
        return
    system: Any = {
        "taskq": Taskq,
        "tasktiger": TaskTiger,
        "dramatiq": Dramatiq,
        "huey": Huey,
        "saq": Saq,
    }[args.system](args.url, args)
    started = time.perf_counter()
    if args.action == "enqueue":
        system.enqueue(args.tasks)
    elif args.action == "enqueue_bulk":
        system.enqueue_bulk(args.tasks)
    elif args.action == "work":
        out = system.work()
    elif args.action == "latency":
        latency(system.sender(), args.record, args.tasks, args.gap)
    elif args.action == "probe":
        modes = [(m.split(":")[0], int(m.split(":")[1])) for m in args.modes.split(",") if m]
        out = {"modes": system.probe(modes)}
    else:
        parser.error(f"unknown action {args.action!r}")
    out["seconds"] = time.perf_counter() - started
    print("BENCH " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
