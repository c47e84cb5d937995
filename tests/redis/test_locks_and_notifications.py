"""Locks, queue slots and rate limits leave nothing behind (TTLs), and
notifications travel over pub/sub and survive a dropped subscription."""

from __future__ import annotations

import time

import pytest
import redis
from redis_helpers import FAR, Q, req

from taskq_core.exceptions import BrokerConnectionError
from taskq_redis import RedisBroker


def wait_until_gone(client: redis.Redis, key: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client.exists(key):
            return True
        time.sleep(0.05)
    return False


# -- locks ---------------------------------------------------------------------------
def test_lock_key_carries_the_ttl_and_vanishes(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """A lock is a key with a TTL: a crashed holder leaves nothing behind."""
    key = redis_broker.layout.lock("L")
    assert redis_broker.acquire_lock("L", "token", 0.3)
    assert redis_client.get(key) == b"token"
    assert 0 < redis_client.pttl(key) <= 300
    assert wait_until_gone(redis_client, key)


def test_lock_renew_resets_the_ttl_and_release_deletes(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """Renewing sets the new TTL; releasing deletes the key."""
    key = redis_broker.layout.lock("L")
    assert redis_broker.acquire_lock("L", "token", 1)
    assert redis_broker.renew_lock("L", "token", 100)
    assert 1000 < redis_client.pttl(key) <= 100_000
    assert redis_broker.release_lock("L", "token")
    assert not redis_client.exists(key)


def test_rate_limit_key_expires(redis_broker: RedisBroker, redis_client: redis.Redis) -> None:
    """A rate-limit marker is a key with a TTL."""
    assert redis_broker.try_rate_limit("scan", 0.3)
    key = redis_broker.layout.rate_limit("scan")
    assert 0 < redis_client.pttl(key) <= 300
    assert wait_until_gone(redis_client, key)


# -- queue slots -----------------------------------------------------------------------
def test_slot_key_expires_with_its_last_member(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """The slots zset expires shortly after its last slot would (a worker that
    crashed holding a slot leaves nothing behind)."""
    key = redis_broker.layout.slots(Q)
    assert redis_broker.acquire_queue_slot(Q, "w1", 2, 0.2)
    assert redis_broker.acquire_queue_slot(Q, "w2", 2, 0.3)
    assert 0 < redis_client.pttl(key) <= 1400
    assert wait_until_gone(redis_client, key)


def test_system_lock_keeps_the_slot_key_alive(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """A system lock longer than the slots extends the key's TTL to cover it;
    a later short slot does not shorten it."""
    key = redis_broker.layout.slots(Q)
    assert redis_broker.acquire_queue_slot(Q, "w1", 2, 0.2)
    redis_broker.set_queue_system_lock(Q, 60)
    assert redis_client.pttl(key) > 59_000
    assert not redis_broker.acquire_queue_slot(Q, "w1", 2, 0.2)
    expiry = redis_broker.get_queue_system_lock(Q)
    assert expiry is not None
    assert expiry - redis_broker.time() > 59


def test_slots_of_odd_queue_names_are_separate(redis_broker: RedisBroker) -> None:
    """Glob characters in queue names do not make slots shared."""
    assert redis_broker.acquire_queue_slot("a*", "w1", 1, 10)
    assert redis_broker.acquire_queue_slot("a?", "w2", 1, 10)
    assert redis_broker.acquire_queue_slot("ab", "w3", 1, 10)
    assert not redis_broker.acquire_queue_slot("a*", "w4", 1, 10)


# -- notifications ------------------------------------------------------------------------
@pytest.fixture
def listener(redis_client: redis.Redis) -> redis.client.PubSub:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("taskq:activity")
    yield pubsub
    pubsub.close()


def received(pubsub: redis.client.PubSub, wait: float = 0.5) -> list[bytes]:
    deadline = time.monotonic() + wait
    names: list[bytes] = []
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message and message["type"] == "message":
            names.append(message["data"])
    return names


def test_queueing_publishes_the_queue_name(
    redis_broker: RedisBroker, listener: redis.client.PubSub
) -> None:
    """The queue name is published on <prefix>:activity when a task becomes
    queued (enqueue, requeue, move_due, retry), not when it is scheduled."""
    b = redis_broker
    b.enqueue(req("later", "sched.q", when=b.time() + FAR))
    assert received(listener) == []
    b.enqueue(req("a", "ünï.q"))
    assert received(listener) == ["ünï.q".encode()]
    b.update_scheduled_time("sched.q", "later", b.time() - 1)
    assert b.move_due("sched.q", 10) == 1
    assert received(listener) == [b"sched.q"]
    b.pop("sched.q", 1, "w1", FAR)
    b.finish("sched.q", "later", "w1", "requeue")
    assert received(listener) == [b"sched.q"]


def test_move_due_publishes_once_per_call(
    redis_broker: RedisBroker, listener: redis.client.PubSub
) -> None:
    """Moving many due tasks publishes the queue once, not once per task."""
    b = redis_broker
    b.enqueue_many([req(f"t{i}", when=b.time() + 0.05) for i in range(50)])
    time.sleep(0.1)
    assert b.move_due(Q, 100) == 50
    assert received(listener) == [Q.encode()]


def test_wait_for_activity_collects_several_names(redis_broker: RedisBroker) -> None:
    """Names published while nobody waited are returned together."""
    b = redis_broker
    b.subscribe()
    b.enqueue_many([req("a", "n1"), req("b", "n2"), req("c", "n3")])
    names: set[str] = set()
    deadline = time.monotonic() + 3
    while names != {"n1", "n2", "n3"} and time.monotonic() < deadline:
        names |= b.wait_for_activity(0.5)
    assert names == {"n1", "n2", "n3"}


def test_custom_prefix_uses_its_own_channel(redis_url: str, redis_client: redis.Redis) -> None:
    """Brokers with different prefixes do not hear each other."""
    mine = RedisBroker(url=redis_url, prefix="mine")
    other = RedisBroker(url=redis_url, prefix="other")
    try:
        mine.subscribe()
        other.enqueue(req("a", "x"))
        assert mine.wait_for_activity(0.3) == set()
        mine.enqueue(req("a", "y"))
        assert "y" in mine.wait_for_activity(2)
    finally:
        mine.close()
        other.close()


def test_subscription_survives_being_killed(
    redis_broker: RedisBroker, redis_client: redis.Redis
) -> None:
    """When the server drops the pub/sub connection, wait_for_activity either
    reports a BrokerConnectionError once or reconnects by itself; either way
    later notifications arrive again."""
    b = redis_broker
    b.subscribe()
    assert b.wait_for_activity(0.05) == set()
    assert redis_client.client_kill_filter(_type="pubsub") >= 1
    seen: set[str] = set()
    errors = 0
    deadline = time.monotonic() + 5
    while "again" not in seen and time.monotonic() < deadline:
        try:
            seen |= b.wait_for_activity(0.2)
        except BrokerConnectionError:
            errors += 1
        b.enqueue(req(f"t{time.monotonic()}", "again"))
    assert "again" in seen
    assert errors <= 1
