"""``python -m taskq_core.cli``: the ``taskq`` command."""

from __future__ import annotations

from taskq_core.cli import main

if __name__ == "__main__":
    main(prog_name="taskq")
