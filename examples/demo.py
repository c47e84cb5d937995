"""The quickstart demo: the example tasks run by a real `taskq worker` on the
default broker, a SQLite file: no server to install or start.

Run with ``nox -s demo`` (or ``python examples/demo.py`` with taskq-core
installed). From the repository's root it runs what the README shows by hand::

    python -m examples.enqueue                # queue the example tasks
    taskq worker -m examples.tasks --burst    # run them, exit when none is left
    taskq stats
    taskq tasks default error

No command names a broker, so each uses the default one. The demo points the
default file (``TASKQ_SQLITE_PATH``) at a fresh file in a temporary directory,
so every run starts empty and leaves nothing behind; by hand, the default file
is ``~/.local/share/taskq/taskq.db``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the commands, as typed by hand from the repository's root
COMMANDS = (
    ("python", "-m", "examples.enqueue"),
    ("taskq", "worker", "-m", "examples.tasks", "--burst", "--log-format", "console"),
    ("taskq", "stats"),
    ("taskq", "tasks", "default", "error"),
)


def _argv(command: tuple[str, ...]) -> list[str]:
    """``python`` and ``taskq`` of this environment."""
    program, *args = command
    if program == "python":
        return [sys.executable, *args]
    return [sys.executable, "-m", "taskq_core.cli", *args]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="taskq-demo-") as where:
        env = {k: v for k, v in os.environ.items() if k != "TASKQ_URL"}  # no broker named
        env["TASKQ_SQLITE_PATH"] = str(Path(where) / "taskq.db")
        print(f"the default SQLite file for this demo: {env['TASKQ_SQLITE_PATH']}\n", flush=True)
        for command in COMMANDS:
            print(f"$ {shlex.join(command)}", flush=True)
            result = subprocess.run(_argv(command), cwd=ROOT, env=env, check=False)
            print(flush=True)
            if result.returncode != 0:
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
