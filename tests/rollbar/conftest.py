"""Fixtures of the Rollbar tests: a local Rollbar, and clean Rollbar state.

``rollbar`` keeps its configuration in module globals, and the plugin keeps
per-process state; both are put back after every test.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import rollbar

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from fake_rollbar import FakeRollbar  # noqa: E402

from taskq_rollbar import plugin  # noqa: E402

ROLLBAR_VARIABLES = ("ROLLBAR_ACCESS_TOKEN", "ROLLBAR_ENVIRONMENT", "ROLLBAR_ENDPOINT")


@pytest.fixture(autouse=True)
def clean_rollbar(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Rollbar variables from the environment; Rollbar and the plugin as
    new before and after the test."""
    for name in (*ROLLBAR_VARIABLES, "TASKQ_TEST_ROLLBAR"):
        monkeypatch.delenv(name, raising=False)
    saved = copy.deepcopy(rollbar.SETTINGS)
    rollbar._initialized = False
    plugin.reset_state()
    try:
        yield
    finally:
        plugin._state.sender.flush(5)
        rollbar.SETTINGS = saved
        rollbar._initialized = False
        plugin.reset_state()


@pytest.fixture
def fake_rollbar() -> Iterator[FakeRollbar]:
    """A local Rollbar API that records the items it receives."""
    server = FakeRollbar()
    try:
        yield server
    finally:
        server.stop()
