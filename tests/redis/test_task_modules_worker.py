"""A stored task whose function path someone rewrote in Redis (API decision 18).

The tests enqueue ordinary tasks, then rewrite their payloads with the raw
Redis client, the way someone with write access to Redis would: to
standard-library callables that would create a marker file, to a module
outside ``ALLOWED_TASK_MODULES`` whose import would create a marker file, and
to runner classes and retry methods from there. A real ``taskq worker``
process runs over them: no marker appears, each rewritten task ends in
``error`` with a record saying it was refused, and the worker goes on running
the good tasks queued around them.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_helpers import read_data, write_data

from taskq_core import State, Task
from taskq_core.serialization import pack, unpack
from worker_procs import WorkerPool, rebind, running

pytestmark = pytest.mark.slow

REFUSED = "taskq_core.exceptions:TaskRefused"

FAST = (
    '{"ACTIVE_TASK_UPDATE_TIMER": 0.2, "ACTIVE_TASK_UPDATE_TIMEOUT": 5, '
    '"QUEUE_SCHEDULED_TASKS_TIME": 0.1, "QUEUE_RESYNC_INTERVAL": 0.5, "SELECT_TIMEOUT": 0.2, '
    '"STATS_INTERVAL": 0, "DEFAULT_RETRY_METHOD": fixed(0, 3)}'
)


class Site:
    """The application package ``secapp`` and an outside package ``secoutsider``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.imported = root / "outsider-imported"
        self.ran = root / "command-ran"
        files = {
            "secapp/__init__.py": f"""
                from taskq_core import TaskQ, fixed

                FAST = {FAST}
                #: the app of the narrowed tests
                tq = TaskQ(config={{**FAST, "ALLOWED_TASK_MODULES": ["secapp"]}})
                #: the app with the default setting (everything outside the standard library)
                tq_open = TaskQ(config=FAST)

                from secapp import tasks  # noqa: E402
                """,
            "secapp/tasks.py": """
                import os
                import subprocess
                from os import system
                from pathlib import Path


                def touch(path):
                    Path(path).write_text("ran")
                """,
            "secoutsider/__init__.py": f"""
                from pathlib import Path

                from taskq_core.runners import DefaultRunner

                Path({str(self.imported)!r}).write_text("imported")


                def touch(path):
                    Path(path).write_text("ran")


                def policy(retry_number):
                    return 0.0


                class Runner(DefaultRunner):
                    pass
                """,
        }
        for name, source in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    found = Site(tmp_path / "site")
    monkeypatch.syspath_prepend(str(found.root))
    importlib.invalidate_caches()
    yield found
    for name in list(sys.modules):
        if name.split(".")[0] in ("secapp", "secoutsider"):
            del sys.modules[name]


@pytest.fixture
def workers(
    redis_url: str,
    redis_client: Any,
    tmp_path: Path,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, tmp_path, pythonpath=[site.root])
    with running(pool, monkeypatch) as started:
        yield started


def rewrite(tq: Any, task: Task, **changes: Any) -> None:
    """Change fields of a stored task's payload with the raw Redis client."""
    broker = tq.broker
    payload, meta = read_data(broker, task.queue, task.id)
    data = unpack(payload)
    data.update(changes)
    write_data(broker, task.queue, task.id, pack(data), meta)


def refused_record(tq: Any, task: Task) -> dict[str, Any]:
    loaded = Task.from_id(tq, task.queue, State.ERROR, task.id, load_executions=10)
    assert len(loaded.executions) == 1, loaded.executions
    record = dict(loaded.executions[0])
    assert record["exception_name"] == REFUSED, record
    assert "refused" in record["exception"]
    return record


