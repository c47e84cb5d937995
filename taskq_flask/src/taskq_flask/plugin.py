"""Hook implementations of taskq-flask (registered by the ``taskq`` entry point).

Every task a ``TaskQ`` bound to a Flask app executes (in a worker's forked
child, in the sync executor, or eagerly) runs inside that app's application
context; see :func:`taskq_flask.extension.app_context_for`.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from taskq_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from taskq_core.app import TaskQ
    from taskq_core.task import Task

__all__ = ["taskq_execute_task"]


@hookimpl(wrapper=True)
def taskq_execute_task(tq: TaskQ, tasks: Sequence[Task]) -> Generator[None, Any, Any]:
    """Run the tasks inside the application context of ``tq``'s Flask app."""
    extension = sys.modules.get("taskq_flask.extension")
    if extension is None:  # no TaskQFlask was ever created: no app to enter
        return (yield)
    with extension.app_context_for(tq):
        return (yield)
