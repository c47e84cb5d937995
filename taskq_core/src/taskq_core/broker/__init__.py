"""The broker contract.

A broker stores tasks and moves them between states. Every method that moves
a task is **one atomic operation** on the broker: it either happens completely
or not at all, and no other client sees a half-done move. The worker and the
:class:`~taskq_core.Task` API use nothing but these methods, so a broker that
passes :mod:`taskq_core.testing.contract` works with all of taskq.

Brokers treat the task payload as opaque bytes; everything they need to know
(id, queue, priority, uniqueness) is passed alongside it.

Times are float seconds since the epoch. Brokers measure "now" with their own
clock (:meth:`Broker.time`) so that the clocks of worker hosts do not matter.

The contract comes in sections, one module each:

* :mod:`~taskq_core.broker.records`: the records it passes (requests,
  results, :class:`StoredTask`, :class:`DroppedTask`, :class:`Execution`);
* :mod:`~taskq_core.broker.moves`: the state moves (enqueue, pop, heartbeat,
  finish, recovery, due tasks);
* :mod:`~taskq_core.broker.inspection`: inspection and repair;
* :mod:`~taskq_core.broker.coordination`: locks, queue slots, rate limits
  and notifications;
* :mod:`~taskq_core.broker.base`: :class:`Broker`, which composes them with
  the lifecycle. A broker subclasses :class:`Broker`, one class.
"""

from __future__ import annotations

from taskq_core.broker.base import Broker
from taskq_core.broker.records import (
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    FinishRequest,
    SchemaPlan,
    StoredTask,
)

__all__ = [
    "Broker",
    "DroppedTask",
    "EnqueueRequest",
    "EnqueueResult",
    "Execution",
    "FinishOutcome",
    "FinishRequest",
    "SchemaPlan",
    "StoredTask",
]
