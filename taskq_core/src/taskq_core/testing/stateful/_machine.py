"""The whole state machine: every group of rules, and the starting situations
(``seed``) that need several of them."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import initialize

from taskq_core.broker import EnqueueRequest
from taskq_core.testing.stateful._enqueue import EnqueueRules
from taskq_core.testing.stateful._invariants import Invariants
from taskq_core.testing.stateful._lost import LostDataRules
from taskq_core.testing.stateful._model import FUTURE, QUEUES, SCENARIOS, UNIQUE_IDS, WORKERS
from taskq_core.testing.stateful._repair import RepairRules
from taskq_core.testing.stateful._worker import WorkerRules


class BrokerStateMachineRules(EnqueueRules, WorkerRules, RepairRules, LostDataRules, Invariants):
    """Every rule and invariant. :func:`make_broker_state_machine` builds one
    subclass per broker, with its ``broker_factory``, ``drop_task_data`` and
    its own ``seen_transitions``."""

    @initialize(scenarios=st.lists(st.sampled_from(SCENARIOS), max_size=2, unique=True))
    def seed(self, scenarios: list[str]) -> None:
        """Start from situations that random steps reach only rarely: unique
        twins next to a running or failed copy, and trimmed records."""
        queue = QUEUES[0]
        for task_id, scenario in zip(UNIQUE_IDS, scenarios, strict=False):
            now = self.broker.time()
            self._enqueue(EnqueueRequest(task_id, queue, b"seed", unique=True))
            if scenario == "failures":
                for _ in range(3):
                    for popped in self._pop(queue, 1, WORKERS[0]):
                        key = (queue, popped)
                        self._finish_task(key, WORKERS[0], "requeue", None, True, 2)
                continue
            popped_ids = self._pop(queue, 1, WORKERS[0])
            if scenario.startswith("error"):
                for popped in popped_ids:
                    key = (queue, popped)
                    self._finish_task(key, WORKERS[0], "error", None, True, None)
            when = now + FUTURE if scenario.endswith("scheduled") else None
            self._enqueue(EnqueueRequest(task_id, queue, b"seed twin", when, unique=True))
