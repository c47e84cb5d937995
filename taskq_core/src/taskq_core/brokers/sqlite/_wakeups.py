"""Wake-ups across processes: a datagram to every waiter of the file.

A broker that waits for activity binds a Unix datagram socket, named
``<pid>-<random>.sock``, in the directory ``<file>-wake`` beside the database
file (the file's real path, symlinks resolved, as SQLite places its ``-wal``
file). After a transaction that queued work commits, the broker sends one
byte, without blocking, to every socket there (its own included); a waiter
blocks on its socket, so it looks at the file as soon as the byte arrives.

Nothing depends on a byte arriving: a waiter still looks at the file every
``poll_interval``, so a lost wake-up (a full socket buffer, a sender that
cannot write the socket, a program that writes the file without taskq) only
delays the work by that much.

The sender keeps the directory's listing while the directory's modification
time is unchanged and the listing was taken well after it (:data:`_SETTLE`:
longer than the coarsest file-system clock), so an enqueue costs one
``stat`` and one ``sendto`` per waiter; a new socket is seen by the next
enqueue. A socket whose process died without removing it (``kill -9``)
refuses the byte; the sender removes it.

A waiter removes its socket on :meth:`Wakeups.close`, when the broker is
collected and at exit. A forked child closes its copy of the parent's socket
(the parent keeps it bound) and binds its own on its first wait.

Where that cannot be done, the waiter polls as before and
:attr:`Wakeups.unavailable` says why: no ``AF_UNIX`` (Windows), a directory
that cannot be created or written, or a socket path longer than the platform
allows (about 100 bytes: ``sun_path`` is 108 bytes on Linux, 104 on macOS).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
import weakref
from pathlib import Path

__all__ = ["Wakeups", "wake_directory"]

#: how the name of a waiter's socket ends (other names are left alone)
SUFFIX = ".sock"
#: a listing is reused only if taken this long (ns) after the directory's
#: last change: then any later change shows as a new modification time, even
#: on a file system whose clock ticks every 2 s
_SETTLE = 2_500_000_000
#: and never once it is this old (ns), should the clock be set back
_MAX_AGE = 10_000_000_000
#: every live Wakeups, for the fork hook
_LIVE: weakref.WeakSet[Wakeups] = weakref.WeakSet()


def wake_directory(path: Path) -> Path:
    """The directory of the waiters' sockets of the database file ``path``."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + "-wake")


def _remove(sock: socket.socket, address: str, owner: int) -> None:
    """Close a waiter's socket and, in the process that bound it, unlink it."""
    sock.close()
    if os.getpid() == owner:
        with contextlib.suppress(OSError):
            os.unlink(address)


