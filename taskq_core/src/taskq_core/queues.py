"""Queue names: ``email.incoming.CUSTOMER1`` is a subqueue of
``email.incoming`` and of its root ``email``.

Brokers group a root's queues together (the Redis broker puts them in one
hash slot), workers include and exclude queues by any of their parts, and
error reports group subqueues by their root.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["dotted_parts", "queue_matches", "queue_root"]


def dotted_parts(queue: str) -> Iterator[str]:
    """``"a.b.c"`` -> ``"a"``, ``"a.b"``, ``"a.b.c"``."""
    parts = queue.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def queue_root(queue: str) -> str:
    """The first part of a queue name (``"email"`` for ``"email.incoming.X"``)."""
    return queue.split(".", 1)[0]


def queue_matches(
    queue: str, only: Iterable[str] | None = None, exclude: Iterable[str] | None = None
) -> bool:
    """Whether a worker with these include/exclude lists processes ``queue``.

    The most specific part of the name decides; at one level, exclude beats
    include; a prefix that is not a whole part (``a`` for ``ab``) never matches.
    With no include list every queue not excluded matches.
    """
    if isinstance(only, str) or isinstance(exclude, str):
        raise TypeError("queue lists must be iterables of queue names, not a string")
    only_set = set(only or ())
    exclude_set = set(exclude or ())
    for part in reversed(list(dotted_parts(queue))):
        if part in exclude_set:
            return False
        if part in only_set:
            return True
    return not only_set
