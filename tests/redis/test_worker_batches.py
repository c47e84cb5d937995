"""Batch queues whose pops mix functions and runner classes, with real
`taskq worker` processes against a real Redis: the scenarios of
:class:`worker_scenarios.BatchScenarios` (every executor, one group at a
time and N at once)."""

from __future__ import annotations

from typing import Any

import pytest

from worker_scenarios import BatchScenarios

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class TestBatchesOnRedis(BatchScenarios):
    @pytest.fixture
    def broker_url(self, redis_url: str, redis_client: Any) -> str:
        return redis_url
