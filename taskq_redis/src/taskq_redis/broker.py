"""The Redis broker: every state move is one Lua script on one queue's keys."""

from __future__ import annotations

import math
import re
import time as _time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import msgpack
import redis
import redis.client
import redis.exceptions

from taskq_core.broker import (
    Broker,
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    FinishRequest,
    StoredTask,
)
from taskq_core.exceptions import (
    BrokerConnectionError,
    QueueFullException,
    SerializationError,
    TaskNotFound,
)
from taskq_core.states import OUTCOMES, State
from taskq_redis._connection import make_client, map_errors
from taskq_redis._keys import STATE_NUMBERS, Layout, QueueKeys, root_of
from taskq_redis._scripts import ScriptSet

__all__ = ["MAX_PRIORITY", "MIN_PRIORITY", "RedisBroker", "setup_warnings"]

MIN_PRIORITY = -1000
MAX_PRIORITY = 1000
_OUTCOMES = frozenset(OUTCOMES)
_PURGE_CHUNK = 1000
_PIPELINE_CHUNK = 1000
_MIN_SERVER = (6, 2)
#: dropped entries kept for take_dropped()
_DROPPED_KEPT = 10_000
#: state numbers of the scripts (see _keys.STATE_NUMBERS)
_STATES_BY_NUMBER = {number: state for state, number in STATE_NUMBERS.items()}


def _num(value: float) -> str:
    """A finite number as the exact text Redis and Lua parse back."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return repr(number)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _id_text(value: bytes | str) -> str:
    """A task id read back from Redis; bytes that are not UTF-8 (a damaged
    entry) are shown escaped instead of raising."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def setup_warnings(version: str, policy: str | None) -> list[str]:
    """Warnings for a server ``version`` and ``maxmemory-policy`` (``None``:
    unknown). Any policy but ``noeviction`` may evict task data: the
    ``allkeys-*`` ones anything, the ``volatile-*`` ones the TTL'd locks."""
    warnings: list[str] = []
    parts: list[int] = []
    for part in version.split(".")[:2]:
        if not part.isdigit():
            break
        parts.append(int(part))
    if tuple(parts) < _MIN_SERVER:
        warnings.append(f"Redis {version} is older than 6.2, which taskq needs")
    if policy is not None and policy != "noeviction":
        warnings.append(
            f"Redis maxmemory-policy is {policy!r}: when memory is full Redis may evict "
            "task data or locks; set it to 'noeviction'"
        )
    return warnings


@dataclass(frozen=True)
class _Meta:
    priority: int = 0
    scheduled_at: float | None = None
    time_last_queued: float | None = None
    executions_count: int = 0
    #: what is wrong with the meta string (the fields then hold defaults)
    problem: str | None = None


# The meta string "priority|scheduled_at|time_last_queued|queued_at|seq|
# count|first" is read with the same rules as check_meta in lua/_queue.lua.
_INT = re.compile(rb"-?[0-9]+")
_NUMBER = re.compile(rb"[0-9.eE+-]+")
_MAX_PRIORITY = 1000
_MAX_RECORDS = 1_000_000


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
    """What is wrong with the seven fields of a meta string, or ``None``."""
    priority, scheduled_at, last_queued, queued_at, seq, count, first = parts
    number = _meta_int(priority)
    if number is None or abs(number) > _MAX_PRIORITY:
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
    return None


def _parse_meta(raw: bytes | None) -> _Meta:
    """The meta of a task; never raises: what cannot be read is named in
    ``problem`` (the fields that can still be read are kept)."""
    if not raw:
        return _Meta(problem="the task's metadata is missing")
    parts = raw.split(b"|")
    if len(parts) != 7:
        return _Meta(
            problem=f"the task's metadata is not 7 fields separated by '|': {_excerpt(raw)}"
        )
    problem = _meta_problem(parts)
    priority = _meta_int(parts[0])
    count = _meta_int(parts[5])
    return _Meta(
        priority=priority if priority is not None and abs(priority) <= _MAX_PRIORITY else 0,
        scheduled_at=_meta_number(parts[1]),
        time_last_queued=_meta_number(parts[2]),
        executions_count=count if count is not None and count >= 0 else 0,
        problem=None if problem is None else f"the task's metadata {problem}",
    )


