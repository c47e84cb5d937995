"""Wake-ups of the SQLite broker across processes: a waiter is woken by a
commit of another process (or thread) long before its poll would have looked,
the sockets of dead waiters are removed by the next sender, a waiter removes
its own on close and at exit, a forked child waits on a socket of its own,
and where no socket can be bound the waiter polls as before.

The waiters here have a poll interval of 5 s and wait 2 s at most: a wait
that returns the queue before its end was woken (or found the work at its
first look, before it waited)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.sqlite import SQLiteBroker
from taskq_core.brokers.sqlite._wakeups import wake_directory

HERE = Path(__file__).resolve().parent
PROC = str(HERE / "sqlite_wake_proc.py")
Q = "wake"
#: longer than any wait of these tests: only a wake-up makes a wait return early
LONG_POLL = 5.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs Unix sockets and fork")


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, PROC, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != "ready\n":
        _, err = proc.communicate(timeout=60)
        pytest.fail(f"the process did not start: {line!r} {err}")


@contextmanager
def _enqueuer(path: Path, queue: str = Q) -> Iterator[Callable[[str], None]]:
    """Another process on the file: each call makes it enqueue one task in
    ``queue`` (without waiting for it to be done)."""
    proc = _start("enqueue", str(path), queue)
    _ready(proc)
    count = 0

    def enqueue(task_id: str) -> None:
        nonlocal count
        assert proc.stdin is not None
        proc.stdin.write(task_id + "\n")
        proc.stdin.flush()
        count += 1

    try:
        yield enqueue
    finally:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out == "ok\n" * count


def _sockets(path: Path) -> list[Path]:
    """The waiters' sockets of the file ``path``."""
    directory = wake_directory(path)
    return sorted(directory.glob("*.sock")) if directory.is_dir() else []


def _sockets_of(path: Path, pid: int) -> list[Path]:
    return [sock for sock in _sockets(path) if sock.name.startswith(f"{pid}-")]


def _waiter(path: Path) -> SQLiteBroker:
    """A broker with a long poll interval and its socket bound."""
    broker = SQLiteBroker(path, poll_interval=LONG_POLL)
    assert broker.check() == []
    return broker


def _enqueue(broker: SQLiteBroker, task_id: str, queue: str = Q) -> None:
    broker.enqueue(EnqueueRequest(task_id, queue, b"x"))


def _in_thread(broker: SQLiteBroker, task_id: str, queue: str = Q) -> threading.Thread:
    """Enqueue from a new thread (with a connection of its own)."""
    thread = threading.Thread(target=_enqueue, args=(broker, task_id, queue))
    thread.start()
    return thread


# -- woken -----------------------------------------------------------------------------
def test_a_waiter_is_woken_by_another_process_long_before_its_poll(tmp_path: Path) -> None:
    """Another process's enqueue wakes the waiter: each wait of 2 s (poll
    interval 5 s) returns the queue, and the socket is in ``<file>-wake``."""
    path = tmp_path / "queue.db"
    broker = _waiter(path)
    assert len(_sockets_of(path, os.getpid())) == 1
    assert wake_directory(path) == tmp_path / "queue.db-wake"
    with _enqueuer(path) as enqueue:
        for number in range(3):
            enqueue(f"t{number}")
            assert broker.wait_for_activity(2.0) == {Q}
    assert broker.wait_for_activity(0) == set()  # each announcement once
    broker.close()


def test_without_news_a_wait_on_the_socket_ends_at_its_timeout(tmp_path: Path) -> None:
    """A wait on the socket with nothing queued returns an empty set."""
    broker = _waiter(tmp_path / "queue.db")
    assert broker.wait_for_activity(0.05) == set()
    broker.close()


def test_a_commit_of_another_thread_wakes_the_thread_on_the_socket(tmp_path: Path) -> None:
    """The thread waiting on the socket is woken by a commit of another
    thread of its own process (the committing broker sends to its own socket)."""
    broker = _waiter(tmp_path / "queue.db")
    thread = _in_thread(broker, "t1", "local")
    assert broker.wait_for_activity(2.0) == {"local"}
    thread.join()
    broker.close()


