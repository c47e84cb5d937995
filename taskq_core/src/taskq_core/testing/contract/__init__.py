"""The broker contract, as a reusable pytest suite.

Every broker (taskq's own and third-party ones) runs these tests against
itself by subclassing :class:`BrokerContractTests` and providing a ``broker``
fixture that returns a fresh, empty broker::

    import pytest
    from taskq_core.testing.contract import BrokerContractTests

    class TestMyBrokerContract(BrokerContractTests):
        @pytest.fixture
        def broker(self):
            broker = MyBroker(...)
            yield broker
            broker.close()

        # optional: lets the suite simulate task data lost by an outside writer
        @pytest.fixture
        def drop_task_data(self):
            return lambda broker, queue, task_id: broker.drop_data(queue, task_id)

Without ``drop_task_data`` the "missing data" tests are skipped.

Brokers use their own clock, so the tests only use times relative to
:meth:`~taskq_core.broker.Broker.time` ("now + 1000" is the future, "now - 10"
the past). They sleep only where a TTL must run out, for well under a second.
"""

from __future__ import annotations

from typing import ClassVar

from taskq_core.states import Transition
from taskq_core.testing.contract._base import ContractBase, DropTaskData
from taskq_core.testing.contract.basics import BasicsContract
from taskq_core.testing.contract.coordination import CoordinationContract
from taskq_core.testing.contract.enqueue import EnqueueContract
from taskq_core.testing.contract.finish import FinishContract
from taskq_core.testing.contract.inspection import InspectionContract
from taskq_core.testing.contract.missing_data import MissingDataContract
from taskq_core.testing.contract.move_due import MoveDueContract
from taskq_core.testing.contract.pop import PopContract
from taskq_core.testing.contract.recovery import RecoveryContract
from taskq_core.testing.contract.repair import RepairContract

__all__ = ["BrokerContractTests", "DropTaskData"]


class BrokerContractTests(
    BasicsContract,
    EnqueueContract,
    PopContract,
    FinishContract,
    RecoveryContract,
    MoveDueContract,
    CoordinationContract,
    InspectionContract,
    RepairContract,
    MissingDataContract,
    ContractBase,
):
    """The behaviour every :class:`~taskq_core.broker.Broker` must have.

    Subclass it in a test module and provide the ``broker`` fixture (a fresh,
    empty broker per test) and optionally ``drop_task_data``.
    """

    #: the tests that exercise each transition of :data:`taskq_core.states.TRANSITIONS`
    TRANSITION_TESTS: ClassVar[dict[Transition, tuple[str, ...]]] = {
        Transition.ENQUEUE: (
            "test_enqueue_now_is_queued_at_broker_now",
            "test_enqueue_future_is_scheduled_at_when",
        ),
        Transition.POP: ("test_pop_moves_to_active_owned_and_stamped",),
        Transition.DONE: ("test_finish_done_deletes_task_and_records",),
        Transition.RETRY_LATER: ("test_finish_retry_schedules_at_when_with_record",),
        Transition.FAIL: ("test_finish_error_moves_to_error_with_record",),
        Transition.LOCK_CONFLICT: (
            "test_finish_requeue_now_is_queued_without_counting",
            "test_finish_requeue_future_is_scheduled",
            "test_pop_defers_unique_task_whose_twin_is_active",
        ),
        Transition.REQUEUE_EXPIRED: (
            "test_recover_expired_requeue_records_and_queues",
            "test_recover_expired_retry_schedules",
        ),
        Transition.FAIL_EXPIRED: ("test_recover_expired_error_moves_to_error",),
        Transition.SCHEDULED_DUE: ("test_move_due_moves_only_due_tasks",),
        Transition.CANCEL: ("test_cancel_removes_scheduled_task_and_data",),
        Transition.DELETE: ("test_delete_removes_errored_task_and_data",),
        Transition.RETRY_FROM_ERROR: ("test_retry_from_error_queues_now_keeping_records",),
        Transition.UPDATE_SCHEDULED_TIME: ("test_update_scheduled_time_changes_only_time",),
    }

    # -- the table -------------------------------------------------------------
    def test_every_transition_has_contract_tests(self) -> None:
        """Every transition of the state table is exercised by named tests here."""
        assert set(self.TRANSITION_TESTS) == set(Transition)
        for names in self.TRANSITION_TESTS.values():
            assert names
            for name in names:
                assert callable(getattr(self, name, None)), name
