"""Fixtures for the taskq-flask tests.

The test apps (``plain_app``, ``factory_app``) and their shared extension
(``flask_testext``) live in this folder, which is put on ``sys.path`` (and on
``PYTHONPATH`` for worker subprocesses). Plugins load afresh around every
test, with the installed plugins autoloading as they do for users.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from taskq_core.plugins import reset_plugin_manager

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import flask_testext  # noqa: E402  (needs HERE on sys.path)
from flask_testext import MakeApp  # noqa: E402

from taskq_flask import TaskQFlask  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Installed plugins autoload; none stays registered from another test."""
    for name in ("TASKQ_PLUGINS", "TASKQ_DISABLE_PLUGIN_AUTOLOAD", "TASKQ_URL"):
        monkeypatch.delenv(name, raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    """``make_app(**config) -> (app, ext)``: a new app with the ``Greeter``
    extension and a new ``TaskQFlask`` on its own ``memory://`` broker."""

    def make(name: str = "test_app", **config: Any) -> tuple[Flask, TaskQFlask]:
        app = Flask(name)
        app.config.update(
            GREETING=f"hello from {name}",
            GREETER_NAME=f"{name} greeter",
            TRACE_DIR=str(tmp_path),
            TASKQ_URL="memory://",
        )
        app.config.update(config)
        flask_testext.greeter.init_app(app)
        return app, TaskQFlask(app)

    return make