def test_rewritten_to_standard_library_callables_nothing_runs(
    workers: WorkerPool, site: Site
) -> None:
    """With the default setting, tasks rewritten to ``os:system``,
    ``posix:system``, ``subprocess:run``, ``builtins:exec`` and
    ``secapp.tasks:os.system`` (with arguments that would create a marker
    file) all fail as refused and the marker never appears; the good tasks
    queued before, between and after them run."""
    import secapp
    from secapp import tasks

    tq = secapp.tq_open
    rebind(tq, workers.url)
    ran = str(site.ran)
    goods = [site.root / f"good{i}" for i in range(3)]
    tq.delay(tasks.touch, args=[str(goods[0])])
    rewrites = [
        {"func": "os:system", "args": [f"touch {ran}"]},
        {"func": "posix:system", "args": [f"touch {ran}"]},
        {"func": "subprocess:run", "args": [["touch", ran]]},
        {"func": "builtins:exec", "args": [f"open({ran!r}, 'w').close()"]},
        {"func": "secapp.tasks:os.system", "args": [f"touch {ran}"]},
        {"func": "secapp.tasks:system", "args": [f"touch {ran}"]},
    ]
    victims = []
    for changes in rewrites[:3]:
        victims.append(tq.delay(tasks.touch, args=["placeholder"]))
        rewrite(tq, victims[-1], **changes)
    tq.delay(tasks.touch, args=[str(goods[1])])
    for changes in rewrites[3:]:
        victims.append(tq.delay(tasks.touch, args=["placeholder"]))
        rewrite(tq, victims[-1], **changes)
    tq.delay(tasks.touch, args=[str(goods[2])])
    workers.burst(app="secapp:tq_open")
    assert not site.ran.exists()
    assert [good.read_text() for good in goods] == ["ran", "ran", "ran"]
    for victim, changes in zip(victims, rewrites, strict=True):
        record = refused_record(tq, victim)
        assert changes["func"] in record["exception"]
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}


@pytest.mark.parametrize("executor", ["fork", "pool"])
def test_rewritten_outside_allowed_modules_nothing_is_imported(
    workers: WorkerPool, site: Site, executor: str
) -> None:
    """With ``ALLOWED_TASK_MODULES = ["secapp"]``, tasks rewritten to a
    function, runner class or retry method of ``secoutsider`` fail as refused
    and ``secoutsider`` is never imported, in the worker or in its children
    (its import would leave a marker); a task rewritten to ``os.system``
    through ``secapp.tasks`` does not run either, and the good tasks run."""
    import secapp
    from secapp import tasks

    tq = secapp.tq
    rebind(tq, workers.url)
    ran = str(site.ran)
    before, after = site.root / "before", site.root / "after"
    tq.delay(tasks.touch, args=[str(before)])
    rewrites = [
        {"func": "secoutsider:touch", "args": [ran]},
        {"runner_class": "secoutsider:Runner", "args": [ran]},
        {"retry_method": ["secoutsider:policy", []], "args": [ran]},
        {"func": "secapp.tasks:os.system", "args": [f"touch {ran}"]},
        {"func": "secapp.tasks:subprocess.run", "args": [["touch", ran]]},
        {"func": "os:system", "args": [f"touch {ran}"]},
    ]
    victims = []
    for changes in rewrites:
        victims.append(tq.delay(tasks.touch, args=["placeholder"]))
        rewrite(tq, victims[-1], **changes)
    tq.delay(tasks.touch, args=[str(after)])
    workers.burst("--executor", executor, app="secapp:tq")
    assert not site.imported.exists()
    assert not site.ran.exists()
    assert before.read_text() == after.read_text() == "ran"
    expected = ["secoutsider:touch", "secoutsider:Runner", "secoutsider:policy"]
    for victim, words in zip(victims, [*expected, "", "", "standard library"], strict=True):
        record = refused_record(tq, victim)
        assert words in record["exception"], record
    for victim in victims[:3]:
        assert "ALLOWED_TASK_MODULES" in refused_record(tq, victim)["exception"]
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}
    assert "secoutsider" not in sys.modules
