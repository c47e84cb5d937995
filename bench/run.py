"""Benchmark taskq against TaskTiger in the same run, on the same private Redis.

For each system: enqueue N no-op tasks, then run one worker until the queue is
empty (sync and fork executors); report tasks per second, the taskq/TaskTiger
ratios, Redis commands per task (``INFO commandstats``) and Redis memory per
queued task. Each system runs in its own environment (``--tasktiger-python``),
because TaskTiger pins ``redis<5``. ``nox -s bench`` sets everything up;
results are printed and written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from redis_server import start_redis_server  # noqa: E402

IGNORED = {"cmdstat_info", "cmdstat_config", "cmdstat_flushall"}


def command_count(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in IGNORED)


class Agent:
    def __init__(self, system: str, python: str, url: str, label: str | None = None) -> None:
        self.system, self.python, self.url = system, python, url
        #: the name in the results (``taskq@base`` for a baseline build of taskq)
        self.label = label or system

    def __call__(self, action: str, arg: str, batch: int = 1) -> tuple[float, Any]:
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        started = time.perf_counter()
        out = subprocess.run(
            [self.python, str(HERE / "agent.py"), self.system, action, self.url, arg, str(batch)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        return elapsed, json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def measure(
    agent: Agent, client: redis.Redis, n: int, executor: str, batch: int = 1
) -> dict[str, Any]:
    client.flushall()
    client.config_resetstat()
    _, enqueue_s = agent("enqueue", str(n))
    enqueue_cmds = command_count(client)
    client.config_resetstat()
    work_s, _ = agent("work", executor, batch)
    work_cmds = command_count(client)
    left = client.dbsize()
    return {
        "system": agent.label,
        "executor": executor,
        "batch": batch,
        "tasks": n,
        "enqueue_per_s": round(n / enqueue_s, 1),
        "enqueue_cmds_per_task": round(enqueue_cmds / n, 2),
        "work_per_s": round(n / work_s, 1),
        "work_cmds_per_task": round(work_cmds / n, 2),
        "keys_left": left,
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median of repeated runs (rates are what varies)."""
    row = dict(runs[0])
    for key in ("enqueue_per_s", "work_per_s", "enqueue_cmds_per_task", "work_cmds_per_task"):
        row[key] = statistics.median(r[key] for r in runs)
    row["runs"] = len(runs)
    return row


def memory_per_task(agent: Agent, client: redis.Redis, n: int) -> float:
    client.flushall()
    before = int(client.info("memory")["used_memory"])
    agent("enqueue", str(n))
    after = int(client.info("memory")["used_memory"])
    return round((after - before) / n, 1)


