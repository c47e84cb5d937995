"""``taskq db upgrade [--dry-run]``: create or migrate the stored schema of a
broker that keeps one (the SQL brokers' tables).

It finds the broker the way ``taskq worker`` does (``--url``, ``--broker``,
``--app``, ``TASKQ_URL``, the default). ``--dry-run`` prints the SQL it would
run and changes nothing; a broker without a schema (memory, Redis) is told
apart with a message and exit status 0.
"""

from __future__ import annotations

from typing import Any

import click

from taskq_core.broker import Broker, SchemaPlan
from taskq_core.cli.common import AppCommand, app_options, make_app
from taskq_core.exceptions import BrokerError

__all__ = ["COMMANDS", "db", "describe_plan"]

_CTX = {"help_option_names": ["--help"]}


def _version(version: int | None) -> str:
    return "none" if version is None else str(version)


def describe_plan(plan: SchemaPlan, *, done: bool) -> str:
    """One line saying what the plan does (``done``: what it did)."""
    if not plan.statements:
        return f"The taskq schema of {plan.where} is at version {plan.current}: nothing to do."
    if done:
        if plan.stored is None:
            return f"Created the taskq schema (version {plan.current}) in {plan.where}."
        return (
            f"Upgraded the taskq schema of {plan.where} from version {plan.stored} "
            f"to {plan.current}."
        )
    return (
        f"The taskq schema of {plan.where} is at version {_version(plan.stored)}; "
        f"taskq writes version {plan.current}."
    )


def _print_sql(plan: SchemaPlan) -> None:
    click.echo(f"-- {describe_plan(plan, done=False)}")
    if not plan.statements:
        return
    click.echo("-- `taskq db upgrade` runs these statements in one transaction:")
    for statement in plan.statements:
        click.echo(f"{statement.strip()};")


def _broker_name(broker: Broker) -> str:
    return broker.name or type(broker).__name__


@click.group(context_settings=_CTX)
def db() -> None:
    """The stored schema of SQL brokers (their tables)."""


@db.command(cls=AppCommand, context_settings=_CTX)
@app_options
@click.option("--dry-run", is_flag=True, help="print the SQL it would run and change nothing")
def upgrade(dry_run: bool, **options: Any) -> None:
    """Create or migrate the broker's schema to the version this taskq writes.

    The broker is found as `taskq worker` finds it (--url, --broker, --app,
    TASKQ_URL). A broker that keeps no schema has nothing to upgrade (exit 0).
    """
    app = make_app(options)
    broker: Broker = app.broker
    try:
        plan = broker.schema_plan() if dry_run else broker.upgrade_schema()
    except BrokerError as exc:  # a newer schema, an unreachable server
        raise click.ClickException(str(exc)) from exc
    finally:
        broker.close()
    if plan is None:
        click.echo(f"The {_broker_name(broker)} broker keeps no schema: nothing to upgrade.")
        return
    if dry_run:
        _print_sql(plan)
    else:
        click.echo(describe_plan(plan, done=True))


#: the commands this module adds to ``taskq``
COMMANDS: list[click.Command] = [db]
