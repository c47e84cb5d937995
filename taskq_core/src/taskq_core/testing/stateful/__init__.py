"""A stateful property test of the broker contract.

:func:`make_broker_state_machine` builds a hypothesis
:class:`~hypothesis.stateful.RuleBasedStateMachine` that drives a broker with
random sequences of operations and checks it, after every step, against a
model of the state machine in :mod:`taskq_core.states`: no task is lost or
duplicated, no task is in two states except the allowed unique-twin
combinations, sizes, payloads, priorities, scores, ``scheduled_at`` and
execution records all match, and every move the model makes is allowed by
:data:`~taskq_core.states.TRANSITIONS`.

The rules enqueue (now, at past and future times, unique or not, one by one
or in batches), re-enqueue pending unique tasks, pop, heartbeat, move due
tasks, finish or recover runs, repair (cancel, delete, retry, reschedule,
purge) and, when given a ``drop_task_data`` function, delete a task's data
behind the broker's back and then check what the broker does with the id
left behind (pop drops it, recovery removes it, repairs refuse or clear it).

Run it against a broker from a test module::

    from hypothesis import HealthCheck, settings
    from taskq_core.testing.stateful import make_broker_state_machine

    TestMyBrokerStateful = make_broker_state_machine(MyBroker, drop_data).TestCase
    TestMyBrokerStateful.settings = settings(
        max_examples=50, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

The broker keeps its own clock, so the machine never sleeps: times are chosen
far in the past (due at once) or far in the future (never due during the
test) relative to :meth:`~taskq_core.broker.Broker.time`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from hypothesis.stateful import RuleBasedStateMachine

from taskq_core.broker import Broker
from taskq_core.states import Transition
from taskq_core.testing.stateful._base import DropData as DropData
from taskq_core.testing.stateful._machine import BrokerStateMachineRules

__all__ = ["make_broker_state_machine"]


def make_broker_state_machine(
    broker_factory: Callable[[], Broker],
    drop_task_data: DropData | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class that tests brokers made by ``broker_factory``.

    ``broker_factory`` must return a fresh, empty broker each time it is
    called (once per example); the machine calls ``close()`` at the end.
    ``drop_task_data(broker, queue, task_id)``, when given, deletes a task's
    data but keeps its state entries (as data lost outside taskq would); the
    machine then also checks what the broker does with such ids.
    The class attribute ``seen_transitions`` collects the transitions the
    model performed (across examples), for checking coverage.
    """

    class BrokerStateMachine(BrokerStateMachineRules):
        seen_transitions: ClassVar[set[Transition]] = set()

    # staticmethod: a function stored on a class would be bound to the machine
    BrokerStateMachine.broker_factory = staticmethod(broker_factory)
    if drop_task_data is not None:
        BrokerStateMachine.drop_task_data = staticmethod(drop_task_data)
    BrokerStateMachine.__name__ = "BrokerStateMachine"
    BrokerStateMachine.__qualname__ = "BrokerStateMachine"
    return BrokerStateMachine
