"""Fixtures of the Redis broker tests.

Every script call made by any test here is checked for cluster safety: all
of its KEYS must hash to one slot (computed in Python, as ``CLUSTER KEYSLOT``
does not work on a non-cluster server).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from redis.crc import key_slot

from taskq_redis._scripts import ScriptSet

#: every (script name, KEYS) a test ran, for tests that inspect them
ScriptLog = list[tuple[str, tuple[str, ...]]]


@pytest.fixture(autouse=True)
def script_log(monkeypatch: pytest.MonkeyPatch) -> ScriptLog:
    """Record every script call and fail at once if its KEYS span two slots."""
    log: ScriptLog = []
    original = ScriptSet.evalsha_args

    def checked(
        self: ScriptSet, name: str, keys: Sequence[str], args: Sequence[Any]
    ) -> tuple[Any, ...]:
        slots = {key_slot(key.encode("utf-8")) for key in keys}
        assert len(slots) <= 1, f"script {name} got keys of several slots: {keys}"
        log.append((name, tuple(keys)))
        return original(self, name, keys, args)

    monkeypatch.setattr(ScriptSet, "evalsha_args", checked)
    return log
