"""The Flask extension, :class:`TaskQFlask`, and which app a ``TaskQ`` runs its tasks in."""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from flask import Flask, current_app, has_app_context

from taskq_core.app import TaskQ
from taskq_core.config import validate_config
from taskq_core.exceptions import ConfigError

__all__ = ["EXTENSION_KEY", "TaskQFlask", "app_context_for", "bind_app", "bound_app"]

#: The key of the extension in ``app.extensions``.
EXTENSION_KEY = "taskq"

#: The Flask app each TaskQ runs its tasks in (the last one it was bound to).
_apps: weakref.WeakKeyDictionary[TaskQ, Flask] = weakref.WeakKeyDictionary()


def bind_app(tq: TaskQ, app: Flask) -> None:
    """Run the tasks that ``tq`` executes inside ``app``'s application context."""
    _apps[tq] = app


def bound_app(tq: TaskQ) -> Flask | None:
    """The Flask app ``tq``'s tasks run in, or ``None``."""
    return _apps.get(tq)


def app_context_for(tq: TaskQ) -> AbstractContextManager[Any]:
    """What to run ``tq``'s tasks in: a fresh application context of its app;
    nothing when ``tq`` has no app, or when an application context of an app
    that uses ``tq`` is already active (an eager task called in a request)."""
    app = bound_app(tq)
    if app is None:
        return nullcontext()
    if has_app_context():
        active = current_app.extensions.get(EXTENSION_KEY)
        if isinstance(active, TaskQFlask) and active.taskq is tq:
            return nullcontext()
    return app.app_context()


def _default_url() -> str:
    from taskq_core.plugins import DEFAULT_BROKER_URL

    return os.environ.get("TASKQ_URL") or DEFAULT_BROKER_URL


class TaskQFlask:
    """taskq for a Flask app: configuration from ``app.config``, tasks run in the
    application context, and the ``flask taskq`` commands.

    Declare tasks on :attr:`taskq`, which exists from the start, so that task
    modules can be imported before any app (the app-factory pattern)::

        ext = TaskQFlask()

        @ext.taskq.task()
        def send_mail(to): ...

        def create_app():
            app = Flask(__name__)
            app.config["TASKQ_URL"] = "redis://localhost:6379/0"
            ext.init_app(app)
            return app

    :param app: the app to initialize now (else call :meth:`init_app` later).
    :param taskq: use this ``TaskQ`` as it is configured. Without it the
        extension creates one and :meth:`init_app` configures it from
        ``app.config``: ``TASKQ_URL`` (broker URL or name; default: the
        ``TASKQ_URL`` environment variable, else ``sqlite://``, the default
        SQLite file),
        ``TASKQ_CONFIG`` (taskq's configuration keys) and
        ``TASKQ_BROKER_OPTIONS`` (keyword options for the broker).
    """

    def __init__(self, app: Flask | None = None, taskq: TaskQ | None = None) -> None:
        self._owns_taskq = taskq is None
        #: The ``TaskQ``: declare tasks on it (``@ext.taskq.task()``).
        self.taskq: TaskQ = taskq if taskq is not None else TaskQ()
        self._broker_settings: tuple[Any, dict[str, Any]] | None = None
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"<TaskQFlask taskq={self.taskq!r}>"

    def init_app(self, app: Flask) -> None:
        """Configure the ``TaskQ`` from ``app.config`` (unless one was given),
        store the extension as ``app.extensions["taskq"]`` and run the tasks
        of this ``TaskQ`` inside ``app``'s application context.

        With several apps (an app factory called more than once), the last
        app initialized is the one tasks run in. Their broker settings must
        agree once the ``TaskQ`` has connected to its broker.
        """
        if self._owns_taskq:
            self._configure(app, app.config)
        app.extensions[EXTENSION_KEY] = self
        bind_app(self.taskq, app)
        _ensure_plugin()

    def _configure(self, app: Flask, config: Mapping[str, Any]) -> None:
        tq_config = config.get("TASKQ_CONFIG") or {}
        options = config.get("TASKQ_BROKER_OPTIONS") or {}
        if not isinstance(tq_config, Mapping):
            raise ConfigError(f"TASKQ_CONFIG must be a dict, got {type(tq_config).__name__}")
        if not isinstance(options, Mapping):
            raise ConfigError(f"TASKQ_BROKER_OPTIONS must be a dict, got {type(options).__name__}")
        try:
            validate_config(tq_config)
        except ConfigError as exc:
            raise ConfigError(f"TASKQ_CONFIG of {app!r}: {exc}") from exc
        settings = (config.get("TASKQ_URL") or _default_url(), dict(options))
        if settings != self._broker_settings:
            try:
                self.taskq.configure(settings[0], **settings[1])
            except ConfigError as exc:
                url, _ = self._broker_settings or (None, None)
                raise ConfigError(
                    f"init_app({app!r}): its broker settings (TASKQ_URL={settings[0]!r}, "
                    f"TASKQ_BROKER_OPTIONS={settings[1]!r}) differ from those the TaskQ is "
                    f"already connected with (TASKQ_URL={url!r}); one TaskQ talks to one "
                    "broker: give every app of this process the same broker settings, or "
                    "initialize the app before the TaskQ is used"
                ) from exc
            self._broker_settings = settings
        self.taskq.configure(config=tq_config)


def _ensure_plugin() -> None:
    """Register the app-context hook even if plugin autoloading left it out."""
    from taskq_core.plugins import get_plugin_manager
    from taskq_flask import plugin

    pm = get_plugin_manager()
    if not pm.is_registered(plugin):
        pm.register(plugin, name=None if pm.has_plugin("flask") else "flask")
