"""`taskq worker` options, run as real processes against a real Redis: queue
filters, executors, tracebacks, logging, --exit-after, -m/--app, the Redis
plugin's connection options, -M / SINGLE_WORKER_QUEUES and the queue system
lock; and ``tq.run_worker_with_args`` in-process."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog

from taskq_core import Task, TaskQ

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_app

from worker_procs import lines, wait_for

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.redis, pytest.mark.slow]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as a JSON object (fails on any other line)."""
    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


def event(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The first log record with this event name."""
    return next(r for r in records if r.get("event") == name)


def stamp(record: dict[str, Any]) -> float:
    """A JSON log record's ISO timestamp as a Unix time."""
    return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


@dataclass
class Cli:
    """Runs ``python -m taskq_core.cli worker ...`` with the test environment."""

    url: str
    trace_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, *, with_url: bool = True, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TASKQ_URL", "TASKQ_REDIS_PASSWORD", "REDIS_PASSWORD", "TASKQ_PLUGINS")
        }
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        env["TASKQ_TEST_DIR"] = str(self.trace_dir)
        if with_url:
            env["TASKQ_URL"] = self.url
        env.update(extra)
        return env

    def command(self, args: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-m", "taskq_core.cli", "worker", *args]

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run a worker to its end; stdout and stderr kept apart."""
        return subprocess.run(
            self.command(args),
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a worker in the background; its output goes to ``worker<N>.log``."""
        index = len(self.procs)
        with open(self.trace_dir / f"worker{index}.log", "wb") as log:
            proc = subprocess.Popen(
                self.command(args),
                env=env or self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def log(self, index: int = 0) -> str:
        return (self.trace_dir / f"worker{index}.log").read_text(errors="replace")

    def wait_ready(self, index: int = 0) -> None:
        wait_for(lambda: '"ready"' in self.log(index), what=f"worker {index} ready")

    def stop_all(self) -> None:
        """SIGTERM every running worker; each must exit 0."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for index, proc in enumerate(self.procs):
            assert proc.wait(timeout=20) == 0, self.log(index)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)


@pytest.fixture
def cli(redis_url: str, redis_client: Any, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(redis_url, tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture
def tq(redis_url: str, redis_client: Any) -> Iterator[TaskQ]:
    """A ``TaskQ`` on the emptied test server."""
    app = TaskQ(redis_url, config=cli_app.FAST)
    try:
        yield app
    finally:
        app.broker.close()


def traced(path: Path) -> list[list[str]]:
    """The trace file's lines, split into words."""
    return [line.split() for line in lines(path)]


# -- queues, executors, tracebacks ---------------------------------------------------------


def test_burst_processes_only_matching_queues(cli: Cli, tq: TaskQ) -> None:
    """`--burst -q email,email.incoming.c1 -e email.incoming`: the most specific
    rule decides per queue; the burst worker runs the matching queues' tasks
    and exits 0, leaving the others queued."""
    queues = [
        "email",
        "email.outgoing.x",
        "email.incoming",
        "email.incoming.c1",
        "email.incoming.c2",
        "other",
    ]
    for queue in queues:
        tq.delay(cli_app.record, args=["ran"], queue=queue)
    result = cli.run("--burst", "-q", "email,email.incoming.c1", "-e", "email.incoming")
    assert result.returncode == 0, result.stderr
    ran = sorted(words[1] for words in traced(cli.trace_dir / "ran"))
    assert ran == ["email", "email.incoming.c1", "email.outgoing.x"]
    assert tq.get_queue_stats() == {
        "email.incoming": {"queued": 1},
        "email.incoming.c2": {"queued": 1},
        "other": {"queued": 1},
    }


def test_executor_sync_runs_tasks_in_the_worker_process(cli: Cli, tq: TaskQ) -> None:
    """`--executor sync` runs the task in the worker's own process; the default
    (fork) runs it in a child."""
    for executor_args in (("--executor", "sync"), ()):
        name = "sync" if executor_args else "fork"
        tq.delay(cli_app.record, args=[name])
        result = cli.run("--burst", *executor_args)
        assert result.returncode == 0, result.stderr
        ready = event(json_lines(result.stderr), "ready")
        ((_, _, pid),) = traced(cli.trace_dir / name)
        assert (int(pid) == ready["pid"]) == (name == "sync"), (pid, ready)
        assert ready["executor"] == ("SyncExecutor" if name == "sync" else "ForkExecutor")


def test_no_store_tracebacks(cli: Cli, tq: TaskQ) -> None:
    """`--no-store-tracebacks`: the failed execution is recorded without a
    traceback; without the flag the traceback is kept (STORE_TRACEBACKS)."""
    off = tq.delay(cli_app.fail, queue="off").id
    on = tq.delay(cli_app.fail, queue="on").id
    assert cli.run("--burst", "-q", "off", "--no-store-tracebacks").returncode == 0
    assert cli.run("--burst", "-q", "on").returncode == 0
    (record_off,) = Task.from_id(tq, "off", "error", off, load_executions=1).executions
    (record_on,) = Task.from_id(tq, "on", "error", on, load_executions=1).executions
    assert record_off["exception_name"] == record_on["exception_name"] == "builtins:ValueError"
    assert "traceback" not in record_off
    assert "ValueError: boom" in record_on["traceback"]


# -- logging -------------------------------------------------------------------------------


def test_log_format_json_by_default(cli: Cli, tq: TaskQ) -> None:
    """By default every line the worker (and its forked children) writes, on
    stdout or stderr, is one JSON object, tracebacks included."""
    tq.delay(cli_app.add, args=[1, 2])
    tq.delay(cli_app.fail)
    result = cli.run("--burst")
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout) + json_lines(result.stderr)
    events = {r["event"] for r in records}
    assert {"ready", "done", "task error"} <= events
    assert "ValueError: boom" in event(records, "task error")["traceback"]
    assert event(records, "ready")["level"] == "info"


def test_log_format_console(cli: Cli, tq: TaskQ) -> None:
    """`--log-format console` writes human-readable lines, not JSON."""
    tq.delay(cli_app.fail)
    result = cli.run("--burst", "--log-format", "console")
    assert result.returncode == 0, result.stderr
    out = result.stderr.splitlines()
    assert out, "no log lines"
    for line in out:
        with pytest.raises(ValueError):
            json.loads(line)
    assert any("[info" in line and " ready " in line for line in out)
    assert any("[error" in line and "task error" in line for line in out)


def test_log_level_warning_drops_info(cli: Cli, tq: TaskQ) -> None:
    """`--log-level warning`: no info lines, errors still logged."""
    tq.delay(cli_app.add, args=[1, 2])
    tq.delay(cli_app.fail)
    result = cli.run("--burst", "--log-level", "warning")
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout) + json_lines(result.stderr)
    assert {r["level"] for r in records} == {"error"}
    assert event(records, "task error")


