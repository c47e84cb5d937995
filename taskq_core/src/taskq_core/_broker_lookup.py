"""Finding and building brokers by name or URL, and their CLI options
(re-exported by :mod:`taskq_core.plugins`)."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskq_core._plugin_manager import (
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    _allow_list,
    _distribution_name,
    _env_flag,
    _installed_version,
    _manager,
    get_registry,
)
from taskq_core._registry import ALLOW_LIST_ENV, BrokerEntry
from taskq_core.broker import Broker
from taskq_core.exceptions import PluginError, UnknownBrokerError

if TYPE_CHECKING:
    import click

__all__ = [
    "DEFAULT_BROKER_URL",
    "KNOWN_BROKER_DISTRIBUTIONS",
    "broker_cli_options",
    "get_broker_entry",
    "make_broker",
]

#: The broker used when neither an argument nor ``TASKQ_URL`` names one: the
#: SQLite broker on its default file (``$TASKQ_SQLITE_PATH``, else
#: ``$XDG_DATA_HOME/taskq/taskq.db``, else ``~/.local/share/taskq/taskq.db``),
#: which needs no server.
DEFAULT_BROKER_URL = "sqlite://"

#: Which distribution provides a broker name or URL scheme, for the error
#: message when it is not installed.
KNOWN_BROKER_DISTRIBUTIONS: Mapping[str, str] = {
    "redis": "taskq-redis",
    "rediss": "taskq-redis",
    "unix": "taskq-redis",
    "memory": "taskq-core",
    "sqlite": "taskq-core",
    "postgres": "taskq-postgres",
    "postgresql": "taskq-postgres",
}


def _scheme_of(spec: str) -> str | None:
    if "://" not in spec:
        return None
    return spec.split("://", 1)[0].lower()


def get_broker_entry(name_or_scheme: str) -> BrokerEntry:
    """The registered broker for a name (``"redis"``), a scheme or a URL.

    Raises :class:`~taskq_core.exceptions.UnknownBrokerError` that lists the
    installed brokers and, when known, the distribution to install.
    """
    registry = get_registry()
    scheme = _scheme_of(name_or_scheme)
    if scheme is not None:
        entry = registry.schemes.get(scheme)
        if entry is None:
            raise UnknownBrokerError(_unknown_broker_message(scheme, is_scheme=True))
        return entry
    entry = registry.brokers.get(name_or_scheme) or registry.schemes.get(name_or_scheme.lower())
    if entry is None:
        raise UnknownBrokerError(_unknown_broker_message(name_or_scheme, is_scheme=False))
    return entry


def make_broker(spec: str | Broker | None = None, **options: Any) -> Broker:
    """Build a broker from a name (``"redis"``), a URL (``"redis://..."``,
    ``"memory://"``) or return a broker instance as is.

    A URL is passed to the broker's factory as ``url=``; ``options`` are
    passed as keyword arguments. ``None`` means env ``TASKQ_URL``, else
    :data:`DEFAULT_BROKER_URL` (the default SQLite file).
    """
    if isinstance(spec, Broker):
        if options:
            raise TypeError(f"options {sorted(options)} cannot be applied to a broker instance")
        return spec
    if spec is None:
        spec = os.environ.get("TASKQ_URL") or DEFAULT_BROKER_URL
    if not isinstance(spec, str):
        raise TypeError(f"a broker is a name, a URL or a Broker instance, not {spec!r}")
    entry = get_broker_entry(spec)
    if _scheme_of(spec) is not None:
        broker = entry.factory(url=spec, **options)
    else:
        broker = entry.factory(**options)
    if not isinstance(broker, Broker):
        raise PluginError(
            f'The factory of broker "{entry.name}" (plugin "{entry.plugin}") returned '
            f"{broker!r}, which is not a taskq_core.broker.Broker"
        )
    return broker


def _unknown_broker_message(name: str, *, is_scheme: bool) -> str:
    registry = get_registry()
    if is_scheme:
        head = f'No installed broker handles the URL scheme "{name}://".'
    else:
        head = f'Unknown broker "{name}".'
    installed = ", ".join(
        entry.name + (f" ({', '.join(s + '://' for s in entry.schemes)})" if entry.schemes else "")
        for entry in registry.brokers.values()
    )
    parts = [head, f"Installed brokers: {installed or 'none'}."]
    distribution = KNOWN_BROKER_DISTRIBUTIONS.get(name.lower())
    if distribution is not None:
        parts.append(_install_hint(name, distribution))
    return " ".join(parts)


def _install_hint(name: str, distribution: str) -> str:
    version = _installed_version(distribution)
    if version is None:
        return (
            f'The "{name}" broker is provided by {distribution}: install it with '
            f"`pip install {distribution}`."
        )
    pm = _manager()
    not_loaded = [
        entry_point.name
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if _distribution_name(entry_point) == distribution
        and pm.get_plugin(entry_point.name) is None
    ]
    if not not_loaded:
        return (
            f'The "{name}" broker is provided by {distribution}, and {distribution} {version} '
            f"is installed but does not register it; upgrade {distribution}."
        )
    plugin_names = ", ".join(f'"{n}"' for n in not_loaded)
    if _allow_list() is not None:
        why = f"{ALLOW_LIST_ENV}={os.environ.get(ALLOW_LIST_ENV, '')!r} does not list it"
        fix = f"add {plugin_names} to {ALLOW_LIST_ENV}"
    elif _env_flag(DISABLE_AUTOLOAD_ENV):
        why = f"{DISABLE_AUTOLOAD_ENV} is set"
        fix = f"unset it or set {ALLOW_LIST_ENV} to include {plugin_names}"
    else:
        why = "it was installed after this process loaded its plugins"
        fix = "restart the process"
    return (
        f'The "{name}" broker is provided by {distribution} {version}, which is installed, '
        f"but its plugin {plugin_names} is not loaded because {why}: {fix}."
    )


def broker_cli_options() -> list[click.Parameter]:
    """The click options of every registered broker, for ``taskq worker``.

    An option declared identically by two brokers is listed once; two
    different options that claim the same name or flag are a
    :class:`~taskq_core.exceptions.PluginError`.
    """
    taken: dict[str, tuple[click.Parameter, BrokerEntry]] = {}
    params: list[click.Parameter] = []
    for entry in get_registry().brokers.values():
        for param in entry.cli_options:
            keys = [f"name:{param.name}", *param.opts, *param.secondary_opts]
            clashes = {id(taken[key][0]): taken[key] for key in keys if key in taken}
            if not clashes:
                for key in keys:
                    taken[key] = (param, entry)
                params.append(param)
                continue
            other, other_entry = next(iter(clashes.values()))
            same = (
                len(clashes) == 1
                and other.name == param.name
                and other.opts == param.opts
                and other.secondary_opts == param.secondary_opts
            )
            if not same:
                raise PluginError(
                    f"The CLI option {'/'.join(param.opts)} of broker {entry.name!r} (plugin "
                    f'"{entry.plugin}") clashes with {"/".join(other.opts)} of broker '
                    f'{other_entry.name!r} (plugin "{other_entry.plugin}")'
                )
    return params
