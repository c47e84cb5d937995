"""The background sender: never blocks, bounded, flushes within a limit."""

from __future__ import annotations

import functools
import threading
import time

from fake_rollbar import wait_for

from taskq_rollbar.sender import Sender


def test_runs_items_in_order_off_the_calling_thread() -> None:
    """Submitted items run in submission order, in another (daemon) thread."""
    sender = Sender()
    seen: list[tuple[int, bool]] = []

    def note(i: int) -> None:
        seen.append((i, threading.current_thread().daemon))

    for i in range(5):
        sender.submit(functools.partial(note, i))
    assert sender.flush(5)
    assert seen == [(i, True) for i in range(5)]
    assert sender.pending == 0


def test_submit_returns_at_once_and_flush_is_bounded() -> None:
    """A slow item does not hold up submit; flush gives up after its timeout."""
    release = threading.Event()
    sender = Sender()
    started = time.monotonic()
    assert sender.submit(lambda: release.wait(5))
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert sender.flush(0.2) is False
    assert 0.15 < time.monotonic() - started < 1.5
    assert sender.pending == 1
    release.set()
    assert sender.flush(5)


def test_too_many_pending_are_dropped_and_counted() -> None:
    """Past max_pending waiting items, new ones are refused and counted."""
    release = threading.Event()
    sender = Sender(max_pending=2)
    assert sender.submit(lambda: release.wait(5))
    wait_for(lambda: sender.pending == 1 and not sender._items, what="first item running")
    assert sender.submit(lambda: None)
    assert sender.submit(lambda: None)
    assert sender.submit(lambda: None) is False
    assert sender.dropped == 1
    release.set()
    assert sender.flush(5)


def test_errors_are_passed_on_and_the_thread_goes_on() -> None:
    """An item that raises is handed to on_error; later items still run."""
    errors: list[BaseException] = []
    done: list[int] = []
    sender = Sender(on_error=errors.append)

    def boom() -> None:
        raise RuntimeError("boom")

    sender.submit(boom)
    sender.submit(lambda: done.append(1))
    assert sender.flush(5)
    assert [str(e) for e in errors] == ["boom"]
    assert done == [1]


def test_thread_ends_when_idle_and_restarts() -> None:
    """The thread ends after idle_seconds without work and a new one starts on
    the next submit."""
    sender = Sender(idle_seconds=0.05)
    done: list[int] = []
    sender.submit(lambda: done.append(1))
    wait_for(lambda: sender._thread is None, what="thread ended")
    sender.submit(lambda: done.append(2))
    assert sender.flush(5)
    assert done == [1, 2]