def test_two_threads_waiting_on_one_broker(tmp_path: Path) -> None:
    """Two threads wait on one broker (one on its socket, the other on the
    process's condition): the queue another broker queued work in is
    reported to at least one of them, and nothing else to either."""
    path = tmp_path / "queue.db"
    broker = _waiter(path)
    results: list[set[str]] = []

    def wait() -> None:
        results.append(broker.wait_for_activity(2.0))

    waiters = [threading.Thread(target=wait) for _ in range(2)]
    for thread in waiters:
        thread.start()
    sender = SQLiteBroker(path)
    _in_thread(sender, "t1").join()
    for thread in waiters:
        thread.join()
    assert len(results) == 2
    assert {Q} in results
    assert all(result <= {Q} for result in results)
    sender.close()
    broker.close()


def test_a_file_named_through_a_symlink_shares_the_wake_ups(tmp_path: Path) -> None:
    """A broker that names the file through a symlink waits in the same
    directory as one that names it directly, and is woken by it."""
    real = tmp_path / "data" / "queue.db"
    real.parent.mkdir()
    alias = tmp_path / "alias.db"
    alias.symlink_to(real)
    waiter = _waiter(alias)
    assert wake_directory(alias) == wake_directory(real) == tmp_path / "data" / "queue.db-wake"
    sender = SQLiteBroker(real)
    thread = _in_thread(sender, "t1")
    assert waiter.wait_for_activity(2.0) == {Q}
    thread.join()
    sender.close()
    waiter.close()


def test_a_waiter_bound_after_the_senders_listing_is_woken(tmp_path: Path) -> None:
    """The sender keeps its listing of the directory only while the
    directory is unchanged: a waiter that binds after a sender's enqueue
    (even one whose listing had long settled) is woken by its next one."""
    path = tmp_path / "queue.db"
    first = _waiter(path)
    directory = wake_directory(path)
    stamp = directory.stat().st_mtime_ns - 60 * 10**9
    os.utime(directory, ns=(stamp, stamp))  # the listing will be long settled
    sender = SQLiteBroker(path)
    _enqueue(sender, "t1")  # lists the directory: one socket
    assert first.wait_for_activity(0) == {Q}
    second = _waiter(path)
    assert second.wait_for_activity(0) == set()
    thread = _in_thread(sender, "t2")
    assert second.wait_for_activity(2.0) == {Q}
    thread.join()
    for broker in (sender, first, second):
        broker.close()


def test_a_socket_gone_from_a_stale_listing_makes_the_sender_list_again(tmp_path: Path) -> None:
    """When the directory changed without its modification time showing it
    (set back here), the sender's kept listing names a socket that is gone;
    sending to it fails, so the sender lists again on its next enqueue and
    wakes the waiter its old listing did not know."""
    path = tmp_path / "queue.db"
    gone = _waiter(path)
    directory = wake_directory(path)
    stamp = directory.stat().st_mtime_ns - 60 * 10**9
    os.utime(directory, ns=(stamp, stamp))
    sender = SQLiteBroker(path)
    _enqueue(sender, "t1")  # lists: the socket of `gone`
    gone.close()
    waiter = _waiter(path)
    os.utime(directory, ns=(stamp, stamp))  # both changes hidden
    _enqueue(sender, "t2")  # the kept listing: the removed socket only
    assert waiter.wait_for_activity(0) == {Q}
    thread = _in_thread(sender, "t3")  # listed again
    assert waiter.wait_for_activity(2.0) == {Q}
    thread.join()
    sender.close()
    waiter.close()


def test_a_waiter_with_a_full_buffer_neither_blocks_nor_fails_the_sender(tmp_path: Path) -> None:
    """A waiter that does not read its socket (busy) lets bytes pile up to the
    buffer's limit; the sender's later enqueues still succeed, and the
    waiter's socket stays."""
    path = tmp_path / "queue.db"
    waiter = _waiter(path)
    sender = SQLiteBroker(path)
    for number in range(100):
        _enqueue(sender, f"t{number}")
    assert sender.queue_sizes(Q)["queued"] == 100
    assert waiter.wait_for_activity(0) == {Q}
    assert len(_sockets_of(path, os.getpid())) == 1
    sender.close()
    waiter.close()


