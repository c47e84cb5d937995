"""Task functions shared by both queues in the benchmark (importable by workers)."""

from __future__ import annotations


def noop(i: int = 0) -> None:
    """Does nothing: the benchmark measures the queue, not the task."""
