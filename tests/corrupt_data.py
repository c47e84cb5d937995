"""Corrupted task payloads, written straight into a broker by the tests of
Decision 19 (a damaged or tampered store never stops a worker).

:func:`payload_kinds` is a catalogue of named corrupted payloads: bytes that
are not msgpack, msgpack that is not a task, and task maps with one field
missing or of the wrong type or shape. :func:`corrupt_payloads` draws from it
and from random bytes, for hypothesis. Each is built around a function path
that would run fine, so a worker that ran one anyway would be caught.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
from hypothesis import strategies as st

from taskq_core.serialization import SCHEMA_VERSION, decode_payload, pack

__all__ = ["corrupt_payloads", "is_valid_msgpack_task", "payload_kinds"]


def _task(func: str, **fields: Any) -> bytes:
    return pack({"v": SCHEMA_VERSION, "func": func, **fields})


def _without_func(**fields: Any) -> bytes:
    return pack({"v": SCHEMA_VERSION, **fields})


def payload_kinds(func: str) -> dict[str, bytes]:
    """``{kind: payload}``: every way the tests corrupt a payload of ``func``."""
    good = _task(func, args=["x"])
    kinds: dict[str, bytes] = {
        "random bytes": b"\xc1\xff\x00garbage",
        "empty payload": b"",
        "truncated msgpack": good[:-3],
        "msgpack int": pack(5),
        "msgpack list": pack([func, ["x"]]),
        "msgpack string": pack(func),
        "msgpack nil": pack(None),
        "no schema version": pack({"func": func}),
        "newer schema version": pack({"v": SCHEMA_VERSION + 1, "func": func}),
        "schema version as text": pack({"v": str(SCHEMA_VERSION), "func": func}),
        "func missing": _without_func(args=["x"]),
        "func int": _task(12),  # type: ignore[arg-type]
        "func nil": _task(None),  # type: ignore[arg-type]
        "func list": _task([func]),  # type: ignore[arg-type]
        "func bytes": pack({"v": SCHEMA_VERSION, "func": func.encode()}),
        "func map": _task({"module": func}),  # type: ignore[arg-type]
        "func empty": _task(""),
        "func without separator": _task("nodotsatall"),
        "func colon only": _task(":"),
        "func empty name": _task(func.split(":", maxsplit=1)[0] + ":"),
        "func empty module": _task(":" + func.rsplit(":", maxsplit=1)[-1]),
        "func two colons": _task(func + ":extra"),
        "func with spaces": _task(func.replace(":", " : ")),
        "func digit module": _task("1module:f"),
        "func with nul": _task(func + "\x00"),
        "args int": _task(func, args=5),
        "args text": _task(func, args="xyz"),
        "args map": _task(func, args={"a": 1}),
        "args nil": _task(func, args=None),
        "kwargs list": _task(func, kwargs=[["a", 1]]),
        "kwargs int": _task(func, kwargs=7),
        "kwargs nil": _task(func, kwargs=None),
        "kwargs bytes keys": pack({"v": SCHEMA_VERSION, "func": func, "kwargs": {b"tag": 1}}),
        "kwargs int keys": pack({"v": SCHEMA_VERSION, "func": func, "kwargs": {1: 2}}),
        "hard_timeout text": _task(func, hard_timeout="soon"),
        "hard_timeout list": _task(func, hard_timeout=[1]),
        "hard_timeout bool": _task(func, hard_timeout=True),
        "hard_timeout inf": _task(func, hard_timeout=math.inf),
        "hard_timeout nan": _task(func, hard_timeout=math.nan),
        "hard_timeout negative": _task(func, hard_timeout=-5.0),
        "lock_key int": _task(func, lock=True, lock_key=5),
        "lock_key text": _task(func, lock=True, lock_key="tag"),
        "lock_key list of ints": _task(func, lock=True, lock_key=[1, 2]),
        "unique_key int": _task(func, unique=True, unique_key=3),
        "lock text": _task(func, lock="yes"),
        "unique int": _task(func, unique=1),
        "max_stored_executions text": _task(func, max_stored_executions="all"),
        "max_stored_executions negative": _task(func, max_stored_executions=-1),
        "max_stored_executions float": _task(func, max_stored_executions=1.5),
        "max_stored_executions bool": _task(func, max_stored_executions=True),
        "max_queue_size text": _task(func, max_queue_size="10"),
        "retry_on int": _task(func, retry_method=["taskq_core.retry:fixed", [1, 2]], retry_on=5),
        "retry_on text": _task(func, retry_method=["taskq_core.retry:fixed", [1, 2]], retry_on="x"),
        "retry_on list of ints": _task(
            func, retry_method=["taskq_core.retry:fixed", [1, 2]], retry_on=[1]
        ),
        "retry_method int": _task(func, retry_method=5),
        "retry_method one item": _task(func, retry_method=["taskq_core.retry:fixed"]),
        "retry_method args not a list": _task(func, retry_method=["taskq_core.retry:fixed", 1]),
        "retry_method path int": _task(func, retry_method=[1, []]),
        "retry_method map": _task(func, retry_method={"path": "x"}),
        "priority text": _task(func, priority="high"),
        "priority float": _task(func, priority=1.5),
        "priority out of range": _task(func, priority=10**6),
        "runner_class int": _task(func, runner_class=3),
        "id int": _task(func, id=5),
    }
    return kinds


def is_valid_msgpack_task(payload: bytes) -> bool:
    """Whether ``payload`` decodes as a current-version map (the kinds that only
    the typed field checks catch)."""
    try:
        decode_payload(payload)
    except Exception:
        return False
    return True


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
)
_ANY = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.binary(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of_text(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: per field, values taskq never writes there (each strategy filters out, by
#: its own simple rule, anything that would be a valid value)
_WRONG: dict[str, st.SearchStrategy[Any]] = {
    # text with no ":" or "." is never a dotted path
    "func": _ANY.filter(lambda v: not isinstance(v, str))
    | st.text(st.characters(blacklist_characters=":."), max_size=6),
    "args": _ANY.filter(lambda v: not isinstance(v, list)),
    "kwargs": _ANY.filter(lambda v: not isinstance(v, dict))
    | st.dictionaries(st.binary(max_size=3) | st.integers(), _SCALARS, min_size=1, max_size=2),
    "hard_timeout": _ANY.filter(
        lambda v: (
            isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0
        )
    ),
    "lock": _ANY.filter(lambda v: not isinstance(v, bool)),
    "unique": _ANY.filter(lambda v: not isinstance(v, bool)),
    "lock_key": _ANY.filter(lambda v: not _is_list_of_text(v)),
    "unique_key": _ANY.filter(lambda v: not _is_list_of_text(v)),
    "retry_on": _ANY.filter(lambda v: not _is_list_of_text(v)),
    "max_stored_executions": _ANY.filter(lambda v: not _is_int(v) or v < 0),
    "max_queue_size": _ANY.filter(lambda v: not _is_int(v) or v < 0),
    "priority": _ANY.filter(lambda v: not _is_int(v) or not -1000 <= v <= 1000),
    "runner_class": _ANY.filter(lambda v: not isinstance(v, str)),
    "retry_method": _ANY.filter(
        lambda v: (
            not (
                isinstance(v, list)
                and len(v) == 2
                and isinstance(v[0], str)
                and isinstance(v[1], list)
            )
        )
    ),
}


@st.composite
def _wrong_field(draw: st.DrawFn, func: str) -> bytes:
    """A task map whose one field holds a random value taskq never writes there."""
    field = draw(st.sampled_from(sorted(_WRONG)))
    value = draw(_WRONG[field])
    data: dict[Any, Any] = {"v": SCHEMA_VERSION, "func": func, field: value}
    payload = msgpack.packb(data, use_bin_type=True)
    assert isinstance(payload, bytes)
    return payload


def corrupt_payloads(func: str) -> st.SearchStrategy[bytes]:
    """A corrupted payload of ``func``: a catalogue kind, random bytes that are
    not a msgpack map, or a task map with one field of a random wrong value."""
    kinds = payload_kinds(func)
    return st.one_of(
        st.sampled_from([kinds[name] for name in sorted(kinds)]),
        st.binary(max_size=40).filter(lambda raw: not is_valid_msgpack_task(raw)),
        _wrong_field(func),
    )
