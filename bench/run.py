"""Benchmark taskq against TaskTiger in the same run, on the same private Redis.

For each system: enqueue N no-op tasks, then run one worker until the queue is
empty (fork and sync executors), and report tasks per second, the ratio
taskq/TaskTiger, Redis commands per task (from ``INFO commandstats``) and Redis
memory per queued task. Run with ``nox -s bench`` (``-- --tasks 2000`` to
change sizes). Results are printed as a table and written to
``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from redis_server import start_redis_server  # noqa: E402

QUEUE = "bench"

TASKQ_WORKER = """
import sys
from taskq_core import TaskQ
tq = TaskQ(sys.argv[1])
tq.run_worker(queues=["bench"], executor=sys.argv[2], burst=True)
"""

TIGER_WORKER = """
import sys, redis
from tasktiger import TaskTiger, Worker
from tasktiger.executor import ForkExecutor, SyncExecutor
conn = redis.Redis.from_url(sys.argv[1], decode_responses=True)
tiger = TaskTiger(connection=conn, config={"STATS_INTERVAL": 0})
executor = {"fork": ForkExecutor, "sync": SyncExecutor}[sys.argv[2]]
Worker(tiger, queues=["bench"], executor_class=executor).run(once=True)
"""


def command_count(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(
        int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config")
    )


def enqueue_taskq(url: str, n: int) -> None:
    from bench_tasks import noop

    from taskq_core import TaskQ

    tq = TaskQ(url)
    for i in range(n):
        tq.delay(noop, args=[i], queue=QUEUE)
    tq.broker.close()


def enqueue_tiger(url: str, n: int) -> None:
    from bench_tasks import noop
    from tasktiger import TaskTiger

    tiger = TaskTiger(connection=redis.Redis.from_url(url, decode_responses=True))
    for i in range(n):
        tiger.delay(noop, args=[i], queue=QUEUE)


def run_worker(script: str, url: str, executor: str) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", script, url, executor],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def measure(system: str, url: str, client: redis.Redis, n: int, executor: str) -> dict[str, Any]:
    client.flushall()
    client.config_resetstat()
    enqueue = enqueue_taskq if system == "taskq" else enqueue_tiger
    t0 = time.perf_counter()
    enqueue(url, n)
    enqueue_s = time.perf_counter() - t0
    enqueue_cmds = command_count(client)
    client.config_resetstat()
    work_s = run_worker(TASKQ_WORKER if system == "taskq" else TIGER_WORKER, url, executor)
    work_cmds = command_count(client)
    left = sum(
        client.zcard(k) for k in client.scan_iter(match="*queued*") if client.type(k) == b"zset"
    )
    return {
        "system": system,
        "executor": executor,
        "tasks": n,
        "enqueue_per_s": round(n / enqueue_s, 1),
        "enqueue_cmds_per_task": round(enqueue_cmds / n, 2),
        "work_per_s": round(n / work_s, 1),
        "work_cmds_per_task": round(work_cmds / n, 2),
        "left_queued": left,
    }


def memory_per_task(system: str, url: str, client: redis.Redis, n: int) -> float:
    client.flushall()
    before = int(client.info("memory")["used_memory"])
    (enqueue_taskq if system == "taskq" else enqueue_tiger)(url, n)
    after = int(client.info("memory")["used_memory"])
    return round((after - before) / n, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per sync run")
    parser.add_argument("--fork-tasks", type=int, default=300, help="tasks per fork run")
    parser.add_argument("--memory-tasks", type=int, default=10000)
    args = parser.parse_args()
    rows = []
    with start_redis_server() as server:
        client = redis.Redis.from_url(server.url)
        for executor, n in (("sync", args.tasks), ("fork", args.fork_tasks)):
            for system in ("tasktiger", "taskq"):
                rows.append(measure(system, server.url, client, n, executor))
        memory = {
            s: memory_per_task(s, server.url, client, args.memory_tasks)
            for s in ("tasktiger", "taskq")
        }
    print(
        f"{'system':<10} {'executor':<8} {'tasks':>6} {'enq/s':>9} {'enq cmd/task':>13} "
        f"{'work/s':>9} {'work cmd/task':>14}"
    )
    for row in rows:
        print(
            f"{row['system']:<10} {row['executor']:<8} {row['tasks']:>6} "
            f"{row['enqueue_per_s']:>9} {row['enqueue_cmds_per_task']:>13} "
            f"{row['work_per_s']:>9} {row['work_cmds_per_task']:>14}"
        )
    ratios = {}
    for executor in ("sync", "fork"):
        mine = next(r for r in rows if r["system"] == "taskq" and r["executor"] == executor)
        theirs = next(r for r in rows if r["system"] == "tasktiger" and r["executor"] == executor)
        ratios[executor] = {
            "enqueue_speedup": round(mine["enqueue_per_s"] / theirs["enqueue_per_s"], 2),
            "work_speedup": round(mine["work_per_s"] / theirs["work_per_s"], 2),
            "work_cmds_ratio": round(mine["work_cmds_per_task"] / theirs["work_cmds_per_task"], 2),
        }
        print(
            f"taskq/TaskTiger ({executor}): enqueue x{ratios[executor]['enqueue_speedup']}, "
            f"work x{ratios[executor]['work_speedup']}, "
            f"commands per task x{ratios[executor]['work_cmds_ratio']}"
        )
    print(
        f"Redis memory per queued task: taskq {memory['taskq']} B, "
        f"TaskTiger {memory['tasktiger']} B"
    )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps({"rows": rows, "ratios": ratios, "memory_per_task": memory}, indent=2)
    )


if __name__ == "__main__":
    main()
