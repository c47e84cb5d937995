"""Processes on one PostgreSQL database: many poppers never share a task, the
wake-up latency of LISTEN/NOTIFY, ``taskq worker --url postgresql://...`` end
to end (fork and threads at ``-c 4``), a worker killed with SIGKILL, and a
worker that meets an older or newer schema."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg_worker_app
import psycopg
import pytest
from pg_helpers import sql

from taskq_core import Task, TaskQ
from taskq_core.broker import EnqueueRequest
from taskq_core.states import STATES
from taskq_postgres import SCHEMA_VERSION, PostgresBroker
from worker_procs import WorkerPool, lines, wait_for

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TASKQ_WORKER = (sys.executable, "-m", "taskq_core.cli", "worker", "--log-format", "json")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess: the repository and this folder
    importable, no TASKQ_URL unless given."""
    env = {k: v for k, v in os.environ.items() if k != "TASKQ_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env["TASKQ_TEST_DIR"] = str(tmp_path)
    return {**env, **extra}


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _labels(trace_dir: Path, name: str) -> list[tuple[str, int, int]]:
    found = []
    for line in lines(trace_dir / name):
        label, pid, ppid = line.split()
        found.append((label, int(pid), int(ppid)))
    return found


# -- many poppers ---------------------------------------------------------------------------
def test_many_processes_popping_at_once_never_get_the_same_task(
    pg_broker: PostgresBroker, clean_url: str, tmp_path: Path
) -> None:
    """Four processes pop one queue as fast as they can (1 to 3 tasks a
    pop): every task is popped by exactly one of them, and none is left."""
    total = 600
    pg_broker.enqueue_many([EnqueueRequest(f"t{i}", "shared", b"x") for i in range(total)])
    outs = [tmp_path / f"popped{n}" for n in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "pg_popper.py"), clean_url, "shared", str(out)],
            env=_env(tmp_path),
        )
        for out in outs
    ]
    try:
        wait_for(lambda: all(Path(f"{out}.ready").exists() for out in outs), what="poppers ready")
    finally:
        for out in outs:
            Path(f"{out}.go").touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    popped = [task_id for out in outs for task_id in lines(out)]
    assert Counter(popped) == Counter(f"t{i}" for i in range(total))
    assert sum(1 for out in outs if lines(out)) >= 2  # they really raced
    assert pg_broker.queue_sizes("shared") == dict.fromkeys(STATES, 0)


# -- wake-up latency ----------------------------------------------------------------------------
def test_notify_wakes_a_waiting_worker(pg_broker: PostgresBroker, clean_url: str) -> None:
    """LISTEN/NOTIFY: a broker waiting in wait_for_activity is woken by every
    enqueue another process commits (40 samples at random moments). The
    latencies (from the start of the enqueue call, and from its return, to
    the wake-up) are printed for docs/brokers.md; nothing is asserted about
    them but that every wake-up came."""
    pg_broker.check()
    pg_broker.wait_for_activity(0.01)
    code = (
        "import sys, time, random\n"
        "from taskq_core.broker import EnqueueRequest\n"
        "from taskq_postgres import PostgresBroker\n"
        "b = PostgresBroker(sys.argv[1]); b.time()\n"
        "for i in range(40):\n"
        "    time.sleep(random.uniform(0.02, 0.08))\n"
        "    start = time.time()\n"
        "    b.enqueue(EnqueueRequest(f'l{i}', 'latency', b'x'))\n"
        "    print(start, time.time(), flush=True)\n"
        "b.close()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, clean_url], stdout=subprocess.PIPE, text=True
    ) as producer:
        woke: list[float] = []
        while len(woke) < 40:
            names = pg_broker.wait_for_activity(5)
            assert "latency" in names, "an enqueue did not wake the waiting broker"
            woke.append(time.time())
        out, _ = producer.communicate(timeout=30)
        assert producer.returncode == 0
    sent = [tuple(float(part) for part in line.split()) for line in out.splitlines()]
    from_start = sorted((w - s[0]) * 1000 for w, s in zip(woke, sent, strict=True))
    from_return = sorted(max(0.0, w - s[1]) * 1000 for w, s in zip(woke, sent, strict=True))
    for name, ms in (("enqueue call", from_start), ("its return", from_return)):
        print(
            f"\nLISTEN/NOTIFY wake-up from {name}, {len(ms)} samples: median "
            f"{statistics.median(ms):.2f} ms, p90 {ms[int(len(ms) * 0.9) - 1]:.2f} ms, "
            f"max {ms[-1]:.2f} ms"
        )


