"""What framework integrations (taskq-flask) build on: ``TaskQ.configure``, a
``TaskQ`` handed to the CLI commands by a parent command, and the reusable
worker options."""

from __future__ import annotations

from typing import Any

import click
import pytest
import tasks_fixture as tf
from click.testing import CliRunner

from taskq_core import TaskQ
from taskq_core.cli.inspect_cmd import COMMANDS
from taskq_core.cli.worker_cmd import run_worker_command, worker_options
from taskq_core.exceptions import ConfigError


def test_configure_before_use_sets_broker_and_config() -> None:
    """configure() before the first use replaces the broker settings and the config."""
    tq = TaskQ("redis://nowhere.invalid:1/0")
    tq.configure("memory://", config={"DEFAULT_QUEUE": "web", "LOGGER_NAME": "mine"})
    assert tq.config["DEFAULT_QUEUE"] == "web"
    assert type(tq.broker).__name__ == "MemoryBroker"


def test_configure_passes_broker_options() -> None:
    """Broker options given to configure() reach the broker factory."""
    tq = TaskQ()
    tq.configure("memory://", clock=lambda: 42.0)
    assert tq.broker.time() == 42.0


def test_configure_config_replaces_the_given_keys() -> None:
    """configure(config=...) starts again from the defaults plus the new keys."""
    tq = TaskQ("memory://", config={"DEFAULT_QUEUE": "web", "ALWAYS_EAGER": True})
    tq.configure(config={"DEFAULT_QUEUE": "api"})
    assert tq.config["DEFAULT_QUEUE"] == "api"
    assert tq.config["ALWAYS_EAGER"] is False


def test_configure_validates_config() -> None:
    """An unknown key given to configure() is a ConfigError and changes nothing."""
    tq = TaskQ("memory://", config={"DEFAULT_QUEUE": "web"})
    with pytest.raises(ConfigError, match="NOPE"):
        tq.configure(config={"NOPE": 1})
    assert tq.config["DEFAULT_QUEUE"] == "web"


def test_configure_broker_after_connection_is_an_error() -> None:
    """Once the broker is connected, changing the broker settings is refused (the
    config may still change)."""
    tq = TaskQ("memory://")
    broker = tq.broker
    with pytest.raises(ConfigError, match="already connected"):
        tq.configure("memory://other")
    with pytest.raises(ConfigError, match="already connected"):
        tq.configure(clock=lambda: 1.0)
    tq.configure(config={"DEFAULT_QUEUE": "later"})
    assert tq.broker is broker
    assert tq.config["DEFAULT_QUEUE"] == "later"


def test_inspection_commands_use_a_taskq_given_by_the_parent_command() -> None:
    """A group that puts a TaskQ in ctx.obj makes the inspection commands use it."""
    tq = TaskQ("memory://")
    tq.delay(tf.record, queue="given")  # a builtin such as print is refused

    @click.group()
    @click.pass_context
    def parent(ctx: click.Context) -> None:
        ctx.obj = tq

    for command in COMMANDS:
        parent.add_command(command)
    result = CliRunner().invoke(parent, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    assert '"given"' in result.output


def test_worker_options_are_reusable() -> None:
    """worker_options() adds the worker options to another command and
    run_worker_command() runs that app's worker with them."""
    tq = TaskQ("memory://")
    seen: list[Any] = []
    tq.run_worker = lambda **kw: seen.append(kw)  # type: ignore[method-assign]

    @click.command()
    @worker_options
    def mine(**params: Any) -> None:
        run_worker_command(tq, params)

    result = CliRunner().invoke(mine, ["--burst", "-q", "a,b", "--executor", "sync"])
    assert result.exit_code == 0, result.output
    assert seen[0]["burst"] is True
    assert seen[0]["queues"] == ["a", "b"]
    assert seen[0]["executor"] == "sync"
