"""What the taskq-flask test apps share: a small extension and task bodies.

``Greeter`` stands in for extensions such as Flask-SQLAlchemy: its state
lives in ``app.extensions``, it hands out a per-context ``session`` kept in
``flask.g`` and closes it when the application context is torn down, and it
works only inside an application context. Tasks write what they saw as JSON
lines into files under ``app.config["TRACE_DIR"]`` so that tests (and the
processes that started workers) can read it back.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g

if TYPE_CHECKING:
    from taskq_flask import TaskQFlask

__all__ = ["Greeter", "MakeApp", "fail", "greeter", "read_trace", "report", "trace"]

#: the ``make_app`` fixture: ``make_app(name, **config) -> (app, ext)``
MakeApp = Callable[..., "tuple[Flask, TaskQFlask]"]

_session_ids = itertools.count(1)


class Session:
    """A per-application-context resource."""

    def __init__(self) -> None:
        self.id = f"{os.getpid()}-{next(_session_ids)}"


class Greeter:
    """An extension with per-app state and a per-context session."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["greeter"] = {"name": app.config.get("GREETER_NAME", "greeter")}
        app.teardown_appcontext(self._teardown)

    @property
    def name(self) -> str:
        """The greeter name configured for the current app."""
        return str(current_app.extensions["greeter"]["name"])

    @property
    def session(self) -> Session:
        """The session of the current application context."""
        if "greeter_session" not in g:
            g.greeter_session = Session()
        session: Session = g.greeter_session
        return session

    def _teardown(self, exc: BaseException | None) -> None:
        session = g.pop("greeter_session", None)
        if session is not None and current_app.config.get("TRACE_DIR"):
            trace("teardown", {"session": session.id, "exc": type(exc).__name__ if exc else None})


greeter = Greeter()


def trace(name: str, record: dict[str, Any]) -> None:
    """Append ``record`` as a JSON line to ``TRACE_DIR/name``."""
    path = Path(current_app.config["TRACE_DIR"]) / name
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def read_trace(directory: Path, name: str) -> list[dict[str, Any]]:
    """The records written to ``directory/name`` (none if it does not exist)."""
    path = directory / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def report(name: str, value: str = "") -> None:
    """Record what the task sees of the app: config, extension, context."""
    trace(
        name,
        {
            "value": value,
            "app": current_app.name,
            "greeting": current_app.config["GREETING"],
            "greeter": greeter.name,
            "session": greeter.session.id,
            "pid": os.getpid(),
            "seen_before": bool(g.get("task_marker")),
        },
    )
    g.task_marker = True


def fail(name: str) -> None:
    """Open a session, then fail."""
    trace(name, {"session": greeter.session.id})
    raise ValueError(f"task {name} failed on purpose")
