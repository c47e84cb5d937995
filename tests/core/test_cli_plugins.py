"""The ``taskq`` group, ``taskq plugins`` and plugin commands; and what a
fresh environment with only taskq-core installed sees."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from taskq_core.cli import main

pytestmark = pytest.mark.usefixtures("plugin_env")

PROVIDER = """
import click
from taskq_core.broker import Broker
from taskq_core.hookspecs import hookimpl

_Concrete = type(
    "_Concrete",
    (Broker,),
    {name: (lambda self, *args, **kwargs: None) for name in Broker.__abstractmethods__},
)


class CarrierBroker(_Concrete):
    name = "carrier"


@click.command()
@click.option("--name", default="world")
def hello(name):
    '''Say hello.'''
    click.echo(f"hello {name}")


@hookimpl
def taskq_register(register):
    register.broker("carrier", CarrierBroker, schemes=("carrier", "pigeon"))
    register.runner("slow", "somewhere.runners:SlowRunner")
    register.command(hello)


@hookimpl
def taskq_task_failed(tq, task, execution, will_retry):
    pass
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="taskq")


def test_version() -> None:
    """``taskq --version`` prints taskq-core's version."""
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"taskq {importlib.metadata.version('taskq-core')}\n"


def test_dash_h_is_not_help() -> None:
    """Only ``--help`` shows help: ``-h`` is left free for plugins (Redis' host)."""
    assert invoke("--help").exit_code == 0
    result = invoke("-h")
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert "-h" in result.output.split("No such option", 1)[1]


def test_plugins_lists_core() -> None:
    """With autoload disabled ``taskq plugins`` shows core and what it registers."""
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"core: taskq-core {importlib.metadata.version('taskq-core')}"
    assert "  hooks:     taskq_register" in lines
    assert "  brokers:   memory (memory://), sqlite (sqlite://)" in lines
    assert "  runners:   default" in lines
    assert not [line for line in lines if line and not line.startswith(" ")][1:]


