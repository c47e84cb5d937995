"""What goes into the tables and what comes out of them.

Arguments are checked before anything is written: a priority in
-1000..1000 (the range ``Task`` allows), a bytes payload, finite times, a
known outcome, records that msgpack can encode. The columns themselves are
typed and checked by PostgreSQL (finite scores and times, a known state, a
count >= 0), so a task's fields cannot be damaged by another writer; what can
be is an execution record (a ``bytea`` of msgpack), which comes back as
``{"unreadable": ...}`` instead of raising (Decision 19).
"""

from __future__ import annotations

import math
from typing import cast

import msgpack

from taskq_core.broker import EnqueueRequest, Execution
from taskq_core.exceptions import SerializationError

__all__ = [
    "check_request",
    "decode_execution",
    "encode_execution",
    "finite",
]


def finite(value: float, what: str) -> float:
    """``value`` as a finite float, else :class:`ValueError`."""
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return result


def check_request(request: EnqueueRequest) -> None:
    """Refuse an enqueue request that cannot be stored as given: the
    contract's checks (:meth:`EnqueueRequest.check`), and no NUL character in
    a queue name or id (PostgreSQL's text cannot hold one)."""
    request.check()
    for name, value in (("queue", request.queue), ("id", request.id)):
        if "\x00" in value:
            raise ValueError(f"a task's {name} cannot contain a NUL character: {value!r}")


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