def bulk(agent: Agent, client: redis.Redis, n: int) -> dict[str, Any]:
    client.flushall()
    client.config_resetstat()
    _, seconds = agent("enqueue_bulk", str(n))
    return {
        "enqueue_per_s": round(n / seconds, 1),
        "cmds_per_task": round(command_count(client) / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasktiger-python", required=True)
    parser.add_argument(
        "--baseline-python",
        help="a Python with another build of taskq installed (e.g. an earlier commit): "
        "measured in the same run, interleaved, as taskq@base",
    )
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per sync run")
    parser.add_argument("--fork-tasks", type=int, default=500, help="tasks per fork run")
    parser.add_argument("--memory-tasks", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--batch", type=int, default=50, help="BATCH_QUEUES size of the batch runs")
    args = parser.parse_args()
    rows = []
    with start_redis_server() as server:
        client = redis.Redis.from_url(server.url)
        agents = {
            "tasktiger": Agent("tasktiger", args.tasktiger_python, server.url),
            "taskq": Agent("taskq", sys.executable, server.url),
        }
        if args.baseline_python:
            agents["taskq@base"] = Agent("taskq", args.baseline_python, server.url, "taskq@base")
        scenarios = [
            ("sync", 1, args.tasks),
            ("fork", 1, args.fork_tasks),
            ("sync", args.batch, args.tasks),
            ("fork", args.batch, args.tasks),
        ]
        # taskq only: TaskTiger has no pool; compared with its fork executor below
        taskq_builds = [name for name in agents if name.startswith("taskq")]
        pool_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in taskq_builds}
        for _ in range(args.repeat):
            for name in taskq_builds:
                pool_runs[name].append(measure(agents[name], client, args.tasks, "pool"))
        rows.extend(median_row(r) for r in pool_runs.values())
        for executor, batch, n in scenarios:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in agents}
            for _ in range(args.repeat):  # interleaved, so load changes hit both alike
                for name, agent in agents.items():
                    runs[name].append(measure(agent, client, n, executor, batch))
            rows.extend(median_row(r) for r in runs.values())
        memory = {name: memory_per_task(a, client, args.memory_tasks) for name, a in agents.items()}
        bulk_row = bulk(agents["taskq"], client, args.tasks)
        server_version = client.info("server")["redis_version"]
    header = (
        f"{'system':<10} {'executor':<8} {'batch':>5} {'tasks':>6} {'enqueue/s':>10} "
        f"{'enq cmd/task':>13} {'worker tasks/s':>15} {'work cmd/task':>14}"
    )
    print(f"Redis {server_version}, Python {sys.version.split()[0]}")
    print(header)
    for row in rows:
        print(
            f"{row['system']:<10} {row['executor']:<8} {row['batch']:>5} {row['tasks']:>6} "
            f"{row['enqueue_per_s']:>10} {row['enqueue_cmds_per_task']:>13} "
            f"{row['work_per_s']:>15} {row['work_cmds_per_task']:>14}"
        )
    ratios = {}
    for executor, batch, _ in scenarios:
        mine, theirs = (
            next(
                r
                for r in rows
                if r["system"] == system and r["executor"] == executor and r["batch"] == batch
            )
            for system in ("taskq", "tasktiger")
        )
        name = f"{executor}, batch {batch}"
        ratios[name] = {
            "enqueue_speedup": round(mine["enqueue_per_s"] / theirs["enqueue_per_s"], 2),
            "work_speedup": round(mine["work_per_s"] / theirs["work_per_s"], 2),
            "work_cmds_ratio": round(mine["work_cmds_per_task"] / theirs["work_cmds_per_task"], 2),
        }
        r = ratios[name]
        print(
            f"taskq / TaskTiger ({name}): enqueue x{r['enqueue_speedup']}, "
            f"worker x{r['work_speedup']}, Redis commands per task x{r['work_cmds_ratio']}"
        )
    if "taskq@base" in agents:
        for executor, batch in [("pool", 1)] + [(e, b) for e, b, _ in scenarios]:
            now, base = (
                next(
                    r
                    for r in rows
                    if r["system"] == system and r["executor"] == executor and r["batch"] == batch
                )
                for system in ("taskq", "taskq@base")
            )
            change = round(now["work_per_s"] / base["work_per_s"], 2)
            ratios[f"taskq / taskq@base ({executor}, batch {batch})"] = {"work_speedup": change}
            print(
                f"taskq / taskq@base ({executor}, batch {batch}): worker x{change}, "
                f"Redis commands per task {now['work_cmds_per_task']} / "
                f"{base['work_cmds_per_task']}"
            )
    pool = next(r for r in rows if r["executor"] == "pool" and r["system"] == "taskq")
    tiger_fork = next(
        r
        for r in rows
        if r["system"] == "tasktiger" and r["executor"] == "fork" and r["batch"] == 1
    )
    ratios["pool vs TaskTiger fork"] = {
        "work_speedup": round(pool["work_per_s"] / tiger_fork["work_per_s"], 2)
    }
    print(
        f"taskq pool executor: {pool['work_per_s']} tasks/s, "
        f"x{ratios['pool vs TaskTiger fork']['work_speedup']} TaskTiger's fork executor"
    )
    print(
        f"taskq bulk enqueue (delay_many, 500 per call): {bulk_row['enqueue_per_s']} tasks/s, "
        f"{bulk_row['cmds_per_task']} commands per task"
    )
    print(
        f"Redis memory per queued task: taskq {memory['taskq']} B, "
        f"TaskTiger {memory['tasktiger']} B"
    )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "ratios": ratios,
                "memory_per_task": memory,
                "bulk": bulk_row,
                "redis_version": server_version,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
