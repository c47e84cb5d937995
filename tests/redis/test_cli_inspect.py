"""The inspection and repair commands (``taskq stats``, ``tasks``, ``task``,
``retry``, ``delete``, ``cancel``, ``purge-errors``) against a real Redis,
run in-process with click's ``CliRunner``."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

from taskq_core import Task, TaskQ
from taskq_core.cli import inspect_cmd, main

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_app
from redis_helpers import drop_task_data

pytestmark = pytest.mark.redis


@pytest.fixture
def tq(redis_url: str, redis_client: Any) -> Iterator[TaskQ]:
    """A ``TaskQ`` on the emptied test server, with fast worker timings."""
    app = TaskQ(redis_url, config=cli_app.FAST)
    try:
        yield app
    finally:
        app.broker.close()


@pytest.fixture
def cli(redis_url: str) -> Any:
    """``cli("stats", "--json")`` runs ``taskq stats --json --url <test server>``."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--url", redis_url], prog_name="taskq")

    return invoke


def fail_in(tq: TaskQ, *queues: str) -> list[str]:
    """Put one task per queue name into ``error`` (a burst worker runs them and
    they fail); returns their ids in order."""
    ids = [
        tq.delay(cli_app.fail, kwargs={"message": f"boom {i}"}, queue=q).id
        for i, q in enumerate(queues)
    ]
    tq.run_worker(queues=sorted(set(queues)), burst=True, executor="sync")
    return ids


def test_stats_table_and_json(tq: TaskQ, cli: Any) -> None:
    """`taskq stats` prints queues by states as a table (zeros included), and
    `--json` prints exactly the {queue: {state: n}} dict of non-empty states."""
    for i in range(3):
        tq.delay(cli_app.add, args=[i, 1], queue="a")
    tq.delay(cli_app.add, args=[9, 9], queue="a", when=dt.timedelta(hours=1))
    fail_in(tq, "b")

    result = cli("stats")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["queue", "scheduled", "queued", "active", "error"],
        ["a", "1", "3", "0", "0"],
        ["b", "0", "0", "0", "1"],
    ]

    result = cli("stats", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"a": {"queued": 3, "scheduled": 1}, "b": {"error": 1}}


def test_stats_with_no_broker_named_reads_the_default_file(
    tq: TaskQ, redis_url: str, tmp_path: Path
) -> None:
    """`taskq stats` with no `--url`, `--broker` or TASKQ_URL reads the default
    SQLite file, not Redis (whose task it does not count); `-h/-p` alone name
    the Redis broker."""
    tq.delay(cli_app.add, args=[1, 1], queue="on-redis")
    default_file = tmp_path / "default.db"
    on_default = TaskQ(f"sqlite:///{default_file}")
    on_default.delay(cli_app.add, args=[2, 2], queue="on-default")
    env: dict[str, str | None] = {"TASKQ_URL": None, "TASKQ_SQLITE_PATH": str(default_file)}
    result = CliRunner().invoke(main, ["stats", "--json"], env=env, prog_name="taskq")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"on-default": {"queued": 1}}
    parts = urlsplit(redis_url)
    assert parts.hostname
    host_port = ["-h", parts.hostname, "-p", str(parts.port)]
    result = CliRunner().invoke(main, ["stats", "--json", *host_port], env=env, prog_name="taskq")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"on-redis": {"queued": 1}}
    on_default.broker.close()


def test_stats_without_tasks(tq: TaskQ, cli: Any) -> None:
    """With no tasks, the table says so and the JSON is an empty object."""
    result = cli("stats")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "(no tasks)"
    assert json.loads(cli("stats", "--json").stdout) == {}


