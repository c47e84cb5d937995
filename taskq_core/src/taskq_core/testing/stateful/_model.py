"""The model the state machine keeps beside the broker: what it knows about
each task (its copies in each state, their scores, its data and records), and
the constants the rules draw from."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from taskq_core import states
from taskq_core.broker import Execution
from taskq_core.states import State

QUEUES = ("sm", "sm.sub")
#: the first queue is drawn more often, so that tasks meet there
_QUEUE = st.sampled_from((QUEUES[0], QUEUES[0], QUEUES[0], QUEUES[1]))
WORKERS = ("w1", "w2")
UNIQUE_IDS = ("u0", "u1")
#: "past" times are this far behind now: earlier than any score stamped "now".
PAST = 100_000.0
#: "future" times are this far ahead (plus a small offset) and never come due.
FUTURE = 10_000.0
#: pop's defer_seconds: later than every "future" time.
DEFER = 50_000.0
BIG = 1_000_000

#: starting situations (see ``seed``)
SCENARIOS = (
    "active_twin",
    "active_twin_scheduled",
    "error_twin",
    "error_twin_scheduled",
    "failures",
)

#: the unique-twin combinations a task may be in: at most one pending copy,
#: beside a running copy, an error entry (which stays until it is retried,
#: deleted or purged: API decision 16), or both
ALLOWED_COMBINATIONS = frozenset(
    frozenset(states)
    for states in (
        {State.SCHEDULED},
        {State.QUEUED},
        {State.ACTIVE},
        {State.ERROR},
        {State.ACTIVE, State.QUEUED},
        {State.ACTIVE, State.SCHEDULED},
        {State.ERROR, State.QUEUED},
        {State.ERROR, State.SCHEDULED},
        {State.ACTIVE, State.ERROR},
        {State.ACTIVE, State.ERROR, State.QUEUED},
        {State.ACTIVE, State.ERROR, State.SCHEDULED},
    )
)

# Score kinds, in increasing order: a chosen past time < a time the broker
# stamped with its now < a chosen future time < a deferral.
EXACT_PAST, NOW, EXACT_FUTURE, DEFERRED = range(4)


@dataclass(frozen=True, order=True)
class _Score:
    """What the model knows about a score: its kind, and its value if the
    model chose it (``None`` when the broker stamped it)."""

    kind: int
    value: float | None = None

    @property
    def due(self) -> bool:
        return self.kind in (EXACT_PAST, NOW)

    def earliest(self, other: _Score) -> _Score:
        """The earlier of two scores (as far as the model can tell)."""
        if self.kind != other.kind:
            return self if self.kind < other.kind else other
        if self.value is not None and other.value is not None:
            return self if self.value <= other.value else other
        return self

    def matches(self, value: float, now: float, start: float) -> bool:
        if self.value is not None:
            return value == self.value
        if self.kind == NOW:
            return start - 1 <= value <= now + 1e-3
        # DEFERRED: later than any chosen future time
        return value > now + FUTURE + 1_000


def _exact(value: float, now: float) -> _Score:
    return _Score(EXACT_PAST if value <= now else EXACT_FUTURE, value)


@dataclass
class _ModelTask:
    payload: bytes
    priority: int
    #: the due time stored beside the payload (``scheduled_at``)
    scheduled_at: _Score
    copies: dict[State, _Score] = field(default_factory=dict)
    owner: str | None = None
    count: int = 0
    records: list[int] = field(default_factory=list)
    #: its data was deleted behind the broker's back (ids left in states)
    lost: bool = False

    def pending(self) -> State | None:
        for state in (State.QUEUED, State.SCHEDULED):
            if state in self.copies:
                return state
        return None


def _record(number: int) -> Execution:
    return {  # type: ignore[typeddict-unknown-key]  # "n": a key of the model's own
        "time_started": 1_700_000_000.0 + number,
        "time_failed": 1_700_000_000.5 + number,
        "exception_name": "builtins:RuntimeError",
        "success": False,
        "host": "model",
        "traceback": f"#{number}",
        "n": number,
    }


_OUTCOMES = states.OUTCOMES
_FINISH_TRANSITIONS = states.FINISH_TRANSITIONS
_RECOVER_TRANSITIONS = states.RECOVER_TRANSITIONS
