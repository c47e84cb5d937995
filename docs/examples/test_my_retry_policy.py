"""Property tests for the retry policies of an imaginary billing service.

This is how you would test your own retry policies: write the policy as a
module-level function (a worker imports it by name when a task fails), then
let ``check_retry_policy`` try it with many retry numbers. Run it with
``pytest test_my_retry_policy.py``.
"""

from __future__ import annotations

import pytest

from taskq_core.exceptions import StopRetry
from taskq_core.retry import exponential, fixed
from taskq_core.testing import check_retry_policy

#: The payment provider asks clients not to retry more often than this.
MAX_WAIT = 15 * 60


def payment_backoff(retry_number: int, first_wait: float = 30.0, retries: int = 6) -> float:
    """Wait 30 s, 60 s, 120 s... but never more than 15 minutes; give up after 6 retries."""
    if retry_number > retries:
        raise StopRetry(f"gave up after {retries} retries")
    return min(MAX_WAIT, first_wait * 2 ** (retry_number - 1))


def test_payment_backoff_is_well_behaved() -> None:
    """Our backoff stays within the provider's limit and stops after 6 retries."""
    check_retry_policy(payment_backoff, max_retries=6, max_delay=MAX_WAIT)


def test_payment_backoff_with_other_arguments() -> None:
    """Used as (payment_backoff, [5, 10]) for the refund queue: 10 retries from 5 s."""
    check_retry_policy((payment_backoff, [5, 10]), max_retries=10, max_delay=MAX_WAIT)


def test_the_policies_in_our_task_decorators() -> None:
    """The built-in policies we pass to @tq.task(retry_method=...) are fine too."""
    check_retry_policy(fixed(60, 3), max_delay=MAX_WAIT)
    check_retry_policy(exponential(10, 2, 6), max_delay=MAX_WAIT)


def test_a_too_aggressive_policy_is_caught() -> None:
    """exponential(60, 3, 6) waits 4860 s at retry 5, above the provider's limit."""
    with pytest.raises(AssertionError, match="above max_delay"):
        check_retry_policy(exponential(60, 3, 6), max_delay=MAX_WAIT)


def test_a_lambda_is_refused() -> None:
    """A lambda cannot be stored with a task: a worker could not import it."""
    with pytest.raises(AssertionError, match="lambda"):
        check_retry_policy(lambda retry_number: 30.0, max_retries=3)
