"""Configuration keys, their defaults and their types.

The keys and defaults are TaskTiger's. Unlike TaskTiger, an unknown key or a
value of the wrong type is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskq_core.exceptions import ConfigError
from taskq_core.retry import fixed, policy_rule, serialize_retry_method
from taskq_core.task_modules import normalize_allowed_modules

__all__ = ["DEFAULTS", "DEFAULT_EXECUTOR", "Setting", "validate_config"]


class _DefaultExecutor(str):
    """``"fork"``, but recognisable as "not chosen by the user"."""

    __slots__ = ()


#: the default executor: ``fork``, or ``sync`` with a broker that cannot fork.
DEFAULT_EXECUTOR: str = _DefaultExecutor("fork")


@dataclass(frozen=True)
class Setting:
    """One configuration key: its default, accepted types and meaning."""

    default: Any
    types: tuple[type, ...]
    help: str
    nullable: bool = False


def _default_retry() -> Any:
    return fixed(60, 3)


_NUM = (int, float)

#: Every configuration key. Time values are seconds and accept floats.
SETTINGS: dict[str, Setting] = {
    "ALWAYS_EAGER": Setting(False, (bool,), "run tasks due now inline in delay()"),
    "BATCH_QUEUES": Setting({}, (dict,), "{queue: batch size}; most specific queue wins"),
    "ONLY_QUEUES": Setting([], (list, tuple, set, frozenset), "default include list"),
    "EXCLUDE_QUEUES": Setting([], (list, tuple, set, frozenset), "default exclude list"),
    "SINGLE_WORKER_QUEUES": Setting(
        [], (list, tuple, set, frozenset), "queues (and subqueues) one worker at a time"
    ),
    "DEFAULT_QUEUE": Setting("default", (str,), "queue of tasks that name none"),
    "DEFAULT_RETRY_METHOD": Setting(
        None, (object,), "retry policy for retry=True/retry_on", nullable=True
    ),
    "DEFAULT_HARD_TIMEOUT": Setting(300, _NUM, "seconds before a run is killed"),
    "LOCK_RETRY": Setting(1, _NUM, "seconds until a task that met a lock is retried"),
    "ACTIVE_TASK_UPDATE_TIMER": Setting(10, _NUM, "heartbeat period"),
    "ACTIVE_TASK_UPDATE_TIMEOUT": Setting(60, _NUM, "heartbeat age at which a task is lost"),
    "REQUEUE_EXPIRED_TASKS_INTERVAL": Setting(30, _NUM, "seconds between lost-task scans"),
    "REQUEUE_EXPIRED_TASKS_BATCH_SIZE": Setting(10, (int,), "lost tasks handled per scan"),
    "QUEUE_SCHEDULED_TASKS_TIME": Setting(1, _NUM, "seconds between due-task moves"),
    "SCHEDULED_TASK_BATCH_SIZE": Setting(1000, (int,), "due tasks moved per queue per scan"),
    "SELECT_TIMEOUT": Setting(1, _NUM, "longest idle wait for a notification"),
    "QUEUE_RESYNC_INTERVAL": Setting(10, _NUM, "seconds between full re-reads of queue names"),
    "STORE_TRACEBACKS": Setting(True, (bool,), "keep tracebacks in execution records"),
    "POOL_MAX_TASKS_PER_CHILD": Setting(
        1000, (int,), "tasks a pool executor child runs before it is replaced"
    ),
    "POOL_MAX_MEMORY_PER_CHILD": Setting(
        None, _NUM, "megabytes of RSS after which a pool child is replaced", nullable=True
    ),
    "FORK_AHEAD": Setting(True, (bool,), "fork executor: fork the next child while a task runs"),
    "CONCURRENCY": Setting(1, (int,), "task groups a worker runs at once (--concurrency)"),
    "CHILD_CONTEXT_MANAGERS": Setting([], (list, tuple), "context managers around every run"),
    "STATS_INTERVAL": Setting(60, _NUM, "seconds between 'stats' log lines; 0 disables"),
    "LOGGER_NAME": Setting("taskq", (str,), "structlog logger name"),
    "ALLOWED_TASK_MODULES": Setting(
        None,
        (list, tuple, set, frozenset),
        "modules (and their submodules) whose callables tasks may name; None: any "
        "module outside the standard library",
        nullable=True,
    ),
    "PLUGIN_CONFIG": Setting({}, (dict,), "settings for plugins, keyed by plugin name"),
}

DEFAULTS: dict[str, Any] = {key: setting.default for key, setting in SETTINGS.items()}


def validate_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults merged with ``config``; raises :class:`ConfigError` naming a bad key."""
    merged: dict[str, Any] = {
        key: (list(v) if isinstance(v, list) else v) for key, v in DEFAULTS.items()
    }
    given: dict[str, Any] = dict(config or {})
    merged["BATCH_QUEUES"] = {}
    merged["PLUGIN_CONFIG"] = {}
    for key, value in given.items():
        setting = SETTINGS.get(key)
        if setting is None:
            close = [k for k in SETTINGS if k.split("_")[0] == str(key).split("_")[0]]
            hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
            raise ConfigError(
                f"unknown config key {key!r}{hint}; known keys: {', '.join(sorted(SETTINGS))}"
            )
        if value is None and setting.nullable:
            merged[key] = value
            continue
        bad_bool = isinstance(value, bool) and bool not in setting.types
        if bad_bool or not isinstance(value, setting.types):
            expected = " or ".join(t.__name__ for t in setting.types)
            raise ConfigError(
                f"config key {key!r} must be {expected}, got {type(value).__name__} {value!r}"
            )
        if isinstance(value, int | float) and setting.types == _NUM and not value >= 0:
            raise ConfigError(f"config key {key!r} must be a number >= 0, got {value!r}")
        merged[key] = value
    for key in ("CONCURRENCY", "POOL_MAX_TASKS_PER_CHILD"):
        if isinstance(merged[key], bool) or merged[key] < 1:
            raise ConfigError(
                f"config key {key!r} must be a whole number >= 1, got {merged[key]!r}"
            )
    batch_queues: dict[Any, Any] = merged["BATCH_QUEUES"]
    for name, size in batch_queues.items():
        valid = isinstance(name, str) and isinstance(size, int) and not isinstance(size, bool)
        if not valid or size < 1:
            raise ConfigError(
                f"BATCH_QUEUES must map queue names to positive ints, got {name!r}: {size!r}"
            )
    if merged["ALLOWED_TASK_MODULES"] is not None:
        try:
            merged["ALLOWED_TASK_MODULES"] = normalize_allowed_modules(
                merged["ALLOWED_TASK_MODULES"]
            )
        except ValueError as exc:
            raise ConfigError(f"config key 'ALLOWED_TASK_MODULES' {exc}") from exc
    if merged["DEFAULT_RETRY_METHOD"] is None:
        merged["DEFAULT_RETRY_METHOD"] = _default_retry()
    else:
        try:
            spec = serialize_retry_method(merged["DEFAULT_RETRY_METHOD"])
            policy_rule(merged["ALLOWED_TASK_MODULES"]).check_path(spec[0], "retry method")
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"config key 'DEFAULT_RETRY_METHOD' is not a usable retry policy: {exc}"
            ) from exc
    for manager in merged["CHILD_CONTEXT_MANAGERS"]:
        if isinstance(manager, type) or not (
            hasattr(manager, "__enter__") and hasattr(manager, "__exit__")
        ):
            raise ConfigError(
                "config key 'CHILD_CONTEXT_MANAGERS' must list context manager instances, "
                f"got {manager!r}"
            )
    return merged
