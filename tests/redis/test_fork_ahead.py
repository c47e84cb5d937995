"""The ``fork`` executor's child forked ahead of its task, against a real
Redis: the scenarios of :class:`worker_scenarios.ForkAheadScenarios` (one
child per task group, no process left behind however the worker ends, a
child that died while waiting costs nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from worker_scenarios import ForkAheadScenarios

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class TestForkAheadOnRedis(ForkAheadScenarios):
    @pytest.fixture
    def broker_url(self, redis_url: str, redis_client: Any) -> str:
        return redis_url
