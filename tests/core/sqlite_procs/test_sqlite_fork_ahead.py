"""The ``fork`` executor's child forked ahead of its task, on a SQLite file:
the scenarios of :class:`worker_scenarios.ForkAheadScenarios` (one child
per task group, no process left behind however the worker ends, a child that
died while waiting costs nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker_scenarios import ForkAheadScenarios

pytestmark = pytest.mark.slow


class TestForkAheadOnSQLite(ForkAheadScenarios):
    @pytest.fixture
    def broker_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'queue.db'}"
