"""Redis broker behaviour beyond the shared contract: the key layout, data
hygiene, server time, odd names, NOSCRIPT recovery, round trips, scale."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from redis_helpers import FAR, Q, drop_task_data, ids, read_data, req

from taskq_core.broker import FinishRequest
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import STATES, State
from taskq_redis import RedisBroker
from taskq_redis._keys import Layout, root_tag


def keys_of(client: redis.Redis) -> set[str]:
    return {key.decode() for key in client.keys("*")}


# -- layout ------------------------------------------------------------------------
def test_keys_of_a_queue_share_the_root_hash_tag(redis_broker: RedisBroker) -> None:
    """Every key of a queue and of its subqueues carries the root's hash tag,
    so they hash to one cluster slot."""
    layout = redis_broker.layout
    parent = layout.queue("email")
    child = layout.queue("email.incoming.CUSTOMER1")
    assert parent.keys[0] == "taskq:{email}:queued:email"
    assert child.keys[0] == "taskq:{email}:queued:email.incoming.CUSTOMER1"
    slots = {key_slot(key.encode()) for key in (*parent.keys, *child.keys)}
    assert slots == {key_slot(b"{email}")}
    assert key_slot(layout.queue("other").keys[0].encode()) != key_slot(b"{email}")


@pytest.mark.parametrize("queue", ["", ".x", "}a.b", "a}b", "%", "%7D", "{x}.y", "ü.子"])
def test_odd_roots_still_give_one_nonempty_hash_tag(queue: str) -> None:
    """Empty roots and roots with braces or percent signs still give every key
    of the queue one slot (an empty ``{}`` tag would hash whole key names)."""
    keys = Layout("taskq").queue(queue).keys
    assert len({key_slot(key.encode()) for key in keys}) == 1
    tag = root_tag(queue.split(".", maxsplit=1)[0])
    assert tag
    assert "}" not in tag


def test_root_tags_are_distinct_for_distinct_roots() -> None:
    """The escaping of roots is one-to-one."""
    roots = ["", "%", "%25", "}", "%7D", "a}", "a%7D", "a"]
    assert len({root_tag(root) for root in roots}) == len(roots)


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b"])
def test_prefix_with_braces_is_refused(prefix: str) -> None:
    """A prefix must be non-empty and brace-free (it would change the tag)."""
    with pytest.raises(ValueError, match="prefix"):
        Layout(prefix)


def test_keys_after_enqueue_match_the_documented_layout(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """Enqueueing one task now creates exactly the documented keys."""
    redis_broker.enqueue(req("a", "email.in"))
    assert keys_of(redis_client) == {
        "taskq:roots",
        "taskq:{email}:queued:email.in",
        "taskq:{email}:tasks:email.in",
        "taskq:{email}:queues:queued",
        "taskq:{email}:seq",
    }
    assert redis_client.smembers("taskq:roots") == {b"email"}
    fields = set(redis_client.hkeys("taskq:{email}:tasks:email.in"))
    assert fields == {b"d:a"}


def test_finished_tasks_leave_no_keys_behind(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """After tasks ran through every path and were removed, only the roots set
    and the root's counter remain: no orphan hash field, zset or index."""
    b = redis_broker
    b.enqueue_many([req(f"t{i}", max_queue_size=100) for i in range(6)])
    b.enqueue(req("s", when=b.time() + FAR))
    popped = b.pop(Q, 6, "w1", FAR)
    assert len(popped) == 6
    record = {"exception_name": "x:Y", "traceback": "tb"}
    b.finish(Q, "t0", "w1", "done")
    b.finish(Q, "t1", "w1", "error", execution=record)
    b.finish(Q, "t2", "w1", "retry", when=b.time() - 1, execution=record)
    b.finish(Q, "t3", "w1", "requeue", execution=record)
    b.finish(Q, "t4", "w1", "error", execution=record)
    b.finish(Q, "t5", "w1", "error", execution=record)
    b.delete(Q, "t1")
    b.retry_from_error(Q, "t4")
    assert b.purge_errors(Q, None, None) == 1
    b.cancel(Q, "s")
    assert b.move_due(Q, 10) == 1
    for task in b.pop(Q, 10, "w1", FAR):
        b.finish(Q, task.id, "w1", "done")
    assert b.queue_sizes(Q) == dict.fromkeys(STATES, 0)
    assert keys_of(redis_client) == {"taskq:roots", f"taskq:{{{Q}}}:seq"}