def test_tasks_are_paged_oldest_first(tq: TaskQ, cli: Any) -> None:
    """`taskq tasks QUEUE STATE` lists oldest first; --skip counts from the oldest,
    --limit bounds the page, and --json carries the total and the skip."""
    ids = [tq.delay(cli_app.add, args=[i, 0], queue="pages").id for i in range(5)]

    result = cli("tasks", "pages", "queued", "--skip", "1", "--limit", "2")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header == "5 task(s) in pages queued; showing 2-3"
    assert [line.split()[0] for line in lines] == ids[1:3]
    assert lines[0].endswith("cli_app:add(1, 0)")

    result = cli("tasks", "pages", "queued", "--skip", "3", "--limit", "10", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert page["total"] == 5
    assert page["skip"] == 3
    assert [t["id"] for t in page["tasks"]] == ids[3:]
    assert [t["args"] for t in page["tasks"]] == [[3, 0], [4, 0]]
    assert {(t["queue"], t["state"], t["func"]) for t in page["tasks"]} == {
        ("pages", "queued", "cli_app:add")
    }

    result = cli("tasks", "pages", "queued", "--skip", "5")
    assert result.stdout.splitlines() == ["5 task(s) in pages queued; none shown"]


def test_tasks_with_an_unknown_state_is_a_usage_error(tq: TaskQ, cli: Any) -> None:
    """STATE must be one of the four states; anything else is a usage error (2)."""
    result = cli("tasks", "pages", "done")
    assert result.exit_code == 2
    assert "'done' is not one of" in result.stderr


def test_task_with_missing_data_is_listed_once(tq: TaskQ, cli: Any) -> None:
    """A task whose data is gone is listed once, in its place, marked missing."""
    ids = [tq.delay(cli_app.add, args=[i, 0], queue="holes").id for i in range(3)]
    drop_task_data(tq.broker, "holes", ids[1])

    result = cli("tasks", "holes", "queued")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header == "3 task(s) in holes queued; showing 1-3"
    assert [line.split()[0] for line in lines] == ids
    assert "(data missing)" in lines[1]
    assert "(data missing)" not in lines[0] + lines[2]

    page = json.loads(cli("tasks", "holes", "queued", "--json").stdout)
    assert [t["id"] for t in page["tasks"]] == ids
    assert [t.get("missing", False) for t in page["tasks"]] == [False, True, False]


def test_task_shows_executions_with_traceback(tq: TaskQ, cli: Any) -> None:
    """`taskq task QUEUE error ID` shows the task, its failed-run count and each
    execution's exception and traceback; --json has the same as data."""
    (task_id,) = fail_in(tq, "broken")

    result = cli("task", "broken", "error", task_id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"id: {task_id}" in out
    assert "func: cli_app:fail" in out
    assert "failed runs: 1" in out
    assert "--- execution 1: builtins:ValueError" in out
    assert "Traceback (most recent call last):" in out
    assert out.rstrip().endswith("ValueError: boom 0")

    info = json.loads(cli("task", "broken", "error", task_id, "--json").stdout)
    assert (info["id"], info["queue"], info["state"], info["func"]) == (
        task_id,
        "broken",
        "error",
        "cli_app:fail",
    )
    assert info["kwargs"] == {"message": "boom 0"}
    (record,) = info["executions"]
    assert record["exception_name"] == "builtins:ValueError"
    assert record["success"] is False
    assert "ValueError: boom 0" in record["traceback"]


def test_task_not_found_says_what_to_do(tq: TaskQ, cli: Any) -> None:
    """An unknown id, or a known id asked in the wrong state, exits non-zero with
    a message that points to `taskq tasks`."""
    queued = tq.delay(cli_app.add, args=[1, 2], queue="q").id
    for args in (("q", "queued", "no-such-id"), ("q", "error", queued)):
        result = cli("task", *args)
        assert result.exit_code != 0
        assert args[2] in result.stderr
        assert "taskq tasks" in result.stderr
        assert "Traceback" not in result.output


def test_retry_moves_errors_back_to_queued(tq: TaskQ, cli: Any) -> None:
    """`taskq retry QUEUE ID...` moves each task from error to queued (failed runs
    kept); an id not in error is reported on stderr and the exit status is 1,
    the other ids being retried all the same."""
    first, second = fail_in(tq, "r", "r")

    result = cli("retry", "r", first, "no-such-id", second)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"retry: {first}", f"retry: {second}"]
    assert result.stderr.strip() == "not found in r error: no-such-id"
    assert tq.get_queue_stats() == {"r": {"queued": 2}}
    assert Task.from_id(tq, "r", "queued", first).n_executions() == 1

    result = cli("retry", "r", first)
    assert result.exit_code == 1  # now queued, not in error


def test_delete_removes_errors(tq: TaskQ, cli: Any) -> None:
    """`taskq delete QUEUE ID...` removes tasks in error; a queued id is not
    deleted and gives exit status 1."""
    first, second = fail_in(tq, "d", "d")
    queued = tq.delay(cli_app.add, args=[0, 0], queue="d").id

    result = cli("delete", "d", first, second)
    assert result.exit_code == 0, result.output
    assert tq.get_queue_stats() == {"d": {"queued": 1}}

    result = cli("delete", "d", queued)
    assert result.exit_code == 1
    assert queued in result.stderr
    assert tq.get_queue_stats() == {"d": {"queued": 1}}


def test_cancel_removes_scheduled_tasks(tq: TaskQ, cli: Any) -> None:
    """`taskq cancel QUEUE ID...` removes scheduled tasks; other scheduled tasks
    stay, and a queued id is refused (exit status 1) and kept."""
    later = [
        tq.delay(cli_app.add, args=[i, 0], queue="c", when=dt.timedelta(hours=1)).id
        for i in range(3)
    ]
    queued = tq.delay(cli_app.add, args=[9, 0], queue="c").id

    result = cli("cancel", "c", later[0], later[2])
    assert result.exit_code == 0, result.output
    _, left = Task.tasks_from_queue(tq, "c", "scheduled")
    assert [t.id for t in left] == [later[1]]

    result = cli("cancel", "c", queued)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"not found in c scheduled: {queued}"
    assert tq.get_queue_stats() == {"c": {"queued": 1, "scheduled": 1}}


def test_purge_errors_queue_filters_and_limit(tq: TaskQ, cli: Any) -> None:
    """`taskq purge-errors` with -q (a queue and its subqueues), -e and --limit;
    piped, it prints only its summary line (no progress bar)."""
    fail_in(tq, "p1", "p1", "p1.sub", "p2", "p2")

    result = cli("purge-errors", "-e", "p1.sub", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted 1 task(s)\n"
    assert result.stderr == ""
    assert tq.get_queue_stats() == {"p1": {"error": 1}, "p1.sub": {"error": 1}, "p2": {"error": 2}}

    result = cli("purge-errors", "-q", "p1")
    assert result.stdout == "deleted 2 task(s)\n"
    assert tq.get_queue_stats() == {"p2": {"error": 2}}

    result = cli("purge-errors")
    assert result.stdout == "deleted 2 task(s)\n"
    assert result.stderr == ""
    assert tq.get_queue_stats() == {}


def test_purge_errors_older_than(tq: TaskQ, cli: Any) -> None:
    """--older-than keeps errors younger than the duration; a malformed duration
    is a usage error that names the option and the accepted forms."""
    fail_in(tq, "old", "old")
    time.sleep(1.2)
    fail_in(tq, "new")

    result = cli("purge-errors", "--older-than", "1h")
    assert result.stdout == "deleted 0 task(s)\n"
    assert tq.get_queue_stats() == {"new": {"error": 1}, "old": {"error": 2}}

    result = cli("purge-errors", "--older-than", "1s")
    assert result.stdout == "deleted 2 task(s)\n"
    assert tq.get_queue_stats() == {"new": {"error": 1}}

    result = cli("purge-errors", "--older-than", "5 days")
    assert result.exit_code == 2
    assert "'--older-than'" in result.stderr
    assert "like 90s, 15m, 6h, 7d or 2w" in result.stderr
    assert tq.get_queue_stats() == {"new": {"error": 1}}


def test_purge_errors_shows_progress_on_a_terminal(
    tq: TaskQ, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the progress bar goes to stderr; stdout keeps only the summary."""
    fail_in(tq, "t1", "t2")
    monkeypatch.setattr(inspect_cmd, "_progress_shown", lambda: True)
    result = cli("purge-errors")
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted 2 task(s)\n"
    assert "purging" in result.stderr


def test_inspection_with_app_and_broker_options_uses_the_command_line_broker(
    tq: TaskQ, redis_url: str
) -> None:
    """Decision 11 for the inspection commands too: `taskq stats --app APP
    --url URL` inspects URL's broker, not the app's own; an unknown broker
    with `--app` is an error (exit 1)."""
    tq.delay(cli_app.add, args=[1, 2], queue="a")
    runner = CliRunner()
    args = ["stats", "--json", "--app", "cli_app:on_memory"]
    result = runner.invoke(main, [*args, "--url", redis_url], prog_name="taskq")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"a": {"queued": 1}}
    result = runner.invoke(main, [*args, "--broker", "nope"], prog_name="taskq")
    assert result.exit_code == 1
    assert 'Unknown broker "nope"' in result.output
