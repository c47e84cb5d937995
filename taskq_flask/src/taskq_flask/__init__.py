"""taskq-flask: the flask plugin for taskq."""

from __future__ import annotations

__all__: list[str] = []
