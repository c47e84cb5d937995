"""A process of the SQLite multi-process tests (``python sqlite_proc.py ...``).

``consume PATH WORKER OWN GO``: wait for the file GO to exist, then until
this process has enqueued OWN tasks of its own and the queue is empty:
enqueue one of its own, pop up to three, heartbeat and finish them; print
the popped ids as JSON.

``enqueue PATH QUEUE ID GO``: wait for GO, enqueue one task, print ``ok``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.sqlite import SQLiteBroker
from taskq_core.states import State

Q = "many"


def _wait_for(go: Path) -> None:
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the go file never appeared")
        time.sleep(0.005)


def consume(path: str, worker: str, own: int, go: Path) -> None:
    broker = SQLiteBroker(path)
    _wait_for(go)
    popped: list[str] = []
    made = 0
    while True:
        if made < own:
            broker.enqueue(EnqueueRequest(f"{worker}-{made}", Q, b"own"))
            made += 1
        tasks = broker.pop(Q, 3, worker, 600)
        ids = [task.id for task in tasks]
        popped += ids
        if ids:
            assert broker.heartbeat(Q, ids, worker) == ids
        for task_id in ids:
            assert broker.finish(Q, task_id, worker, "done")
        if not ids and made >= own and broker.queue_sizes(Q)[State.QUEUED] == 0:
            break
    broker.close()
    print(json.dumps(popped))


def enqueue(path: str, queue: str, task_id: str, go: Path) -> None:
    broker = SQLiteBroker(path)
    _wait_for(go)
    broker.enqueue(EnqueueRequest(task_id, queue, b"one"))
    broker.close()
    print("ok")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "consume":
        consume(args[0], args[1], int(args[2]), Path(args[3]))
    elif command == "enqueue":
        enqueue(args[0], args[1], args[2], Path(args[3]))
    else:
        raise SystemExit(f"unknown command {command!r}")
