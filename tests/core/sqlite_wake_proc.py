"""A process of the SQLite wake-up tests (``python sqlite_wake_proc.py ...``).

``enqueue PATH QUEUE``: open the file, print ``ready``, then for each line
read from stdin enqueue a task in QUEUE (its id the line) and print ``ok``.

``wait PATH``: bind a wake-up socket (``check()``), print ``ready``, then
wait for activity until killed.

``bind PATH``: bind a wake-up socket, print ``ready`` and exit normally,
without closing the broker.
"""

from __future__ import annotations

import sys

from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.sqlite import SQLiteBroker


def enqueue(path: str, queue: str) -> None:
    broker = SQLiteBroker(path)
    broker.queue_sizes(queue)  # the file is open before the first task
    print("ready", flush=True)
    for line in sys.stdin:
        broker.enqueue(EnqueueRequest(line.strip(), queue, b"wake"))
        print("ok", flush=True)
    broker.close()


def _bound(path: str) -> SQLiteBroker:
    broker = SQLiteBroker(path, poll_interval=5.0)
    if broker.check():
        raise SystemExit(f"no wake-up socket: {broker.check()}")
    print("ready", flush=True)
    return broker


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "enqueue":
        enqueue(args[0], args[1])
    elif command == "wait":
        waiter = _bound(args[0])
        while True:
            waiter.wait_for_activity(60)
    elif command == "bind":
        kept = _bound(args[0])  # referenced until the interpreter exits
    else:
        raise SystemExit(f"unknown command {command!r}")
