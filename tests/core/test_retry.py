"""Retry policies: TaskTiger's arithmetic, validation, and serialization."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskq_core.exceptions import SerializationError, StopRetry, TaskImportError
from taskq_core.retry import (
    BoundRetryMethod,
    ExponentialRetry,
    FixedRetry,
    LinearRetry,
    call_retry_method,
    exponential,
    fixed,
    linear,
    load_retry_method,
    serialize_retry_method,
)
from taskq_core.testing.strategies import retry_policies

delays = st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.integers(0, 10**6)
counts = st.integers(min_value=0, max_value=50)


def outcomes(policy: Any, up_to: int) -> list[float | str]:
    """The policy's answers for retry numbers 1..up_to, ``"stop"`` for StopRetry."""
    result: list[float | str] = []
    for n in range(1, up_to + 1):
        try:
            result.append(policy(n))
        except StopRetry:
            result.append("stop")
    return result


def half_delay(retry_number: int) -> float:
    """A module-level retry function: half a second per failure, three retries."""
    if retry_number > 3:
        raise StopRetry
    return retry_number / 2


def scaled_delay(retry_number: int, scale: float, limit: int) -> float:
    """A module-level retry function taking extra arguments, for ``(f, args)``."""
    if retry_number > limit:
        raise StopRetry
    return scale * retry_number


# -- TaskTiger's tables -------------------------------------------------------


def test_fixed_matches_tasktiger() -> None:
    """fixed(2, 3) gives 2, 2, 2 and stops at the fourth retry."""
    assert outcomes(fixed(2, 3), 5) == [2, 2, 2, "stop", "stop"]


def test_linear_matches_tasktiger() -> None:
    """linear(1, 2, 3) gives 1, 3, 5 and stops at the fourth retry."""
    assert outcomes(linear(1, 2, 3), 4) == [1, 3, 5, "stop"]


def test_exponential_matches_tasktiger() -> None:
    """exponential(1, 2, 4) gives 1, 2, 4, 8 and stops at the fifth retry."""
    assert outcomes(exponential(1, 2, 4), 5) == [1, 2, 4, 8, "stop"]


def test_fixed_60_3_allows_four_executions() -> None:
    """fixed(60, 3): the first run plus three retries, then the task goes to error."""
    policy = fixed(60, 3)
    executions = 1
    failures = 1
    while True:
        try:
            policy(failures)
        except StopRetry:
            break
        executions += 1
        failures += 1
    assert executions == 4


def test_delays_are_floats() -> None:
    """Policies return float seconds, and accept float arguments."""
    assert isinstance(fixed(2, 3)(1), float)
    assert linear(0.5, 0.25, 3)(3) == 1.0
    assert exponential(0.5, 1.5, 3)(3) == pytest.approx(1.125)
    assert fixed(1, 3.0).max_retries == 3


def test_zero_max_retries_never_retries() -> None:
    """max_retries=0 stops at the first failure."""
    with pytest.raises(StopRetry):
        fixed(1, 0)(1)


# -- properties -------------------------------------------------------------


@given(delay=delays, max_retries=counts, n=st.integers(1, 120))
def test_fixed_property(delay: float, max_retries: int, n: int) -> None:
    """fixed: the same delay up to max_retries, StopRetry after."""
    policy = fixed(delay, max_retries)
    if n <= max_retries:
        assert policy(n) == delay
    else:
        with pytest.raises(StopRetry):
            policy(n)


@given(
    delay=delays,
    increment=st.floats(min_value=0, max_value=1e4, allow_nan=False),
    max_retries=st.integers(2, 50),
    n=st.integers(1, 49),
)
def test_linear_property(delay: float, increment: float, max_retries: int, n: int) -> None:
    """linear: starts at delay and grows by increment per retry."""
    policy = linear(delay, increment, max_retries)
    assert policy(1) == delay
    if n < max_retries:
        assert policy(n + 1) - policy(n) == pytest.approx(increment, rel=1e-9, abs=1e-6)
    with pytest.raises(StopRetry):
        policy(max_retries + 1)


@given(
    delay=st.floats(min_value=0.001, max_value=1e4),
    factor=st.floats(min_value=0.1, max_value=10),
    max_retries=st.integers(2, 30),
    n=st.integers(1, 29),
)
def test_exponential_property(delay: float, factor: float, max_retries: int, n: int) -> None:
    """exponential: starts at delay and multiplies by factor per retry."""
    policy = exponential(delay, factor, max_retries)
    assert policy(1) == delay
    if n < max_retries:
        assert policy(n + 1) == pytest.approx(policy(n) * factor, rel=1e-9)
    with pytest.raises(StopRetry):
        policy(max_retries + 1)


