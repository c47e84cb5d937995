"""Hook implementations of taskq-flask (registered by the `taskq` entry point)."""

from __future__ import annotations
