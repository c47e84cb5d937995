"""Coordination: what workers share besides the tasks themselves.

Task locks, worker slots per queue (and the system lock that keeps slot users
off a queue), rate limits that spread periodic scans over the fleet, and the
notifications that wake idle workers. None of these moves a task; each is
one atomic operation on the broker, and what expires does so by the broker's
clock.
"""

from __future__ import annotations

import abc

__all__ = ["Coordination"]


class Coordination(abc.ABC):
    """The coordination methods of :class:`~taskq_core.broker.Broker`."""

    # -- locks and semaphores -------------------------------------------------
    @abc.abstractmethod
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Take a task lock for ``ttl`` seconds if it is free (or already
        ours: it then expires at now + ``ttl``, sooner or later than before)."""

    @abc.abstractmethod
    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Make our lock expire at now + ``ttl``; ``False`` when it is no
        longer ours (also when it lapsed and nobody took it)."""

    @abc.abstractmethod
    def release_lock(self, lock_id: str, token: str) -> bool:
        """Release our lock; ``False`` when it was not ours any more."""

    @abc.abstractmethod
    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        """Take (or renew) one of ``limit`` worker slots of ``queue`` for
        ``ttl`` seconds. Refused while the queue's system lock is set. A
        holder renews as it acquires: refused (its slot left as it was) while
        more than ``limit`` workers, itself included, hold unexpired slots."""

    @abc.abstractmethod
    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        """Give our slot of ``queue`` back."""

    @abc.abstractmethod
    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Keep workers that use queue slots off ``queue`` for ``timeout`` s
        (replacing an earlier expiry, also with a sooner one)."""

    @abc.abstractmethod
    def get_queue_system_lock(self, queue: str) -> float | None:
        """The system lock's expiry time, or ``None``."""

    @abc.abstractmethod
    def try_rate_limit(self, name: str, ttl: float) -> bool:
        """``True`` at most once per ``ttl`` seconds for ``name`` across all
        clients (used to spread periodic scans over the worker fleet)."""

    # -- notifications ----------------------------------------------------------
    @abc.abstractmethod
    def wait_for_activity(self, timeout: float) -> set[str]:
        """Block up to ``timeout`` seconds for new ``queued`` work; return the
        queue names announced meanwhile (maybe empty). A missed notification
        is tolerated: the worker also resyncs with :meth:`queues`."""
