"""A Flask app built at import time (``flask --app plain_app``).

The broker URL comes from the ``TASKQ_URL`` environment variable (the
extension's default when ``app.config`` has no ``TASKQ_URL``).
"""

from __future__ import annotations

import os

import flask_testext
from flask import Flask

from taskq_flask import TaskQFlask

FAST = {"SELECT_TIMEOUT": 0.2, "STATS_INTERVAL": 0, "DEFAULT_HARD_TIMEOUT": 20}

app = Flask("plain_app")
app.config.update(
    GREETING="hello from plain_app",
    GREETER_NAME="plain greeter",
    TRACE_DIR=os.environ.get("TASKQ_TEST_DIR"),
    TASKQ_CONFIG=FAST,
)
flask_testext.greeter.init_app(app)
taskq = TaskQFlask(app)


@taskq.taskq.task()
def report(name: str, value: str = "") -> None:
    """Record what the task sees of the app."""
    flask_testext.report(name, value)


@taskq.taskq.task()
def fail(name: str) -> None:
    """Fail on purpose."""
    flask_testext.fail(name)
