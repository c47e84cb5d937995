"""The ``taskq`` command line.

``main`` is a click group. Its own commands (``plugins``) are always there;
plugins add theirs with ``register.command(...)`` (core adds ``worker`` and the
inspection commands that way), and they are looked up only when the group
lists or runs commands, so ``taskq --version`` loads no plugin.
"""

from __future__ import annotations

import click

from taskq_core.cli.plugins_cmd import plugins_command
from taskq_core.exceptions import PluginError
from taskq_core.plugins import broker_cli_options, get_registry

__all__ = ["TaskqGroup", "broker_cli_options", "main"]


class TaskqGroup(click.Group):
    """A group whose commands also come from the plugin registry."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        commands: dict[str, click.Command] = {}
        for name, entry in get_registry().commands.items():
            if name in self.commands:
                raise PluginError(
                    f'Plugin "{entry.plugin}" registers the command "{name}", which is a '
                    "built-in taskq command; rename it"
                )
            commands[name] = entry.command
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        try:
            names.update(self._plugin_commands(ctx))
        except PluginError as exc:
            click.echo(f"Warning: plugin commands are not available: {exc}", err=True)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        try:
            return self._plugin_commands(ctx).get(cmd_name)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=TaskqGroup, context_settings={"help_option_names": ["--help"]})
@click.version_option(package_name="taskq-core", prog_name="taskq", message="%(prog)s %(version)s")
def main() -> None:
    """taskq: run workers and inspect queues.

    Plugins add brokers, runners and commands; `taskq plugins` lists them.
    """


main.add_command(plugins_command)
