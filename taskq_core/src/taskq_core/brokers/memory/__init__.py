"""The in-process broker (``memory://``).

:class:`MemoryBroker` implements the whole :class:`~taskq_core.broker.Broker`
contract with dictionaries guarded by one lock, so every operation is atomic
for all threads of the process. It cannot be shared with other processes (a
worker on it runs tasks in-process, never in a forked child).

Its clock can be replaced, which lets tests move time forward without
sleeping::

    now = [1000.0]
    broker = MemoryBroker(clock=lambda: now[0])
    broker.enqueue(EnqueueRequest("t1", "default", b"...", when=1060.0))
    now[0] += 60
    assert broker.move_due("default", 100) == 1

It is built like the contract, one module per section: ``_store`` (task data,
the per-state indexes, the lock), ``_moves`` (the state moves),
``_inspection`` (inspection and repair), ``_coordination`` (locks, queue
slots, rate limits, notifications) and ``_broker``, where
:class:`MemoryBroker` composes them.
"""

from __future__ import annotations

from taskq_core.brokers.memory._broker import MemoryBroker

__all__ = ["MemoryBroker"]
