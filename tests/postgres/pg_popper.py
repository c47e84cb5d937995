"""A process that pops one queue until it is empty (``python pg_popper.py URL
QUEUE OUT``), 1 to 3 tasks a pop, writing each popped id to ``OUT``. Once
connected it creates ``OUT.ready``; it starts popping when ``OUT.go``
appears (so all poppers start together), and gives up after 60 s without it."""

from __future__ import annotations

import os
import sys
import time

from taskq_postgres import PostgresBroker


def main(url: str, queue: str, out: str) -> None:
    broker = PostgresBroker(url)
    broker.time()  # connected before the start
    with open(out + ".ready", "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(out + ".go"):
        if time.monotonic() > deadline:
            raise SystemExit("never told to start")
        time.sleep(0.01)
    worker = f"popper-{os.getpid()}"
    with open(out, "w") as fh:
        while True:
            popped = broker.pop(queue, 1 + os.getpid() % 3, worker, 60)
            if not popped:
                break
            for task in popped:
                fh.write(task.id + "\n")
                broker.finish(queue, task.id, worker, "done")
    broker.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
