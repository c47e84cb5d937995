"""What goes into the tables and what comes out of them.

Arguments are checked before anything is written: a priority that fits a
``bigint``, a bytes payload, finite times, a known outcome, records that
msgpack can encode. The columns themselves are typed and checked by
PostgreSQL (finite scores and times, a known state, a count >= 0), so a task's
fields cannot be damaged by another writer; what can be is an execution
record (a ``bytea`` of msgpack), which comes back as ``{"unreadable": ...}``
instead of raising (Decision 19).
"""

from __future__ import annotations

import math
from typing import cast

import msgpack

from taskq_core.broker import EnqueueRequest, Execution
from taskq_core.exceptions import SerializationError
from taskq_core.states import OUTCOMES

__all__ = [
    "check_end",
    "check_request",
    "decode_execution",
    "encode_execution",
    "finite",
]

_BIGINT = 2**63


def finite(value: float, what: str) -> float:
    """``value`` as a finite float, else :class:`ValueError`."""
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return result


def check_request(request: EnqueueRequest) -> None:
    """Refuse an enqueue request that cannot be stored as given."""
    priority: object = request.priority
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    if not -_BIGINT <= priority < _BIGINT:
        raise ValueError(f"priority must fit in 64 bits, got {priority}")
    payload: object = request.payload
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError("the payload must be bytes")
    for name, value in (("queue", request.queue), ("id", request.id)):
        if "\x00" in value:
            raise ValueError(f"a task's {name} cannot contain a NUL character: {value!r}")
    if request.when is not None:
        finite(request.when, "when")


def check_end(outcome: str, when: float | None, max_stored_executions: int | None) -> None:
    """Refuse the arguments of a run's end that are not valid."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if when is not None:
        finite(when, "when")
    if max_stored_executions is not None and max_stored_executions < 0:
        raise ValueError("max_stored_executions must be >= 0 (0 or None: keep all)")


def encode_execution(execution: Execution) -> bytes:
    """An execution record as the msgpack stored in ``taskq_executions``."""
    try:
        packed: bytes = msgpack.packb(dict(execution), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot encode the execution record: {exc}") from exc
    return packed


def decode_execution(raw: object) -> Execution:
    """A stored record; one that is not a msgpack map of text keys comes
    back as ``{"unreadable": what is wrong}`` instead of raising."""
    if isinstance(raw, memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        return {"unreadable": f"execution record is not bytes: {raw!r:.60}"}
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        return {"unreadable": f"execution record is not valid msgpack ({type(exc).__name__})"}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return {"unreadable": f"execution record is not a map of fields: {value!r:.60}"}
    return cast(Execution, dict(value))
