"""Reading a task's meta string back, with the rules the scripts use.

The scripts keep, per task, the meta string
``priority|scheduled_at|time_last_queued|queued_at|seq|count|first|twins``
(before the payload in ``d:<id>`` of the tasks hash; ``lua/_queue.lua``
describes it). Stored data
may be damaged, so it is read with the same rules as ``check_meta`` in
``lua/_queue.lua``, and never raises: what cannot be read is named.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["MAX_PRIORITY", "MIN_PRIORITY", "Meta", "parse_meta"]

#: the priorities a task may have (and its meta may hold)
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000
#: at most this many stored execution records between ``first`` and ``count``
_MAX_RECORDS = 1_000_000
#: fields of a meta string
_FIELDS = 8
_INT = re.compile(rb"-?[0-9]+")
_NUMBER = re.compile(rb"[0-9.eE+-]+")


@dataclass(frozen=True)
class Meta:
    """The fields of a meta string a reader needs."""

    priority: int = 0
    scheduled_at: float | None = None
    time_last_queued: float | None = None
    executions_count: int = 0
    #: what is wrong with the meta string (the fields then hold defaults)
    problem: str | None = None


def _excerpt(raw: bytes) -> str:
    return repr(raw[:40].decode("utf-8", "backslashreplace"))


def _meta_int(raw: bytes) -> int | None:
    return int(raw) if len(raw) <= 16 and _INT.fullmatch(raw) else None


def _meta_number(raw: bytes) -> float | None:
    if not _NUMBER.fullmatch(raw):
        return None
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _meta_problem(parts: list[bytes]) -> str | None:
    """What is wrong with the eight fields of a meta string, or ``None``."""
    priority, scheduled_at, last_queued, queued_at, seq, count, first, twins = parts
    number = _meta_int(priority)
    if number is None or abs(number) > MAX_PRIORITY:
        return f"field 'priority' is not an integer in -1000..1000: {_excerpt(priority)}"
    for name, raw in (("scheduled_at", scheduled_at), ("time_last_queued", last_queued)):
        if raw and _meta_number(raw) is None:
            return f"field {name!r} is not a number: {_excerpt(raw)}"
    if bool(queued_at) != bool(seq):
        return "fields 'queued_at' and 'seq' are not both set or both empty"
    if queued_at:
        when = _meta_number(queued_at)
        if when is None or not -1e10 < when < 1e11:
            return f"field 'queued_at' is not a time: {_excerpt(queued_at)}"
        sequence = _meta_int(seq)
        if sequence is None or sequence < 0 or len(seq) > 13:
            return f"field 'seq' is not an integer of at most 13 digits: {_excerpt(seq)}"
    n_count, n_first = _meta_int(count), _meta_int(first)
    if n_count is None or n_count < 0:
        return f"field 'count' is not an integer >= 0: {_excerpt(count)}"
    if n_first is None or not 1 <= n_first <= n_count + 1 or n_count - n_first >= _MAX_RECORDS:
        return f"field 'first' is not a record number in 1..count+1: {_excerpt(first)}"
    if twins not in (b"0", b"1"):
        return f"field 'twins' is not 0 or 1: {_excerpt(twins)}"
    return None


def parse_meta(raw: bytes | None) -> Meta:
    """The meta of a task; never raises: what cannot be read is named in
    ``problem`` (the fields that can still be read are kept)."""
    if not raw:
        return Meta(problem="the task's metadata is missing")
    parts = raw.split(b"|")
    if len(parts) != _FIELDS:
        return Meta(
            problem=f"the task's metadata is not {_FIELDS} fields separated by '|': {_excerpt(raw)}"
        )
    problem = _meta_problem(parts)
    priority = _meta_int(parts[0])
    count = _meta_int(parts[5])
    return Meta(
        priority=priority if priority is not None and abs(priority) <= MAX_PRIORITY else 0,
        scheduled_at=_meta_number(parts[1]),
        time_last_queued=_meta_number(parts[2]),
        executions_count=count if count is not None and count >= 0 else 0,
        problem=None if problem is None else f"the task's metadata {problem}",
    )
