"""``taskq plugins``: what is installed and what each plugin provides."""

from __future__ import annotations

import json

import click

from taskq_core.exceptions import PluginError
from taskq_core.plugins import PluginInfo, plugin_infos

__all__ = ["format_plugin", "plugins_command"]


def format_plugin(info: PluginInfo) -> str:
    """A plugin as a few indented lines of text."""
    if info.distribution is None:
        origin = "registered in-process"
    else:
        origin = f"{info.distribution} {info.version or '(version unknown)'}"
    brokers = [
        name + (f" ({', '.join(scheme + '://' for scheme in schemes)})" if schemes else "")
        for name, schemes in info.brokers
    ]
    rows = [
        ("hooks", list(info.hooks)),
        ("brokers", brokers),
        ("runners", list(info.runners)),
        ("executors", list(info.executors)),
        ("commands", list(info.commands)),
    ]
    lines = [f"{info.name}: {origin}"]
    lines.extend(f"  {label + ':':<10} {', '.join(values) or '-'}" for label, values in rows)
    return "\n".join(lines)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
def plugins_command(as_json: bool) -> None:
    """List the loaded plugins with their distribution, hooks, brokers and runners.

    TASKQ_PLUGINS=name,name loads only those plugins (core always loads);
    TASKQ_DISABLE_PLUGIN_AUTOLOAD=1 loads none but core.
    """
    try:
        infos = plugin_infos()
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    click.echo("\n\n".join(format_plugin(info) for info in infos))
