"""Batch queues whose pops mix functions and runner classes, with real
`taskq worker` processes on a SQLite file: the scenarios of
:class:`worker_scenarios.BatchScenarios` (every executor, one group at a
time and N at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker_scenarios import BatchScenarios

pytestmark = pytest.mark.slow


class TestBatchesOnSQLite(BatchScenarios):
    @pytest.fixture
    def broker_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'queue.db'}"
