"""The quickstart demo: a private Redis, example tasks, a real `taskq worker`.

Run with ``nox -s demo`` (or ``python examples/demo.py`` in an environment
with taskq-core and taskq-redis installed).
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
        from examples import tasks

        for user_id in range(1, 11):
            tasks.send_welcome_email.delay(user_id)
        tasks.build_report.delay("weekly", rows=1000)
        tasks.flaky_payment.delay(42)
        tasks.reindex.delay(1)
        tasks.reindex.delay(1)  # unique: still one task
        tasks.always_fails.delay()
        print(f"queued: {tasks.tq.get_queue_stats()}\n", flush=True)
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
