"""``taskq worker -c N`` as real processes against a real Redis: the
scenarios of :class:`worker_scenarios.ConcurrencyScenarios` (N tasks at once
with every executor, each in the process its executor says, and pool children
recycled)."""

from __future__ import annotations

from typing import Any

import pytest

from worker_scenarios import ConcurrencyScenarios

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class TestConcurrencyOnRedis(ConcurrencyScenarios):
    @pytest.fixture
    def broker_url(self, redis_url: str, redis_client: Any) -> str:
        return redis_url