def _encode_execution(execution: Execution) -> bytes:
    try:
        packed: bytes = msgpack.packb(dict(execution), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot encode the execution record: {exc}") from exc
    return packed


def _decode_execution(raw: bytes) -> Execution:
    """A stored record; one that is not a msgpack map of text keys (damaged)
    comes back as ``{"unreadable": what is wrong}`` instead of raising."""
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        return {"unreadable": f"execution record is not valid msgpack ({type(exc).__name__})"}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return {"unreadable": f"execution record is not a map of fields: {value!r:.60}"}
    return cast(Execution, dict(value))  # a record as stored: its values are unchecked


@dataclass
class _Call:
    """One command for :meth:`RedisBroker._run` (``script`` set for EVALSHA)."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    script: str | None = None


class RedisBroker(Broker):
    """A broker on Redis >= 6.2 (TCP, TLS or unix socket).

    :param connection: a ready ``redis.Redis`` (any ``decode_responses``).
    :param url: ``redis://``, ``rediss://`` or ``unix://`` URL (default
        ``redis://localhost:6379/0``); a password missing from the URL is read
        from ``TASKQ_REDIS_PASSWORD`` or ``REDIS_PASSWORD``.
    :param prefix: the start of every key name (no braces).
    :param options: redis-py connection options (``socket_timeout``,
        ``password``, ``db``, ``ssl_ca_certs``...). Unknown names raise
        ``TypeError``.
    """

    name: ClassVar[str] = "redis"
    supports_fork: ClassVar[bool] = True

    def __init__(
        self,
        connection: redis.Redis | None = None,
        url: str | None = None,
        prefix: str = "taskq",
        **options: Any,
    ) -> None:
        self.layout = Layout(prefix)
        self.client, self.url, self._owns_client = make_client(connection, url, options)
        self.scripts = ScriptSet()
        self._pubsub: redis.client.PubSub | None = None
        #: what the scripts dropped, until take_dropped() (the newest, if
        #: nobody asks)
        self._dropped: deque[DroppedTask] = deque(maxlen=_DROPPED_KEPT)

    @classmethod
    def from_options(
        cls,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        password: str | None = None,
        db: int | None = None,
        **kw: Any,
    ) -> RedisBroker:
        """Build from CLI-style options: a URL, or host/port/db (+ password)."""
        if url is None and (host is not None or port is not None or db is not None):
            url = f"redis://{host or 'localhost'}:{port or 6379}/{db or 0}"
        elif db is not None:
            kw["db"] = db
        if password is not None:
            kw["password"] = password
        return cls(url=url, **kw)

    def __repr__(self) -> str:
        return f"RedisBroker(url={self.url!r}, prefix={self.layout.prefix!r})"

    # -- plumbing ----------------------------------------------------------------
    def _script_call(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> _Call:
        return _Call("evalsha", self.scripts.evalsha_args(name, keys, args), script=name)

    def _queue_call(self, name: str, keys: QueueKeys, *args: Any) -> _Call:
        return self._script_call(name, keys.keys, (keys.queue, self.layout.channel, *args))

    def _send(self, calls: Sequence[_Call]) -> list[Any]:
        if len(calls) == 1:
            call = calls[0]
            try:
                return [getattr(self.client, call.method)(*call.args, **call.kwargs)]
            except redis.exceptions.NoScriptError as exc:
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            getattr(pipe, call.method)(*call.args, **call.kwargs)
        results: list[Any] = pipe.execute(raise_on_error=False)
        return results

    def _run(self, calls: Sequence[_Call]) -> list[Any]:
        """Send ``calls`` in one round trip; load scripts on NOSCRIPT and resend
        only the script calls that were refused (in their order)."""
        with map_errors(self.url):
            results = self._send(calls)
            missing = [
                i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)
            ]
            if missing:
                names = {calls[i].script for i in missing}
                for name in sorted(n for n in names if n is not None):
                    self.client.script_load(self.scripts[name].source)
                again = self._send([calls[i] for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results

    def _one(self, call: _Call) -> Any:
        return self._run([call])[0]

    # -- lifecycle -----------------------------------------------------------------
    def after_fork(self) -> None:
        """Drop the connections inherited from the parent (new ones are made)."""
        self._pubsub = None
        self.client.connection_pool.reset()

    def close(self) -> None:
        """Close the notification subscription and (if ours) the connections."""
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.exceptions.RedisError:
                pass
            self._pubsub = None
        if self._owns_client:
            self.client.connection_pool.disconnect()

    def check(self) -> list[str]:
        """Warn about a server older than 6.2 or a policy that may evict data."""
        with map_errors(self.url):
            info = self.client.info("server")
            try:
                config: dict[Any, Any] = dict(self.client.config_get("maxmemory-policy"))
            except redis.exceptions.ResponseError:  # CONFIG disabled (managed Redis)
                config = {}
        values = [value for value in config.values() if isinstance(value, bytes | str)]
        policy = _text(values[0]) if values else None
        return setup_warnings(str(info.get("redis_version", "0")), policy)

    def time(self) -> float:
        """The Redis server's clock."""
        with map_errors(self.url):
            seconds, micros = self.client.time()
        return seconds + micros / 1_000_000

    # -- enqueue -----------------------------------------------------------------------
    def _enqueue_call(self, request: EnqueueRequest) -> _Call:
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
        return self._queue_call(
            "enqueue",
            self.layout.queue(request.queue),
            request.id,
            bytes(payload),
            "" if request.when is None else _num(request.when),
            str(priority),
            "1" if request.unique else "0",
            "" if max_size is None else str(int(max_size)),
        )

    @staticmethod
    def _enqueue_result(request: EnqueueRequest, raw: Sequence[Any]) -> EnqueueResult:
        code = int(raw[0])
        if code < 0:
            return EnqueueResult(request.id, None, False, 0.0, refused=True)
        return EnqueueResult(request.id, State(_text(raw[1])), code == 1, float(raw[2]))

    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """One round trip: SADD the root to the roots set, then the script."""
        calls = [
            _Call("sadd", (self.layout.roots, root_of(request.queue))),
            self._enqueue_call(request),
        ]
        raw = self._run(calls)[1]
        if int(raw[0]) < 0:
            raise QueueFullException(f"Queue size: {int(raw[3])}")
        return self._enqueue_result(request, raw)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Pipelined: one round trip per 1000 tasks, each task atomic, in order."""
        results: list[EnqueueResult] = []
        for start in range(0, len(requests), _PIPELINE_CHUNK):
            chunk = requests[start : start + _PIPELINE_CHUNK]
            scripts = [self._enqueue_call(request) for request in chunk]
            roots = sorted({root_of(request.queue) for request in chunk})
            raw = self._run([_Call("sadd", (self.layout.roots, *roots)), *scripts])
            results += [
                self._enqueue_result(request, r) for request, r in zip(chunk, raw[1:], strict=True)
            ]
        return results

    # -- worker side -----------------------------------------------------------------------
    def pop(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> list[StoredTask]:
        """One script: up to ``limit`` tasks with their payloads."""
        if limit <= 0:
            return []
        raw = self._one(self._pop_call(queue, limit, worker_id, defer_seconds))
        return self._popped(queue, raw)

    def _pop_call(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> _Call:
        return self._queue_call(
            "pop", self.layout.queue(queue), int(limit), worker_id, _num(defer_seconds)
        )

    def _keep_dropped(self, queue: str, raw: Sequence[Any]) -> None:
        """Remember the entries a script reports as dropped (id, state number,
        reason, moved to error) for :meth:`take_dropped`."""
        for i in range(0, len(raw) - 3, 4):
            self._dropped.append(
                DroppedTask(
                    queue=queue,
                    task_id=_id_text(raw[i]),
                    state=_STATES_BY_NUMBER.get(int(raw[i + 1]), State.QUEUED),
                    reason=_id_text(raw[i + 2]),
                    moved_to_error=raw[i + 3] in (b"1", "1"),
                )
            )

    def take_dropped(self) -> list[DroppedTask]:
        """The entries pop and move_due dropped or moved to error since the
        last call, because their stored data was missing or unreadable."""
        dropped: list[DroppedTask] = []
        while self._dropped:
            dropped.append(self._dropped.popleft())
        return dropped

    def _popped(self, queue: str, raw: Any) -> list[StoredTask]:
        now = float(raw[0])
        n_dropped = int(raw[1])
        self._keep_dropped(queue, raw[2 : 2 + n_dropped])
        tasks: list[StoredTask] = []
        for i in range(2 + n_dropped, len(raw), 3):
            meta = _parse_meta(raw[i + 2])
            tasks.append(
                StoredTask(
                    id=_id_text(raw[i]),
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
        return tasks

    def heartbeat(self, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        if not task_ids:
            return []
        raw = self._one(
            self._queue_call("heartbeat", self.layout.queue(queue), worker_id, *task_ids)
        )
        return [_text(item) for item in raw]

    def _end_args(
        self,
        outcome: FinishOutcome,
        when: float | None,
        execution: Execution | None,
        max_stored_executions: int | None,
    ) -> tuple[str, str, bytes | str, str]:
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        if max_stored_executions is not None and max_stored_executions < 0:
            raise ValueError("max_stored_executions must be >= 0 (0 or None: keep all)")
        return (
            outcome,
            "" if when is None else _num(when),
            b"" if execution is None else _encode_execution(execution),
            str(int(max_stored_executions)) if max_stored_executions else "",
        )

    def finish(
        self,
        queue: str,
        task_id: str,
        worker_id: str,
        outcome: FinishOutcome,
        *,
        when: float | None = None,
        execution: Execution | None = None,
        max_stored_executions: int | None = None,
    ) -> bool:
        args = self._end_args(outcome, when, execution, max_stored_executions)
        call = self._queue_call(
            "finish", self.layout.queue(queue), task_id, worker_id, args[0], *args[1:]
        )
        return bool(self._one(call))

    def _finish_call(self, queue: str, worker_id: str, r: FinishRequest) -> _Call:
        args = self._end_args(r.outcome, r.when, r.execution, r.max_stored_executions)
        return self._queue_call("finish", self.layout.queue(queue), r.task_id, worker_id, *args)

    def finish_many(
        self, queue: str, worker_id: str, requests: Sequence[FinishRequest]
    ) -> list[bool]:
        """Every finish in one pipeline: one round trip, each script atomic."""
        if not requests:
            return []
        calls = [self._finish_call(queue, worker_id, r) for r in requests]
        return [bool(result) for result in self._run(calls)]

    def finish_many_then_pop(
        self,
        queue: str,
        worker_id: str,
        requests: Sequence[FinishRequest],
        limit: int,
        defer_seconds: float,
    ) -> tuple[list[bool], list[StoredTask]]:
        """The finishes and the next pop in one pipeline (one round trip); each
        script is atomic and they run in this order."""
        if limit <= 0:
            return self.finish_many(queue, worker_id, requests), []
        calls = [self._finish_call(queue, worker_id, r) for r in requests]
        calls.append(self._pop_call(queue, limit, worker_id, defer_seconds))
        results = self._run(calls)
        return [bool(r) for r in results[:-1]], self._popped(queue, results[-1])

    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        if limit <= 0:
            return []
        queues = sorted(self.queues(State.ACTIVE))
        if not queues:
            return []
        bound = f"({_num(older_than)}"
        calls = [
            _Call(
                "zrangebyscore",
                (self.layout.queue(queue).state(State.ACTIVE), "-inf", bound),
                {"start": 0, "num": limit, "withscores": True},
            )
            for queue in queues
        ]
        found: list[tuple[float, str, str]] = []
        for queue, entries in zip(queues, self._run(calls), strict=True):
            found += [(float(score), queue, _id_text(member)) for member, score in entries]
        found.sort()
        return [(queue, task_id) for _, queue, task_id in found[:limit]]

    def recover_expired(
        self,
        queue: str,
        task_id: str,
        older_than: float,
        outcome: FinishOutcome,
        *,
        when: float | None = None,
        execution: Execution | None = None,
        max_stored_executions: int | None = None,
    ) -> bool:
        args = self._end_args(outcome, when, execution, max_stored_executions)
        call = self._queue_call(
            "recover_expired", self.layout.queue(queue), task_id, _num(older_than), *args
        )
        return bool(self._one(call))

    def drop_expired_missing(self, queue: str, task_id: str, older_than: float) -> bool:
        """One script: the heartbeat and missing-data checks and the removal."""
        call = self._queue_call(
            "drop_expired_missing", self.layout.queue(queue), task_id, _num(older_than)
        )
        return bool(self._one(call))

    def move_due(self, queue: str, limit: int) -> int:
        if limit <= 0:
            return 0
        raw = self._one(self._queue_call("move_due", self.layout.queue(queue), int(limit)))
        self._keep_dropped(queue, raw[2 : 2 + int(raw[1])])
        return int(raw[0])

    # -- locks and semaphores -----------------------------------------------------------------
    @staticmethod
    def _ms(ttl: float) -> int:
        return max(1, math.ceil(float(ttl) * 1000))

    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        call = self._script_call(
            "lock_acquire", [self.layout.lock(lock_id)], [token, self._ms(ttl)]
        )
        return bool(self._one(call))

    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        call = self._script_call("lock_renew", [self.layout.lock(lock_id)], [token, self._ms(ttl)])
        return bool(self._one(call))

    def release_lock(self, lock_id: str, token: str) -> bool:
        call = self._script_call("lock_release", [self.layout.lock(lock_id)], [token])
        return bool(self._one(call))

    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        call = self._script_call(
            "slot_acquire", [self.layout.slots(queue)], [worker_id, int(limit), _num(ttl)]
        )
        return bool(self._one(call))

    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        self._one(_Call("zrem", (self.layout.slots(queue), worker_id)))

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        self._one(self._script_call("system_lock_set", [self.layout.slots(queue)], [_num(timeout)]))

    def get_queue_system_lock(self, queue: str) -> float | None:
        raw = self._one(self._script_call("system_lock_get", [self.layout.slots(queue)], []))
        return None if raw is None else float(raw)

    def try_rate_limit(self, name: str, ttl: float) -> bool:
        raw = self._one(
            _Call("set", (self.layout.rate_limit(name), b"1"), {"nx": True, "px": self._ms(ttl)})
        )
        return bool(raw)

    # -- notifications ---------------------------------------------------------------------------
    def _subscription(self) -> redis.client.PubSub:
        if self._pubsub is None:
            # typed in some redis-py releases and not in others: call it untyped
            make_pubsub: Any = self.client.pubsub
            pubsub: redis.client.PubSub = make_pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.layout.channel)
            except BaseException:
                pubsub.close()
                raise
            self._pubsub = pubsub
        return self._pubsub

    def subscribe(self) -> None:
        """Start listening for notifications now (``wait_for_activity`` does it
        on its first call otherwise)."""
        with map_errors(self.url):
            self._subscription()

    def wait_for_activity(self, timeout: float) -> set[str]:
        """Wait on the ``<prefix>:activity`` channel; returns as soon as one
        queue name arrived (with any others already waiting)."""
        deadline = _time.monotonic() + max(0.0, float(timeout))
        names: set[str] = set()
        try:
            with map_errors(self.url):
                pubsub = self._subscription()
                while True:
                    remaining = 0.0 if names else max(0.0, deadline - _time.monotonic())
                    message = pubsub.get_message(timeout=remaining)
                    if message is None:
                        if names or _time.monotonic() >= deadline:
                            return names
                        continue
                    if message.get("type") == "message":
                        names.add(_text(message["data"]))
        except BrokerConnectionError:
            self._reset_pubsub()
            raise

    def _reset_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except (redis.exceptions.RedisError, OSError):
                pass

    # -- inspection -----------------------------------------------------------------------------
    def roots(self) -> set[str]:
        """Every queue root ever enqueued to."""
        with map_errors(self.url):
            members = self.client.smembers(self.layout.roots)
        return {_text(m) for m in members}

    def queues(self, state: State) -> set[str]:
        """Exact per-root indexes (kept by the scripts), read in one pipeline."""
        state = State(state)
        roots = sorted(self.roots())
        if not roots:
            return set()
        calls = [_Call("smembers", (self.layout.index(root, state),)) for root in roots]
        names: set[str] = set()
        for members in self._run(calls):
            names |= {_text(m) for m in members}
        return names

    def queue_sizes(self, queue: str) -> dict[State, int]:
        keys = self.layout.queue(queue)
        states = list(STATE_NUMBERS)
        counts = self._run([_Call("zcard", (keys.state(state),)) for state in states])
        return {state: int(n) for state, n in zip(states, counts, strict=True)}

    def _read(
        self, queue: str, state: State, load_executions: int, mode: str, *args: Any
    ) -> tuple[int, list[StoredTask]]:
        raw = self._one(
            self._queue_call(
                "read",
                self.layout.queue(queue),
                STATE_NUMBERS[state],
                max(0, int(load_executions)),
                mode,
                *args,
            )
        )
        total = int(raw[0])
        tasks: list[StoredTask] = []
        i = 1
        while i < len(raw):
            task_id, score, has_data, payload, meta_raw = raw[i : i + 5]
            count = int(raw[i + 5])
            records = raw[i + 6 : i + 6 + count]
            i += 6 + count
            meta = _parse_meta(meta_raw)
            missing = has_data != b"1"
            tasks.append(
                StoredTask(
                    id=_id_text(task_id),
                    queue=queue,
                    state=state,
                    payload=b"" if missing else bytes(payload),
                    ts=float(score),
                    priority=meta.priority,
                    scheduled_at=meta.scheduled_at,
                    time_last_queued=meta.time_last_queued,
                    executions_count=meta.executions_count,
                    executions=[_decode_execution(r) for r in records if r],
                    missing=missing,
                    meta_error=None if missing else meta.problem,
                )
            )
        return total, tasks

    def get_task(
        self, queue: str, state: State, task_id: str, load_executions: int = 0
    ) -> StoredTask:
        _, tasks = self._read(queue, State(state), load_executions, "ids", task_id)
        if not tasks or tasks[0].missing:
            raise TaskNotFound(f"task {task_id!r} is not {State(state).value} in queue {queue!r}")
        return tasks[0]

    def list_tasks(
        self,
        queue: str,
        state: State,
        skip: int = 0,
        limit: int = 1000,
        load_executions: int = 0,
    ) -> tuple[int, list[StoredTask]]:
        return self._read(
            queue, State(state), load_executions, "range", max(0, int(skip)), max(0, int(limit))
        )

    def executions_count(self, queue: str, task_id: str) -> int:
        tasks_key = self.layout.queue(queue).tasks
        exists, meta = self._run(
            [
                _Call("hexists", (tasks_key, f"d:{task_id}")),
                _Call("hget", (tasks_key, f"m:{task_id}")),
            ]
        )
        if not exists:
            raise TaskNotFound(f"task {task_id!r} of queue {queue!r} has no data")
        return _parse_meta(meta).executions_count

    # -- repair -----------------------------------------------------------------------------------
    def _repair(self, script: str, queue: str, task_id: str, state: State, *args: Any) -> None:
        if not self._one(self._queue_call(script, self.layout.queue(queue), task_id, *args)):
            raise TaskNotFound(f"task {task_id!r} is not {state.value} in queue {queue!r}")

    def cancel(self, queue: str, task_id: str) -> None:
        self._repair("cancel", queue, task_id, State.SCHEDULED)

    def delete(self, queue: str, task_id: str) -> None:
        self._repair("delete", queue, task_id, State.ERROR)

    def retry_from_error(self, queue: str, task_id: str) -> None:
        self._repair("retry_from_error", queue, task_id, State.ERROR)

    def update_scheduled_time(self, queue: str, task_id: str, when: float) -> None:
        self._repair("update_scheduled_time", queue, task_id, State.SCHEDULED, _num(when))

    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Chunks of at most 1000, each atomic, from the oldest: never skips."""
        keys = self.layout.queue(queue)
        bound = "" if older_than is None else _num(older_than)
        purged = 0
        while limit is None or purged < limit:
            chunk = _PURGE_CHUNK if limit is None else min(_PURGE_CHUNK, limit - purged)
            done = int(self._one(self._queue_call("purge_errors", keys, bound, chunk)))
            purged += done
            if done < chunk:
                break
        return purged