def test_exit_after_while_idle(cli: Cli) -> None:
    """`--exit-after 0.02` (minutes): an idle worker exits with status 0 about
    1.2 s after it started."""
    started = time.monotonic()
    result = cli.run("--exit-after", "0.02", "--app", "cli_app:tq")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stderr)
    ran_for = stamp(event(records, "done")) - stamp(event(records, "ready"))
    assert 1.1 <= ran_for < 1.2 + 1.0, ran_for
    assert event(records, "exit-after elapsed")
    assert elapsed < 10


# -- choosing the app ------------------------------------------------------------------------


def test_module_is_imported_by_the_worker_before_any_task(cli: Cli, tmp_path: Path) -> None:
    """`-m cli_app` imports the module in the worker process itself, at start
    (here with no task at all); without -m nothing imports it."""
    trace = tmp_path / "imports"
    env = cli.env(TASKQ_CLI_IMPORT_TRACE=str(trace))
    result = cli.run("--burst", env=env)
    assert result.returncode == 0, result.stderr
    assert not trace.exists()

    result = cli.run("--burst", "-m", "cli_app", env=env)
    assert result.returncode == 0, result.stderr
    ready = event(json_lines(result.stderr), "ready")
    assert lines(trace) == [f"imported {ready['pid']}"]


