"""The PostgreSQL broker's coordination: task locks, queue slots and the system
lock, rate limits and notifications (see :mod:`taskq_core.broker.coordination`).

Locks, slots and rate limits are rows with an expiry time on the server's
clock (``clock_timestamp()``). Each lock and rate-limit operation is one
statement (``INSERT ... ON CONFLICT`` decides atomically whether the row is
free); taking a queue slot counts the holders, so it is one transaction that
holds the queue's slot lock. Notifications come from ``LISTEN`` (``_listener``).
"""

from __future__ import annotations

from taskq_postgres._keys import slots_key
from taskq_postgres._rows import NOW
from taskq_postgres._store import PostgresStore

__all__ = ["PostgresCoordination"]

#: the statement's now, once
_CLOCK = f"WITH clock AS (SELECT {NOW} AS now)"


class PostgresCoordination(PostgresStore):
    """The coordination methods of :class:`~taskq_postgres.PostgresBroker`."""

    # -- locks and semaphores -----------------------------------------------------
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Take the lock if it is free, expired or already ours."""
        with self._read() as cur:
            row = cur.execute(
                f"""{_CLOCK}
                INSERT INTO taskq_locks (name, token, expires)
                SELECT %(name)s, %(token)s, clock.now + %(ttl)s FROM clock
                ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires = excluded.expires
                WHERE taskq_locks.token = excluded.token
                    OR taskq_locks.expires <= (SELECT now FROM clock)
                RETURNING 1""",
                {"name": lock_id, "token": token, "ttl": float(ttl)},
            ).fetchone()
        return row is not None

    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if it expired or belongs to another token."""
        with self._read() as cur:
            row = cur.execute(
                f"""{_CLOCK}
                UPDATE taskq_locks SET expires = clock.now + %(ttl)s FROM clock
                WHERE name = %(name)s AND token = %(token)s AND expires > clock.now
                RETURNING 1""",
                {"name": lock_id, "token": token, "ttl": float(ttl)},
            ).fetchone()
        return row is not None

    def release_lock(self, lock_id: str, token: str) -> bool:
        """Release our lock; ``False`` if it expired or belongs to another token
        (an expired lock is removed either way)."""
        with self._read() as cur:
            row = cur.execute(
                f"""{_CLOCK}
                DELETE FROM taskq_locks USING clock
                WHERE name = %(name)s AND (token = %(token)s OR expires <= clock.now)
                RETURNING token = %(token)s AND expires > clock.now""",
                {"name": lock_id, "token": token},
            ).fetchone()
        return row is not None and bool(row[0])

    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        """Take or renew one of ``limit`` slots of ``queue``."""
        with self._write([slots_key(queue)]) as tx:
            system = tx.cur.execute(
                "SELECT expires FROM taskq_system_locks WHERE queue = %s", (queue,)
            ).fetchone()
            if system is not None:
                if system[0] > tx.now:
                    return False
                tx.cur.execute("DELETE FROM taskq_system_locks WHERE queue = %s", (queue,))
            holders = {
                row[0]
                for row in tx.cur.execute(
                    "WITH gone AS (DELETE FROM taskq_queue_slots WHERE queue = %(queue)s "
                    "AND expires <= %(now)s RETURNING worker_id) "
                    "SELECT worker_id FROM taskq_queue_slots WHERE queue = %(queue)s "
                    "AND expires > %(now)s",
                    {"queue": queue, "now": tx.now},
                ).fetchall()
            }
            if worker_id not in holders and len(holders) >= limit:
                return False
            tx.cur.execute(
                "INSERT INTO taskq_queue_slots (queue, worker_id, expires) VALUES (%s, %s, %s) "
                "ON CONFLICT (queue, worker_id) DO UPDATE SET expires = excluded.expires",
                (queue, worker_id, tx.now + ttl),
            )
            return True

    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        """Give our slot of ``queue`` back."""
        with self._read() as cur:
            cur.execute(
                "DELETE FROM taskq_queue_slots WHERE queue = %s AND worker_id = %s",
                (queue, worker_id),
            )

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Refuse queue slots of ``queue`` for ``timeout`` seconds."""
        with self._read() as cur:
            cur.execute(
                f"""{_CLOCK}
                INSERT INTO taskq_system_locks (queue, expires)
                SELECT %s, clock.now + %s FROM clock
                ON CONFLICT (queue) DO UPDATE SET expires = excluded.expires""",
                (queue, float(timeout)),
            )

    def get_queue_system_lock(self, queue: str) -> float | None:
        """The system lock's expiry, or ``None`` when unset or expired."""
        with self._read() as cur:
            row = cur.execute(
                f"SELECT expires FROM taskq_system_locks WHERE queue = %s AND expires > {NOW}",
                (queue,),
            ).fetchone()
        return None if row is None else float(row[0])

    def try_rate_limit(self, name: str, ttl: float) -> bool:
        """``True`` at most once per ``ttl`` seconds for ``name``."""
        with self._read() as cur:
            row = cur.execute(
                f"""{_CLOCK}
                INSERT INTO taskq_rate_limits (name, expires)
                SELECT %(name)s, clock.now + %(ttl)s FROM clock
                ON CONFLICT (name) DO UPDATE SET expires = excluded.expires
                WHERE taskq_rate_limits.expires <= (SELECT now FROM clock)
                RETURNING 1""",
                {"name": name, "ttl": float(ttl)},
            ).fetchone()
        return row is not None

    # -- notifications --------------------------------------------------------------
    def wait_for_activity(self, timeout: float) -> set[str]:
        """Queues that got ``queued`` work, as notified since the listening
        connection was made (on the first call, or by :meth:`check`); waits up
        to ``timeout`` seconds when there are none yet."""
        return self._listener.wait(max(0.0, float(timeout)))
