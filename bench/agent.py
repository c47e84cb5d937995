"""One side of the benchmark, run in that system's own environment.

``python agent.py SYSTEM ACTION URL ARG [BATCH]`` with SYSTEM ``taskq`` or
``tasktiger`` and ACTION ``enqueue N`` (prints the seconds it took as JSON),
``enqueue_bulk N`` (taskq only: ``delay_many``) or ``work EXECUTOR`` (runs one
worker until the ``bench`` queue is empty; with BATCH > 1 the queue is in
``BATCH_QUEUES``, so a worker takes that many tasks at a time). TaskTiger
needs ``redis<5`` while taskq-redis needs ``redis>=5``, so the two never share
an environment.
"""

from __future__ import annotations

import json
import sys
import time

from bench_tasks import noop

QUEUE = "bench"


def taskq(action: str, url: str, arg: str, batch: int) -> float | None:
    from taskq_core import Task, TaskQ

    config = {"STATS_INTERVAL": 0, "BATCH_QUEUES": {QUEUE: batch}}
    tq = TaskQ(url, config=config, setup_structlog=True)
    if action == "work":  # fork, sync or pool
        tq.run_worker(queues=[QUEUE], executor=arg, burst=True)
        return None
    n = int(arg)
    started = time.perf_counter()
    if action == "enqueue":
        for i in range(n):
            tq.delay(noop, args=[i], queue=QUEUE)
    else:
        tasks = [Task(tq, noop, args=[i], queue=QUEUE) for i in range(n)]
        for start in range(0, n, 500):
            tq.delay_many(tasks[start : start + 500])
    return time.perf_counter() - started


def tasktiger(action: str, url: str, arg: str, batch: int) -> float | None:
    import redis
    from tasktiger import TaskTiger, Worker
    from tasktiger.executor import ForkExecutor, SyncExecutor

    tiger = TaskTiger(
        connection=redis.Redis.from_url(url, decode_responses=True),
        config={"STATS_INTERVAL": 0, "BATCH_QUEUES": {QUEUE: batch}},
        setup_structlog=True,  # its worker needs structlog configured this way
    )
    if action == "work":
        executor = {"fork": ForkExecutor, "sync": SyncExecutor}[arg]
        Worker(tiger, queues=[QUEUE], executor_class=executor).run(once=True)
        return None
    n = int(arg)
    started = time.perf_counter()
    for i in range(n):
        tiger.delay(noop, args=[i], queue=QUEUE)
    return time.perf_counter() - started


if __name__ == "__main__":
    system, action, url, arg = sys.argv[1:5]
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    seconds = {"taskq": taskq, "tasktiger": tasktiger}[system](action, url, arg, batch)
    print(json.dumps({"seconds": seconds}))