def test_plugins_shows_an_installed_plugin(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A discovered plugin appears with its distribution, hooks, brokers
    (with schemes), runners and commands."""
    fake_dists.add("carrier", PROVIDER, dist="taskq-carrier", version="2.0")
    monkeypatch.setenv("TASKQ_PLUGINS", "carrier")
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    block = result.output.split("\n\n")[1]
    assert block.splitlines() == [
        "carrier: taskq-carrier 2.0",
        "  hooks:     taskq_register, taskq_task_failed",
        "  brokers:   carrier (carrier://, pigeon://)",
        "  runners:   slow",
        "  executors: -",
        "  commands:  hello",
    ]


def test_plugins_json(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--json`` prints one object per plugin, core first."""
    fake_dists.add("carrier", PROVIDER, dist="taskq-carrier", version="2.0")
    monkeypatch.setenv("TASKQ_PLUGINS", "carrier")
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [entry["name"] for entry in data] == ["core", "carrier"]
    assert data[1] == {
        "name": "carrier",
        "distribution": "taskq-carrier",
        "version": "2.0",
        "hooks": ["taskq_register", "taskq_task_failed"],
        "brokers": [{"name": "carrier", "schemes": ["carrier", "pigeon"]}],
        "runners": ["slow"],
        "executors": [],
        "commands": ["hello"],
    }
    assert {"name": "memory", "schemes": ["memory"]} in data[0]["brokers"]


def test_plugins_reports_a_broken_plugin(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin that fails to import makes ``taskq plugins`` print the error and exit 1."""
    fake_dists.add("broken", "raise RuntimeError('half-installed')\n")
    monkeypatch.setenv("TASKQ_PLUGINS", "broken")
    result = invoke("plugins")
    assert result.exit_code == 1
    assert (
        'Error: Error importing plugin "broken" (taskq-broken 0.1): '
        "RuntimeError: half-installed" in result.output
    )


def test_plugin_command_is_added(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command registered by a plugin runs as ``taskq <name>`` and is listed in help."""
    fake_dists.add("carrier", PROVIDER, dist="taskq-carrier")
    monkeypatch.setenv("TASKQ_PLUGINS", "carrier")
    result = invoke("hello", "--name", "taskq")
    assert result.exit_code == 0, result.output
    assert result.output == "hello taskq\n"
    assert "hello" in invoke("--help").output


def test_unknown_command_with_broken_plugin_shows_the_error(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When plugins cannot load, asking for a plugin command prints why; help
    still lists the built-in commands with a warning."""
    fake_dists.add("broken", "raise RuntimeError('half-installed')\n")
    monkeypatch.setenv("TASKQ_PLUGINS", "broken")
    result = invoke("hello")
    assert result.exit_code == 1
    assert 'Error importing plugin "broken"' in result.output
    help_result = invoke("--help")
    assert help_result.exit_code == 0
    assert "Warning: plugin commands are not available" in help_result.output
    assert "plugins" in help_result.output


def test_plugin_may_not_replace_a_builtin_command(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin command named like a built-in one is refused with the plugin's name."""
    fake_dists.add(
        "shadow",
        """
        import click
        from taskq_core.hookspecs import hookimpl

        @hookimpl
        def taskq_register(register):
            register.command(click.Command("plugins"))
        """,
    )
    monkeypatch.setenv("TASKQ_PLUGINS", "shadow")
    result = invoke("nothing-here")
    assert result.exit_code == 1
    assert 'Plugin "shadow" registers the command "plugins"' in result.output


def test_python_m_lists_core_alone_with_autoload_disabled() -> None:
    """``python -m taskq_core.cli plugins`` with TASKQ_DISABLE_PLUGIN_AUTOLOAD=1
    lists core and nothing else, in this very environment."""
    result = subprocess.run(
        [sys.executable, "-m", "taskq_core.cli", "plugins", "--json"],
        env={"TASKQ_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["core"]


# -- executors registered by plugins -------------------------------------------------------

EXECUTOR_PLUGIN = """
import os

from taskq_core.executors import SyncExecutor
from taskq_core.hookspecs import hookimpl


class TracingExecutor(SyncExecutor):
    '''Runs tasks like sync, and writes the ids it ran to $EXECUTOR_TRACE.'''

    def execute(self, tasks, heartbeat):
        with open(os.environ["EXECUTOR_TRACE"], "a") as fh:
            fh.write(",".join(t.id for t in tasks) + "\\n")
        return super().execute(tasks, heartbeat)


@hookimpl
def taskq_register(register):
    register.executor("tracing", TracingExecutor)
"""

EXECUTOR_APP = """
from taskq_core import TaskQ

tq = TaskQ("memory://")


def job():
    pass


QUEUED = tq.delay(job).id
"""


def test_worker_executor_choices_come_from_the_registry(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`taskq worker --executor` offers every registered executor, a plugin's
    included (in --help and in the error for an unknown one)."""
    fake_dists.add("tracing", EXECUTOR_PLUGIN, dist="taskq-tracing")
    monkeypatch.setenv("TASKQ_PLUGINS", "tracing")
    result = invoke("worker", "--help")
    assert result.exit_code == 0, result.output
    assert "[asyncio|fork|pool|sync|threads|tracing]" in result.output
    result = invoke("worker", "--executor", "nosuch", "--url", "memory://", "--burst")
    assert result.exit_code == 2
    assert (
        "'nosuch' is not one of 'asyncio', 'fork', 'pool', 'sync', 'threads', 'tracing'"
        in result.output
    )


def test_worker_runs_with_an_executor_a_plugin_registers(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """`taskq worker --executor tracing` (registered by an installed plugin)
    runs the worker with that executor: it runs the queued task."""
    fake_dists.add("tracing", EXECUTOR_PLUGIN, dist="taskq-tracing")
    (fake_dists.site / "executor_app.py").write_text(EXECUTOR_APP)
    trace = tmp_path / "trace"
    command = [sys.executable, "-m", "taskq_core.cli", "worker", "--app", "executor_app:tq"]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(fake_dists.site),
        "TASKQ_DISABLE_PLUGIN_AUTOLOAD": "1",
        "TASKQ_PLUGINS": "tracing",
        "EXECUTOR_TRACE": str(trace),
    }
    result = subprocess.run(
        [*command, "--executor", "tracing", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"executor": "TracingExecutor"' in result.stderr
    assert len(trace.read_text().splitlines()) == 1


# -- a fresh environment with only taskq-core --------------------------------------------


def test_fresh_environment_lists_core_alone(isolated_python: Any) -> None:
    """With only taskq-core installed and no switches, ``taskq plugins`` lists core alone."""
    result = isolated_python.run("-m", "taskq_core.cli", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["core"]


def test_fresh_environment_says_which_distribution_provides_redis(isolated_python: Any) -> None:
    """Asking for the redis broker with only taskq-core installed says to
    install taskq-redis."""
    code = (
        "from taskq_core.plugins import make_broker\n"
        "try:\n"
        "    make_broker('redis')\n"
        "except LookupError as exc:\n"
        "    print(exc)\n"
    )
    result = isolated_python.run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        'Unknown broker "redis". Installed brokers: memory (memory://), sqlite (sqlite://). '
        'The "redis" broker is provided by taskq-redis: '
        "install it with `pip install taskq-redis`."
    )


def test_fresh_environment_discovers_installed_plugin(
    isolated_python: Any, fake_dists: Any
) -> None:
    """Installing a plugin distribution is enough for it to load (no switch);
    TASKQ_DISABLE_PLUGIN_AUTOLOAD=1 keeps it out and TASKQ_PLUGINS=core too."""
    fake_dists.add("carrier", PROVIDER, dist="taskq-carrier")
    listing = ("-m", "taskq_core.cli", "plugins", "--json")

    def names(env: dict[str, str]) -> list[str]:
        result = isolated_python.run(*listing, extra_paths=(fake_dists.site,), env=env)
        assert result.returncode == 0, result.stderr
        return [entry["name"] for entry in json.loads(result.stdout)]

    assert names({}) == ["core", "carrier"]
    assert names({"TASKQ_DISABLE_PLUGIN_AUTOLOAD": "1"}) == ["core"]
    assert names({"TASKQ_PLUGINS": "core"}) == ["core"]
    hello = isolated_python.run("-m", "taskq_core.cli", "hello", extra_paths=(fake_dists.site,))
    assert hello.stdout == "hello world\n", hello.stderr


def test_installing_taskq_redis_adds_the_redis_broker(isolated_pythons: Any) -> None:
    """With taskq-core and taskq-redis installed, ``taskq plugins`` lists redis
    and its broker schemes."""
    try:
        importlib.metadata.distribution("taskq-redis")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("taskq-redis is not installed in this environment")
    python = isolated_pythons("taskq-core", "taskq-redis")
    result = python.run("-m", "taskq_core.cli", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert list(listing) == ["core", "redis"]
    assert listing["redis"]["distribution"] == "taskq-redis"
    assert {"name": "redis", "schemes": ["redis", "rediss", "unix"]} in listing["redis"]["brokers"]
