"""What goes into the scripts and what comes out: arguments and replies.

Arguments are checked and written as the exact text the scripts parse
(numbers finite, priorities in range, execution records as msgpack); the
replies, whose shapes each script's header documents, are decoded into the
broker contract's records (:class:`StoredTask`, :class:`DroppedTask`,
:class:`EnqueueResult`). Bytes read back are never trusted: an id that is not
UTF-8 is shown escaped, a damaged record or meta string is described instead
of raising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import msgpack

from taskq_core.broker import (
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    StoredTask,
)
from taskq_core.exceptions import SerializationError
from taskq_core.states import OUTCOMES, State
from taskq_redis._keys import STATE_NUMBERS
from taskq_redis._meta import MAX_PRIORITY, MIN_PRIORITY, parse_meta

__all__ = [
    "decode_execution",
    "decoded_finish_pop",
    "decoded_read",
    "dropped_entries",
    "encode_execution",
    "end_args",
    "enqueue_args",
    "enqueue_result",
    "id_text",
    "milliseconds",
    "num",
    "split_data",
    "text",
]

_OUTCOMES = frozenset(OUTCOMES)
#: state numbers of the scripts (see _keys.STATE_NUMBERS)
_STATES_BY_NUMBER = {number: state for state, number in STATE_NUMBERS.items()}


# -- arguments -------------------------------------------------------------------------
def num(value: float) -> str:
    """A finite number as the exact text Redis and Lua parse back."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return repr(number)


def milliseconds(ttl: float) -> int:
    """A TTL in seconds as whole milliseconds (at least 1)."""
    return max(1, math.ceil(float(ttl) * 1000))


def encode_execution(execution: Execution) -> bytes:
    """An execution record as the msgpack the scripts store."""
    try:
        packed: bytes = msgpack.packb(dict(execution), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot encode the execution record: {exc}") from exc
    return packed


def enqueue_args(request: EnqueueRequest) -> tuple[str, bytes, str, str, str, str]:
    """ARGV[3..8] of ``enqueue.lua``: id, payload, due time, priority, unique
    flag and max queue size, after checking the priority and the payload."""
    priority = request.priority
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(
            f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {priority}"
        )
    payload: object = request.payload
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError("the payload must be bytes")
    max_size = request.max_queue_size
    return (
        request.id,
        bytes(payload),
        "" if request.when is None else num(request.when),
        str(priority),
        "1" if request.unique else "0",
        "" if max_size is None else str(int(max_size)),
    )


def end_args(
    outcome: FinishOutcome,
    when: float | None,
    execution: Execution | None,
    max_stored_executions: int | None,
) -> tuple[str, str, bytes | str, str]:
    """The outcome, when, record and cap arguments of a run ended by
    ``finish_pop.lua`` or ``recover_expired.lua``."""
    if outcome not in _OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if max_stored_executions is not None and max_stored_executions < 0:
        raise ValueError("max_stored_executions must be >= 0 (0 or None: keep all)")
    return (
        outcome,
        "" if when is None else num(when),
        b"" if execution is None else encode_execution(execution),
        str(int(max_stored_executions)) if max_stored_executions else "",
    )


# -- replies ---------------------------------------------------------------------------
def split_data(raw: bytes | None) -> tuple[bytes | None, bytes | None]:
    """The payload and the meta string of a stored ``d:<id>`` value (the meta,
    a newline, the payload), each ``None`` when missing, read as
    ``split_data`` in ``lua/_queue.lua`` reads it."""
    if raw is None:
        return None, None
    meta, newline, payload = raw.partition(b"\n")
    if not newline:
        return None, raw
    return payload, meta or None


def text(value: bytes | str) -> str:
    """A reply that is text (a queue name, a state)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def id_text(value: bytes | str) -> str:
    """A task id read back from Redis; bytes that are not UTF-8 (a damaged
    entry) are shown escaped instead of raising."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def decode_execution(raw: bytes) -> Execution:
    """A stored record; one that is not a msgpack map of text keys (damaged)
    comes back as ``{"unreadable": what is wrong}`` instead of raising."""
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        return {"unreadable": f"execution record is not valid msgpack ({type(exc).__name__})"}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return {"unreadable": f"execution record is not a map of fields: {value!r:.60}"}
    return cast(Execution, dict(value))


def enqueue_result(request: EnqueueRequest, raw: Sequence[Any]) -> EnqueueResult:
    """The ``{code, state, ts, size}`` reply of ``enqueue.lua``."""
    code = int(raw[0])
    if code < 0:
        return EnqueueResult(request.id, None, False, 0.0, refused=True)
    return EnqueueResult(request.id, State(text(raw[1])), code == 1, float(raw[2]))


def dropped_entries(queue: str, raw: Sequence[Any]) -> list[DroppedTask]:
    """The entries a script reports as dropped: per entry its id, state
    number, reason and ``"1"`` if moved to error."""
    return [
        DroppedTask(
            queue=queue,
            task_id=id_text(raw[i]),
            state=_STATES_BY_NUMBER.get(int(raw[i + 1]), State.QUEUED),
            reason=id_text(raw[i + 2]),
            moved_to_error=raw[i + 3] in (b"1", "1"),
        )
        for i in range(0, len(raw) - 3, 4)
    ]


def decoded_finish_pop(
    queue: str, raw: Any
) -> tuple[list[bool], list[DroppedTask], list[StoredTask]]:
    """The ``{ended, now, n, dropped..., id, payload, meta, ...}`` reply of
    ``finish_pop.lua``: which runs were ended, what the pop dropped, and the
    tasks now active."""
    ended = [bool(int(flag)) for flag in raw[0]]
    now = float(raw[1])
    n_dropped = int(raw[2])
    dropped = dropped_entries(queue, raw[3 : 3 + n_dropped])
    tasks: list[StoredTask] = []
    for i in range(3 + n_dropped, len(raw), 3):
        meta = parse_meta(raw[i + 2])
        tasks.append(
            StoredTask(
                id=id_text(raw[i]),
                queue=queue,
                state=State.ACTIVE,
                payload=bytes(raw[i + 1]),
                ts=now,
                priority=meta.priority,
                scheduled_at=meta.scheduled_at,
                time_last_queued=meta.time_last_queued,
                executions_count=meta.executions_count,
                meta_error=meta.problem,
            )
        )
    return ended, dropped, tasks


def decoded_read(queue: str, state: State, raw: Any) -> tuple[int, list[StoredTask]]:
    """The ``{total, id, score, has_data, payload, meta, n, records..., ...}``
    reply of ``read.lua``: the state's size and the tasks read."""
    total = int(raw[0])
    tasks: list[StoredTask] = []
    i = 1
    while i < len(raw):
        task_id, score, has_data, payload, meta_raw = raw[i : i + 5]
        count = int(raw[i + 5])
        records = raw[i + 6 : i + 6 + count]
        i += 6 + count
        meta = parse_meta(meta_raw)
        missing = has_data != b"1"
        tasks.append(
            StoredTask(
                id=id_text(task_id),
                queue=queue,
                state=state,
                payload=b"" if missing else bytes(payload),
                ts=float(score),
                priority=meta.priority,
                scheduled_at=meta.scheduled_at,
                time_last_queued=meta.time_last_queued,
                executions_count=meta.executions_count,
                executions=[decode_execution(r) for r in records if r],
                missing=missing,
                meta_error=None if missing else meta.problem,
            )
        )
    return total, tasks
