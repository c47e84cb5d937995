"""taskq-flask: run taskq tasks inside a Flask app's context, configured from
``app.config``, with ``flask taskq`` commands.

``flask`` is imported only when :class:`TaskQFlask` is used, so a worker that
does not use Flask stays light (a smaller process forks faster).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskq_flask.extension import TaskQFlask

__all__ = ["TaskQFlask"]


def __getattr__(name: str) -> Any:
    if name == "TaskQFlask":
        from taskq_flask.extension import TaskQFlask

        return TaskQFlask
    raise AttributeError(f"module 'taskq_flask' has no attribute {name!r}")
