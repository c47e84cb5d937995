"""Hypothesis strategies for values taskq accepts.

Use them in your own property tests::

    from hypothesis import given
    from taskq_core.testing.strategies import retry_policies

    @given(retry_policies())
    def test_my_code_handles_any_policy(policy): ...
"""

from __future__ import annotations

import datetime as dt
import operator
import string
from typing import Any

from hypothesis import strategies as st

from taskq_core.retry import RetryPolicy, exponential, fixed, linear
from taskq_core.schedule import Periodic, periodic

__all__ = ["queue_names", "retry_policies", "schedules", "task_options"]


def queue_names(max_parts: int = 3) -> st.SearchStrategy[str]:
    """Queue names of 1 to ``max_parts`` dotted parts, like ``"email"`` or
    ``"email.incoming"``: each part starts with a lowercase letter, then
    lowercase letters, digits or underscores (at most 12 characters)."""
    part = st.builds(
        operator.add,
        st.sampled_from(string.ascii_lowercase),
        st.text(alphabet=string.ascii_lowercase + string.digits + "_", max_size=11),
    )
    return st.lists(part, min_size=1, max_size=max_parts).map(".".join)


def retry_policies(
    max_retries: int = 20, max_delay: float = 3600
) -> st.SearchStrategy[RetryPolicy]:
    """Built-in retry policies (``fixed``, ``linear``, ``exponential``) with at
    most ``max_retries`` retries and a first delay of at most ``max_delay``
    seconds. Later delays of ``linear`` and ``exponential`` may exceed it
    (``exponential`` uses factors between 1 and 4)."""
    delays = st.floats(min_value=0, max_value=max_delay, allow_nan=False) | st.integers(
        0, int(max_delay)
    )
    counts = st.integers(min_value=0, max_value=max_retries)
    fixed_policies = st.builds(fixed, delays, counts)
    linear_policies = st.builds(linear, delays, st.integers(0, int(max_delay)), counts)
    exponential_policies = st.builds(
        exponential, delays, st.floats(min_value=1, max_value=4, allow_nan=False), counts
    )
    return st.one_of(fixed_policies, linear_policies, exponential_policies)


def schedules() -> st.SearchStrategy[Periodic]:
    """``periodic`` schedules: a whole number of seconds from 1 second to 4
    weeks, sometimes with a ``start_date`` and an ``end_date``."""
    start_dates = st.none() | st.datetimes(
        min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1)
    )

    @st.composite
    def build(draw: st.DrawFn) -> Periodic:
        seconds = draw(st.integers(min_value=1, max_value=4 * 604800))
        start = draw(start_dates)
        end = None
        if draw(st.booleans()):
            base = start or dt.datetime(2000, 1, 1)
            end = base + dt.timedelta(seconds=draw(st.integers(0, 20 * 365 * 86400)))
        return periodic(seconds=seconds, start_date=start, end_date=end)

    return build()


def task_options() -> st.SearchStrategy[dict[str, Any]]:
    """Dicts of valid task options, each key present or not: ``queue``,
    ``priority`` (-1000 to 1000), ``unique``, ``retry_method`` (a built-in
    policy), ``hard_timeout`` (0.1 s to 1 hour) and ``max_stored_executions``
    (0 to 100). Pass them as ``tq.delay(func, **options)``."""
    return st.fixed_dictionaries(
        {},
        optional={
            "queue": queue_names(),
            "priority": st.integers(min_value=-1000, max_value=1000),
            "unique": st.booleans(),
            "retry_method": retry_policies(),
            "hard_timeout": st.floats(min_value=0.1, max_value=3600, allow_nan=False),
            "max_stored_executions": st.integers(min_value=0, max_value=100),
        },
    )
