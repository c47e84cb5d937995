"""The keys of the advisory locks that order the moves on one task or queue.

Every move on a task first takes the transaction-level advisory lock of that
task (``pg_advisory_xact_lock``), so two moves on one task never interleave:
the second waits until the first has committed, then sees what it wrote.
A move on several tasks takes their locks in ascending key order, so two such
moves cannot wait for each other in a cycle. A key is the first 8 bytes of a
BLAKE2b digest of what it locks, the same in every process; two things that
share a key (one chance in 2**64) only wait for each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["SCHEMA_KEY", "ordered", "queue_key", "slots_key", "task_key"]


def _key(*parts: str) -> int:
    raw = "\x00".join(parts).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(raw, digest_size=8, person=b"taskq-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


def task_key(queue: str, task_id: str) -> int:
    """The lock of one task (all its copies, its data and its records)."""
    return _key("task", queue, task_id)


def queue_key(queue: str) -> int:
    """The lock that serializes enqueues checking ``max_queue_size``."""
    return _key("queue", queue)


def slots_key(queue: str) -> int:
    """The lock that serializes taking the worker slots of a queue."""
    return _key("slots", queue)


#: the lock held while the schema is created or migrated
SCHEMA_KEY = _key("schema")


def ordered(keys: Iterable[int]) -> list[int]:
    """Distinct keys in the order every move takes them (ascending)."""
    return sorted(set(keys))
