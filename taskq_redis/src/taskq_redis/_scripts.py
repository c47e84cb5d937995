"""The Lua scripts: loading them, hashing them, the arguments of EVALSHA.

Per-queue scripts are the shared prelude ``lua/_queue.lua`` followed by the
script's own file; standalone scripts (locks, slots) are used as they are.
``_transport`` runs them with EVALSHA and loads them on NOSCRIPT (also inside
pipelines, so a pipeline with scripts is still one round trip when they are
cached).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["QUEUE_SCRIPTS", "STANDALONE_SCRIPTS", "Script", "ScriptSet", "lua_source"]

#: Scripts that receive the queue key set and get the prelude.
QUEUE_SCRIPTS = (
    "enqueue",
    "finish_pop",
    "recover_expired",
    "drop_expired_missing",
    "heartbeat",
    "move_due",
    "cancel",
    "delete",
    "retry_from_error",
    "update_scheduled_time",
    "purge_errors",
    "read",
)
#: Scripts on one key of their own.
STANDALONE_SCRIPTS = (
    "lock_acquire",
    "lock_renew",
    "lock_release",
    "slot_acquire",
    "system_lock_set",
    "system_lock_get",
)
PRELUDE = "_queue"


def lua_source(name: str) -> str:
    """The text of ``lua/<name>.lua`` shipped in the package."""
    return (resources.files("taskq_redis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Script:
    """One script: its name, full source and SHA1."""

    name: str
    source: str
    sha: str


class ScriptSet:
    """All scripts by name."""

    def __init__(self) -> None:
        prelude = lua_source(PRELUDE)
        self.scripts: dict[str, Script] = {}
        for name in QUEUE_SCRIPTS + STANDALONE_SCRIPTS:
            body = lua_source(name)
            source = f"{prelude}\n{body}" if name in QUEUE_SCRIPTS else body
            sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()
            self.scripts[name] = Script(name, source, sha)

    def __getitem__(self, name: str) -> Script:
        return self.scripts[name]

    def evalsha_args(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        """Arguments of ``EVALSHA`` for one call (tests wrap this to inspect KEYS)."""
        return (self.scripts[name].sha, len(keys), *keys, *args)
