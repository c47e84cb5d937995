"""``flask ... taskq worker`` as real processes against the test Redis server:
the fork and sync executors, the app-factory pattern, failures through the
normal hooks, and the inspection commands found through ``FLASK_APP``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import factory_app
import plain_app
import pytest
from flask_testext import read_trace

from taskq_core import TaskQ
from taskq_core.task import Task

pytestmark = [pytest.mark.slow, pytest.mark.redis]

HERE = Path(__file__).resolve().parent

PROBE_PLUGIN = """
    import os

    from taskq_core.hookspecs import hookimpl


    def _write(line):
        with open(os.path.join(os.environ["TASKQ_TEST_DIR"], "hooks"), "a") as fh:
            fh.write(line + "\\n")


    @hookimpl
    def taskq_task_failed(task, execution, will_retry):
        _write(f"failed {task.id} {execution['exception_name']} {will_retry}")


    @hookimpl
    def taskq_task_permanently_failed(task, execution):
        _write(f"permanently_failed {task.id}")
"""


def install_probe_plugin(site: Path) -> None:
    """Install a taskq plugin distribution that writes the failure hooks it gets
    to ``$TASKQ_TEST_DIR/hooks`` (found through its ``taskq`` entry point)."""
    info = site / "taskq_flask_probe-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: taskq-flask-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[taskq]\nflask_probe = taskq_flask_probe\n")
    (site / "taskq_flask_probe.py").write_text(textwrap.dedent(PROBE_PLUGIN))


@dataclass
class FlaskCli:
    """Runs ``python -m flask ...`` with the test apps importable."""

    url: str
    trace_dir: Path
    site: Path

    def env(self, **extra: str) -> dict[str, str]:
        path = os.pathsep.join([str(HERE), str(self.site)])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "FLASK_"))}
        return {
            **env,
            "TASKQ_URL": self.url,
            "TASKQ_TEST_DIR": str(self.trace_dir),
            "PYTHONPATH": path,
            **extra,
        }

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def worker(self, app: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``flask --app APP taskq worker --burst ARGS``; asserts exit status 0."""
        done = self.run("--app", app, "taskq", "worker", "--burst", "--log-format", "json", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


@pytest.fixture
def cli(redis_url: str, redis_client: Any, tmp_path: Path) -> FlaskCli:
    site = tmp_path / "site"
    install_probe_plugin(site)
    traces = tmp_path / "traces"
    traces.mkdir()
    return FlaskCli(redis_url, traces, site)


@pytest.fixture
def tq(redis_url: str) -> Iterator[TaskQ]:
    """A TaskQ on the test server, to enqueue and inspect from this process."""
    app = TaskQ(redis_url)
    yield app
    app.broker.close()


def test_fork_worker_runs_tasks_in_the_app_context(cli: FlaskCli, tq: TaskQ) -> None:
    """`flask --app plain_app taskq worker --burst` runs every task in a forked
    child, inside a fresh app context where current_app.config and the
    extension work, and exits 0 with the queues empty."""
    for i in range(3):
        tq.delay(plain_app.report, args=["out"], kwargs={"value": str(i)})
    cli.worker("plain_app")
    records = read_trace(cli.trace_dir, "out")
    assert sorted(r["value"] for r in records) == ["0", "1", "2"]
    assert {r["greeting"] for r in records} == {"hello from plain_app"}
    assert {r["greeter"] for r in records} == {"plain greeter"}
    assert not any(r["seen_before"] for r in records)
    assert len({r["pid"] for r in records}) == 3  # one child per task
    teardowns = read_trace(cli.trace_dir, "teardown")
    assert sorted(t["session"] for t in teardowns) == sorted(r["session"] for r in records)
    assert tq.get_queue_stats() == {}


def test_sync_worker_runs_tasks_in_the_app_context(cli: FlaskCli, tq: TaskQ) -> None:
    """With --executor sync the tasks run in the worker process itself, each in
    its own app context."""
    for i in range(2):
        tq.delay(plain_app.report, args=["out"], kwargs={"value": str(i)})
    cli.worker("plain_app", "--executor", "sync")
    records = read_trace(cli.trace_dir, "out")
    assert [r["value"] for r in records] == ["0", "1"]
    assert {r["greeting"] for r in records} == {"hello from plain_app"}
    assert records[0]["pid"] == records[1]["pid"]
    assert records[0]["session"] != records[1]["session"]
    assert not any(r["seen_before"] for r in records)
    assert tq.get_queue_stats() == {}


def test_factory_app_worker(cli: FlaskCli, tq: TaskQ) -> None:
    """`flask --app "factory_app:create_app()" taskq worker` runs the tasks that
    the factory module declared before any app existed, in the factory's app;
    -q limits it to the queues given."""
    tq.delay(factory_app.report, args=["out"], kwargs={"value": "web"}, queue="web")
    tq.delay(factory_app.report, args=["out"], kwargs={"value": "other"}, queue="other")
    cli.worker("factory_app:create_app()", "-q", "web")
    (record,) = read_trace(cli.trace_dir, "out")
    assert record["value"] == "web"
    assert record["app"] == "factory_app"
    assert record["greeting"] == "hello from the factory"
    assert record["greeter"] == "factory greeter"
    assert tq.get_queue_stats() == {"other": {"queued": 1}}


def test_failure_reaches_hooks_and_inspection_commands(cli: FlaskCli, tq: TaskQ) -> None:
    """A task failing inside the app context goes to error with its execution
    record and the installed plugin's failure hooks fire; `flask taskq` (app
    found through FLASK_APP) shows it, and retry queues it again."""
    task = tq.delay(plain_app.fail, args=["boom"])
    cli.worker("plain_app")
    hooks = (cli.trace_dir / "hooks").read_text().splitlines()
    assert hooks == [
        f"failed {task.id} builtins:ValueError False",
        f"permanently_failed {task.id}",
    ]
    (opened,) = read_trace(cli.trace_dir, "boom")
    assert [t["session"] for t in read_trace(cli.trace_dir, "teardown")] == [opened["session"]]
    stored = Task.from_id(tq, "default", "error", task.id, load_executions=1)
    assert stored.executions[-1]["exception_name"] == "builtins:ValueError"

    stats = cli.run("taskq", "stats", "--json", FLASK_APP="plain_app")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == {"default": {"error": 1}}
    shown = cli.run("taskq", "task", "default", "error", task.id, FLASK_APP="plain_app")
    assert shown.returncode == 0, shown.stderr
    assert "ValueError: task boom failed on purpose" in shown.stdout
    retried = cli.run("taskq", "retry", "default", task.id, FLASK_APP="plain_app")
    assert retried.returncode == 0, retried.stderr
    assert tq.get_queue_stats() == {"default": {"queued": 1}}
