"""check_retry_policy: passes good policies, catches every kind of bad one."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from taskq_core.exceptions import StopRetry
from taskq_core.retry import FixedRetry, exponential, fixed, linear
from taskq_core.testing.policies import UNBOUNDED_SEARCH_LIMIT, check_retry_policy
from taskq_core.testing.strategies import queue_names, task_options

ROOT = Path(__file__).resolve().parents[2]

# -- policies used by the tests (module level, so that they are importable) ------


def capped_doubling(retry_number: int) -> float:
    """Good: 1, 2, 4... capped at 60 seconds, five retries."""
    if retry_number > 5:
        raise StopRetry
    return min(60.0, 2.0 ** (retry_number - 1))


def with_arguments(retry_number: int, base: float, limit: int) -> float:
    """Good, used as (with_arguments, [base, limit])."""
    if retry_number > limit:
        raise StopRetry
    return base * retry_number


def stops_after_seven(retry_number: int) -> int:
    """Good, with no max_retries attribute: stops at the eighth retry."""
    if retry_number > 7:
        raise StopRetry
    return 10


def negative(retry_number: int) -> float:
    """Bad: a negative delay from the third retry on."""
    if retry_number > 5:
        raise StopRetry
    return 3.0 - retry_number


def not_a_number(retry_number: int) -> float:
    """Bad: NaN."""
    if retry_number > 5:
        raise StopRetry
    return math.nan


def infinite(retry_number: int) -> float:
    """Bad: an infinite delay on the last retry."""
    if retry_number > 5:
        raise StopRetry
    return math.inf if retry_number == 5 else 1.0


def returns_text(retry_number: int) -> Any:
    """Bad: not a number."""
    if retry_number > 5:
        raise StopRetry
    return "soon"


_calls = itertools.count()


def changing(retry_number: int) -> float:
    """Bad: a different answer on each call for the same retry number."""
    if retry_number > 5:
        raise StopRetry
    return float(next(_calls) % 7)


def never_stops(retry_number: int) -> float:
    """Bad: always retries."""
    return 1.0


def stops_early(retry_number: int) -> float:
    """Bad when five retries are expected: stops at the third."""
    if retry_number > 2:
        raise StopRetry
    return 1.0


def raises_key_error(retry_number: int) -> float:
    """Bad: raises something other than StopRetry."""
    if retry_number == 2:
        raise KeyError("oops")
    if retry_number > 5:
        raise StopRetry
    return 1.0


_flaky_calls = {"count": 0}


def fails_once(retry_number: int) -> float:
    """Bad: returns a negative delay once, on its 40th call, and never again."""
    if retry_number > 50:
        raise StopRetry
    _flaky_calls["count"] += 1
    return -1.0 if _flaky_calls["count"] == 40 else 1.0


@dataclasses.dataclass(frozen=True)
class ScaledFixed(FixedRetry):
    """Bad when scaled: ``scale`` is state that is not stored with the task."""

    scale: float = dataclasses.field(default=1.0, init=False)

    def delay_for(self, retry_number: int) -> float:
        return self.delay * self.scale


def scaled(scale: float) -> ScaledFixed:
    """A ScaledFixed(5, 3) whose scale is set after construction."""
    policy = ScaledFixed(5, 3)
    object.__setattr__(policy, "scale", scale)
    return policy


# -- good policies ----------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [fixed(60, 3), linear(1, 2, 3), exponential(1, 2, 4), fixed(0, 0), exponential(0.5, 1.5, 30)],
    ids=repr,
)
def test_builtin_policies_pass(policy: Any) -> None:
    """The built-in policies pass, their max_retries read from the policy."""
    check_retry_policy(policy, derandomize=True)


def test_functions_and_tuples_pass() -> None:
    """Importable functions, (f, args) tuples and specs pass when well-behaved."""
    check_retry_policy(capped_doubling, max_retries=5, max_delay=60)
    check_retry_policy((with_arguments, [2.5, 4]), max_retries=4, max_delay=10)
    check_retry_policy(["taskq_core.retry:FixedRetry", [3, 2]], max_retries=2)


def test_unknown_max_retries_is_found() -> None:
    """Without max_retries, the first StopRetry found is taken as the bound."""
    check_retry_policy(stops_after_seven)
    with pytest.raises(AssertionError, match="stopped"):
        check_retry_policy(stops_after_seven, max_retries=8)


def test_scaled_policy_passes_unscaled() -> None:
    """A subclass of a built-in policy with default state passes."""
    check_retry_policy(scaled(1.0))


# -- bad policies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "kwargs", "message"),
    [
        (negative, {"max_retries": 5}, r"retry_number=\d: the delay -?\d\.0 is negative"),
        (not_a_number, {"max_retries": 5}, "NaN"),
        (infinite, {"max_retries": 5}, "retry_number=5: the delay is infinite"),
        (returns_text, {"max_retries": 5}, "not a number"),
        (changing, {"max_retries": 5}, "not deterministic"),
        (never_stops, {"max_retries": 3}, "still retries"),
        (stops_early, {"max_retries": 5}, r"stopped \(StopRetry\) before max_retries=5"),
        (fixed(100, 3), {"max_delay": 50}, "above max_delay=50"),
        (raises_key_error, {"max_retries": 5}, "KeyError.*retry_number=2"),
        (scaled(2.0), {}, "serialization round trip"),
    ],
    ids=lambda value: getattr(value, "__name__", None) or repr(value)[:30],
)
def test_bad_policies_fail(policy: Any, kwargs: dict[str, Any], message: str) -> None:
    """Each kind of bad policy raises AssertionError saying what is wrong."""
    with pytest.raises(AssertionError, match=message):
        check_retry_policy(policy, **kwargs)


def test_failure_that_does_not_repeat_is_reported_as_nondeterminism() -> None:
    """A policy that fails once and then passes on replay is called nondeterministic."""
    _flaky_calls["count"] = 0
    with pytest.raises(AssertionError, match="not deterministic"):
        check_retry_policy(fails_once, max_retries=50)


def test_policy_that_never_stops_without_a_bound_fails() -> None:
    """With no max_retries known, a policy must stop within the search limit."""
    with pytest.raises(AssertionError, match=f"1..{UNBOUNDED_SEARCH_LIMIT + 1}"):
        check_retry_policy(never_stops)


def test_unserializable_policies_fail() -> None:
    """A lambda or a local function fails: a worker could not import it."""

    def local(retry_number: int) -> float:
        return 1.0

    with pytest.raises(AssertionError, match="lambda"):
        check_retry_policy(lambda n: 1.0, max_retries=3)
    with pytest.raises(AssertionError, match="inside another function"):
        check_retry_policy(local, max_retries=3)


def test_falsifying_example_is_reported() -> None:
    """The failure names the retry number hypothesis found."""
    with pytest.raises(AssertionError) as info:
        check_retry_policy(fixed(100, 3), max_delay=50)
    assert re.search(r"retry_number=[123]\b", str(info.value))


def test_invalid_check_arguments() -> None:
    """Nonsense max_retries or max_delay is the caller's error (ValueError)."""
    with pytest.raises(ValueError, match="max_retries"):
        check_retry_policy(capped_doubling, max_retries=-1)
    with pytest.raises(ValueError, match="max_delay"):
        check_retry_policy(capped_doubling, max_retries=5, max_delay=math.nan)


# -- the user-facing example file -----------------------------------------------


@pytest.mark.slow
def test_documented_example_file_passes() -> None:
    """docs/examples/test_my_retry_policy.py runs green under pytest, as a user would run it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "docs/examples/test_my_retry_policy.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\d+ passed", result.stdout)


# -- the other strategies ---------------------------------------------------

QUEUE_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


@given(queue_names())
def test_queue_names_are_dotted_identifiers(name: str) -> None:
    """queue_names() gives lowercase dotted names with 1 to 3 parts."""
    assert QUEUE_NAME.fullmatch(name)
    assert 1 <= len(name.split(".")) <= 3


@given(task_options())
def test_task_options_are_valid(options: dict[str, Any]) -> None:
    """task_options() gives only known options with values in their ranges."""
    known = {"queue", "priority", "unique", "retry_method", "hard_timeout", "max_stored_executions"}
    assert set(options) <= known
    if "priority" in options:
        assert -1000 <= options["priority"] <= 1000
    if "hard_timeout" in options:
        assert 0 < options["hard_timeout"] <= 3600
    if "max_stored_executions" in options:
        assert options["max_stored_executions"] >= 0
    if "retry_method" in options:
        assert options["retry_method"].max_retries >= 0
