"""Corrupting tasks behind the Redis broker's back, as a damaged or tampered
Redis would hold them (Decision 19).

A :class:`Corruption` is applied to a task already stored by the broker (in
``queued``, a due ``scheduled`` entry, or ``active`` with an expired heartbeat):
it rewrites the payload or the meta string (both kept in ``d:<id>``) or the
state entries directly with redis-py. :data:`CORRUPTIONS` holds every kind (125):
the payload kinds of ``tests/corrupt_data.py`` plus meta, entry and record
kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis_helpers import read_data, write_data

from corrupt_data import payload_kinds
from taskq_core.broker import EnqueueRequest
from taskq_core.serialization import SCHEMA_VERSION, pack
from taskq_core.states import State
from taskq_redis import RedisBroker

__all__ = [
    "CORRUPTIONS",
    "META_FIELDS",
    "PLACES",
    "Corruption",
    "Placed",
    "place_task",
]

#: the fields of the meta string (kept in ``d:<id>`` before the payload), in order
META_FIELDS = (
    "priority",
    "scheduled_at",
    "time_last_queued",
    "queued_at",
    "seq",
    "count",
    "first",
    "twins",
)
#: where a corrupted task can be: queued, a due scheduled entry, or active
#: with an expired heartbeat (its worker gone)
PLACES = ("queued", "scheduled", "active")
#: what becomes of a corrupted task: "error" (in error with a record),
#: "removed" (gone, with a warning naming it), "stale" (a bad entry beside a
#: healthy task: the entry is dropped with a warning naming the id, the task
#: runs once), "healthy-record" (a healthy task with an unreadable record: it
#: runs once; listings show the record as unreadable)
OUTCOMES = ("error", "removed", "stale", "healthy-record")

Apply = Callable[[RedisBroker, str, str], None]


@dataclass(frozen=True)
class Corruption:
    """One way of damaging a stored task."""

    name: str
    apply: Apply
    #: where it is corruption (some meta fields only matter while queued)
    places: tuple[str, ...] = PLACES
    #: what the broker and worker make of it
    outcome: str = "error"
    #: applied to a task of the healthy function (its run is expected)
    healthy: bool = False
    #: a bad entry is reported under this prefix + the task id
    entry_prefix: str = ""


def _tasks_key(broker: RedisBroker, queue: str) -> str:
    return broker.layout.queue(queue).tasks


def _set_payload(payload: bytes) -> Apply:
    def apply(broker: RedisBroker, queue: str, task_id: str) -> None:
        _old, meta = read_data(broker, queue, task_id)
        write_data(broker, queue, task_id, payload, meta)

    return apply


def _meta(broker: RedisBroker, queue: str, task_id: str) -> list[bytes]:
    _payload, raw = read_data(broker, queue, task_id)
    assert isinstance(raw, bytes), raw
    parts = raw.split(b"|")
    assert len(parts) == len(META_FIELDS), raw
    return parts


def _set_field(field: str, value: bytes | Callable[[list[bytes]], bytes]) -> Apply:
    index = META_FIELDS.index(field)

    def apply(broker: RedisBroker, queue: str, task_id: str) -> None:
        parts = _meta(broker, queue, task_id)
        parts[index] = value(parts) if callable(value) else value
        payload, _old = read_data(broker, queue, task_id)
        write_data(broker, queue, task_id, payload, b"|".join(parts))

    return apply


def _set_meta(raw: bytes | Callable[[bytes], bytes]) -> Apply:
    def apply(broker: RedisBroker, queue: str, task_id: str) -> None:
        payload, old = read_data(broker, queue, task_id)
        assert isinstance(old, bytes)
        write_data(broker, queue, task_id, payload, raw(old) if callable(raw) else raw)

    return apply


def _delete(part: str) -> Apply:
    """Delete the payload (``"d"``) or the meta string (``"m"``) of a task."""

    def apply(broker: RedisBroker, queue: str, task_id: str) -> None:
        payload, meta = read_data(broker, queue, task_id)
        if part == "d":
            write_data(broker, queue, task_id, None, meta)
        else:
            write_data(broker, queue, task_id, payload, None)

    return apply


def _stale_entry(broker: RedisBroker, queue: str, task_id: str) -> None:
    """A second queued entry of the task with another sequence number."""
    parts = _meta(broker, queue, task_id)
    queued_at, seq = float(parts[3]), int(parts[4])
    member = f"{queued_at * 1_000_000:017.0f}{seq + 7919:013d}{task_id}"
    broker.client.zadd(broker.layout.queue(queue).state(State.QUEUED), {member: 0})


def _malformed_entry(prefix: str) -> Apply:
    def apply(broker: RedisBroker, queue: str, task_id: str) -> None:
        # the task itself stays healthy; the entry is one more member
        broker.client.zadd(broker.layout.queue(queue).state(State.QUEUED), {prefix + task_id: 0})

    return apply


def _records(value: bytes) -> Apply:
    """An execution record that is not msgpack (read by listing only)."""

    def apply(broker: RedisBroker, queue: str, task_id: str) -> None:
        parts = _meta(broker, queue, task_id)
        parts[5] = b"1"
        parts[6] = b"1"
        broker.client.hset(_tasks_key(broker, queue), f"x:{task_id}:1", value)
        payload, _old = read_data(broker, queue, task_id)
        write_data(broker, queue, task_id, payload, b"|".join(parts))

    return apply


def _catalogue() -> list[Corruption]:
    from corrupt_app import RAN_ANYWAY

    kinds = [
        Corruption(f"payload: {name}", _set_payload(payload))
        for name, payload in payload_kinds(RAN_ANYWAY).items()
    ]
    bad_numbers = {
        "text": b"abc",
        "inf": b"inf",
        "nan": b"nan",
        "overflow": b"1e400",
        "hex": b"0x10",
        "comma": b"1,5",
        "space": b" 1",
        "binary": b"\xff\xfe",
    }
    for field in ("scheduled_at", "time_last_queued"):
        kinds += [
            Corruption(f"meta {field}: {name}", _set_field(field, value))
            for name, value in bad_numbers.items()
        ]
    bad_integers = {
        "text": b"abc",
        "float": b"1.5",
        "hex": b"0x10",
        "space": b" 1",
        "exponent": b"1e3",
        "empty": b"",
    }
    for field in ("priority", "count", "first"):
        kinds += [
            Corruption(f"meta {field}: {name}", _set_field(field, value))
            for name, value in bad_integers.items()
        ]
    kinds += [
        Corruption("meta priority: out of range", _set_field("priority", b"5000")),
        Corruption("meta count: negative", _set_field("count", b"-3")),
        Corruption("meta first: zero", _set_field("first", b"0")),
        Corruption("meta first: beyond count", _set_field("first", b"9")),
        Corruption("meta queued_at: text", _set_field("queued_at", b"abc")),
        Corruption("meta queued_at: long before 1970", _set_field("queued_at", b"-1e11")),
        Corruption("meta queued_at: far future", _set_field("queued_at", b"1e12")),
        Corruption("meta queued_at: nan", _set_field("queued_at", b"nan")),
        Corruption("meta seq: text", _set_field("seq", b"abc")),
        Corruption("meta seq: float", _set_field("seq", b"1.5")),
        Corruption("meta seq: negative", _set_field("seq", b"-1")),
        Corruption("meta seq: too long", _set_field("seq", b"1" * 14)),
        Corruption("meta whole: empty", _set_meta(b"")),
        Corruption("meta whole: garbage", _set_meta(b"garbage")),
        Corruption("meta whole: binary", _set_meta(b"\xff\x00\xfe|\x80")),
        Corruption("meta whole: six fields", _set_meta(lambda old: old.rsplit(b"|", 1)[0])),
        Corruption("meta whole: eight fields", _set_meta(lambda old: old + b"|1")),
        Corruption("meta whole: missing", _delete("m")),
        # well-formed, but not what the task's queued entry says: only
        # corruption while queued (a queued time is rewritten when queued)
        Corruption(
            "meta queued_at: another time",
            _set_field("queued_at", b"1000.5"),
            places=("queued",),
        ),
        Corruption(
            "meta seq: another number",
            _set_field("seq", lambda parts: str(int(parts[4]) + 1000).encode()),
            places=("queued",),
        ),
        Corruption("meta queued_at: empty", _set_field("queued_at", b""), places=("queued",)),
        Corruption("meta seq: empty", _set_field("seq", b""), places=("queued",)),
        Corruption(
            "payload: missing",
            _delete("d"),
            places=("queued", "scheduled"),
            outcome="removed",
        ),
        Corruption(
            "entry: stale duplicate",
            _stale_entry,
            places=("queued",),
            outcome="stale",
            healthy=True,
        ),
        Corruption(
            "entry: malformed",
            _malformed_entry("not-a-queued-entry:"),
            places=("queued",),
            outcome="stale",
            healthy=True,
            entry_prefix="not-a-queued-entry:",
        ),
        Corruption(
            "entry: short",
            _malformed_entry("12345"),
            places=("queued",),
            outcome="stale",
            healthy=True,
            entry_prefix="12345",
        ),
        Corruption(
            "record: not msgpack",
            _records(b"\xc1garbage"),
            places=("queued",),
            outcome="healthy-record",
            healthy=True,
        ),
    ]
    return kinds


CORRUPTIONS: dict[str, Corruption] = {kind.name: kind for kind in _catalogue()}


@dataclass
class Placed:
    """A task stored in ``place`` and then corrupted with ``kind``."""

    task_id: str
    queue: str
    place: str
    kind: Corruption


def _payload_of(func: str, *args: Any) -> bytes:
    return pack({"v": SCHEMA_VERSION, "func": func, "args": list(args)})


def place_task(
    broker: RedisBroker, queue: str, task_id: str, place: str, kind: Corruption, tag: str = ""
) -> Placed:
    """Store a task (of ``ran_anyway``, or ``good(tag)`` for healthy kinds) in
    ``place``, then corrupt it."""
    from corrupt_app import GOOD, RAN_ANYWAY

    payload = _payload_of(GOOD, tag or task_id) if kind.healthy else _payload_of(RAN_ANYWAY)
    now = broker.time()
    if place == "queued":
        broker.enqueue(EnqueueRequest(task_id, queue, payload))
    elif place == "scheduled":
        broker.enqueue(EnqueueRequest(task_id, queue, payload, when=now + 3600))
    else:
        broker.enqueue(EnqueueRequest(task_id, queue, payload, priority=1000))
        popped = broker.pop(queue, 1, "a-worker-that-died", 1.0)
        assert [t.id for t in popped] == [task_id]
    kind.apply(broker, queue, task_id)
    keys = broker.layout.queue(queue)
    if place == "scheduled":  # due now
        broker.client.zadd(keys.state(State.SCHEDULED), {task_id: now - 1}, xx=True)
    elif place == "active":  # its heartbeat long expired
        broker.client.zadd(keys.state(State.ACTIVE), {task_id: now - 3600}, xx=True)
    return Placed(task_id, queue, place, kind)
