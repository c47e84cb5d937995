"""The SQLite broker (``sqlite://``): the whole broker contract on one file,
with the standard library's :mod:`sqlite3` only.

Any number of worker processes (with any executor) and threads on one
machine share the file. It is in WAL mode (readers never wait for writers),
every state move is one ``BEGIN IMMEDIATE`` transaction, and the schema is
created and migrated by taskq (a version table; a newer schema than this
taskq knows is refused)::

    broker = SQLiteBroker("queue.db")              # or SQLiteBroker(url="sqlite:///queue.db")
    tq = TaskQ(broker="sqlite:////var/lib/myapp/queue.db")
    tq = TaskQ(broker="sqlite://")                 # the default file

``sqlite://`` names the default file: ``$TASKQ_SQLITE_PATH`` when set, else
``taskq/taskq.db`` in the user's data directory (``$XDG_DATA_HOME``, else
``~/.local/share``); see :func:`default_path`.

It is built like the memory broker, one module per section: ``_store``
(connections and transactions), ``_rows`` (the row helpers), ``_moves``
(enqueue, pop, heartbeat, finish), ``_recovery`` (lost runs, due tasks),
``_ending`` (the end of a run both share), ``_inspection`` (inspection and
repair), ``_coordination`` (locks, queue slots, rate limits, notifications)
and ``_broker``, where :class:`SQLiteBroker` composes them; ``_schema`` holds
the tables and their migrations, ``_connection`` the per-thread connections,
``_forkgate`` keeps forks out of transactions, ``_wakeups`` wakes the
waiters of other processes, ``_codec`` checks what goes in and out,
``_location`` has the URLs and the default file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taskq_core.brokers.sqlite._location import DEFAULT_PATH_ENV, default_path

if TYPE_CHECKING:
    from taskq_core.brokers.sqlite._broker import SQLiteBroker
    from taskq_core.brokers.sqlite._schema import CURRENT_VERSION as SCHEMA_VERSION

__all__ = ["DEFAULT_PATH_ENV", "SCHEMA_VERSION", "SQLiteBroker", "default_path"]

#: loaded on first use, so that a process on another broker never loads
#: :mod:`sqlite3` (the core plugin registers this broker in every process)
_LAZY = {
    "SQLiteBroker": ("taskq_core.brokers.sqlite._broker", "SQLiteBroker"),
    "SCHEMA_VERSION": ("taskq_core.brokers.sqlite._schema", "CURRENT_VERSION"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