def test_executions_are_trimmed_in_storage(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """Records beyond max_stored_executions are deleted from Redis, not just
    hidden; the count keeps counting."""
    b = redis_broker
    b.enqueue(req("a"))
    for number in range(1, 8):
        b.pop(Q, 1, "w1", FAR)
        b.finish(Q, "a", "w1", "requeue", execution={"n": number}, max_stored_executions=3)
    fields = {f.decode() for f in redis_client.hkeys(b.layout.queue(Q).tasks)}
    assert {f for f in fields if f.startswith("x:")} == {"x:a:5", "x:a:6", "x:a:7"}
    task = b.get_task(Q, State.QUEUED, "a", load_executions=10)
    assert [r["n"] for r in task.executions] == [5, 6, 7]
    assert task.executions_count == 7


def test_ids_with_colons_keep_their_records_apart(redis_broker: RedisBroker) -> None:
    """Record fields of ids that share prefixes (``a``, ``a:1``) never mix."""
    b = redis_broker
    for task_id in ("a", "a:1", "a:1:2"):
        b.enqueue(req(task_id))
    for _round in range(2):
        for task in b.pop(Q, 10, "w1", FAR):
            b.finish(Q, task.id, "w1", "requeue", execution={"id": task.id})
    for task_id in ("a", "a:1", "a:1:2"):
        task = b.get_task(Q, State.QUEUED, task_id, load_executions=10)
        assert [r["id"] for r in task.executions] == [task_id, task_id]


# -- odd names ------------------------------------------------------------------
ODD_QUEUES = ["[ab\\c]*?", "a:b", "a:b.c:d", "ünï.çødé.子", "}x.y", "with space", "%7D.x"]


@pytest.mark.parametrize("queue", ODD_QUEUES)
def test_odd_queue_names_work_end_to_end(redis_broker: RedisBroker, queue: str) -> None:
    """Queue names with glob characters, colons, unicode, braces and spaces
    go through every operation and are listed exactly."""
    b = redis_broker
    b.enqueue(req("ïd:1*", queue))
    b.enqueue(req("later", queue, when=b.time() + FAR))
    assert queue in b.queues(State.QUEUED)
    assert queue in b.queues(State.SCHEDULED)
    assert b.queue_sizes(queue)[State.QUEUED] == 1
    [task] = b.pop(queue, 5, "w1", FAR)
    assert task.id == "ïd:1*"
    assert b.heartbeat(queue, ["ïd:1*"], "w1") == ["ïd:1*"]
    assert b.expired_tasks(b.time() + 1, 10) == [(queue, "ïd:1*")]
    assert b.finish(queue, "ïd:1*", "w1", "error", execution={"e": 1})
    assert queue in b.queues(State.ERROR)
    b.retry_from_error(queue, "ïd:1*")
    b.update_scheduled_time(queue, "later", b.time() - 1)
    assert b.move_due(queue, 10) == 1
    assert sorted(ids(b.pop(queue, 5, "w1", FAR))) == ["later", "ïd:1*"]
    assert b.queues(State.QUEUED) == set()
    # a sibling with a similar name is a different queue
    assert b.queue_sizes(queue + "x") == dict.fromkeys(STATES, 0)


def test_queues_lists_only_nonempty_queues_exactly(redis_broker: RedisBroker) -> None:
    """The per-root indexes are exact: a queue leaves a state's list as soon
    as its last task leaves the state."""
    b = redis_broker
    b.enqueue(req("a", "r1.x"))
    b.enqueue(req("b", "r1.y"))
    b.enqueue(req("c", "r2"))
    assert b.queues(State.QUEUED) == {"r1.x", "r1.y", "r2"}
    b.pop("r1.x", 1, "w1", FAR)
    assert b.queues(State.QUEUED) == {"r1.y", "r2"}
    assert b.queues(State.ACTIVE) == {"r1.x"}
    b.finish("r1.x", "a", "w1", "done")
    assert b.queues(State.ACTIVE) == set()
    assert b.roots() == {"r1", "r2"}


def test_expired_tasks_are_found_though_the_active_index_was_lost(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """The active index SET deleted behind the broker's back while a worker
    keeps the queue busy (its finish-and-pop calls never touch that index):
    the run of a worker that died is still found by that worker's scan."""
    b = redis_broker
    b.enqueue_many([req(task_id) for task_id in ("lost", "a", "b")])
    assert ids(b.pop(Q, 1, "dead", FAR)) == ["lost"]
    assert ids(b.pop(Q, 1, "w1", FAR)) == ["a"]
    redis_client.delete(b.layout.index(Q, State.ACTIVE))
    b.expired_tasks(0.0, 10)  # an earlier scan of this worker
    _ended, popped = b.finish_many_then_pop(Q, "w1", [FinishRequest("a", "done")], 1, FAR)
    assert ids(popped) == ["b"]
    assert Q not in b.queues(State.ACTIVE)
    assert b.expired_tasks(b.time() + 1, 10) == [(Q, "lost"), (Q, "b")]


def test_stale_entry_taken_with_its_task_by_one_pop_is_dropped(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """A stale queued entry that sorts before the task's own entry, both taken
    by one pop: the stale entry is dropped with a report and the task is
    popped (its own entry counts as queued until the pop looked at it)."""
    b = redis_broker
    b.enqueue_many([req("before"), req("a")])
    _payload, meta = read_data(b, Q, "a")
    assert meta is not None
    parts = meta.split(b"|")
    queued_at, seq = float(parts[3]), int(parts[4])
    stale = f"{queued_at * 1_000_000:017.0f}{seq - 1:013d}a"
    redis_client.zadd(b.layout.queue(Q).state(State.QUEUED), {stale: 0})
    assert ids(b.pop(Q, 10, "w1", FAR)) == ["before", "a"]
    dropped = b.take_dropped()
    assert [(d.task_id, d.moved_to_error) for d in dropped] == [("a", False)]
    assert "stale" in dropped[0].reason
    assert b.queue_sizes(Q) == {**dict.fromkeys(STATES, 0), State.ACTIVE: 2}


# -- server clock -------------------------------------------------------------------
def test_times_come_from_the_server_clock(
    redis_broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stamped times follow Redis' clock even when the client's clock is
    wildly wrong (the client clock is never used)."""
    server_now = redis_broker.time()
    monkeypatch.setattr(time, "time", lambda: 0.0)
    b = redis_broker
    queued = b.enqueue(req("a"))
    assert abs(queued.ts - server_now) < 5
    [task] = b.pop(Q, 1, "w1", FAR)
    assert abs(task.ts - server_now) < 5
    b.finish(Q, "a", "w1", "error")
    assert abs(b.get_task(Q, State.ERROR, "a").ts - server_now) < 5
    assert b.acquire_queue_slot(Q, "w1", 1, 10)
    assert b.acquire_lock("L", "t", 10)


def test_slot_expiry_uses_server_time(redis_broker: RedisBroker, redis_client: redis.Redis) -> None:
    """A slot's expiry is the server's now + TTL."""
    before = redis_broker.time()
    assert redis_broker.acquire_queue_slot(Q, "w1", 1, 30)
    after = redis_broker.time()
    score = redis_client.zscore(redis_broker.layout.slots(Q), "w1")
    assert score is not None
    assert before + 30 - 0.01 <= score <= after + 30 + 0.01


# -- payloads and updates -----------------------------------------------------------
def test_update_scheduled_time_leaves_stored_payload_bytes_identical(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """The stored payload bytes are byte-for-byte the same after
    update_scheduled_time (no decode/encode round trip)."""
    payload = b'{"args": [], "kwargs": {}, "t": 1795437461.2412539}\x00\xff\xfe'
    b = redis_broker
    b.enqueue(req("a", payload=payload, when=b.time() + FAR))
    before, _meta = read_data(b, Q, "a")
    b.update_scheduled_time(Q, "a", b.time() + 2 * FAR)
    assert read_data(b, Q, "a")[0] == before == payload


# -- missing data ---------------------------------------------------------------------
def test_get_task_and_list_with_missing_data(redis_broker: RedisBroker) -> None:
    """With data missing, get_task raises and list_tasks returns the id once
    with missing=True in every state, neighbours intact."""
    b = redis_broker
    b.enqueue_many([req(f"t{i}") for i in range(5)])
    drop_task_data(b, Q, "t2")
    drop_task_data(b, Q, "t0")
    total, tasks = b.list_tasks(Q, State.QUEUED)
    assert total == 5
    assert ids(tasks) == ["t0", "t1", "t2", "t3", "t4"]
    assert [t.missing for t in tasks] == [True, False, True, False, False]
    assert tasks[1].payload == b"payload-t1"
    with pytest.raises(TaskNotFound):
        b.get_task(Q, State.QUEUED, "t2")
    assert ids(b.pop(Q, 10, "w1", FAR)) == ["t1", "t3", "t4"]


# -- scale ----------------------------------------------------------------------------
def test_purge_limit_across_chunks_and_time_filter(redis_broker: RedisBroker) -> None:
    """purge_errors honours a limit that spans several internal chunks and
    deletes exactly the oldest ones; a second call finishes the rest."""
    b = redis_broker
    total = 3000
    b.enqueue_many([req(f"t{i:05d}", payload=b"x") for i in range(total)])
    popped = b.pop(Q, total, "w1", FAR)
    assert len(popped) == total
    for task in popped:
        b.finish(Q, task.id, "w1", "error")
    errors = b.list_tasks(Q, State.ERROR, limit=total)[1]
    cut = errors[2200].ts
    expected_old = sum(1 for t in errors if t.ts < cut)
    assert b.purge_errors(Q, cut, 2100) == min(2100, expected_old)
    assert b.purge_errors(Q, cut, None) == expected_old - min(2100, expected_old)
    assert b.queue_sizes(Q)[State.ERROR] == total - expected_old
    assert b.purge_errors(Q, None, None) == total - expected_old
    assert b.queue_sizes(Q)[State.ERROR] == 0


def test_max_queue_size_with_separate_clients_in_threads(redis_url: str, redis_client: Any) -> None:
    """Producers with their own connections never overfill a queue."""
    maximum, producers, each = 20, 5, 10
    created: list[str] = []
    guard = threading.Lock()
    barrier = threading.Barrier(producers)

    def produce(number: int) -> None:
        broker = RedisBroker(url=redis_url)
        try:
            barrier.wait()
            for i in range(each):
                try:
                    broker.enqueue(req(f"p{number}-{i}", max_queue_size=maximum))
                except QueueFullException:
                    continue
                with guard:
                    created.append(f"p{number}-{i}")
        finally:
            broker.close()

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    checker = RedisBroker(url=redis_url)
    try:
        assert len(created) == maximum
        assert checker.queue_sizes(Q)[State.QUEUED] == maximum
    finally:
        checker.close()


def test_enqueue_many_mixed_queues_and_refusals(redis_broker: RedisBroker) -> None:
    """enqueue_many across roots reports refusals per request and records
    every root."""
    results = redis_broker.enqueue_many(
        [
            req("a", "x.1", max_queue_size=1),
            req("b", "x.1", max_queue_size=1),
            req("c", "y"),
        ]
    )
    assert [r.refused for r in results] == [False, True, False]
    assert redis_broker.roots() == {"x", "y"}


# -- scripts and round trips -----------------------------------------------------------
class RoundTrips:
    """Counts the round trips a broker makes (one per ``Transport.send``)."""

    def __init__(self, broker: RedisBroker, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = broker.transport.send

        def counting(calls: Any) -> Any:
            self.count += 1
            return original(calls)

        monkeypatch.setattr(broker.transport, "send", counting)

    def measure(self, action: Any) -> int:
        before = self.count
        action()
        return self.count - before


def test_hot_paths_are_one_round_trip(
    redis_broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """enqueue, enqueue_many (500 tasks), pop with payloads, heartbeat and
    finish each take one round trip once the scripts are cached."""
    b = redis_broker
    b.enqueue(req("warm"))
    b.pop(Q, 1, "w0", FAR)
    trips = RoundTrips(b, monkeypatch)
    assert trips.measure(lambda: b.enqueue(req("a"))) == 1
    assert trips.measure(lambda: b.enqueue_many([req(f"m{i}") for i in range(500)])) == 1
    assert trips.measure(lambda: b.pop(Q, 10, "w1", FAR)) == 1
    assert trips.measure(lambda: b.heartbeat(Q, ["a"], "w1")) == 1
    assert trips.measure(lambda: b.finish(Q, "a", "w1", "done")) == 1


def test_scripts_are_reloaded_after_script_flush(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """After SCRIPT FLUSH (or a server restart) the broker reloads its scripts
    on NOSCRIPT, for single calls and inside pipelines, in request order."""
    b = redis_broker
    b.enqueue(req("first"))
    redis_client.script_flush()
    b.enqueue(req("a"))
    redis_client.script_flush()
    results = b.enqueue_many([req(f"m{i}") for i in range(20)])
    assert all(r.created for r in results)
    redis_client.script_flush()
    assert ids(b.pop(Q, 30, "w1", FAR)) == ["first", "a"] + [f"m{i}" for i in range(20)]


def test_every_script_runs_on_one_slot(
    redis_broker: RedisBroker, script_log: list[tuple[str, tuple[str, ...]]]
) -> None:
    """Every script the broker has is exercised here and each call's KEYS
    hash to a single slot (checked by the autouse fixture on every call)."""
    b = redis_broker
    queue = "}odd{.sub:queue"
    b.enqueue(req("a", queue))
    b.enqueue(req("s", queue, when=b.time() + FAR))
    b.pop(queue, 1, "w1", FAR)
    b.heartbeat(queue, ["a"], "w1")
    b.finish(queue, "a", "w1", "error")
    b.retry_from_error(queue, "a")
    b.pop(queue, 1, "w1", FAR)
    b.recover_expired(queue, "a", b.time() + 1, "error")
    b.drop_expired_missing(queue, "a", b.time() + 1)
    b.delete(queue, "a")
    b.update_scheduled_time(queue, "s", b.time() + 1)
    b.cancel(queue, "s")
    b.move_due(queue, 1)
    b.purge_errors(queue, None, None)
    b.list_tasks(queue, State.QUEUED)
    b.acquire_lock("L", "t", 1)
    b.renew_lock("L", "t", 1)
    b.release_lock("L", "t")
    b.acquire_queue_slot(queue, "w1", 1, 1)
    b.set_queue_system_lock(queue, 1)
    b.get_queue_system_lock(queue)
    used = {name for name, _keys in script_log}
    assert used == set(b.scripts.scripts)
    for _name, keys in script_log:
        assert len({key_slot(k.encode()) for k in keys}) == 1


def test_states_may_be_given_as_strings(redis_broker: RedisBroker) -> None:
    """Inspection accepts state names as plain strings too."""
    b = redis_broker
    b.enqueue(req("a"))
    assert b.queues("queued") == {Q}  # type: ignore[arg-type]
    assert b.get_task(Q, "queued", "a").id == "a"  # type: ignore[arg-type]
    assert b.list_tasks(Q, "queued")[0] == 1  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nope"):
        b.queues("nope")  # type: ignore[arg-type]
