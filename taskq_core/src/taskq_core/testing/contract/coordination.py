"""Coordination: task locks, queue slots and the system lock, rate limits and
notifications."""

from __future__ import annotations

import threading
import time

from taskq_core.broker import Broker
from taskq_core.testing.contract._base import (
    OTHER,
    TTL,
    ContractBase,
    Q,
    _announced,
    _between,
    _drain_activity,
    _fail,
    _req,
)

__all__ = ["CoordinationContract"]


class CoordinationContract(ContractBase):
    """Tests of locks, queue slots, rate limits and notifications."""

    # -- locks -----------------------------------------------------------------
    def test_lock_is_exclusive_and_reentrant_for_its_token(self, broker: Broker) -> None:
        """A held lock refuses other tokens; its own token re-acquires it."""
        assert broker.acquire_lock("L", "t1", 10)
        assert not broker.acquire_lock("L", "t2", 10)
        assert broker.acquire_lock("L", "t1", 10)
        assert broker.acquire_lock("other", "t2", 10)

    def test_lock_expires_after_ttl(self, broker: Broker) -> None:
        """A lock not renewed within its TTL can be taken by another token, and
        the old holder can then neither renew nor release it."""
        assert broker.acquire_lock("L", "t1", TTL)
        time.sleep(TTL + 0.1)
        assert broker.acquire_lock("L", "t2", 10)
        assert not broker.renew_lock("L", "t1", 10)
        assert not broker.release_lock("L", "t1")
        assert not broker.acquire_lock("L", "t1", 10)

    def test_lock_renew_extends_ttl(self, broker: Broker) -> None:
        """renew_lock by the holder pushes the expiry out by the new TTL."""
        assert broker.acquire_lock("L", "t1", TTL)
        time.sleep(TTL / 2)
        assert broker.renew_lock("L", "t1", 5)
        time.sleep(TTL / 2 + 0.1)
        assert not broker.acquire_lock("L", "t2", 5)

    def test_lock_renew_and_release_only_by_holder(self, broker: Broker) -> None:
        """renew_lock and release_lock by another token fail; release by the
        holder frees the lock."""
        assert broker.acquire_lock("L", "t1", 10)
        assert not broker.renew_lock("L", "t2", 10)
        assert not broker.release_lock("L", "t2")
        assert broker.renew_lock("L", "t1", 10)
        assert broker.release_lock("L", "t1")
        assert not broker.release_lock("L", "t1")
        assert not broker.renew_lock("L", "t1", 10)
        assert broker.acquire_lock("L", "t2", 10)

    def test_lock_taken_again_by_its_holder_gets_the_new_ttl(self, broker: Broker) -> None:
        """acquire_lock and renew_lock by the holder set the expiry to now +
        the TTL given, even when that is sooner than before; once it lapsed
        (taken by nobody) the old holder can neither renew nor release it,
        only take it again."""
        assert broker.acquire_lock("L", "t1", 60)
        assert broker.acquire_lock("L", "t1", TTL)
        time.sleep(TTL + 0.1)
        assert broker.acquire_lock("L", "t2", 60)
        assert broker.renew_lock("L", "t2", TTL)
        time.sleep(TTL + 0.1)
        assert not broker.renew_lock("L", "t2", 60)
        assert not broker.release_lock("L", "t2")
        assert broker.acquire_lock("L", "t2", 60)
        assert not broker.acquire_lock("L", "t3", 60)

    # -- queue slots -----------------------------------------------------------
    def test_queue_slots_limit_holders(self, broker: Broker) -> None:
        """At most ``limit`` workers hold slots; a holder renews without taking a
        second slot; a release frees one."""
        assert broker.acquire_queue_slot(Q, "w1", 2, 10)
        assert broker.acquire_queue_slot(Q, "w2", 2, 10)
        assert not broker.acquire_queue_slot(Q, "w3", 2, 10)
        assert broker.acquire_queue_slot(Q, "w1", 2, 10)
        assert not broker.acquire_queue_slot(Q, "w3", 2, 10)
        broker.release_queue_slot(Q, "w1")
        assert broker.acquire_queue_slot(Q, "w3", 2, 10)
        broker.release_queue_slot(Q, "nobody")

    def test_queue_slot_holder_renews_only_within_the_limit(self, broker: Broker) -> None:
        """A holder renews like it acquires (as TaskTiger's semaphore does):
        it is refused while the holders, itself included, outnumber the limit
        it asks with, and renews again once they do not."""
        assert broker.acquire_queue_slot(Q, "w1", 2, 10)
        assert broker.acquire_queue_slot(Q, "w2", 2, 10)
        assert not broker.acquire_queue_slot(Q, "w1", 1, 10)
        assert not broker.acquire_queue_slot(Q, "w3", 0, 10)
        broker.release_queue_slot(Q, "w2")
        assert broker.acquire_queue_slot(Q, "w1", 1, 10)
        assert not broker.acquire_queue_slot(Q, "w2", 1, 10)

    def test_queue_slots_expire(self, broker: Broker) -> None:
        """A slot not renewed within its TTL is given to another worker."""
        assert broker.acquire_queue_slot(Q, "w1", 1, TTL)
        assert not broker.acquire_queue_slot(Q, "w2", 1, 10)
        time.sleep(TTL + 0.1)
        assert broker.acquire_queue_slot(Q, "w2", 1, 10)
        assert not broker.acquire_queue_slot(Q, "w1", 1, 10)

    def test_queue_slots_are_per_exact_queue(self, broker: Broker) -> None:
        """A subqueue has its own slots, separate from its parent's."""
        assert broker.acquire_queue_slot(Q, "w1", 1, 10)
        assert broker.acquire_queue_slot(OTHER, "w2", 1, 10)
        assert not broker.acquire_queue_slot(Q, "w2", 1, 10)

    def test_queue_system_lock_blocks_slots_until_expiry(self, broker: Broker) -> None:
        """While a queue's system lock is set no slot is given or renewed;
        get_queue_system_lock reports its expiry, then None once it lapsed."""
        assert broker.get_queue_system_lock(Q) is None
        assert broker.acquire_queue_slot(Q, "w1", 5, 10)
        before = broker.time()
        broker.set_queue_system_lock(Q, TTL)
        after = broker.time()
        assert _between(broker.get_queue_system_lock(Q), before + TTL, after + TTL)
        assert not broker.acquire_queue_slot(Q, "w2", 5, 10)
        assert not broker.acquire_queue_slot(Q, "w1", 5, 10)
        assert broker.acquire_queue_slot(OTHER, "w2", 5, 10)
        time.sleep(TTL + 0.1)
        assert broker.get_queue_system_lock(Q) is None
        assert broker.acquire_queue_slot(Q, "w2", 5, 10)

    def test_queue_system_lock_set_again_replaces_its_expiry(self, broker: Broker) -> None:
        """Setting a queue's system lock again replaces its expiry, also with
        a sooner one; a timeout of 0 leaves no lock."""
        broker.set_queue_system_lock(Q, 60)
        before = broker.time()
        broker.set_queue_system_lock(Q, TTL)
        after = broker.time()
        assert _between(broker.get_queue_system_lock(Q), before + TTL, after + TTL)
        time.sleep(TTL + 0.1)
        assert broker.get_queue_system_lock(Q) is None
        assert broker.acquire_queue_slot(Q, "w1", 1, 10)
        broker.set_queue_system_lock(Q, 0)
        assert broker.get_queue_system_lock(Q) is None
        assert broker.acquire_queue_slot(Q, "w1", 1, 10)

    # -- rate limit ------------------------------------------------------------
    def test_try_rate_limit_once_per_ttl(self, broker: Broker) -> None:
        """try_rate_limit is True once per TTL per name."""
        assert broker.try_rate_limit("scan", TTL)
        assert not broker.try_rate_limit("scan", TTL)
        assert broker.try_rate_limit("other", TTL)
        time.sleep(TTL + 0.1)
        assert broker.try_rate_limit("scan", TTL)
        assert not broker.try_rate_limit("scan", TTL)

    # -- notifications ---------------------------------------------------------
    def test_enqueue_now_is_announced(self, broker: Broker) -> None:
        """Queueing a task announces its queue to wait_for_activity."""
        _drain_activity(broker)
        broker.enqueue(_req("a", OTHER))
        assert _announced(broker, OTHER)

    def test_wait_for_activity_wakes_on_enqueue_from_another_thread(self, broker: Broker) -> None:
        """A waiting caller returns soon after another thread queues a task."""
        _drain_activity(broker)
        seen: list[set[str]] = []

        def waiter() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                names = broker.wait_for_activity(5)
                if names:
                    seen.append(names)
                    return

        thread = threading.Thread(target=waiter)
        started = time.monotonic()
        thread.start()
        time.sleep(0.1)
        broker.enqueue(_req("a"))
        thread.join(10)
        assert seen
        assert Q in seen[0]
        assert time.monotonic() - started < 4

    def test_wait_for_activity_returns_within_timeout(self, broker: Broker) -> None:
        """With nothing to announce, wait_for_activity returns a set within
        about its timeout."""
        _drain_activity(broker)
        started = time.monotonic()
        names = broker.wait_for_activity(0.2)
        assert isinstance(names, set)
        assert Q not in names
        assert time.monotonic() - started < 1.5

    def test_enqueue_many_announces_every_queue(self, broker: Broker) -> None:
        """enqueue_many announces each queue it queued a task in (a subqueue
        by its own name), not only the first."""
        _drain_activity(broker)
        broker.enqueue_many([_req("a", Q), _req("b", OTHER)])
        seen: set[str] = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not {Q, OTHER} <= seen:
            seen |= broker.wait_for_activity(0.2)
        assert {Q, OTHER} <= seen

    def test_retry_from_error_is_announced(self, broker: Broker) -> None:
        """Moving a task from error to queued announces its queue."""
        _fail(broker, "a")
        _drain_activity(broker)
        broker.retry_from_error(Q, "a")
        assert _announced(broker, Q)
