"""The state table in taskq_core.states is complete and consistent."""

from __future__ import annotations

from taskq_core.states import PENDING_STATES, STATES, TRANSITIONS, State, Transition, allowed


def test_every_transition_has_an_entry() -> None:
    """Every Transition has exactly one entry in TRANSITIONS, and nothing else does."""
    assert set(TRANSITIONS) == set(Transition)
    assert len(TRANSITIONS) == len(Transition)


def test_sources_and_targets_are_states_or_none() -> None:
    """Each entry is a pair of non-empty frozensets of States or None."""
    for transition, (sources, targets) in TRANSITIONS.items():
        for side in (sources, targets):
            assert isinstance(side, frozenset), transition
            assert side, transition
            assert all(item is None or isinstance(item, State) for item in side), transition


def test_states_are_the_four_tasktiger_states() -> None:
    """STATES lists the four states once each, with TaskTiger's names."""
    assert list(STATES) == list(State)
    assert {state.value for state in STATES} == {"scheduled", "queued", "active", "error"}
    assert {State.SCHEDULED, State.QUEUED} == PENDING_STATES


def test_only_enqueue_creates_tasks() -> None:
    """Only ``enqueue`` starts from "not stored", and it only starts from there."""
    creators = {t for t, (sources, _targets) in TRANSITIONS.items() if None in sources}
    assert creators == {Transition.ENQUEUE}
    assert TRANSITIONS[Transition.ENQUEUE][0] == {None}
    assert TRANSITIONS[Transition.ENQUEUE][1] == PENDING_STATES


def test_removals_are_done_cancel_and_delete() -> None:
    """Tasks leave the broker only by success, cancel (scheduled) or delete (error)."""
    removers = {t for t, (_sources, targets) in TRANSITIONS.items() if None in targets}
    assert removers == {Transition.DONE, Transition.CANCEL, Transition.DELETE}
    assert TRANSITIONS[Transition.CANCEL][0] == {State.SCHEDULED}
    assert TRANSITIONS[Transition.DELETE][0] == {State.ERROR}


def test_only_pop_starts_a_run() -> None:
    """A task becomes active only by pop, and pop takes only queued tasks."""
    into_active = {t for t, (_s, targets) in TRANSITIONS.items() if State.ACTIVE in targets}
    assert into_active == {Transition.POP}
    assert TRANSITIONS[Transition.POP] == (frozenset({State.QUEUED}), frozenset({State.ACTIVE}))


def test_every_active_task_can_end() -> None:
    """The ways out of active cover success, retry, failure, requeue and the
    expiry of a lost worker; none of them stays active."""
    out_of_active = {t for t, (sources, _t) in TRANSITIONS.items() if State.ACTIVE in sources}
    assert out_of_active == {
        Transition.DONE,
        Transition.RETRY_LATER,
        Transition.FAIL,
        Transition.LOCK_CONFLICT,
        Transition.REQUEUE_EXPIRED,
        Transition.FAIL_EXPIRED,
    }
    for transition in out_of_active:
        assert State.ACTIVE not in TRANSITIONS[transition][1]


def test_every_state_is_reachable_and_can_be_left() -> None:
    """Starting from enqueue, every state is reachable, and every state has a
    transition that leaves it."""
    reached: set[State | None] = {None}
    changed = True
    while changed:
        changed = False
        for sources, targets in TRANSITIONS.values():
            if sources & reached and not targets <= reached:
                reached |= targets
                changed = True
    assert set(STATES) <= reached
    for state in STATES:
        assert any(
            state in sources and targets - {state} for sources, targets in TRANSITIONS.values()
        ), state


def test_allowed_reads_the_table() -> None:
    """allowed() is true exactly for the pairs in the table."""
    everything: list[State | None] = [None, *STATES]
    for transition, (sources, targets) in TRANSITIONS.items():
        for source in everything:
            for target in everything:
                expected = source in sources and target in targets
                assert allowed(transition, source, target) is expected
    assert allowed(Transition.SCHEDULED_DUE, State.SCHEDULED, State.QUEUED)
    assert not allowed(Transition.SCHEDULED_DUE, State.QUEUED, State.SCHEDULED)
