"""A Flask app made by a factory (``flask --app "factory_app:create_app()"``).

Tasks are declared on ``ext.taskq`` at import time, before any app exists;
``create_app`` configures the ``TaskQ`` from ``app.config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import flask_testext
from flask import Flask

from taskq_flask import TaskQFlask

ext = TaskQFlask()


@ext.taskq.task()
def report(name: str, value: str = "") -> None:
    """Record what the task sees of the app."""
    flask_testext.report(name, value)


@ext.taskq.task(queue="mail")
def fail(name: str) -> None:
    """Fail on purpose."""
    flask_testext.fail(name)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory: settings, then extensions."""
    app = Flask("factory_app")
    app.config.update(
        GREETING="hello from the factory",
        GREETER_NAME="factory greeter",
        TRACE_DIR=os.environ.get("TASKQ_TEST_DIR"),
        TASKQ_CONFIG={"SELECT_TIMEOUT": 0.2, "STATS_INTERVAL": 0, "DEFAULT_QUEUE": "web"},
    )
    app.config.update(config or {})
    flask_testext.greeter.init_app(app)
    ext.init_app(app)
    return app
