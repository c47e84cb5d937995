"""Real `taskq worker` processes on the private PostgreSQL server's test
database, emptied for each test: the scenarios of
:class:`worker_scenarios.BatchScenarios` (batch queues whose pops mix
functions and runner classes; every executor, one group at a time and N at
once)."""

from __future__ import annotations

import pytest

from worker_scenarios import BatchScenarios

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class TestBatchesOnPostgres(BatchScenarios):
    @pytest.fixture
    def broker_url(self, clean_url: str) -> str:
        return clean_url