def test_module_that_cannot_be_imported(cli: Cli) -> None:
    """`-m` with a missing module: exit 1 and a message naming it, no traceback."""
    result = cli.run("--burst", "-m", "no_such_module_here")
    assert result.returncode == 1
    assert "cannot import module 'no_such_module_here' given with -m" in result.stderr
    assert "Traceback" not in result.stderr


def test_app_option_uses_that_apps_configuration(cli: Cli, tq: TaskQ) -> None:
    """`--app cli_app:only_appq` (an object) and `--app cli_app:make_only_appq`
    (a factory) run a worker with that app's configuration: ONLY_QUEUES=appq."""
    for app in ("cli_app:only_appq", "cli_app:make_only_appq"):
        tq.delay(cli_app.record, args=[app], queue="appq")
        tq.delay(cli_app.record, args=[app], queue="other")
        result = cli.run("--burst", "--app", app)
        assert result.returncode == 0, result.stderr
        assert [words[1] for words in traced(cli.trace_dir / app)] == ["appq"]
        assert event(json_lines(result.stderr), "ready")["queues"] == ["appq"]
    assert tq.get_queue_stats() == {"other": {"queued": 2}}


def test_broker_options_on_the_command_line_replace_the_apps_broker(
    cli: Cli, tq: TaskQ, redis_url: str
) -> None:
    """Decision 11: `--app` of an app that names its own broker, with `--url`
    or `--broker redis -h -p -n` on the command line, works on that broker
    instead (the app's configuration, ONLY_QUEUES=appq, still applies),
    whether the app's broker is a URL or an object already in use."""
    parts = urlsplit(redis_url)
    assert parts.hostname
    assert parts.port
    host_port = ("--broker", "redis", "-h", parts.hostname, "-p", str(parts.port), "-n", "0")
    cases = [
        ("cli_app:on_memory", ("--url", redis_url)),
        ("cli_app:on_instance", ("--url", redis_url)),
        ("cli_app:on_memory", host_port),
        ("cli_app:on_instance", host_port),
    ]
    for index, (app, args) in enumerate(cases):
        tq.delay(cli_app.record, args=[f"case{index}"], queue="appq")
        tq.delay(cli_app.record, args=[f"case{index}"], queue="other")
        result = cli.run("--burst", "--app", app, *args, env=cli.env(with_url=False))
        assert result.returncode == 0, result.stderr
        assert [words[1] for words in traced(cli.trace_dir / f"case{index}")] == ["appq"]
        assert tq.get_queue_stats() == {"other": {"queued": index + 1}}, (app, args)


def test_taskq_url_in_the_environment_leaves_the_apps_own_broker(cli: Cli, tq: TaskQ) -> None:
    """TASKQ_URL is the default of an app that names no broker; it does not
    replace a broker the app names itself (only the command line does)."""
    tq.delay(cli_app.record, args=["env"], queue="appq")
    result = cli.run("--burst", "--app", "cli_app:on_memory")  # TASKQ_URL is set
    assert result.returncode == 0, result.stderr
    assert tq.get_queue_stats() == {"appq": {"queued": 1}}


