"""The README's quickstart by hand, as a newcomer runs it: in a fresh
virtualenv, ``pip install ./taskq_core``, queue the example tasks, then the
README's worker command runs them, with no server and no ``redis-server`` on
PATH, on the default broker (a SQLite file in the data directory of a home of
its own)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from taskq_core import Task, TaskQ

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

#: the README's commands, in order, as the test runs them (after activating
#: the virtualenv, from the repository's root)
INSTALL = "pip install ./taskq_core"
ENQUEUE = "python -m examples.enqueue"
WORKER = "taskq worker -m examples.tasks --burst"


def _readme_commands() -> list[str]:
    """The lines of the README's ```sh blocks, without their comments."""
    blocks = re.findall(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]


def _path_without_redis_server(venv_bin: Path) -> str:
    """The virtualenv's bin, then every PATH entry that holds no ``redis-server``."""
    entries = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "redis-server").exists()
    ]
    return os.pathsep.join([str(venv_bin), *entries])


def _newcomer_env(venv: Path, home: Path | None = None) -> dict[str, str]:
    """An activated virtualenv: no taskq or Python variable of this session
    (no TASKQ_URL, no TASKQ_SQLITE_PATH, no PYTHONPATH), no redis-server on
    PATH; with ``home``, a home of its own and no ``XDG_DATA_HOME`` (pip
    keeps the user's home: its configuration and cache)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(VIRTUAL_ENV=str(venv), PATH=_path_without_redis_server(venv / "bin"))
    if home is not None:
        env.pop("XDG_DATA_HOME", None)
        env["HOME"] = str(home)
    return env


def _run(
    command: str | list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``command`` as typed (its program found on ``env``'s PATH), from the
    repository's root."""
    program, *args = command.split() if isinstance(command, str) else command
    found = shutil.which(program, path=env["PATH"])
    assert found is not None, f"{program} not on PATH"
    return subprocess.run(
        [found, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_readme_commands_are_the_ones_tested() -> None:
    """The README shows these commands, in this order."""
    commands = _readme_commands()
    assert [c for c in commands if c in (INSTALL, ENQUEUE, WORKER)] == [INSTALL, ENQUEUE, WORKER]


def test_fresh_virtualenv_runs_the_example_tasks_with_no_server(tmp_path: Path) -> None:
    """``python -m venv``, ``pip install ./taskq_core``, ``python -m
    examples.enqueue`` and ``taskq worker -m examples.tasks --burst``, with no
    redis-server on PATH and no Redis client installed: every example task
    runs (the flaky one after its retries, the unique one once, the failing
    one ends in error), on the default file in the home's data directory,
    which the worker names at start."""
    venv, home = tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = _run(INSTALL, _newcomer_env(venv), timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    env = _newcomer_env(venv, home)
    assert shutil.which("redis-server", path=env["PATH"]) is None
    no_redis = _run(["python", "-c", "import redis"], env, timeout=60)
    assert "ModuleNotFoundError" in no_redis.stderr, no_redis.stderr  # taskq-core alone

    enqueue = _run(ENQUEUE, env, timeout=60)
    assert enqueue.returncode == 0, enqueue.stderr
    worker = _run(WORKER, env, timeout=120)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    default_file = home / ".local" / "share" / "taskq" / "taskq.db"
    events = _events(worker.stderr)
    (said,) = [e for e in events if e["event"] == "using the default broker"]
    assert said["file"] == str(default_file)
    ran = Counter(e["event"] for e in events)
    sent = sorted(e["user_id"] for e in events if e["event"] == "welcome email sent")
    assert sent == list(range(1, 11))
    assert (ran["report built"], ran["payment captured"], ran["reindexed"]) == (1, 1, 1)
    succeeded = Counter(e["func"] for e in events if e["event"] == "done" and "func" in e)
    assert succeeded == {
        "examples.tasks:send_welcome_email": 10,
        "examples.tasks:build_report": 1,
        "examples.tasks:flaky_payment": 1,
        "examples.tasks:reindex": 1,
    }

    tq = TaskQ(f"sqlite:///{default_file}")
    assert tq.get_queue_stats() == {"default": {"scheduled": 1, "error": 1}}
    _total, (failed,) = Task.tasks_from_queue(tq, "default", "error")
    assert failed.serialized_func == "examples.tasks:always_fails"
    _total, (periodic,) = Task.tasks_from_queue(tq, "default", "scheduled")
    assert periodic.serialized_func == "examples.tasks:cleanup"  # its next run
    tq.broker.close()
