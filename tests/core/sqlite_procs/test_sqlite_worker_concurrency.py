"""``taskq worker -c N`` on a SQLite file: the scenarios of
:class:`worker_scenarios.ConcurrencyScenarios` (N tasks at once with every
executor, each in the process its executor says, and pool children
recycled)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker_scenarios import ConcurrencyScenarios

pytestmark = pytest.mark.slow


class TestConcurrencyOnSQLite(ConcurrencyScenarios):
    @pytest.fixture
    def broker_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'queue.db'}"