@pytest.mark.parametrize("with_app", [True, False])
def test_bad_broker_options_are_clear_errors(cli: Cli, with_app: bool) -> None:
    """With or without `--app`: an unknown broker name, a URL scheme no plugin
    handles or a URL that cannot be parsed exits 1 with a message saying
    what is wrong, never a traceback (and never silently uses another broker)."""
    app = ("--app", "cli_app:on_memory") if with_app else ()
    cases = [
        (("--broker", "rabbitmq"), 'Error: Unknown broker "rabbitmq". Installed brokers: '),
        (("--url", "amqp://localhost/"), 'No installed broker handles the URL scheme "amqp://"'),
        (("--url", "redis://127.0.0.1:notaport/0"), "Port could not be cast to integer"),
        (("--url", "localhost:6379"), "--url 'localhost:6379' is not a URL"),
    ]
    for args, expected in cases:
        result = cli.run("--burst", *app, *args, env=cli.env(with_url=False))
        assert result.returncode == 1, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


# -- brokers and connections -----------------------------------------------------------------


def test_broker_redis_with_host_port_and_db(cli: Cli, tq: TaskQ, redis_url: str) -> None:
    """`--broker redis -h 127.0.0.1 -p PORT -n DB` (no URL anywhere) connects
    there: on db 1 the task queued in db 0 stays; on db 0 it runs."""
    parts = urlsplit(redis_url)
    assert parts.hostname
    assert parts.port
    tq.delay(cli_app.record, args=["db"])
    env = cli.env(with_url=False)
    base = ("--burst", "--broker", "redis", "-h", parts.hostname, "-p", str(parts.port))
    result = cli.run(*base, "-n", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert tq.get_queue_stats() == {"default": {"queued": 1}}
    result = cli.run(*base, "-n", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert tq.get_queue_stats() == {}
    assert len(lines(cli.trace_dir / "db")) == 1


def test_command_line_host_beats_taskq_url_from_environment(
    cli: Cli, tq: TaskQ, redis_url: str
) -> None:
    """With TASKQ_URL pointing at a server that does not exist, `--broker redis -h
    -p` on the command line decides where the worker connects."""
    parts = urlsplit(redis_url)
    assert parts.hostname
    assert parts.port
    tq.delay(cli_app.record, args=["cmdline"])
    env = cli.env(with_url=False, TASKQ_URL="redis://127.0.0.1:1/0")
    base = ("--burst", "--broker", "redis", "-h", parts.hostname, "-p", str(parts.port))
    result = cli.run(*base, env=env)
    assert result.returncode == 0, result.stderr
    assert tq.get_queue_stats() == {}
    assert len(lines(cli.trace_dir / "cmdline")) == 1


def test_redis_options_alone_name_the_redis_broker(cli: Cli, tq: TaskQ, redis_url: str) -> None:
    """`-h HOST -p PORT` on the command line, with no `--broker`, no `--url` and
    no TASKQ_URL: the options are the Redis broker's, so the worker works on
    that server, not on the default SQLite file (which it never creates)."""
    parts = urlsplit(redis_url)
    assert parts.hostname
    assert parts.port
    tq.delay(cli_app.record, args=["redis-options"])
    default_file = cli.trace_dir / "default.db"
    env = cli.env(with_url=False, TASKQ_SQLITE_PATH=str(default_file))
    result = cli.run("--burst", "-h", parts.hostname, "-p", str(parts.port), env=env)
    assert result.returncode == 0, result.stderr
    assert len(lines(cli.trace_dir / "redis-options")) == 1
    assert tq.get_queue_stats() == {}
    records = json_lines(result.stderr)
    assert event(records, "ready")["broker"] == "redis"
    assert "using the default broker" not in [r["event"] for r in records]
    assert not default_file.exists()


def test_password_in_the_environment_alone_names_no_broker(cli: Cli, tq: TaskQ) -> None:
    """TASKQ_REDIS_PASSWORD set around a worker that names no broker (no
    `--broker`, `--url`, `-h/-p` or TASKQ_URL) does not make it a Redis worker:
    it works on the default SQLite file and says so; the Redis task stays."""
    tq.delay(cli_app.record, args=["on-redis"])
    default_file = cli.trace_dir / "default.db"
    on_default = TaskQ(f"sqlite:///{default_file}")
    on_default.delay(cli_app.record, args=["on-default"])
    env = cli.env(
        with_url=False, TASKQ_REDIS_PASSWORD="s3cret-pw", TASKQ_SQLITE_PATH=str(default_file)
    )
    result = cli.run("--burst", env=env)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stderr)
    assert event(records, "using the default broker")["file"] == str(default_file)
    assert event(records, "ready")["broker"] == "sqlite"
    assert len(lines(cli.trace_dir / "on-default")) == 1
    assert not (cli.trace_dir / "on-redis").exists()
    assert tq.get_queue_stats() == {"default": {"queued": 1}}
    assert on_default.get_queue_stats() == {}
    on_default.broker.close()


def test_password_from_option_and_from_environment(cli: Cli) -> None:
    """Against a server with a password: `-a PASSWORD` and TASKQ_REDIS_PASSWORD
    both work; a wrong password is logged as an authentication failure (the
    password itself never shown) and the worker still stops cleanly."""
    from redis_server import launch_redis_server

    server = launch_redis_server(password="s3cret-pw")
    try:
        private = TaskQ(server.url, config=cli_app.FAST)
        for queue in ("by-option", "by-env", "wrong"):
            private.delay(cli_app.record, args=[queue], queue=queue)
        base = ("--burst", "--broker", "redis", "-h", "127.0.0.1", "-p", str(server.port))
        env = cli.env(with_url=False)
        result = cli.run(*base, "-q", "by-option", "-a", "s3cret-pw", env=env)
        assert result.returncode == 0, result.stderr
        result = cli.run(
            *base, "-q", "by-env", env=cli.env(with_url=False, TASKQ_REDIS_PASSWORD="s3cret-pw")
        )
        assert result.returncode == 0, result.stderr
        assert private.get_queue_stats() == {"wrong": {"queued": 1}}

        proc = cli.start(*base, "-q", "wrong", "-a", "not-the-pw", env=env)
        wait_for(lambda: "broker unavailable" in cli.log(), what="auth failure logged")
        assert "invalid username-password pair" in cli.log()
        cli.stop_all()
        assert proc.returncode == 0
        assert "not-the-pw" not in cli.log()
        assert private.get_queue_stats() == {"wrong": {"queued": 1}}
        private.broker.close()
    finally:
        server.stop()


def test_unknown_broker_is_a_clear_error(cli: Cli, redis_url: str) -> None:
    """An unknown broker name exits 1 with a message listing the installed
    brokers; a URL whose plugin is installed but not loaded names the
    distribution and how to enable it. No traceback either way."""
    result = cli.run("--burst", "--broker", "rabbitmq", env=cli.env(with_url=False))
    assert result.returncode == 1
    assert result.stderr.startswith('Error: Unknown broker "rabbitmq". Installed brokers: ')
    assert "redis (redis://" in result.stderr
    assert "Traceback" not in result.stderr

    env = cli.env(with_url=False, TASKQ_PLUGINS="core")
    result = cli.run("--burst", "--url", redis_url, env=env)
    assert result.returncode == 1
    assert "provided by taskq-redis" in result.stderr
    assert 'add "redis" to TASKQ_PLUGINS' in result.stderr
    assert "Traceback" not in result.stderr


def test_run_worker_with_args_in_process(tq: TaskQ, capfd: pytest.CaptureFixture[str]) -> None:
    """`tq.run_worker_with_args(["--burst", "-q", "x"])` runs a burst worker on
    this app, in this process: queue x is processed, queue y is not, and the
    worker logs JSON lines."""
    logger = logging.getLogger(tq.config["LOGGER_NAME"])
    saved = (list(logger.handlers), logger.level, logger.propagate)
    tq.delay(cli_app.add, args=[1, 1], queue="x")
    tq.delay(cli_app.add, args=[2, 2], queue="x.sub")
    tq.delay(cli_app.add, args=[3, 3], queue="y")
    try:
        tq.run_worker_with_args(["--burst", "-q", "x"])
    finally:
        structlog.reset_defaults()
        logger.handlers[:], logger.level, logger.propagate = saved
    assert tq.get_queue_stats() == {"y": {"queued": 1}}
    records = [r for r in json_lines(capfd.readouterr().err) if "worker_id" in r]
    assert event(records, "ready")["queues"] == ["x"]
    finals = [r for r in records if r["event"] == "done" and "processed" in r]
    assert [r["processed"] for r in finals] == [2]


# -- one worker per queue ------------------------------------------------------------------


def spans(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, pid) of every finished ``span`` run in the trace file."""
    open_runs: dict[str, float] = {}
    done: list[tuple[float, float, str]] = []
    for kind, when, pid, _ppid in traced(path):
        if kind == "start":
            open_runs[pid] = float(when)
        else:
            done.append((open_runs.pop(pid), float(when), pid))
    return sorted(done)


def overlaps(runs: list[tuple[float, float, str]]) -> int:
    """How many consecutive runs (by start time) overlap."""
    return sum(1 for a, b in itertools.pairwise(runs) if b[0] < a[1])


@pytest.mark.parametrize(
    ("args", "queue", "limited"),
    [
        (("-M", "1", "--app", "cli_app:tq"), "solo", True),
        (("--app", "cli_app:single"), "solo.sub", True),
        (("--app", "cli_app:tq"), "solo", False),
    ],
    ids=["max-workers-1", "single-worker-queues", "unlimited"],
)
def test_one_worker_at_a_time_on_a_queue(
    cli: Cli, tq: TaskQ, args: tuple[str, ...], queue: str, limited: bool
) -> None:
    """Two workers with `-M 1` (or an app whose SINGLE_WORKER_QUEUES covers the
    queue) never run two tasks of the queue at once; without a limit the same
    two workers do (which shows the check can see an overlap)."""
    for _ in range(2):
        cli.start(*args)
    for index in range(2):
        cli.wait_ready(index)
    trace = cli.trace_dir / "spans"
    for _ in range(6):
        tq.delay(cli_app.span, args=["spans", 0.15], queue=queue)
    wait_for(lambda: len(lines(trace)) == 12, timeout=20, what="six runs")
    cli.stop_all()
    runs = spans(trace)
    assert len(runs) == 6
    if limited:
        assert overlaps(runs) == 0, runs
    else:
        assert overlaps(runs) > 0, runs


def test_queue_system_lock_keeps_limited_workers_off(cli: Cli, tq: TaskQ) -> None:
    """`tq.set_queue_system_lock(queue, 2)`: get_queue_system_lock gives its
    expiry; a `-M 1` burst worker takes the queue's task only after the expiry."""
    tq.delay(cli_app.span, args=["locked", 0], queue="locked")
    tq.set_queue_system_lock("locked", 2)
    expiry = tq.get_queue_system_lock("locked")
    assert expiry is not None
    assert abs(expiry - (time.time() + 2)) < 0.5
    result = cli.run("--burst", "-M", "1", "-q", "locked", "--app", "cli_app:tq")
    assert result.returncode == 0, result.stderr
    ((_, started, _, _),) = traced(cli.trace_dir / "locked")[:1]
    assert float(started) >= expiry - 0.05, (started, expiry)
    assert tq.get_queue_stats() == {}
    assert tq.get_queue_system_lock("locked") is None


def test_queue_system_lock_does_not_stop_unlimited_workers(tq: TaskQ) -> None:
    """The system lock only concerns workers with a per-queue limit: a worker
    without -M runs the queue's tasks at once, and the lock stays."""
    tq.delay(cli_app.add, args=[1, 1], queue="locked")
    tq.set_queue_system_lock("locked", 30)
    started = time.monotonic()
    tq.run_worker(queues=["locked"], burst=True, executor="sync")
    assert time.monotonic() - started < 5
    assert tq.get_queue_stats() == {}
    assert tq.get_queue_system_lock("locked") is not None