# -- the sockets' lifetime ---------------------------------------------------------------
def test_the_socket_of_a_killed_waiter_is_removed_by_the_next_sender(tmp_path: Path) -> None:
    """A waiter killed with SIGKILL leaves its socket behind; the next
    enqueue finds it refusing and removes it, keeps the socket of a live
    waiter and leaves other files alone."""
    path = tmp_path / "queue.db"
    proc = _start("wait", str(path))
    _ready(proc)
    [dead] = _sockets_of(path, proc.pid)
    proc.kill()
    proc.communicate(timeout=60)
    assert dead.exists()  # nobody removed it
    live = _waiter(path)
    [alive] = _sockets_of(path, os.getpid())
    other = wake_directory(path) / "notes.txt"
    other.write_text("")
    sender = SQLiteBroker(path)
    _enqueue(sender, "t1")
    assert not dead.exists()
    assert alive.exists()
    assert other.exists()
    assert live.wait_for_activity(0) == {Q}
    sender.close()
    live.close()


def test_a_waiter_removes_its_socket_on_close_and_at_exit(tmp_path: Path) -> None:
    """close() removes the waiter's socket (with the file's permissions);
    the next wait binds a new one. A process that exits without closing its
    broker removes its socket too."""
    path = tmp_path / "queue.db"
    broker = _waiter(path)
    [first] = _sockets(path)
    assert stat.S_ISSOCK(first.stat().st_mode)
    assert stat.S_IMODE(first.stat().st_mode) == stat.S_IMODE(path.stat().st_mode)
    broker.close()
    assert _sockets(path) == []
    assert broker.wait_for_activity(0.01) == set()
    [second] = _sockets(path)
    assert second != first
    broker.close()
    proc = _start("bind", str(path))
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (0, "ready\n"), err
    assert _sockets(path) == []


def _fork_waiter(broker: SQLiteBroker) -> int:
    """Fork a child that binds its socket (``check()``), says so, and exits 0
    if a wait of 2 s returns the queue, after closing the broker; returns
    once the child's socket is bound."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(ready_read)
            if broker.check() == []:
                os.write(ready_write, b"!")
                if broker.wait_for_activity(2.0) == {Q}:
                    code = 0
            broker.close()
        finally:
            os._exit(code)
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"!"  # the child has bound its socket
    finally:
        os.close(ready_read)
    return pid


def test_a_forked_child_waits_on_a_socket_of_its_own(tmp_path: Path) -> None:
    """A child forked from a waiting broker closes its copy of the parent's
    socket and binds its own: another process's enqueue wakes both, and the
    child's close() removes only its own socket."""
    path = tmp_path / "queue.db"
    broker = _waiter(path)
    [parents] = _sockets(path)
    with _enqueuer(path) as enqueue:
        pid = _fork_waiter(broker)
        assert len(_sockets_of(path, pid)) == 1
        enqueue("t1")
        assert broker.wait_for_activity(2.0) == {Q}
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _sockets(path) == [parents]
    broker.close()


# -- no socket: polling ----------------------------------------------------------------------
def _blocked(tmp_path: Path, how: str) -> Path:
    """A database file whose waiters cannot bind a socket, ``how``."""
    if how == "a path too long for a socket":
        path = tmp_path / ("d" * 100) / "queue.db"
        path.parent.mkdir()
        return path
    path = tmp_path / "queue.db"
    if how == "a file in the way":
        wake_directory(path).write_text("")
    else:
        wake_directory(path).mkdir(mode=0o555)
    return path


BLOCKED = {
    "a file in the way": "exists",
    "a read-only directory": "Permission denied",
    "a path too long for a socket": "too long",
}


@pytest.mark.parametrize("how", list(BLOCKED))
def test_without_a_socket_a_waiter_polls_as_before(tmp_path: Path, how: str) -> None:
    """Where the waiter cannot bind its socket, check() says why and that it
    polls, waits still return the work of other processes (found by the
    poll), no socket is left, and the other process enqueues as usual."""
    if how == "a read-only directory" and os.geteuid() == 0:
        pytest.skip("root may write a read-only directory")
    path = _blocked(tmp_path, how)
    broker = SQLiteBroker(path)
    [warning] = broker.check()
    assert "cannot wake" in warning
    assert BLOCKED[how] in warning
    assert "polling" in warning
    seen: set[str] = set()
    with _enqueuer(path) as enqueue:
        enqueue("t1")
        for _ in range(30):
            seen |= broker.wait_for_activity(1.0)
            if Q in seen:
                break
    assert seen == {Q}
    assert _sockets(path) == []
    broker.close()
