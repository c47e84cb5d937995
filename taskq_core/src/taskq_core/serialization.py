"""Task payloads (msgpack, with a schema version) and task ids."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack

from taskq_core.exceptions import SerializationError

__all__ = [
    "SCHEMA_VERSION",
    "check_arguments",
    "check_task_data",
    "decode_payload",
    "decode_task_data",
    "encode_payload",
    "gen_id",
    "gen_lock_id",
    "gen_unique_id",
    "pack",
    "unpack",
]

#: Bumped when the payload layout changes incompatibly.
SCHEMA_VERSION = 1


def pack(value: Any) -> bytes:
    """msgpack-encode ``value`` (tuples become lists)."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    """Decode what :func:`pack` wrote."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _describe(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def check_arguments(args: Sequence[Any], kwargs: Mapping[str, Any], func_name: str) -> None:
    """Raise :class:`SerializationError` naming the first argument msgpack cannot encode."""
    for key in kwargs:
        if not isinstance(key, str):
            raise SerializationError(
                f"cannot enqueue {func_name}: keyword argument names must be strings, got {key!r}"
            )
    named = [(f"positional argument {i}", v) for i, v in enumerate(args)]
    named += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
    for where, value in named:
        try:
            pack(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"cannot enqueue {func_name}: {where} of type {_describe(value)} cannot be "
                f"encoded with msgpack ({exc}); pass plain data (None, bool, int, float, str, "
                "bytes, lists and dicts of them), e.g. an id instead of an object"
            ) from exc


def encode_payload(data: Mapping[str, Any]) -> bytes:
    """Encode a task's data with the schema version."""
    return pack({"v": SCHEMA_VERSION, **data})


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Decode a payload; raises :class:`SerializationError` for unknown versions."""
    try:
        data = unpack(payload)
    except Exception as exc:
        raise SerializationError(
            f"task payload is not valid msgpack ({type(exc).__name__}: {exc}); it was not "
            "written by taskq or it is corrupted"
        ) from exc
    if not isinstance(data, dict):
        raise SerializationError("task payload is not a mapping")
    version = data.pop("v", None)
    if not _is_int(version) or version != SCHEMA_VERSION:
        raise SerializationError(
            f"task payload has schema version {version!r}; this taskq reads version "
            f"{SCHEMA_VERSION}. Upgrade the worker to the version that enqueued it."
        )
    return data


# -- the typed decode of stored task data (Decision 19) -------------------------------
#
# Everything a worker reads back from a broker passes here before it is used:
# a damaged or tampered payload is refused with a message naming the field,
# so that the worker fails that task with a record instead of meeting a
# TypeError somewhere later.

#: the most a priority may be away from 0 (``Task``'s ``PRIORITY_RANGE``)
_MAX_PRIORITY = 1000


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_dotted_path(value: str) -> bool:
    """``module:qualname`` or ``module.attr``: identifiers joined by dots,
    with at most one colon between module and name."""
    module, colon, name = value.partition(":")
    if not colon:
        module, _, name = value.rpartition(".")
    parts = [*module.split("."), *name.split(".")]
    return bool(module) and bool(name) and all(part.isidentifier() for part in parts)


def _text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_Check = Callable[[Any], str | None]


def _need(ok: Callable[[Any], bool], wanted: str) -> _Check:
    def check(value: Any) -> str | None:
        return None if ok(value) else f"must be {wanted}"

    return check


def _check_func(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a function path (text)"
    if not _is_dotted_path(value):
        return "is not a function path like 'package.module:name'"
    return None


def _check_kwargs(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a map of keyword arguments"
    for key in value:
        if not isinstance(key, str):
            return f"has a keyword name that is not text ({_shown(key)})"
    return None


def _check_timeout(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number of seconds"
    if not math.isfinite(value) or value <= 0:
        return "must be a finite number of seconds > 0"
    return None


def _check_retry_method(value: Any) -> str | None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and value[0]
        and isinstance(value[1], list)
    ):
        return None
    return "must be a [function path, [arguments]] pair"


def _check_priority(value: Any) -> str | None:
    if not _is_int(value):
        return "must be an integer"
    if not -_MAX_PRIORITY <= value <= _MAX_PRIORITY:
        return f"must be between {-_MAX_PRIORITY} and {_MAX_PRIORITY}"
    return None


#: every field taskq stores in a payload, with its check; fields not listed
#: (added by a newer taskq or a plugin) are kept as they are
TASK_FIELDS: dict[str, _Check] = {
    "id": _need(lambda v: isinstance(v, str), "text"),
    "func": _check_func,
    "args": _need(lambda v: isinstance(v, list), "a list of positional arguments"),
    "kwargs": _check_kwargs,
    "unique": _need(lambda v: isinstance(v, bool), "true or false"),
    "unique_key": _need(_text_list, "a list of keyword names"),
    "lock": _need(lambda v: isinstance(v, bool), "true or false"),
    "lock_key": _need(_text_list, "a list of keyword names"),
    "hard_timeout": _check_timeout,
    "retry_method": _check_retry_method,
    "retry_on": _need(_text_list, "a list of exception paths"),
    "max_queue_size": _need(lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "max_stored_executions": _need(lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "runner_class": _need(lambda v: isinstance(v, str) and bool(v), "a class path (text)"),
    "priority": _check_priority,
}


def check_task_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check every field of decoded task data; returns it as a new dict.

    Raises :class:`SerializationError` naming the first field that is missing
    (``func``) or has a type or value taskq never stores there."""
    if "func" not in data:
        raise SerializationError("task payload field 'func' is missing")
    for name, check in TASK_FIELDS.items():
        if name in data:
            problem = check(data[name])
            if problem is not None:
                raise SerializationError(
                    f"task payload field {name!r} {problem}, got {_shown(data[name])}"
                )
    return dict(data)


