"""The :class:`Broker` class: the sections of the contract, composed, and the
broker's lifecycle (its clock, a forked child, closing, setup warnings)."""

from __future__ import annotations

import abc
from typing import ClassVar

from taskq_core.broker.coordination import Coordination
from taskq_core.broker.moves import StateMoves

__all__ = ["Broker"]


class Broker(StateMoves, Coordination):
    """Stores tasks and moves them between states, atomically.

    Subclasses are registered through the ``taskq_register`` hook under a
    name and URL schemes; :func:`taskq_core.plugins.make_broker` builds them.

    The methods come in sections: the state moves
    (:class:`~taskq_core.broker.moves.StateMoves`), inspection and repair
    (:class:`~taskq_core.broker.inspection.Inspection`) and coordination
    (:class:`~taskq_core.broker.coordination.Coordination`); the lifecycle
    is here.
    """

    #: the name users give to ``--broker``.
    name: ClassVar[str] = ""
    #: whether the worker may fork with this broker (an in-process broker
    #: cannot share its data with a child process).
    supports_fork: ClassVar[bool] = True

    # -- lifecycle -----------------------------------------------------------
    def after_fork(self) -> None:
        """Called in a forked child: drop inherited connections."""

    def close(self) -> None:
        """Release connections."""

    def check(self) -> list[str]:
        """Return warnings about the broker's setup (logged at worker start)."""
        return []

    @abc.abstractmethod
    def time(self) -> float:
        """The broker's clock, in seconds since the epoch."""