class Wakeups:
    """The wake-ups of one broker: the socket it waits on, and the sending
    side that wakes every waiter of the file.

    :param path: the database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: where the waiters' sockets are
        self.directory = wake_directory(path)
        #: the last listing: (inode, mtime), when it was taken, the sockets
        self._listing: tuple[tuple[int, int], int, tuple[str, ...]] | None = None
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        #: guards the socket's creation and removal
        self._lock = threading.Lock()
        #: held by the one thread of this process that waits on the socket
        self._listening = threading.Lock()
        self._socket: socket.socket | None = None
        self._address: str | None = None
        self._finalizer: weakref.finalize[[socket.socket, str, int], Wakeups] | None = None
        self._sender: socket.socket | None = None
        self._sender_finalizer: weakref.finalize[[], Wakeups] | None = None
        #: no socket to send from could be made (until close())
        self._no_sender = False
        #: why this broker's waits poll (``None``: they have a socket, or
        #: have not tried yet)
        self.unavailable: str | None = None

    # -- the waiting side ------------------------------------------------------------
    def listen(self) -> bool:
        """Bind this process's socket if it has none; ``False`` when it
        cannot (:attr:`unavailable` says why): the waits poll."""
        self.after_fork()
        with self._lock:
            if self._socket is None and self.unavailable is None:
                self._bind()
            return self._socket is not None

    def _bind(self) -> None:
        if not hasattr(socket, "AF_UNIX"):
            self.unavailable = "this platform has no Unix sockets"
            return
        address = str(self.directory / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}")
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError as exc:
            self.unavailable = f"no Unix datagram socket: {exc}"
            return
        try:
            self.directory.mkdir(exist_ok=True)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            self.unavailable = f"cannot bind a socket in {self.directory}: {exc}"
            return
        with contextlib.suppress(OSError):  # whoever may write the file may wake us
            os.chmod(address, os.stat(self.path).st_mode & 0o777)
        self._socket, self._address = sock, address
        self._finalizer = weakref.finalize(self, _remove, sock, address, self._pid)

    def claim(self) -> bool:
        """Become the thread that waits on the socket (bound if needed);
        ``False`` if another thread is, or there is no socket: poll instead.
        A ``True`` is followed by :meth:`release`."""
        self.after_fork()
        if not self._listening.acquire(blocking=False):
            return False
        if self.listen():
            return True
        self._listening.release()
        return False

    def release(self) -> None:
        """Stop being the thread that waits on the socket."""
        self._listening.release()

    @property
    def bound(self) -> bool:
        """Whether this process has its socket (not closed meanwhile)."""
        return self._socket is not None and self._pid == os.getpid()

    def drain(self) -> None:
        """Read the bytes that arrived (how many does not matter)."""
        sock = self._socket
        if sock is None:
            return
        with contextlib.suppress(OSError):  # BlockingIOError: nothing more
            sock.settimeout(0)
            while True:
                sock.recv(64)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a byte (by the thread that
        claimed the socket); ``True`` if one came (or the socket was closed
        meanwhile: look again)."""
        sock = self._socket
        if sock is None:
            return True
        try:
            sock.settimeout(timeout)
            sock.recv(64)
        except (TimeoutError, BlockingIOError):
            return False
        except OSError:  # closed meanwhile
            return True
        self.drain()
        return True

    # -- the sending side ----------------------------------------------------------
    def notify(self) -> None:
        """Wake every waiter of the file, this process's own included; never blocks."""
        self.after_fork()
        sender = self._sender or self._open_sender()
        if sender is None:
            return
        addresses = self._addresses()
        own = self._address
        if own is not None and own not in addresses:
            addresses = (*addresses, own)
        for address in addresses:
            try:
                sender.sendto(b"!", address)
            except ConnectionRefusedError:  # its process died without removing it
                with contextlib.suppress(OSError):
                    os.unlink(address)
                self._listing = None
            except FileNotFoundError:  # removed since the listing
                self._listing = None
            except OSError:  # a full buffer: a wake-up is pending already; or not ours to write
                pass

    def _open_sender(self) -> socket.socket | None:
        """The socket this process sends from (``None``: none can be made,
        the waiters' polls will do)."""
        if self._no_sender or not hasattr(socket, "AF_UNIX"):
            return None
        with self._lock:
            if self._sender is None:
                try:
                    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                except OSError:  # no datagrams, or out of descriptors
                    self._no_sender = True
                    return None
                sender.setblocking(False)
                self._sender = sender
                self._sender_finalizer = weakref.finalize(self, sender.close)
            return self._sender

    def _addresses(self) -> tuple[str, ...]:
        """The sockets in the directory (the listing kept while it is current)."""
        try:
            found = os.stat(self.directory)
        except OSError:
            return ()
        key = (found.st_ino, found.st_mtime_ns)
        now = time.time_ns()
        listing = self._listing
        if listing is not None:
            seen, taken, addresses = listing
            if seen == key and taken - found.st_mtime_ns > _SETTLE and now - taken < _MAX_AGE:
                return addresses
        try:
            names = os.listdir(self.directory)
        except OSError:
            return ()
        where = str(self.directory)
        addresses = tuple(os.path.join(where, name) for name in names if name.endswith(SUFFIX))
        self._listing = (key, now, addresses)
        return addresses

    # -- lifecycle -------------------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: close the copy of the parent's socket (never
        unlinked: the parent keeps it) and start afresh."""
        if self._pid == os.getpid():
            return
        inherited = (self._socket, self._sender)
        finalizers = (self._finalizer, self._sender_finalizer)
        self._reset()
        for finalizer in finalizers:
            if finalizer is not None:
                finalizer.detach()
        for sock in inherited:
            if sock is not None:
                sock.close()

    def close(self) -> None:
        """Remove this process's socket (bound again on the next wait), close
        the one it sends from, and forget why a socket could not be made
        (tried again when next needed)."""
        self.after_fork()
        with self._lock:
            finalizers = (self._finalizer, self._sender_finalizer)
            self._socket = self._sender = None
            self._address = None
            self._finalizer = self._sender_finalizer = None
            self.unavailable = None
            self._no_sender = False
        for finalizer in finalizers:
            if finalizer is not None:
                finalizer()


def _after_fork_in_child() -> None:
    for wakeups in list(_LIVE):
        wakeups.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
