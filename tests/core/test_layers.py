"""The layers of ``docs/architecture.md`` as a user sees them: importing a
low layer loads nothing above it, and ``import taskq_core`` stays light.
(``lint-imports`` in ``nox -s lint`` checks every import statement.)"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(statement: str) -> set[str]:
    code = (
        f"import sys\n{statement}\n"
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in "
        "('taskq_core', 'click', 'taskq_redis')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_states_imports_no_other_taskq_module() -> None:
    """``import taskq_core.states`` loads only that module (and the package)."""
    assert _loaded_after("import taskq_core.states") == {"taskq_core", "taskq_core.states"}


def test_retry_imports_only_leaves() -> None:
    """``import taskq_core.retry`` loads only the leaves it is built on."""
    assert _loaded_after("import taskq_core.retry") <= {
        "taskq_core",
        "taskq_core.retry",
        "taskq_core.exceptions",
        "taskq_core._internal",
        "taskq_core.task_modules",
    }


@pytest.mark.parametrize(
    "statement",
    ["import taskq_core", "from taskq_core import TaskQ, Task, fixed", "import taskq_core.app"],
)
def test_taskq_core_does_not_import_click_or_the_cli(statement: str) -> None:
    """Importing the package or its app loads neither click nor the CLI nor
    the worker (they load when a command or a worker runs)."""
    loaded = _loaded_after(statement)
    assert "click" not in loaded
    assert not {m for m in loaded if m.startswith(("taskq_core.cli", "taskq_core.worker"))}


def test_lazy_names_are_the_real_objects() -> None:
    """The package's lazily loaded names are the objects of their modules."""
    import taskq_core
    from taskq_core import app, retry

    assert taskq_core.TaskQ is app.TaskQ
    assert taskq_core.fixed is retry.fixed
    assert set(taskq_core.__all__) <= set(dir(taskq_core))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        taskq_core.nope  # noqa: B018


def test_a_worker_on_another_broker_never_loads_sqlite3() -> None:
    """The core plugin registers the SQLite broker in every process, but its
    modules and :mod:`sqlite3` load only when a SQLite broker is built (a
    worker's memory is smaller for it)."""
    code = (
        "import sys\n"
        "from taskq_core import TaskQ\n"
        "tq = TaskQ('memory://', config={'STATS_INTERVAL': 0})\n"
        "tq.run_worker(burst=True)\n"
        "print('MODULES', *(m for m in sys.modules if m == 'sqlite3' or 'brokers.sqlite.' in m))\n"
        "from taskq_core.brokers.sqlite import SQLiteBroker, SCHEMA_VERSION\n"
        "from taskq_core.brokers.sqlite._broker import SQLiteBroker as Real\n"
        "assert SQLiteBroker is Real and isinstance(SCHEMA_VERSION, int)\n"
        "print('LOADED', 'sqlite3' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert [line for line in out if line.startswith("MODULES")] == [
        "MODULES taskq_core.brokers.sqlite._location"
    ]
    assert [line for line in out if line.startswith("LOADED")] == ["LOADED True"]
