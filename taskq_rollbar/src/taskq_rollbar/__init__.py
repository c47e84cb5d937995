"""taskq-rollbar: the rollbar plugin for taskq."""

from __future__ import annotations

__all__: list[str] = []
