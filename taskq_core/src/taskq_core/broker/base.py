"""The :class:`Broker` class: the sections of the contract, composed, and the
broker's lifecycle (its clock, a forked child, closing, setup warnings), its
stored schema (SQL brokers) and enqueueing inside the caller's transaction."""

from __future__ import annotations

import abc
from typing import ClassVar

from taskq_core.broker.coordination import Coordination
from taskq_core.broker.moves import StateMoves
from taskq_core.broker.records import EnqueueRequest, EnqueueResult, SchemaPlan

__all__ = ["Broker"]


class Broker(StateMoves, Coordination):
    """Stores tasks and moves them between states, atomically.

    Subclasses are registered through the ``taskq_register`` hook under a
    name and URL schemes; :func:`taskq_core.plugins.make_broker` builds them.

    The methods come in sections: the state moves
    (:class:`~taskq_core.broker.moves.StateMoves`), inspection and repair
    (:class:`~taskq_core.broker.inspection.Inspection`) and coordination
    (:class:`~taskq_core.broker.coordination.Coordination`); the lifecycle,
    the schema and :meth:`enqueue_on_connection` are here, each with a
    default that suits a broker without them.
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

    # -- the stored schema (SQL brokers) ----------------------------------------
    def schema_plan(self) -> SchemaPlan | None:
        """The stored schema's version and the statements that would bring it
        to the version this taskq writes (``taskq db upgrade --dry-run``);
        changes nothing. ``None``: the broker keeps no schema (this default).

        Raises :class:`~taskq_core.exceptions.SchemaError` when the stored
        schema is newer than this taskq knows."""
        return None

    def upgrade_schema(self) -> SchemaPlan | None:
        """Create or migrate the stored schema to the version this taskq
        writes, in one transaction (``taskq db upgrade``); returns what it
        did (no statements: it was current). ``None``: the broker keeps no
        schema (this default).

        Raises :class:`~taskq_core.exceptions.SchemaError` when the stored
        schema is newer than this taskq knows."""
        return None

    # -- enqueue inside the caller's transaction ----------------------------------
    def enqueue_on_connection(self, request: EnqueueRequest, connection: object) -> EnqueueResult:
        """:meth:`enqueue` on ``connection``, a database connection of the
        caller, inside the transaction it has open, without committing it:
        the task exists once the caller commits, and never if it rolls back
        (``tq.delay(..., connection=conn)``).

        Only a broker that keeps its tasks in the caller's database can do
        this. This default raises :class:`TypeError` naming the broker; a
        broker that can raises :class:`TypeError` or :class:`ValueError` for
        a connection it cannot use. Either way nothing is written.
        """
        name = self.name or type(self).__name__
        raise TypeError(
            f"the {name} broker cannot enqueue inside the caller's transaction "
            f"(connection={type(connection).__name__} object): only a broker that keeps "
            "its tasks in the caller's database can, such as postgres (taskq-postgres)"
        )