# -- taskq worker processes ---------------------------------------------------------------------
ENQUEUE_EXAMPLES = """
from examples import tasks

for user_id in range(1, 21):
    tasks.send_welcome_email.delay(user_id)
tasks.build_report.delay("weekly", rows=1000)
tasks.flaky_payment.delay(42)
tasks.reindex.delay(1)
tasks.reindex.delay(1)  # unique: still one task
tasks.always_fails.delay()
print(tasks.tq.get_queue_stats())
"""


@pytest.mark.parametrize("executor", ["fork", "threads"])
def test_the_example_tasks_run_end_to_end(clean_url: str, tmp_path: Path, executor: str) -> None:
    """Tasks enqueued by one program (``TASKQ_URL=postgresql://...``) are run by
    ``taskq worker --url postgresql://... -m examples.tasks --burst`` with
    ``-c 4``: every task once, the flaky one after its retries, the unique
    one once, the failing one in error, the periodic one scheduled."""
    enqueue = subprocess.run(
        [sys.executable, "-c", ENQUEUE_EXAMPLES],
        check=False,
        env=_env(tmp_path, TASKQ_URL=clean_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert enqueue.returncode == 0, enqueue.stderr
    worker = subprocess.run(
        [
            *TASKQ_WORKER,
            *("--url", clean_url, "-m", "examples.tasks", "--burst"),
            *("--executor", executor, "-c", "4"),
        ],
        check=False,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    output = worker.stdout + worker.stderr
    events = Counter(e["event"] for e in _events(output))
    sent = sorted(e["user_id"] for e in _events(output) if e["event"] == "welcome email sent")
    assert sent == list(range(1, 21))
    assert events["report built"] == 1
    assert events["payment captured"] == 1
    assert events["reindexed"] == 1
    assert "broker unavailable" not in events
    tq = TaskQ(clean_url)
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 1, "active": 0}
    _total, (periodic,) = Task.tasks_from_queue(tq, "default", "scheduled")
    assert periodic.serialized_func == "examples.tasks:cleanup"  # its next run
    assert tq.get_queue_sizes("reports") == {"queued": 0, "scheduled": 0, "active": 0}
    _total, (failed,) = Task.tasks_from_queue(tq, "default", "error")
    assert failed.serialized_func == "examples.tasks:always_fails"
    tq.broker.close()


@pytest.fixture
def workers(clean_url: str, tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(clean_url, tmp_path, app="pg_worker_app:tq", pythonpath=[HERE])
    try:
        yield pool
    finally:
        pool.cleanup()


@pytest.fixture
def app(workers: WorkerPool) -> Iterator[TaskQ]:
    """An app in this process on the workers' database."""
    tq = TaskQ(workers.url)
    yield tq
    tq.broker.close()


def test_a_killed_worker_loses_only_its_running_tasks(
    workers: WorkerPool, app: TaskQ, tmp_path: Path
) -> None:
    """Two workers with ``-c 4`` (one forking, one with threads); the forking
    one is killed with SIGKILL midway (its children too). Every task is
    done; only tasks the killed worker had started run again (recovered once
    its heartbeats stop), and nothing is left behind."""
    total = 120
    app.delay_many(
        [
            Task(app, pg_worker_app.trace, args=[f"t{i}"], kwargs={"hold": 0.05})
            for i in range(total)
        ]
    )
    victim = workers.start("--executor", "fork", "-c", "4")
    survivor = workers.start("--executor", "threads", "-c", "4")
    wait_for(lambda: len(lines(tmp_path / "done")) >= 20, timeout=60, what="20 tasks done")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    wait_for(
        lambda: (
            {label for label, _p, _pp in _labels(tmp_path, "done")}
            >= {f"t{i}" for i in range(total)}
        ),
        timeout=90,
        what="every task done",
    )
    starts = _labels(tmp_path, "start")
    by_victim = {label for label, pid, ppid in starts if victim.pid in (pid, ppid)}
    twice = {label for label, count in Counter(s[0] for s in starts).items() if count > 1}
    assert twice <= by_victim
    assert len(twice) <= 4  # at most what its four slots were running
    wait_for(
        lambda: app.broker.queue_sizes("default") == dict.fromkeys(STATES, 0),
        what="an empty queue",
    )
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0, workers.log(1)


def test_an_idle_worker_is_woken_by_notify(workers: WorkerPool, app: TaskQ, tmp_path: Path) -> None:
    """A worker idle on an empty database runs a task enqueued later (and one
    enqueued in a committed transaction of the application)."""
    proc = workers.start("--executor", "sync")
    workers.wait_ready()
    time.sleep(0.3)  # idle, listening
    app.delay(pg_worker_app.trace, args=["later"])
    with psycopg.connect(workers.url) as conn:
        app.delay(pg_worker_app.trace, args=["in-transaction"], connection=conn)
    wait_for(
        lambda: (
            {label for label, _p, _pp in _labels(tmp_path, "done")} == {"later", "in-transaction"}
        ),
        what="both tasks done",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, workers.log()


def test_a_worker_refuses_an_older_schema_naming_the_command(
    fresh_url: str, tmp_path: Path
) -> None:
    """``taskq worker`` on a database whose schema is older (version 0: the
    version table without the tables) exits 1 naming ``taskq db upgrade``;
    ``taskq db upgrade --dry-run`` prints the CREATE statements; ``taskq db
    upgrade`` migrates; then the worker starts."""
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE taskq_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO taskq_schema VALUES (0)")
    taskq = (sys.executable, "-m", "taskq_core.cli")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*taskq, *args, "--url", fresh_url],
            check=False,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )

    worker = run("worker", "--burst")
    assert worker.returncode == 1, worker.stdout + worker.stderr
    assert "schema version 0, older than the version" in worker.stderr
    assert "`taskq db upgrade`" in worker.stderr
    assert "Traceback" not in worker.stderr
    dry = run("db", "upgrade", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "CREATE TABLE taskq_entries (" in dry.stdout
    assert "CREATE TABLE taskq_schema" not in dry.stdout
    done = run("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"from version 0 to {SCHEMA_VERSION}" in done.stdout
    again = run("worker", "--burst")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_worker_refuses_a_newer_schema(clean_url: str, tmp_path: Path) -> None:
    """``taskq worker`` on a database whose schema is newer than it knows
    exits 1 with the versions and what to do, not a traceback."""
    broker = PostgresBroker(clean_url)
    broker.time()
    sql(broker, "UPDATE taskq_schema SET version = %s", SCHEMA_VERSION + 1)
    try:
        worker = subprocess.run(
            [*TASKQ_WORKER, "--url", clean_url, "--burst"],
            check=False,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert worker.returncode == 1, worker.stdout + worker.stderr
        assert f"schema version {SCHEMA_VERSION + 1}, newer than" in worker.stderr
        assert "upgrade taskq-postgres" in worker.stderr
        assert "Traceback" not in worker.stderr
    finally:
        sql(broker, "UPDATE taskq_schema SET version = %s", SCHEMA_VERSION)
        broker.close()


def test_threads_of_one_process_share_a_broker(pg_broker: PostgresBroker) -> None:
    """Eight threads enqueueing and popping through one broker (its pool)
    never share a task and lose none."""
    total = 400
    pg_broker.enqueue_many([EnqueueRequest(f"t{i}", "threads", b"x") for i in range(total)])
    popped: list[str] = []
    guard = threading.Lock()

    def pop_all(number: int) -> None:
        while batch := pg_broker.pop("threads", 2, f"w{number}", 60):
            for task in batch:
                pg_broker.finish("threads", task.id, f"w{number}", "done")
            with guard:
                popped.extend(t.id for t in batch)

    threads = [threading.Thread(target=pop_all, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Counter(popped) == Counter(f"t{i}" for i in range(total))
