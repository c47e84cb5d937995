"""Module-level task functions for the API tests (importable)."""

from __future__ import annotations


def noop(*args: object, **kwargs: object) -> None:
    """Does nothing."""


def fail() -> None:
    raise ValueError("fails on purpose")