@given(retry_policies())
def test_builtin_policies_round_trip_through_msgpack(policy: Any) -> None:
    """Any built-in policy serializes to msgpack and loads back equal, with equal answers."""
    spec = serialize_retry_method(policy)
    loaded = load_retry_method(msgpack.unpackb(msgpack.packb(spec)))
    assert loaded == policy
    assert hash(loaded) == hash(policy)
    assert outcomes(loaded, policy.max_retries + 2) == outcomes(policy, policy.max_retries + 2)


@given(retry_policies())
def test_strategy_policies_give_valid_delays(policy: Any) -> None:
    """The retry_policies() strategy only makes policies with finite, non-negative delays."""
    for n in range(1, policy.max_retries + 1):
        delay = policy(n)
        assert math.isfinite(delay)
        assert delay >= 0


# -- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: fixed(-1, 3), "delay"),
        (lambda: fixed(math.nan, 3), "delay"),
        (lambda: fixed(math.inf, 3), "delay"),
        (lambda: fixed(1, -1), "max_retries"),
        (lambda: fixed(1, math.inf), "max_retries"),
        (lambda: fixed(1, math.nan), "max_retries"),
        (lambda: fixed(1, 2.5), "max_retries"),
        (lambda: linear(-1, 1, 3), "delay"),
        (lambda: linear(1, math.nan, 3), "increment"),
        (lambda: linear(5, -3, 4), "increment"),
        (lambda: linear(1, 1, -2), "max_retries"),
        (lambda: exponential(-1, 2, 3), "delay"),
        (lambda: exponential(1, 0, 3), "factor"),
        (lambda: exponential(1, -2, 3), "factor"),
        (lambda: exponential(1, math.inf, 3), "factor"),
        (lambda: exponential(1, 10, 1000), "max_retries"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(make: Any, argument: str) -> None:
    """Bad policy arguments fail at construction with a ValueError naming the argument."""
    with pytest.raises(ValueError, match=argument):
        make()


def test_non_numbers_are_type_errors() -> None:
    """A string or a bool where seconds are expected is a TypeError."""
    with pytest.raises(TypeError, match="delay"):
        fixed("60", 3)
    with pytest.raises(TypeError, match="delay"):
        fixed(True, 3)


def test_linear_may_decrease_while_delays_stay_positive() -> None:
    """A negative increment is fine as long as no delay becomes negative."""
    assert outcomes(linear(5, -2, 3), 4) == [5, 3, 1, "stop"]


def test_exponential_with_zero_delay_never_overflows() -> None:
    """exponential(0, factor, n) is always 0, whatever the factor and n."""
    policy = exponential(0, 10, 5000)
    assert policy(5000) == 0.0


def test_retry_number_must_be_positive_int() -> None:
    """retry_number starts at 1; 0 or a non-integer is refused."""
    with pytest.raises(ValueError, match="starts at 1"):
        fixed(1, 3)(0)
    with pytest.raises(TypeError, match="retry_number"):
        fixed(1, 3)(1.5)  # type: ignore[arg-type]


def test_policies_are_frozen_hashable_values() -> None:
    """Policies compare by value, hash, and cannot be changed."""
    assert fixed(2, 3) == FixedRetry(2, 3)
    assert fixed(2, 3) == fixed(2.0, 3)
    assert fixed(2, 3) != fixed(2, 4)
    assert len({fixed(2, 3), fixed(2, 3), linear(2, 0, 3)}) == 2
    assert isinstance(linear(1, 1, 1), LinearRetry)
    assert isinstance(exponential(1, 2, 1), ExponentialRetry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fixed(2, 3).delay = 5  # type: ignore[misc]


# -- serialization ----------------------------------------------------------


def test_builtin_spec_shape() -> None:
    """A built-in policy is stored as [path of its class, [its arguments]]."""
    assert serialize_retry_method(fixed(2, 3)) == ["taskq_core.retry:FixedRetry", [2, 3]]
    assert serialize_retry_method(linear(1, 2, 3)) == ["taskq_core.retry:LinearRetry", [1, 2, 3]]


def test_plain_function_round_trip() -> None:
    """An importable function is stored by path and loads back as itself."""
    spec = serialize_retry_method(half_delay)
    assert spec == [f"{__name__}:half_delay", []]
    assert load_retry_method(spec) is half_delay


def test_function_with_args_round_trip() -> None:
    """(f, args) is stored as [path, args] and loads as a callable calling f(n, *args)."""
    spec = serialize_retry_method((scaled_delay, (10, 2)))
    assert spec == [f"{__name__}:scaled_delay", [10, 2]]
    loaded = load_retry_method(msgpack.unpackb(msgpack.packb(spec)))
    assert isinstance(loaded, BoundRetryMethod)
    assert outcomes(loaded, 3) == [10, 20, "stop"]
    assert loaded == load_retry_method(spec)
    assert serialize_retry_method(loaded) == spec


def test_load_accepts_values_that_are_loaded_already() -> None:
    """load_retry_method passes policies and functions through and binds (f, args)."""
    policy = fixed(2, 3)
    assert load_retry_method(policy) is policy
    assert load_retry_method(half_delay) is half_delay
    assert load_retry_method((scaled_delay, [10, 2])) == load_retry_method(
        [f"{__name__}:scaled_delay", [10, 2]]
    )
    with pytest.raises(ValueError, match="lambda"):
        load_retry_method((lambda n, x: x, [1]))


def test_serializing_a_spec_is_idempotent() -> None:
    """A spec given again is kept as it is (tuples become lists)."""
    spec = serialize_retry_method(fixed(2, 3))
    assert serialize_retry_method(spec) == spec
    assert serialize_retry_method(tuple(spec)) == spec


def test_lambda_is_refused_at_serialization() -> None:
    """A lambda cannot be imported by a worker, so it is refused with a reason."""
    with pytest.raises(ValueError, match="lambda"):
        serialize_retry_method(lambda n: 1.0)
    with pytest.raises(ValueError, match="lambda"):
        serialize_retry_method((lambda n, x: x, [1]))


def test_local_function_is_refused_at_serialization() -> None:
    """A function defined inside another function is refused, saying so."""

    def local(n: int) -> float:
        return 1.0

    with pytest.raises(ValueError, match="inside another function"):
        serialize_retry_method(local)


def test_main_function_is_refused_at_serialization() -> None:
    """A function from __main__ is refused: a worker imports a different __main__."""

    def from_script(n: int) -> float:
        return 1.0

    from_script.__module__ = "__main__"
    from_script.__qualname__ = "from_script"
    with pytest.raises(ValueError, match="__main__"):
        serialize_retry_method(from_script)


def test_unstorable_arguments_are_refused() -> None:
    """(f, args) whose args msgpack cannot store is a SerializationError at enqueue."""
    with pytest.raises(SerializationError, match="cannot be stored"):
        serialize_retry_method((scaled_delay, [dt.datetime(2020, 1, 1), 1]))


@pytest.mark.parametrize("bad", [None, 5, "", ("a", "b", "c"), (half_delay,)])
def test_malformed_methods_are_refused(bad: Any) -> None:
    """Things that are not a policy, a function or (f, args) are refused."""
    with pytest.raises((TypeError, ValueError)):
        serialize_retry_method(bad)


def test_load_unknown_path_raises_task_import_error() -> None:
    """A stored path that cannot be imported raises TaskImportError."""
    with pytest.raises(TaskImportError):
        load_retry_method(["no_such_module_here:policy", []])
    with pytest.raises(TaskImportError):
        load_retry_method(["taskq_core.retry:NoSuchPolicy", [1, 2]])


def test_load_malformed_spec_raises_type_error() -> None:
    """A stored value that is not [path, args] is a TypeError."""
    with pytest.raises(TypeError):
        load_retry_method([1, 2, 3])
    with pytest.raises(TypeError):
        load_retry_method([5, []])


def test_call_retry_method_accepts_policies_specs_and_tuples() -> None:
    """call_retry_method gives the delay from a policy, a spec, a function or (f, args)."""
    assert call_retry_method(fixed(2, 3), 1) == 2.0
    assert call_retry_method(["taskq_core.retry:LinearRetry", [1, 2, 3]], 3) == 5.0
    assert call_retry_method(half_delay, 3) == 1.5
    assert call_retry_method((scaled_delay, [3, 5]), 2) == 6.0
    with pytest.raises(StopRetry):
        call_retry_method(serialize_retry_method(fixed(2, 3)), 4)


def negative_delay(retry_number: int) -> float:
    """A broken retry function: a negative delay."""
    return -1.0


def test_call_retry_method_refuses_bad_delays() -> None:
    """A policy returning a negative delay makes call_retry_method raise ValueError."""
    with pytest.raises(ValueError, match=r"negative|>= 0"):
        call_retry_method(negative_delay, 1)
