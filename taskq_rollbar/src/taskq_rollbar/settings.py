"""The plugin's settings: ``PLUGIN_CONFIG["rollbar"]``, else the environment.

Every key is checked; a wrong one is a :class:`~taskq_core.exceptions.ConfigError`
that names it and says what it expects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskq_core.exceptions import ConfigError

__all__ = ["LEVELS", "SETTING_NAMES", "RollbarSettings", "load_settings"]

#: The levels Rollbar accepts.
LEVELS = ("critical", "error", "warning", "info", "debug")

#: Settings read from the environment when ``PLUGIN_CONFIG["rollbar"]`` lacks them.
ENVIRONMENT_VARIABLES = {
    "access_token": "ROLLBAR_ACCESS_TOKEN",
    "environment": "ROLLBAR_ENVIRONMENT",
    "endpoint": "ROLLBAR_ENDPOINT",
}


@dataclass(frozen=True)
class RollbarSettings:
    """What the plugin reports, and how it talks to Rollbar."""

    #: the project's ``post_server_item`` token; ``None``: the plugin is inert
    #: (unless the application called ``rollbar.init`` itself).
    access_token: str | None = None
    #: Rollbar's environment name.
    environment: str = "production"
    #: the API URL items are posted to (``None``: Rollbar's own).
    endpoint: str | None = None
    #: level of permanent failures.
    level: str = "error"
    #: report failures that will be retried too.
    report_retries: bool = False
    #: level of retried failures.
    retry_level: str = "warning"
    #: report a retried failure only once the task has failed this many times.
    min_executions: int | None = None
    #: include the task's ``args`` and ``kwargs`` in reports.
    include_args: bool = False
    #: seconds an HTTP request to Rollbar may take.
    timeout: float = 3.0
    #: seconds a stopping worker waits for reports still being sent.
    flush_timeout: float = 5.0
    #: ``False`` turns reporting off without uninstalling the plugin.
    enabled: bool = True

    def reports_retry(self, executions: int) -> bool:
        """Whether a failure that will be retried, the task's ``executions``-th
        failed run, is reported."""
        if not (self.report_retries or self.min_executions is not None):
            return False
        return executions >= (self.min_executions or 1)


#: Every setting name, in the order the docs list them.
SETTING_NAMES = tuple(RollbarSettings.__dataclass_fields__)

_BOOLS = ("report_retries", "include_args", "enabled")
_TEXTS = ("access_token", "environment", "endpoint")
_LEVEL_KEYS = ("level", "retry_level")
_SECONDS = ("timeout", "flush_timeout")


def _fail(key: str, message: str, value: Any) -> ConfigError:
    return ConfigError(
        f'PLUGIN_CONFIG["rollbar"][{key!r}] {message}, got {type(value).__name__} {value!r}'
    )


def _check(key: str, value: Any) -> Any:
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise _fail(key, "must be True or False", value)
        return value
    if key in _TEXTS:
        if value is None and key != "environment":
            return None
        if not isinstance(value, str) or not value.strip():
            raise _fail(key, "must be a non-empty string", value)
        value = value.strip()
        if key == "endpoint":
            if not value.startswith(("http://", "https://")):
                raise _fail(key, "must be an http:// or https:// URL", value)
            # Rollbar joins "item/" to it: without the slash the last part is lost
            if not value.endswith("/"):
                value += "/"
        return value
    if key in _LEVEL_KEYS:
        if value not in LEVELS:
            raise _fail(key, f"must be one of {', '.join(LEVELS)}", value)
        return value
    if key in _SECONDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(key, "must be a number of seconds", value)
        if value < 0 or (key == "timeout" and value == 0):
            raise _fail(key, "must be positive" if key == "timeout" else "must be >= 0", value)
        return float(value)
    if key == "min_executions":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(key, "must be a whole number >= 1 (or None)", value)
        return value
    raise AssertionError(key)  # pragma: no cover - SETTING_NAMES lists every key


def load_settings(
    config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> RollbarSettings:
    """The settings from ``config`` (the ``PLUGIN_CONFIG["rollbar"]`` dict),
    with ``access_token``, ``environment`` and ``endpoint`` taken from
    ``ROLLBAR_ACCESS_TOKEN``, ``ROLLBAR_ENVIRONMENT`` and ``ROLLBAR_ENDPOINT``
    when ``config`` does not give them.

    :raises ConfigError: naming the key that is unknown or has a bad value.
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(
            'PLUGIN_CONFIG["rollbar"] must be a dict of settings, got '
            f"{type(config).__name__} {config!r}"
        )
    environ = os.environ if environ is None else environ
    unknown = sorted(str(key) for key in config if key not in SETTING_NAMES)
    if unknown:
        raise ConfigError(
            f'unknown PLUGIN_CONFIG["rollbar"] setting(s) {", ".join(map(repr, unknown))}; '
            f"known settings: {', '.join(SETTING_NAMES)}"
        )
    values: dict[str, Any] = {}
    for key, variable in ENVIRONMENT_VARIABLES.items():
        if key not in config and environ.get(variable, "").strip():
            try:
                values[key] = _check(key, environ[variable])
            except ConfigError as exc:
                raise ConfigError(f"environment variable {variable}: {exc}") from None
    for key, value in config.items():
        values[key] = _check(key, value)
    if values.get("report_retries") is False and values.get("min_executions") is not None:
        raise ConfigError(
            'PLUGIN_CONFIG["rollbar"] sets min_executions (report retried failures from the '
            "N-th failed run) and report_retries=False (never report retried failures); "
            "drop one of them"
        )
    return RollbarSettings(**values)
