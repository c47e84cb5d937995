"""What goes into the tables and what comes out of them.

Arguments are checked before anything is written (finite times, an integer
priority in -1000..1000, bytes payloads, records msgpack can encode). Values read back are
never trusted (Decision 19): a column of the wrong type makes its task's
metadata unreadable (:func:`meta_problem` says which field), a record that is
not a msgpack map comes back as ``{"unreadable": ...}``, and an id or queue
that is not text is shown escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from taskq_core.broker import EnqueueRequest, Execution
from taskq_core.exceptions import SerializationError

__all__ = [
    "UNREADABLE_EXCEPTION",
    "Meta",
    "check_request",
    "decode_execution",
    "encode_execution",
    "finite",
    "meta_problem",
    "number",
    "read_meta",
    "text",
    "unreadable_record",
]

#: the exception name of the record of a task the broker failed because its
#: stored data was unreadable
UNREADABLE_EXCEPTION = "taskq_core.exceptions:SerializationError"
_HOST = "sqlite"


# -- arguments -------------------------------------------------------------------------
def finite(value: float, what: str) -> float:
    """``value`` as a finite float, else :class:`ValueError`."""
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return result


def check_request(request: EnqueueRequest) -> None:
    """Refuse an enqueue request that cannot be stored as given (the
    contract's checks, :meth:`EnqueueRequest.check`)."""
    request.check()


def encode_execution(execution: Execution) -> bytes:
    """An execution record as the msgpack stored in ``taskq_executions``."""
    try:
        packed: bytes = msgpack.packb(dict(execution), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot encode the execution record: {exc}") from exc
    return packed


def unreadable_record(message: str, now: float) -> Execution:
    """The record of a task failed by the broker because ``message``."""
    return {
        "time_started": now,
        "time_failed": now,
        "exception_name": UNREADABLE_EXCEPTION,
        "exception": message,
        "traceback": message,
        "success": False,
        "host": _HOST,
    }


# -- values read back ------------------------------------------------------------------
def text(value: object) -> str:
    """A queue name or id read back (bytes that are not UTF-8 are escaped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def number(value: object) -> float | None:
    """A stored time as a float, or ``None`` when it is not a finite number."""
    if type(value) is float or type(value) is int:
        result = float(value)
        return result if math.isfinite(result) else None
    return None


def decode_execution(raw: object) -> Execution:
    """A stored record; one that is not a msgpack map of text keys comes
    back as ``{"unreadable": what is wrong}`` instead of raising."""
    if not isinstance(raw, bytes):
        return {"unreadable": f"execution record is not bytes: {raw!r:.60}"}
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        return {"unreadable": f"execution record is not valid msgpack ({type(exc).__name__})"}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return {"unreadable": f"execution record is not a map of fields: {value!r:.60}"}
    return cast(Execution, dict(value))


@dataclass(frozen=True)
class Meta:
    """What is kept beside a task's payload, as read back."""

    priority: int = 0
    scheduled_at: float | None = None
    time_last_queued: float | None = None
    executions_count: int = 0
    #: what is unreadable (the fields then hold defaults where they must)
    problem: str | None = None


def _excerpt(value: object) -> str:
    return f"{value!r:.40}"


def meta_problem(priority: Any, scheduled_at: Any, last_queued: Any, count: Any) -> str | None:
    """What is wrong with the stored fields of a task, or ``None``."""
    if type(priority) is not int:
        return f"field 'priority' is not an integer: {_excerpt(priority)}"
    for name, value in (("scheduled_at", scheduled_at), ("time_last_queued", last_queued)):
        if value is not None and number(value) is None:
            return f"field {name!r} is not a number: {_excerpt(value)}"
    if type(count) is not int or count < 0:
        return f"field 'executions_count' is not an integer >= 0: {_excerpt(count)}"
    return None


def read_meta(priority: Any, scheduled_at: Any, last_queued: Any, count: Any) -> Meta:
    """The fields of a task's row; never raises: what cannot be read is named
    in ``problem`` (the fields that can still be read are kept)."""
    problem = meta_problem(priority, scheduled_at, last_queued, count)
    return Meta(
        priority=priority if type(priority) is int else 0,
        scheduled_at=number(scheduled_at),
        time_last_queued=number(last_queued),
        executions_count=count if type(count) is int and count >= 0 else 0,
        problem=None if problem is None else f"the task's metadata {problem}",
    )
