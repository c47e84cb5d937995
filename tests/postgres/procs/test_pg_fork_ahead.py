"""Real `taskq worker` processes on the private PostgreSQL server's test
database, emptied for each test: the scenarios of
:class:`worker_scenarios.ForkAheadScenarios` (the fork executor's child
forked ahead: one child per task group, none left behind, a child that died
waiting costs nothing)."""

from __future__ import annotations

import pytest

from worker_scenarios import ForkAheadScenarios

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class TestForkAheadOnPostgres(ForkAheadScenarios):
    @pytest.fixture
    def broker_url(self, clean_url: str) -> str:
        return clean_url
