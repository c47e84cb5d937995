"""The Redis broker: every state move is one Lua script on one queue's keys.

Each method builds its script call (the arguments formatted by ``_codec``),
sends it with the ``_transport`` (one round trip, however many calls) and
decodes the reply (``_codec`` again). ``_notifications`` listens on the
activity channel; ``_keys`` names every key.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import redis
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
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import State
from taskq_redis import _codec as codec
from taskq_redis._keys import STATE_NUMBERS, Layout, root_of
from taskq_redis._meta import MAX_PRIORITY, MIN_PRIORITY, parse_meta
from taskq_redis._notifications import Notifications
from taskq_redis._scripts import ScriptSet
from taskq_redis._transport import Call, Transport

__all__ = ["MAX_PRIORITY", "MIN_PRIORITY", "RedisBroker", "setup_warnings"]

_PURGE_CHUNK = 1000
_PIPELINE_CHUNK = 1000
#: runs ended by one finish_pop script call
_RUN_CHUNK = 1000
_MIN_SERVER = (6, 2)
#: dropped entries kept for take_dropped()
_DROPPED_KEPT = 10_000


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
        self.transport = Transport(connection, url, options)
        self.notifications = Notifications(self.transport, self.layout.channel)
        #: what the scripts dropped, until take_dropped() (the newest, if
        #: nobody asks)
        self._dropped: deque[DroppedTask] = deque(maxlen=_DROPPED_KEPT)
        #: the queues popped from since the last expired_tasks() (see there)
        self._popped_queues: set[str] = set()

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

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (it always returns bytes)."""
        return self.transport.client

    @property
    def url(self) -> str:
        """The server's URL, for messages (no password)."""
        return self.transport.url

    @property
    def scripts(self) -> ScriptSet:
        """The Lua scripts, by name."""
        return self.transport.scripts

    def __repr__(self) -> str:
        return f"RedisBroker(url={self.url!r}, prefix={self.layout.prefix!r})"

    # -- plumbing ----------------------------------------------------------------
    def _queue_call(self, name: str, queue: str, *args: Any) -> Call:
        """A per-queue script: KEYS the queue key set, ARGV the queue name, the
        channel, then ``args``."""
        keys = self.layout.queue(queue)
        return self.transport.script(name, keys.keys, (keys.queue, self.layout.channel, *args))

    def _queue_script(self, name: str, queue: str, *args: Any) -> Any:
        """The reply of one per-queue script."""
        return self.transport.one(self._queue_call(name, queue, *args))

    def _key_script(self, name: str, key: str, *args: Any) -> Any:
        """The reply of a script on one key of its own (a lock, a queue's slots)."""
        return self.transport.one(self.transport.script(name, [key], args))

    # -- lifecycle -----------------------------------------------------------------
    def after_fork(self) -> None:
        """Drop the connections inherited from the parent (new ones are made)."""
        self.notifications.after_fork()
        self.transport.after_fork()

    def close(self) -> None:
        """Close the notification subscription and (if ours) the connections."""
        self.notifications.close()
        self.transport.close()

    def check(self) -> list[str]:
        """Warn about a server older than 6.2 or a policy that may evict data."""
        with self.transport.errors():
            info = self.client.info("server")
            try:
                config: dict[Any, Any] = dict(self.client.config_get("maxmemory-policy"))
            except redis.exceptions.ResponseError:  # CONFIG disabled (managed Redis)
                config = {}
        values = [value for value in config.values() if isinstance(value, bytes | str)]
        policy = codec.text(values[0]) if values else None
        return setup_warnings(str(info.get("redis_version", "0")), policy)

    def time(self) -> float:
        """The Redis server's clock."""
        with self.transport.errors():
            seconds, micros = self.client.time()
        return seconds + micros / 1_000_000

    # -- enqueue -----------------------------------------------------------------------
    def _enqueue_call(self, request: EnqueueRequest) -> Call:
        args = codec.enqueue_args(request)
        return self._queue_call("enqueue", request.queue, *args)

    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """One round trip: SADD the root to the roots set, then the script."""
        calls = [
            Call("sadd", (self.layout.roots, root_of(request.queue))),
            self._enqueue_call(request),
        ]
        raw = self.transport.run(calls)[1]
        if int(raw[0]) < 0:
            raise QueueFullException(f"Queue size: {int(raw[3])}")
        return codec.enqueue_result(request, raw)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Pipelined: one round trip per 1000 tasks, each task atomic, in order."""
        results: list[EnqueueResult] = []
        for start in range(0, len(requests), _PIPELINE_CHUNK):
            chunk = requests[start : start + _PIPELINE_CHUNK]
            scripts = [self._enqueue_call(request) for request in chunk]
            roots = sorted({root_of(request.queue) for request in chunk})
            raw = self.transport.run([Call("sadd", (self.layout.roots, *roots)), *scripts])
            results += [
                codec.enqueue_result(request, r) for request, r in zip(chunk, raw[1:], strict=True)
            ]
        return results

    # -- worker side -----------------------------------------------------------------------
    def _finish_pop_calls(
        self,
        queue: str,
        worker_id: str,
        requests: Sequence[FinishRequest],
        limit: int,
        defer_seconds: float,
    ) -> list[Call]:
        """``finish_pop`` calls ending ``requests`` (at most ``_RUN_CHUNK`` runs
        per script, in order), the last one popping up to ``limit`` tasks."""
        chunks = [
            requests[start : start + _RUN_CHUNK] for start in range(0, len(requests), _RUN_CHUNK)
        ] or [[]]
        defer = codec.num(defer_seconds)
        calls = []
        for number, chunk in enumerate(chunks, start=1):
            args: list[Any] = [worker_id, int(limit) if number == len(chunks) else 0, defer]
            args.append(len(chunk))
            for r in chunk:
                args.append(r.task_id)
                args.extend(codec.end_args(r.outcome, r.when, r.execution, r.max_stored_executions))
            calls.append(self._queue_call("finish_pop", queue, *args))
        return calls

    def _finish_pop(
        self,
        queue: str,
        worker_id: str,
        requests: Sequence[FinishRequest],
        limit: int,
        defer_seconds: float,
    ) -> tuple[list[bool], list[StoredTask]]:
        """End ``requests`` and pop up to ``limit`` tasks: one round trip (one
        script call per ``_RUN_CHUNK`` runs)."""
        calls = self._finish_pop_calls(queue, worker_id, requests, limit, defer_seconds)
        if limit > 0:
            self._popped_queues.add(queue)
        ended: list[bool] = []
        tasks: list[StoredTask] = []
        for raw in self.transport.run(calls):
            flags, dropped, popped = codec.decoded_finish_pop(queue, raw)
            ended += flags
            self._dropped.extend(dropped)
            tasks += popped
        return ended, tasks

    def pop(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> list[StoredTask]:
        """One script: up to ``limit`` tasks with their payloads."""
        if limit <= 0:
            return []
        return self._finish_pop(queue, worker_id, [], limit, defer_seconds)[1]

    def take_dropped(self) -> list[DroppedTask]:
        """The entries pop and move_due dropped or moved to error since the
        last call, because their stored data was missing or unreadable."""
        dropped: list[DroppedTask] = []
        while self._dropped:
            dropped.append(self._dropped.popleft())
        return dropped

    def heartbeat(self, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        if not task_ids:
            return []
        raw = self._queue_script("heartbeat", queue, worker_id, *task_ids)
        return [codec.text(item) for item in raw]

    def heartbeat_many(
        self, task_ids: Mapping[str, Sequence[str]], worker_id: str
    ) -> dict[str, list[str]]:
        """Every queue's heartbeat script in one pipeline (one round trip)."""
        queues = [queue for queue, ids in task_ids.items() if ids]
        if not queues:
            return {}
        calls = [self._queue_call("heartbeat", q, worker_id, *task_ids[q]) for q in queues]
        results = self.transport.run(calls)
        return {
            q: [codec.text(item) for item in raw] for q, raw in zip(queues, results, strict=True)
        }

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
        request = FinishRequest(task_id, outcome, when, execution, max_stored_executions)
        return self._finish_pop(queue, worker_id, [request], 0, 0.0)[0][0]

    def finish_many(
        self, queue: str, worker_id: str, requests: Sequence[FinishRequest]
    ) -> list[bool]:
        """Every finish in one round trip (one script per 1000), each atomic."""
        if not requests:
            return []
        return self._finish_pop(queue, worker_id, requests, 0, 0.0)[0]

    def finish_many_then_pop(
        self,
        queue: str,
        worker_id: str,
        requests: Sequence[FinishRequest],
        limit: int,
        defer_seconds: float,
    ) -> tuple[list[bool], list[StoredTask]]:
        """The finishes and the next pop in one round trip, in this order: one
        script ends the runs and pops (per 1000 runs one script more)."""
        if limit <= 0:
            return self.finish_many(queue, worker_id, requests), []
        return self._finish_pop(queue, worker_id, requests, limit, defer_seconds)

    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        """Scans the queues of the active indexes, and those this broker popped
        from since the last call: the scripts touch an index only when its zset
        may have become empty or non-empty, so an index entry lost behind the
        broker's back stays lost while a worker keeps a queue busy; that
        worker's own scan still looks there."""
        if limit <= 0:
            return []
        popped, self._popped_queues = self._popped_queues, set()
        queues = sorted(self.queues(State.ACTIVE) | popped)
        if not queues:
            return []
        bound = f"({codec.num(older_than)}"
        calls = [
            Call(
                "zrangebyscore",
                (self.layout.queue(queue).state(State.ACTIVE), "-inf", bound),
                {"start": 0, "num": limit, "withscores": True},
            )
            for queue in queues
        ]
        found: list[tuple[float, str, str]] = []
        for queue, entries in zip(queues, self.transport.run(calls), strict=True):
            found += [(float(score), queue, codec.id_text(member)) for member, score in entries]
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
        args = codec.end_args(outcome, when, execution, max_stored_executions)
        older = codec.num(older_than)
        return bool(self._queue_script("recover_expired", queue, task_id, older, *args))

    def drop_expired_missing(self, queue: str, task_id: str, older_than: float) -> bool:
        """One script: the heartbeat and missing-data checks and the removal."""
        older = codec.num(older_than)
        return bool(self._queue_script("drop_expired_missing", queue, task_id, older))

    def move_due(self, queue: str, limit: int) -> int:
        if limit <= 0:
            return 0
        raw = self._queue_script("move_due", queue, int(limit))
        self._dropped.extend(codec.dropped_entries(queue, raw[2 : 2 + int(raw[1])]))
        return int(raw[0])

    # -- locks and semaphores -----------------------------------------------------------------
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        lock = self.layout.lock(lock_id)
        return bool(self._key_script("lock_acquire", lock, token, codec.milliseconds(ttl)))

    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        lock = self.layout.lock(lock_id)
        return bool(self._key_script("lock_renew", lock, token, codec.milliseconds(ttl)))

    def release_lock(self, lock_id: str, token: str) -> bool:
        return bool(self._key_script("lock_release", self.layout.lock(lock_id), token))

    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        slots = self.layout.slots(queue)
        return bool(self._key_script("slot_acquire", slots, worker_id, int(limit), codec.num(ttl)))

    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        self.transport.one(Call("zrem", (self.layout.slots(queue), worker_id)))

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        self._key_script("system_lock_set", self.layout.slots(queue), codec.num(timeout))

    def get_queue_system_lock(self, queue: str) -> float | None:
        raw = self._key_script("system_lock_get", self.layout.slots(queue))
        return None if raw is None else float(raw)

    def try_rate_limit(self, name: str, ttl: float) -> bool:
        raw = self.transport.one(
            Call(
                "set",
                (self.layout.rate_limit(name), b"1"),
                {"nx": True, "px": codec.milliseconds(ttl)},
            )
        )
        return bool(raw)

    # -- notifications ---------------------------------------------------------------------------
    def subscribe(self) -> None:
        """Start listening for notifications now (``wait_for_activity`` does it
        on its first call otherwise)."""
        self.notifications.subscribe()

    def wait_for_activity(self, timeout: float) -> set[str]:
        """Wait on the ``<prefix>:activity`` channel; returns as soon as one
        queue name arrived (with any others already waiting)."""
        return self.notifications.wait(timeout)

    # -- inspection -----------------------------------------------------------------------------
    def roots(self) -> set[str]:
        """Every queue root ever enqueued to."""
        with self.transport.errors():
            members = self.client.smembers(self.layout.roots)
        return {codec.text(m) for m in members}

    def queues(self, state: State) -> set[str]:
        """Exact per-root indexes (kept by the scripts), read in one pipeline."""
        state = State(state)
        roots = sorted(self.roots())
        if not roots:
            return set()
        calls = [Call("smembers", (self.layout.index(root, state),)) for root in roots]
        names: set[str] = set()
        for members in self.transport.run(calls):
            names |= {codec.text(m) for m in members}
        return names

    def queue_sizes(self, queue: str) -> dict[State, int]:
        keys = self.layout.queue(queue)
        states = list(STATE_NUMBERS)
        counts = self.transport.run([Call("zcard", (keys.state(state),)) for state in states])
        return {state: int(n) for state, n in zip(states, counts, strict=True)}

    def _read(
        self, queue: str, state: State, load_executions: int, mode: str, *args: Any
    ) -> tuple[int, list[StoredTask]]:
        load = max(0, int(load_executions))
        raw = self._queue_script("read", queue, STATE_NUMBERS[state], load, mode, *args)
        return codec.decoded_read(queue, state, raw)

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
        raw = self.transport.one(Call("hget", (self.layout.queue(queue).tasks, f"d:{task_id}")))
        payload, meta = codec.split_data(raw)
        if payload is None:
            raise TaskNotFound(f"task {task_id!r} of queue {queue!r} has no data")
        return parse_meta(meta).executions_count

    # -- repair -----------------------------------------------------------------------------------
    def _repair(self, script: str, queue: str, task_id: str, state: State, *args: Any) -> None:
        if not self._queue_script(script, queue, task_id, *args):
            raise TaskNotFound(f"task {task_id!r} is not {state.value} in queue {queue!r}")

    def cancel(self, queue: str, task_id: str) -> None:
        self._repair("cancel", queue, task_id, State.SCHEDULED)

    def delete(self, queue: str, task_id: str) -> None:
        self._repair("delete", queue, task_id, State.ERROR)

    def retry_from_error(self, queue: str, task_id: str) -> None:
        self._repair("retry_from_error", queue, task_id, State.ERROR)

    def update_scheduled_time(self, queue: str, task_id: str, when: float) -> None:
        self._repair("update_scheduled_time", queue, task_id, State.SCHEDULED, codec.num(when))

    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Chunks of at most 1000, each atomic, from the oldest: never skips.
        A ``limit`` below 1 is a ValueError (TaskTiger asserts it)."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive or None, not {limit!r}")
        bound = "" if older_than is None else codec.num(older_than)
        purged = 0
        while limit is None or purged < limit:
            chunk = _PURGE_CHUNK if limit is None else min(_PURGE_CHUNK, limit - purged)
            done = int(self._queue_script("purge_errors", queue, bound, chunk))
            purged += done
            if done < chunk:
                break
        return purged
