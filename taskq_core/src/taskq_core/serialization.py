"""Task payloads (msgpack, with a schema version) and task ids."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from taskq_core.exceptions import SerializationError

__all__ = [
    "SCHEMA_VERSION",
    "check_arguments",
    "decode_payload",
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
    if version != SCHEMA_VERSION:
        raise SerializationError(
            f"task payload has schema version {version!r}; this taskq reads version "
            f"{SCHEMA_VERSION}. Upgrade the worker to the version that enqueued it."
        )
    return data


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
