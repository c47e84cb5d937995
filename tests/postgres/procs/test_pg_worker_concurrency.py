"""Real `taskq worker` processes on the private PostgreSQL server's test
database, emptied for each test: the scenarios of
:class:`worker_scenarios.ConcurrencyScenarios` (``-c N``: N tasks at once
with every executor, each in the process its executor says, and pool
children recycled)."""

from __future__ import annotations

import pytest

from worker_scenarios import ConcurrencyScenarios

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class TestConcurrencyOnPostgres(ConcurrencyScenarios):
    @pytest.fixture
    def broker_url(self, clean_url: str) -> str:
        return clean_url
