"""A property check for retry policies, to call from your own tests."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from taskq_core.exceptions import StopRetry
from taskq_core.retry import load_retry_method, serialize_retry_method

__all__ = ["UNBOUNDED_SEARCH_LIMIT", "check_retry_policy"]

#: How far :func:`check_retry_policy` looks for the end of a policy whose
#: ``max_retries`` is not known.
UNBOUNDED_SEARCH_LIMIT = 10_000

_STOP = "StopRetry"


def _as_callable(policy: Any) -> Callable[[int], Any]:
    """The policy as ``f(n)``, calling a ``(f, args)`` tuple as ``f(n, *args)``."""
    if isinstance(policy, (list, tuple)) and len(policy) == 2 and callable(policy[0]):
        func, args = policy[0], tuple(policy[1])
        return lambda n: func(n, *args)
    if isinstance(policy, (str, list, tuple)):
        loaded: Callable[[int], Any] = load_retry_method(policy)
        return loaded
    if not callable(policy):
        raise AssertionError(f"retry policy {policy!r} is not callable")
    checked: Callable[[int], Any] = policy
    return checked


def _outcome(func: Callable[[int], Any], n: int, label: str) -> Any:
    """``func(n)``, or :data:`_STOP` if it raised ``StopRetry``."""
    try:
        return func(n)
    except StopRetry:
        return _STOP
    except Exception as exc:
        raise AssertionError(
            f"{label} raised {type(exc).__name__}: {exc} for retry_number={n}; "
            "a policy returns seconds or raises StopRetry"
        ) from exc


def _check_delay(delay: Any, n: int, max_delay: float | None) -> None:
    if isinstance(delay, bool) or not isinstance(delay, numbers.Real):
        raise AssertionError(f"retry_number={n}: the delay {delay!r} is not a number of seconds")
    if math.isnan(delay):
        raise AssertionError(f"retry_number={n}: the delay is NaN")
    if math.isinf(delay):
        raise AssertionError(f"retry_number={n}: the delay is infinite ({delay!r})")
    if delay < 0:
        raise AssertionError(f"retry_number={n}: the delay {delay!r} is negative")
    if max_delay is not None and float(delay) > max_delay:
        raise AssertionError(
            f"retry_number={n}: the delay {delay!r} is above max_delay={max_delay}"
        )


def _find_stop(func: Callable[[int], Any]) -> int:
    """The ``max_retries`` a policy behaves as: one less than its first StopRetry."""
    for n in range(1, UNBOUNDED_SEARCH_LIMIT + 2):
        if _outcome(func, n, "the policy") is _STOP:
            return n - 1
    raise AssertionError(
        f"the policy never raised StopRetry for retry_number 1..{UNBOUNDED_SEARCH_LIMIT + 1}; "
        "a policy must stop (pass max_retries= if it has a known bound)"
    )


def check_retry_policy(
    policy: Any,
    *,
    max_retries: int | None = None,
    max_delay: float | None = None,
    max_examples: int = 200,
    derandomize: bool = False,
) -> None:
    """Check with hypothesis that ``policy`` is a well-behaved retry policy.

    ``policy`` is anything a task accepts as ``retry_method``: a built-in
    policy (``fixed(60, 3)``), an importable function ``f(n)``, or a tuple
    ``(f, args)`` meaning ``f(n, *args)``. Call this from a plain test function
    (not from inside another ``@given`` test). It raises ``AssertionError``,
    naming the failing ``retry_number``, when the policy

    * cannot be serialized (a lambda, a local function, one in ``__main__``)
      or does not survive a serialization round trip (the stored and
      reloaded policy gives a different delay or stop decision);
    * returns something other than a finite number of seconds >= 0, or a
      delay above ``max_delay`` (when given);
    * retries past ``max_retries`` or stops (raises ``StopRetry``) before it;
    * is not deterministic: two calls with the same ``retry_number`` differ;
    * raises anything other than ``StopRetry``.

    ``max_retries`` defaults to the policy's ``max_retries`` attribute (the
    built-in policies have one). When neither is known, the policy must stop
    within :data:`UNBOUNDED_SEARCH_LIMIT` (10,000) retries, and the first
    ``StopRetry`` found is taken as its bound: it must keep stopping after it.

    ``max_examples`` and ``derandomize`` are passed to hypothesis' settings.
    """
    try:
        spec = serialize_retry_method(policy)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"the retry policy cannot be stored with a task: {exc}") from exc
    try:
        reloaded = load_retry_method(spec)
    except (ImportError, TypeError, ValueError) as exc:
        raise AssertionError(f"the stored retry policy {spec!r} cannot be loaded: {exc}") from exc
    func = _as_callable(policy)
    if max_retries is None:
        max_retries = getattr(policy, "max_retries", None)
    if max_retries is None:
        bound = _find_stop(func)
    else:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        bound = max_retries
    if max_delay is not None and (not math.isfinite(max_delay) or max_delay < 0):
        raise ValueError(f"max_delay must be a finite number >= 0, got {max_delay!r}")

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(retry_number=st.integers(min_value=1, max_value=2 * bound + 10))
    @example(retry_number=1)
    @example(retry_number=max(bound, 1))
    @example(retry_number=bound + 1)
    def retry_policy_property(retry_number: int) -> None:
        first = _outcome(func, retry_number, "the policy")
        second = _outcome(func, retry_number, "the policy")
        if retry_number <= bound:
            if first is _STOP:
                raise AssertionError(
                    f"retry_number={retry_number}: the policy stopped (StopRetry) before "
                    f"max_retries={bound}"
                )
            _check_delay(first, retry_number, max_delay)
        elif first is not _STOP:
            raise AssertionError(
                f"retry_number={retry_number}: the policy still retries (delay {first!r}) "
                f"past max_retries={bound}"
            )
        if first != second:
            raise AssertionError(
                f"retry_number={retry_number}: the policy is not deterministic: "
                f"{first!r} then {second!r}"
            )
        stored = _outcome(reloaded, retry_number, "the reloaded policy")
        if stored != first:
            raise AssertionError(
                f"retry_number={retry_number}: the policy gives {first!r} but after a "
                f"serialization round trip ({spec!r}) it gives {stored!r}"
            )

    try:
        retry_policy_property()
    except Flaky as exc:
        raise AssertionError(
            f"the retry policy is not deterministic: a failure did not happen again "
            f"for the same retry_number ({exc})"
        ) from exc
