"""``StructlogRollbarHandler``: report taskq's JSON log lines to Rollbar.

For applications that report from logs rather than through the plugin's
hooks. It needs log lines rendered as JSON (``setup_structlog(fmt="json")``,
the worker's default) and is added to the ``taskq`` logger::

    handler = StructlogRollbarHandler("taskq")
    handler.setLevel(logging.ERROR)
    logging.getLogger("taskq").addHandler(handler)

At ``ERROR`` only permanent failures (``task error`` lines logged as errors)
are reported: failures that will be retried are logged as warnings.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import rollbar
from rollbar.logger import RollbarHandler

from taskq_rollbar.report import queue_root

__all__ = ["TITLE_KEYS", "StructlogRollbarHandler"]

#: The fields of a log line that name it, in title order.
TITLE_KEYS = ("event", "func", "exception_name", "queue")


class StructlogRollbarHandler(RollbarHandler):
    """A :class:`rollbar.logger.RollbarHandler` that understands JSON log lines.

    A JSON line becomes a Rollbar message whose title and fingerprint are
    ``"<prefix>: event=... func=... exception_name=... queue=<root>"`` (the
    fields present, the queue cut to its root so subqueues group together),
    whose body is the line's ``traceback`` (or the title), and whose item data
    holds the line's fields. Other lines are reported as the plain
    ``RollbarHandler`` would. Lines below the handler's level are skipped.

    :param prefix: starts every title (``"taskq"``, or your app's name).
    :param args: passed to ``RollbarHandler`` (``access_token``, ``environment``...).
    :param kwargs: passed to ``RollbarHandler``.
    """

    def __init__(self, prefix: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.prefix = prefix

    def setLevel(self, level: int | str) -> None:
        """Report records at ``level`` and above (``logging.ERROR``: permanent
        failures only)."""
        super().setLevel(level)  # type: ignore[no-untyped-call]

    def format_title(self, data: dict[str, Any]) -> str:
        """The title (and fingerprint) of a JSON log line."""
        parts = []
        for key in TITLE_KEYS:
            if key in data:
                value = data[key]
                if key == "queue":
                    value = queue_root(str(value))
                parts.append(f"{key}={value}")
        return f"{self.prefix}: " + " ".join(parts)

    def emit(self, record: logging.LogRecord) -> None:
        """Report ``record`` if its level is at least the handler's level."""
        level = record.levelname.lower()
        if level not in self.SUPPORTED_LEVELS or record.levelno < self.notify_level:
            return
        try:
            data = json.loads(record.msg) if isinstance(record.msg, str | bytes) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            super().emit(record)  # type: ignore[no-untyped-call]
            return
        title = self.format_title(data)
        data["title"] = title
        data["fingerprint"] = title
        timestamp = data.get("timestamp")
        if timestamp is not None and (
            isinstance(timestamp, bool) or not isinstance(timestamp, int | float)
        ):
            # Rollbar's item timestamp is a number; keep the log line's own
            data["log_timestamp"] = data.pop("timestamp")
        message = data.pop("traceback", None) or title
        try:
            uuid = rollbar.report_message(
                message=str(message),
                level=cast(Any, level),
                request=rollbar.get_request(),  # type: ignore[no-untyped-call]
                extra_data={},
                payload_data=data,
            )
        except Exception:
            self.handleError(record)
            return
        if uuid:
            record.rollbar_uuid = uuid
