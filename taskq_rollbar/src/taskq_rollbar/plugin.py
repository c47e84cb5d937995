"""Hook implementations of taskq-rollbar (registered by the `taskq` entry point)."""

from __future__ import annotations