def decode_task_data(payload: bytes) -> dict[str, Any]:
    """Decode and check a stored payload: the one way a worker reads task data.

    Raises :class:`SerializationError` saying what is wrong: not msgpack, not
    a map, another schema version, or (naming it) a field that is missing or
    of the wrong type or shape."""
    return check_task_data(decode_payload(payload))


def gen_id() -> str:
    """A random task id (64 hex characters)."""
    return os.urandom(32).hex()


def _canonical(value: Any) -> Any:
    """A structure whose msgpack encoding is the same for equal values:
    maps are sorted by their encoded keys, tuples and lists are alike."""
    if isinstance(value, Mapping):
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        items.sort(key=lambda kv: pack(kv[0]))
        return ["m", [list(kv) for kv in items]]
    if isinstance(value, list | tuple):
        return ["l", [_canonical(v) for v in value]]
    return value


def _hash(value: Any) -> str:
    return hashlib.sha256(pack(_canonical(value))).hexdigest()


def gen_unique_id(
    queue: str,
    func_name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    unique_key: Sequence[str] | None = None,
) -> str:
    """The id of a unique task: a hash of queue, function and arguments.

    With ``unique_key`` only the named keyword arguments count (missing ones
    as ``None``), and positional arguments are ignored.
    """
    kwargs = kwargs or {}
    if unique_key:
        return _hash(
            {
                "queue": queue,
                "func": func_name,
                "args": None,
                "kwargs": {k: kwargs.get(k) for k in unique_key},
            }
        )
    return _hash(
        {"queue": queue, "func": func_name, "args": list(args or ()), "kwargs": dict(kwargs)}
    )


def gen_lock_id(
    func_name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    lock_key: Sequence[str] | None = None,
) -> str:
    """The id of a task lock: like a unique id, without the queue."""
    kwargs = kwargs or {}
    if lock_key:
        return _hash(
            {"func": func_name, "args": None, "kwargs": {k: kwargs.get(k) for k in lock_key}}
        )
    return _hash({"func": func_name, "args": list(args or ()), "kwargs": dict(kwargs)})
