"""The Redis key layout.

Every key of one queue root shares the hash tag ``{T}`` where ``T`` is the
root name (``email`` for ``email.incoming.X``) with ``%`` and ``}`` escaped
(an empty root is ``%``), so a queue, its subqueues and their per-root
indexes live in one cluster slot, and every script gets keys of one slot.
``docs/redis.md`` describes each key.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskq_core.queues import queue_root as root_of
from taskq_core.states import State

__all__ = ["STATE_NUMBERS", "Layout", "QueueKeys", "root_of", "root_tag"]

#: State -> its number in the Lua scripts (a KEYS index of the queue key set).
STATE_NUMBERS: dict[State, int] = {
    State.QUEUED: 1,
    State.SCHEDULED: 2,
    State.ACTIVE: 3,
    State.ERROR: 4,
}
_INDEX_ORDER = (State.QUEUED, State.SCHEDULED, State.ACTIVE, State.ERROR)


def root_tag(root: str) -> str:
    """The hash tag text of a root: never empty, never contains ``}``."""
    if not root:
        return "%"
    return root.replace("%", "%25").replace("}", "%7D")


@dataclass(frozen=True)
class QueueKeys:
    """The ten keys of one queue, in the order the scripts expect."""

    queue: str
    keys: tuple[str, ...]

    def state(self, state: State) -> str:
        """The zset of ``state``."""
        return self.keys[STATE_NUMBERS[State(state)] - 1]

    @property
    def tasks(self) -> str:
        """The hash of payloads, meta, owners and execution records."""
        return self.keys[4]


_QUEUE_CACHE_SIZE = 10_000


class Layout:
    """Builds every key name from the prefix (nothing else builds keys)."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(
                f"invalid Redis key prefix {prefix!r}: it must be non-empty, no braces"
            )
        self.prefix = prefix
        #: SET of every root name ever enqueued to (never cleaned automatically).
        self.roots = f"{prefix}:roots"
        #: pub/sub channel: queue names that got queued tasks.
        self.channel = f"{prefix}:activity"
        self._queues: dict[str, QueueKeys] = {}

    def tagged(self, root: str) -> str:
        """``<prefix>:{<tag>}``: the start of every key of ``root``."""
        return f"{self.prefix}:{{{root_tag(root)}}}"

    def index(self, root: str, state: State) -> str:
        """SET of the root's queue names that have tasks in ``state``."""
        return f"{self.tagged(root)}:queues:{State(state).value}"

    def queue(self, queue: str) -> QueueKeys:
        """The key set passed as KEYS to every per-queue script (built once per
        queue name: it is on the path of every enqueue, pop and finish)."""
        keys = self._queues.get(queue)
        if keys is None:
            if len(self._queues) >= _QUEUE_CACHE_SIZE:
                self._queues.clear()
            keys = self._queues[queue] = self._build_queue(queue)
        return keys

    def _build_queue(self, queue: str) -> QueueKeys:
        root = root_of(queue)
        base = self.tagged(root)
        keys = (
            f"{base}:queued:{queue}",
            f"{base}:scheduled:{queue}",
            f"{base}:active:{queue}",
            f"{base}:error:{queue}",
            f"{base}:tasks:{queue}",
            *(self.index(root, state) for state in _INDEX_ORDER),
            f"{base}:seq",
        )
        return QueueKeys(queue, keys)

    def slots(self, queue: str) -> str:
        """ZSET of the queue's worker slots and system lock."""
        return f"{self.tagged(root_of(queue))}:slots:{queue}"

    def lock(self, lock_id: str) -> str:
        """STRING holding a task lock's token."""
        return f"{self.prefix}:lock:{lock_id}"

    def rate_limit(self, name: str) -> str:
        """STRING whose existence rate-limits ``name``."""
        return f"{self.prefix}:rate:{name}"
