"""taskq-rollbar: report failed tasks to Rollbar.

Installed, the plugin reports every permanent failure from the worker (see
``docs/rollbar.md``); set ``ROLLBAR_ACCESS_TOKEN`` to turn it on.
:class:`StructlogRollbarHandler` reports from log lines instead.

``rollbar`` itself is imported only when a report is sent or the handler is
used, so processes that only enqueue tasks stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskq_rollbar.report import fingerprint, queue_root, title
from taskq_rollbar.settings import RollbarSettings, load_settings

if TYPE_CHECKING:
    from taskq_rollbar.handler import StructlogRollbarHandler

__all__ = [
    "RollbarSettings",
    "StructlogRollbarHandler",
    "fingerprint",
    "load_settings",
    "queue_root",
    "title",
]


def __getattr__(name: str) -> Any:
    if name == "StructlogRollbarHandler":
        from taskq_rollbar.handler import StructlogRollbarHandler

        return StructlogRollbarHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
