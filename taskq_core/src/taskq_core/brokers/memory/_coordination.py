"""The memory broker's coordination: task locks, queue slots and the system
lock, rate limits and notifications (see :mod:`taskq_core.broker.coordination`)."""

from __future__ import annotations

from taskq_core.brokers.memory._store import MemoryStore

__all__ = ["MemoryCoordination"]


class MemoryCoordination(MemoryStore):
    """The coordination methods of :class:`~taskq_core.brokers.memory.MemoryBroker`."""

    def _reset(self) -> None:
        super()._reset()
        self._locks: dict[str, tuple[str, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._system_locks: dict[str, float] = {}
        self._rate_limits: dict[str, float] = {}

    # -- locks and semaphores -----------------------------------------------------
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Take the lock if it is free, expired or already ours."""
        with self._lock:
            now = self._clock()
            current = self._locks.get(lock_id)
            if current is not None and current[1] > now and current[0] != token:
                return False
            self._locks[lock_id] = (token, now + ttl)
            return True

    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if it expired or belongs to another token."""
        with self._lock:
            now = self._clock()
            current = self._locks.get(lock_id)
            if current is None or current[0] != token or current[1] <= now:
                return False
            self._locks[lock_id] = (token, now + ttl)
            return True

    def release_lock(self, lock_id: str, token: str) -> bool:
        """Release our lock; ``False`` if it expired or belongs to another token."""
        with self._lock:
            now = self._clock()
            current = self._locks.get(lock_id)
            if current is None:
                return False
            if current[1] <= now:
                del self._locks[lock_id]
                return False
            if current[0] != token:
                return False
            del self._locks[lock_id]
            return True

    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        """Take or renew one of ``limit`` slots of ``queue``; refused while
        more than ``limit`` workers (this one included) would hold one."""
        with self._lock:
            now = self._clock()
            system = self._system_locks.get(queue)
            if system is not None:
                if system > now:
                    return False
                del self._system_locks[queue]
            holders = self._slots.setdefault(queue, {})
            for holder, expiry in list(holders.items()):
                if expiry <= now:
                    del holders[holder]
            # a holder renews like it acquires: while the holders, itself
            # included, are at most ``limit`` (as TaskTiger's semaphore)
            count = len(holders) + (0 if worker_id in holders else 1)
            if count > limit:
                return False
            holders[worker_id] = now + ttl
            return True

    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        """Give our slot of ``queue`` back."""
        with self._lock:
            holders = self._slots.get(queue)
            if holders is not None:
                holders.pop(worker_id, None)
                if not holders:
                    del self._slots[queue]

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Refuse queue slots of ``queue`` for ``timeout`` seconds."""
        with self._lock:
            self._system_locks[queue] = self._clock() + timeout

    def get_queue_system_lock(self, queue: str) -> float | None:
        """The system lock's expiry, or ``None`` when unset or expired."""
        with self._lock:
            expiry = self._system_locks.get(queue)
            if expiry is None or expiry <= self._clock():
                return None
            return expiry

    def try_rate_limit(self, name: str, ttl: float) -> bool:
        """``True`` at most once per ``ttl`` seconds for ``name``."""
        with self._lock:
            now = self._clock()
            expiry = self._rate_limits.get(name)
            if expiry is not None and expiry > now:
                return False
            self._rate_limits[name] = now + ttl
            return True

    # -- notifications --------------------------------------------------------------
    def wait_for_activity(self, timeout: float) -> set[str]:
        """Queues that got ``queued`` work since the last call; waits up to
        ``timeout`` seconds (real time) when there are none yet."""
        with self._activity_cond:
            if not self._activity and timeout > 0:
                self._activity_cond.wait_for(lambda: bool(self._activity), timeout)
            announced, self._activity = self._activity, set()
            return announced
