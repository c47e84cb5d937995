"""The SQLite broker's coordination: task locks, queue slots and the system
lock, rate limits and notifications (see
:mod:`taskq_core.broker.coordination`).

Locks, slots and rate limits are rows with an expiry time on the broker's
clock; each operation is one write transaction that also clears what has
expired.

Notifications: every move that queues a task gives its queue a new number in
``taskq_activity`` (in the same transaction), and
:meth:`SQLiteCoordination.wait_for_activity` looks at ``PRAGMA data_version``
(which changes when another connection commits; reading it touches no table)
and reads the numbers only when it changed. Between looks it blocks on its
wake-up socket (``_wakeups``: the committing process sends every waiter of
the file a byte), looking again when a byte arrives and at least every
``poll_interval``. Without a socket (another thread of the process waits on
it, or it cannot be bound) it polls, sleeping between looks from 2 ms
doubling up to ``poll_interval``. Waiters of the same process are also woken
at once by a condition.
"""

from __future__ import annotations

import time

from taskq_core.brokers.sqlite._rows import activity_since, latest_activity
from taskq_core.brokers.sqlite._store import SQLiteStore

__all__ = ["SQLiteCoordination"]

#: the first wait between two looks at the file, doubled up to poll_interval
_FIRST_POLL = 0.002


class SQLiteCoordination(SQLiteStore):
    """The coordination methods of :class:`~taskq_core.brokers.sqlite.SQLiteBroker`."""

    #: the longest wait between two looks for activity (seconds)
    poll_interval: float = 0.05

    # -- locks and semaphores -----------------------------------------------------
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Take the lock if it is free, expired or already ours."""
        with self._write() as tx:
            tx.db.execute("DELETE FROM taskq_locks WHERE expires <= ?", (tx.now,))
            row = tx.db.execute(
                "SELECT token FROM taskq_locks WHERE name = ?", (lock_id,)
            ).fetchone()
            if row is not None and row[0] != token:
                return False
            tx.db.execute(
                "INSERT INTO taskq_locks (name, token, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET token = excluded.token, "
                "expires = excluded.expires",
                (lock_id, token, tx.now + ttl),
            )
            return True

    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if it expired or belongs to another token."""
        with self._write() as tx:
            cursor = tx.db.execute(
                "UPDATE taskq_locks SET expires = ? WHERE name = ? AND token = ? AND expires > ?",
                (tx.now + ttl, lock_id, token, tx.now),
            )
            return cursor.rowcount > 0

    def release_lock(self, lock_id: str, token: str) -> bool:
        """Release our lock; ``False`` if it expired or belongs to another token."""
        with self._write() as tx:
            row = tx.db.execute(
                "SELECT token, expires FROM taskq_locks WHERE name = ?", (lock_id,)
            ).fetchone()
            if row is None:
                return False
            if row[1] <= tx.now:
                tx.db.execute("DELETE FROM taskq_locks WHERE name = ?", (lock_id,))
                return False
            if row[0] != token:
                return False
            tx.db.execute("DELETE FROM taskq_locks WHERE name = ?", (lock_id,))
            return True

    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        """Take or renew one of ``limit`` slots of ``queue``; refused while
        more than ``limit`` workers (this one included) would hold one."""
        with self._write() as tx:
            system = tx.db.execute(
                "SELECT expires FROM taskq_system_locks WHERE queue = ?", (queue,)
            ).fetchone()
            if system is not None:
                if system[0] > tx.now:
                    return False
                tx.db.execute("DELETE FROM taskq_system_locks WHERE queue = ?", (queue,))
            tx.db.execute(
                "DELETE FROM taskq_queue_slots WHERE queue = ? AND expires <= ?", (queue, tx.now)
            )
            holders = {
                row[0]
                for row in tx.db.execute(
                    "SELECT worker_id FROM taskq_queue_slots WHERE queue = ?", (queue,)
                )
            }
            # a holder renews like it acquires: while the holders, itself
            # included, are at most ``limit`` (as TaskTiger's semaphore)
            if len(holders | {worker_id}) > limit:
                return False
            tx.db.execute(
                "INSERT INTO taskq_queue_slots (queue, worker_id, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (queue, worker_id) DO UPDATE SET expires = excluded.expires",
                (queue, worker_id, tx.now + ttl),
            )
            return True

    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        """Give our slot of ``queue`` back."""
        with self._write() as tx:
            tx.db.execute(
                "DELETE FROM taskq_queue_slots WHERE queue = ? AND worker_id = ?",
                (queue, worker_id),
            )

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Refuse queue slots of ``queue`` for ``timeout`` seconds."""
        with self._write() as tx:
            tx.db.execute(
                "INSERT INTO taskq_system_locks (queue, expires) VALUES (?, ?) "
                "ON CONFLICT (queue) DO UPDATE SET expires = excluded.expires",
                (queue, tx.now + timeout),
            )

    def get_queue_system_lock(self, queue: str) -> float | None:
        """The system lock's expiry, or ``None`` when unset or expired."""
        with self._connections.using() as db:
            row = db.execute(
                "SELECT expires FROM taskq_system_locks WHERE queue = ?", (queue,)
            ).fetchone()
        if row is None or row[0] <= time.time():
            return None
        return float(row[0])

    def try_rate_limit(self, name: str, ttl: float) -> bool:
        """``True`` at most once per ``ttl`` seconds for ``name``."""
        with self._write() as tx:
            row = tx.db.execute(
                "SELECT expires FROM taskq_rate_limits WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] > tx.now:
                return False
            tx.db.execute(
                "INSERT INTO taskq_rate_limits (name, expires) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET expires = excluded.expires",
                (name, tx.now + ttl),
            )
            return True

    # -- notifications --------------------------------------------------------------
    def wait_for_activity(self, timeout: float) -> set[str]:
        """Queues that got ``queued`` work since the last call (since the
        broker's first connection, on the first call); waits up to
        ``timeout`` seconds when there are none yet."""
        deadline = time.monotonic() + max(timeout, 0.0)
        claimed = timeout > 0 and self._wakeups.claim()
        try:
            return self._wait_for_activity(deadline, listening=claimed)
        finally:
            if claimed:
                self._wakeups.release()

    def _wait_for_activity(self, deadline: float, *, listening: bool) -> set[str]:
        """Look, then wait and look again until ``deadline``: on the socket
        (``listening``: this thread claimed it) up to ``poll_interval`` at a
        time, else on this process's condition, 2 ms at first and backing off
        to ``poll_interval``."""
        interval = _FIRST_POLL
        version: object = None
        while True:
            changes = self._changes
            listening = listening and self._wakeups.bound
            if listening:
                self._wakeups.drain()  # what arrives from now on is news
            with self._connections.using() as db:
                if self._activity_seen is None:
                    self._activity_seen = latest_activity(db)
                current = db.execute("PRAGMA data_version").fetchone()[0]
                announced: list[tuple[str, int]] = []
                if current != version:  # the first look, or another connection committed
                    version = current
                    announced = activity_since(db, self._activity_seen)
            if announced:
                self._activity_seen = max(number for _queue, number in announced)
                return {queue for queue, _number in announced}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return set()
            if listening:
                wait = min(self.poll_interval, remaining)
                if self._wakeups.wait(wait):
                    self._changed()  # this process's other waiters look too
                elif wait >= remaining:
                    return set()  # the deadline, and no wake-up
                continue
            with self._wakeup:
                if self._changes == changes:
                    self._wakeup.wait(min(interval, remaining))
            interval = min(interval * 2, self.poll_interval)
