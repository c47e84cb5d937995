"""Benchmark taskq beside TaskTiger, Dramatiq, Huey and SAQ on Redis, and on each broker.

Every system runs one worker process, in an environment of its own (its
Python is given with ``--tasktiger-python``, ``--dramatiq-python``...), on the
same server, interleaved: each round runs every system and mode once, so a
change of load on the machine hits them all alike, and the median of the
rounds is reported. Two workloads: no-op tasks and tasks that sleep 20 ms
(``time.sleep``; ``asyncio.sleep`` for SAQ and taskq's ``asyncio``
executor). For each system and mode:

- tasks per second: N tasks are enqueued, then one worker runs them; each
  task appends (enqueued, started, finished) to a file (``bench_tasks``), and
  the rate is N over the time from the first start to the last finish (the
  worker's start-up is not counted, and the harness sends nothing to Redis
  meanwhile). taskq and TaskTiger run in burst mode; the others are sent
  SIGTERM once every task is recorded;
- the ratio to the best peer's fastest mode of the same workload, and for
  sleeping tasks the share of the ideal rate (concurrency x 50/s);
- Redis commands per task (``INFO commandstats``, enqueueing apart), server
  read events per task (``INFO stats`` ``total_reads_processed``: about one
  per request a client sends, pipelines included), and for taskq the round
  trips per task counted in the worker itself (every socket send of
  redis-py);
- latency from enqueue to start with an idle worker (p50/p99): tasks sent
  one at a time, each once the one before has run;
- the worker process's peak RSS (``VmHWM``/``VmRSS`` from ``/proc``, sampled),
  and its children's (taskq's fork and pool executors).

taskq modes whose executor or ``concurrency=`` the installed taskq does not
accept are found by a probe and shown as not available in this build. The
TaskTiger comparison of earlier runs stays (sync and fork, batch 1 and
``BATCH_QUEUES`` 50, pool against TaskTiger's fork, Redis memory per queued
task, bulk enqueue), and ``--baseline-python`` measures another build of
taskq in the same run as ``taskq@base``.

Then the brokers part (:mod:`brokers`; ``--brokers-only``, ``--no-brokers``):
taskq on Redis, SQLite and PostgreSQL, and Procrastinate beside taskq's
PostgreSQL broker on a private PostgreSQL server the run starts (enqueue
rates, drain rates at ``-c 1`` and ``-c 8``, idle latency). Results are
printed as Markdown tables and written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_tasks import RECORD, SLEEP_SECONDS  # noqa: E402
from brokers import print_brokers, run_brokers  # noqa: E402
from harness import Agent, Mode, Sampler, parse_result, read_records, stop  # noqa: E402

from redis_server import start_redis_server  # noqa: E402

IGNORED = {"cmdstat_info", "cmdstat_config", "cmdstat_flushall", "cmdstat_dbsize"}
PEERS = ("tasktiger", "dramatiq", "huey", "saq")
#: the modes of each peer: (executor, concurrency)
PEER_MODES = {
    "tasktiger": [("sync", 1), ("fork", 1)],
    "dramatiq": [("threads", 8)],
    "huey": [("threads", 8)],
    "saq": [("asyncio", 10), ("asyncio", 50)],
}
TASKQ_EXECUTORS = ("sync", "fork", "pool", "threads", "asyncio")
DEFAULT_CONCURRENCY = "sync=8,fork=8,pool=8,threads=50,asyncio=100"
WARMUP = 5  # latency samples dropped at the start


def command_count(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in IGNORED)


def reads_processed(client: redis.Redis) -> int:
    return int(client.info("stats")["total_reads_processed"])


# -- measurements ----------------------------------------------------------------


class Bench:
    def __init__(
        self, client: redis.Redis, agents: dict[str, Agent], args: argparse.Namespace, tmp: str
    ) -> None:
        self.client, self.agents, self.args = client, agents, args
        self.tmp = Path(tmp)  # the files tasks record in, and the workers' output

    def tasks_for(self, mode: Mode, workload: str) -> int:
        if workload == "sleep":
            return self.args.sleep_tasks if mode.concurrency > 1 else self.args.sleep_serial_tasks
        if mode.batch > 1:
            return self.args.batch_tasks
        if mode.executor == "fork" and mode.concurrency == 1:
            return self.args.fork_tasks
        return self.args.tasks

    def throughput(self, mode: Mode, workload: str) -> dict[str, Any]:
        agent, client, n = self.agents[mode.label], self.client, self.tasks_for(mode, workload)
        row: dict[str, Any] = {
            "system": mode.label,
            "executor": mode.executor,
            "concurrency": mode.concurrency,
            "batch": mode.batch,
            "workload": workload,
            "tasks": n,
            "load_average": round(os.getloadavg()[0], 2),  # the machine's, at the start
        }
        client.flushall()
        client.config_resetstat()
        try:
            enqueued = agent("enqueue", mode, workload, tasks=n, timeout=self.args.timeout)
        except subprocess.CalledProcessError as exc:
            return {**row, "status": "failed: could not enqueue", "log_tail": exc.stderr[-1500:]}
        except subprocess.TimeoutExpired:
            return {**row, "status": f"failed: enqueueing took over {self.args.timeout:g} s"}
        row["enqueue_per_s"] = round(n / enqueued["seconds"], 1)
        row["enqueue_cmds_per_task"] = round(command_count(client) / n, 2)
        record, log = self.tmp / "record.bin", self.tmp / "worker.log"
        record.write_bytes(b"")
        client.config_resetstat()
        spawned = time.time()
        proc = agent.spawn(mode, workload, record, log, burst=mode.burst)
        sampler = Sampler(proc.pid)
        deadline = time.monotonic() + self.args.timeout
        while record.stat().st_size < n * RECORD.size:
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            sampler.sample()
            time.sleep(0.02)
        if mode.burst:  # it stops by itself once the queue is empty
            while proc.poll() is None and time.monotonic() < deadline:
                sampler.sample()
                time.sleep(0.02)
        stop(proc, sampler)
        reads = reads_processed(client) - 1  # less the INFO just sent
        commands = command_count(client)
        records = read_records(record)
        output = log.read_text(errors="replace")
        row.update(
            rss_mib=round(sampler.peak_kib / 1024, 1),
            children_rss_mib=round(sampler.children_kib / 1024, 1),
        )
        if len(records) < n:
            timed_out = time.monotonic() > deadline
            why = (
                f"timeout after {self.args.timeout:g} s" if timed_out else f"exit {proc.returncode}"
            )
            row["status"] = f"failed: {len(records)} of {n} tasks ran ({why})"
            row["log_tail"] = output[-1500:]
            return row
        first_start = min(r[1] for r in records)
        last_end = max(r[2] for r in records)
        row.update(
            status="ok",
            per_s=round(n / (last_end - first_start), 1),
            startup_s=round(first_start - spawned, 3),
            cmds_per_task=round(commands / n, 2),
            reads_per_task=round(reads / n, 2),
            duplicates=len(records) - n,
        )
        if mode.is_taskq:
            result = parse_result(output)
            row["round_trips_per_task"] = round(result["round_trips"] / n, 2)
        return row

    def latency(self, mode: Mode) -> dict[str, Any]:
        """p50/p99 from enqueue to start, no-op tasks, one at a time, idle worker."""
        agent, n = self.agents[mode.label], self.args.latency_samples + WARMUP
        self.client.flushall()
        record, log = self.tmp / "latency.bin", self.tmp / "latency.log"
        record.write_bytes(b"")
        proc = agent.spawn(mode, "noop", record, log, burst=False)
        sampler = Sampler(proc.pid)
        try:
            agent(
                "latency",
                mode,
                "noop",
                tasks=n,
                record=record,
                gap=self.args.gap,
                timeout=self.args.timeout,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            stop(proc, sampler)
            return {"status": f"failed: {type(exc).__name__}", "log_tail": log.read_text()[-1500:]}
        sampler.sample()
        stop(proc, sampler)
        waits = sorted((r[1] - r[0]) * 1000 for r in read_records(record)[WARMUP:])
        return {
            "status": "ok",
            "samples": len(waits),
            "p50_ms": round(statistics.median(waits), 2),
            "p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 2),
            "idle_rss_mib": round(sampler.peak_kib / 1024, 1),
        }

    def memory_per_task(self, agent: Agent) -> float:
        self.client.flushall()
        before = int(self.client.info("memory")["used_memory"])
        mode = Mode(agent.label, "sync", 1)
        agent("enqueue", mode, "noop", tasks=self.args.memory_tasks, timeout=self.args.timeout)
        after = int(self.client.info("memory")["used_memory"])
        return round((after - before) / self.args.memory_tasks, 1)

    def bulk(self) -> dict[str, Any]:
        self.client.flushall()
        self.client.config_resetstat()
        n = self.args.tasks
        result = self.agents["taskq"]("enqueue_bulk", Mode("taskq", "sync", 1), tasks=n)
        return {
            "enqueue_per_s": round(n / result["seconds"], 1),
            "cmds_per_task": round(command_count(self.client) / n, 2),
        }


NUMERIC = (
    "enqueue_per_s",
    "enqueue_cmds_per_task",
    "per_s",
    "startup_s",
    "cmds_per_task",
    "reads_per_task",
    "round_trips_per_task",
    "rss_mib",
    "children_rss_mib",
    "load_average",
)


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median of the rounds that succeeded (all rounds, if none did)."""
    ok = [r for r in runs if r.get("status") == "ok"] or runs
    row = dict(ok[-1])
    for key in NUMERIC:
        values = [r[key] for r in ok if key in r]
        if values:
            row[key] = round(statistics.median(values), 2)
    row["runs"] = len(ok)
    if len(ok) < len(runs):
        row["failed_runs"] = [r["status"] for r in runs if r.get("status") != "ok"]
    return row


def parse_concurrency(text: str) -> dict[str, int]:
    pairs = (item.split("=") for item in text.split(",") if item)
    return {executor: int(n) for executor, n in pairs}


def matrix(agents: dict[str, Agent], concurrency: dict[str, int]) -> list[Mode]:
    """Every taskq build with each executor at -c 1 and -c N, then the peers' modes."""
    modes: list[Mode] = []
    for label in (k for k in agents if k.startswith("taskq")):
        for executor in TASKQ_EXECUTORS:
            for n in sorted({1, concurrency.get(executor, 1)}):
                modes.append(Mode(label, executor, n))
    for peer in PEERS:
        if peer in agents:
            modes += [Mode(peer, e, n) for e, n in PEER_MODES[peer]]
    return modes


def probe(agents: dict[str, Agent], modes: list[Mode], timeout: float) -> dict[str, str]:
    """The taskq modes the installed build does not run, each with the reason
    (found by trying them, on an empty queue: an executor or ``concurrency=``
    it does not know is refused)."""
    unavailable: dict[str, str] = {}
    for label in (k for k in agents if k.startswith("taskq")):
        keys = [m.probe_key for m in modes if m.label == label]
        probed = agents[label]("probe", modes=",".join(keys), timeout=timeout)["modes"]
        for mode in modes:
            if mode.label == label and probed.get(mode.probe_key):
                unavailable[mode.name] = probed[mode.probe_key]
    return unavailable


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for peer in PEERS:
        parser.add_argument(f"--{peer}-python", help=f"a Python with {peer} installed")
    parser.add_argument(
        "--procrastinate-python", help="a Python with Procrastinate installed (brokers part)"
    )
    parser.add_argument(
        "--taskq-postgres-python",
        help="a Python with taskq-postgres installed (brokers part; default: this one)",
    )
    parser.add_argument(
        "--baseline-python",
        help="a Python with another build of taskq installed (e.g. an earlier commit): "
        "measured in the same run, interleaved, as taskq@base",
    )
    parser.add_argument("--tasks", type=int, default=2000, help="no-op tasks per run")
    parser.add_argument("--fork-tasks", type=int, default=500, help="no-op tasks per fork -c 1 run")
    parser.add_argument(
        "--batch-tasks", type=int, default=5000, help="no-op tasks per BATCH_QUEUES run"
    )
    parser.add_argument("--sleep-tasks", type=int, default=1000, help="20 ms tasks per run, -c N")
    parser.add_argument(
        "--sleep-serial-tasks", type=int, default=200, help="20 ms tasks per run, -c 1"
    )
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument(
        "--gap", type=float, default=0.02, help="idle seconds between latency samples"
    )
    parser.add_argument("--memory-tasks", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of no-op runs (median)")
    parser.add_argument("--sleep-repeat", type=int, default=2, help="rounds of 20 ms runs (median)")
    parser.add_argument("--batch", type=int, default=50, help="BATCH_QUEUES size of the batch runs")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per run at most")
    parser.add_argument(
        "--concurrency",
        default=DEFAULT_CONCURRENCY,
        help=f"N per taskq executor ({DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--systems",
        default="",
        help="only these (comma-separated labels: tasktiger, huey...; and for the brokers "
        "part taskq-redis, taskq-sqlite, taskq-postgres, procrastinate, else all four)",
    )
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument(
        "--broker-tasks", type=int, default=1000, help="no-op tasks per run, brokers part"
    )
    parser.add_argument(
        "--broker-repeat", type=int, default=2, help="rounds of the brokers part (median)"
    )
    parser.add_argument(
        "--broker-latency-samples", type=int, default=200, help="latency samples, brokers part"
    )
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument(
        "--brokers-only", action="store_true", help="only the brokers part (brokers.py)"
    )
    parts.add_argument("--no-brokers", action="store_true", help="without the brokers part")
    args = parser.parse_args()
    if not args.brokers_only and not args.tasktiger_python:
        parser.error("--tasktiger-python is needed (or --brokers-only)")
    began, load_before = time.monotonic(), os.getloadavg()
    pythons = {
        "taskq-redis": sys.executable,
        "taskq-sqlite": sys.executable,
        "taskq-postgres": args.taskq_postgres_python or sys.executable,
        "procrastinate": args.procrastinate_python,
    }
    report: dict[str, Any] = {}
    with (
        start_redis_server() as server,
        tempfile.TemporaryDirectory(prefix="taskq-bench-") as tmp,
    ):
        client = redis.Redis.from_url(server.url)
        if not args.brokers_only:
            report.update(run_peers(args, server.url, client, tmp, began))
        if not args.no_brokers:
            report["brokers"] = run_brokers(args, client, server.url, Path(tmp), pythons, began)
        report["redis_version"] = client.info("server")["redis_version"]
    report.update(
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        seconds=round(time.monotonic() - began),
        options={k: v for k, v in vars(args).items() if not k.endswith("_python")},
    )
    if not args.brokers_only:
        print_report(report, report["memory_per_task"], report["bulk"])
    if "brokers" in report:
        print_brokers(report["brokers"])
    before, after = (
        ", ".join(f"{x:.2f}" for x in report[key])
        for key in ("load_average_before", "load_average_after")
    )
    print(f"\n{report['seconds']} s in all; load average before: {before}, after: {after}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")


def run_peers(
    args: argparse.Namespace, url: str, client: redis.Redis, tmp: str, began: float
) -> dict[str, Any]:
    """taskq's executors beside the peers on Redis: the report's main tables."""
    concurrency = parse_concurrency(args.concurrency)
    only = set(filter(None, args.systems.split(",")))
    agents = {"taskq": Agent("taskq", sys.executable, url)}
    if args.baseline_python:
        agents["taskq@base"] = Agent("taskq", args.baseline_python, url, "taskq@base")
    for peer in PEERS:
        python = getattr(args, f"{peer}_python")
        if python:
            agents[peer] = Agent(peer, python, url)
    if only:
        agents = {k: v for k, v in agents.items() if k in only or k == "taskq"}
    versions = {label: agent("versions") for label, agent in agents.items()}
    for result in versions.values():
        result.pop("seconds", None)
    modes = matrix(agents, concurrency)
    unavailable = probe(agents, modes, args.timeout)
    client.flushall()
    runnable = [m for m in modes if m.name not in unavailable]
    batch_modes = []
    if "tasktiger" in agents:
        batch_modes = [
            Mode(label, e, 1, args.batch)
            for label in agents
            if label.startswith("taskq") or label == "tasktiger"
            for e in ("sync", "fork")
        ]
    bench = Bench(client, agents, args, tmp)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for workload, rounds, mode_list in (
        ("noop", args.repeat, runnable + batch_modes),
        ("sleep", args.sleep_repeat, runnable),
    ):
        for round_no in range(rounds):  # interleaved: each round runs every mode once
            for mode in mode_list:
                done = runs.setdefault((mode.name, workload), [])
                if any(r["status"] != "ok" for r in done):
                    continue  # failed once: not again, so the run stays bounded
                row = bench.throughput(mode, workload)
                done.append(row)
                print(
                    f"[{time.monotonic() - began:6.0f} s] {workload} round {round_no + 1}: "
                    f"{mode.name}: {row.get('per_s', row['status'])}",
                    file=sys.stderr,
                    flush=True,
                )
    latency: dict[str, dict[str, Any]] = {}
    if not args.no_latency:
        for mode in runnable:
            if runs[(mode.name, "noop")][-1]["status"] != "ok":
                continue
            latency[mode.name] = bench.latency(mode)
            print(f"latency {mode.name}: {latency[mode.name]}", file=sys.stderr, flush=True)
    memory = {label: bench.memory_per_task(agent) for label, agent in agents.items()}
    bulk_row = bench.bulk()
    rows = {key: median_row(r) for key, r in runs.items()}
    report = build_report(modes, batch_modes, rows, unavailable, latency, args)
    report.update(memory_per_task=memory, bulk=bulk_row, versions=versions)
    return report


def build_report(
    modes: list[Mode],
    batch_modes: list[Mode],
    rows: dict[tuple[str, str], dict[str, Any]],
    unavailable: dict[str, str],
    latency: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The rows of each workload in matrix order, with ratios; the comparisons."""
    table: dict[str, list[dict[str, Any]]] = {}
    best_peer: dict[str, dict[str, Any]] = {}
    for workload in ("noop", "sleep"):
        peers = [
            r
            for (_, w), r in rows.items()
            if w == workload
            and not r["system"].startswith("taskq")
            and r["status"] == "ok"
            and r["batch"] == 1
        ]
        best = max(peers, key=lambda r: r["per_s"]) if peers else None
        if best:
            best_peer[workload] = {
                "mode": f"{best['system']} {best['executor']} -c {best['concurrency']}",
                "per_s": best["per_s"],
            }
        entries = []
        for mode in modes + (batch_modes if workload == "noop" else []):
            if mode.name in unavailable:
                entries.append(
                    {
                        "mode": mode.name,
                        "system": mode.label,
                        "executor": mode.executor,
                        "concurrency": mode.concurrency,
                        "batch": mode.batch,
                        "workload": workload,
                        "status": f"not available in this build ({unavailable[mode.name]})",
                    }
                )
                continue
            row = dict(rows[(mode.name, workload)], mode=mode.name)
            if row["status"] == "ok":
                if best:
                    row["x_best_peer"] = round(row["per_s"] / best["per_s"], 2)
                if workload == "sleep":
                    ideal = mode.concurrency / SLEEP_SECONDS
                    row["pct_of_ideal"] = round(100 * row["per_s"] / ideal, 1)
            if workload == "noop" and mode.name in latency:
                row["latency"] = latency[mode.name]
            entries.append(row)
        table[workload] = entries
    ratios: dict[str, Any] = {}

    def find(
        system: str, executor: str, concurrency: int = 1, batch: int = 1, workload: str = "noop"
    ) -> Any:
        for entry in table[workload]:
            if (entry["system"], entry["executor"], entry["concurrency"], entry["batch"]) == (
                system,
                executor,
                concurrency,
                batch,
            ) and entry.get("status") == "ok":
                return entry
        return None

    for executor, batch in (("sync", 1), ("fork", 1), ("sync", args.batch), ("fork", args.batch)):
        mine, theirs = (
            find("taskq", executor, batch=batch),
            find("tasktiger", executor, batch=batch),
        )
        if mine and theirs:
            ratios[f"taskq / TaskTiger ({executor}, batch {batch})"] = {
                "enqueue_speedup": round(mine["enqueue_per_s"] / theirs["enqueue_per_s"], 2),
                "work_speedup": round(mine["per_s"] / theirs["per_s"], 2),
                "work_cmds_ratio": round(mine["cmds_per_task"] / theirs["cmds_per_task"], 2),
            }
    pool, tiger_fork = find("taskq", "pool"), find("tasktiger", "fork")
    if pool and tiger_fork:
        ratios["pool vs TaskTiger fork"] = {
            "work_speedup": round(pool["per_s"] / tiger_fork["per_s"], 2)
        }
    for workload in ("noop", "sleep"):
        for entry in table[workload]:
            if entry["system"] != "taskq@base" or entry.get("status") != "ok":
                continue
            now = find("taskq", entry["executor"], entry["concurrency"], entry["batch"], workload)
            if now:
                name = (
                    f"taskq / taskq@base ({workload}, {entry['executor']} -c {entry['concurrency']}"
                )
                name += f", batch {entry['batch']})" if entry["batch"] > 1 else ")"
                ratios[name] = {"work_speedup": round(now["per_s"] / entry["per_s"], 2)}
    return {
        "table": table,
        "best_peer": best_peer,
        "ratios": ratios,
        "targets": targets(table, find, best_peer),
        "unavailable": unavailable,
    }


def targets(
    table: dict[str, list[dict[str, Any]]], find: Any, best_peer: dict[str, Any]
) -> list[str]:
    """The figures the concurrency issue sets targets for, as measured."""
    na = "n/a (not measured)"

    def ok(entry: Any) -> Any:
        return entry if entry and entry.get("status", "ok") == "ok" else None

    def ratio(a: Any, b: Any) -> str:
        return f"x{a['per_s'] / b['per_s']:.2f}" if ok(a) and ok(b) else na

    def top(workload: str, executor: str) -> Any:
        entries = [
            e
            for e in table[workload]
            if e["system"] == "taskq" and e["executor"] == executor and e["batch"] == 1
        ]
        return max(entries, key=lambda e: e["concurrency"]) if entries else None

    lines: list[str] = []
    peers = [e for e in table["sleep"] if not e["system"].startswith("taskq") and ok(e)]
    widest = max(peers, key=lambda e: (e["concurrency"], e["per_s"])) if peers else None
    mine = top("sleep", "asyncio")
    if mine and widest:
        lines.append(
            f"20 ms, asyncio -c {mine['concurrency']} / {widest['mode']}: "
            f"{ratio(mine, widest)} (target x1.5)"
        )
    for executor in ("threads", "pool"):
        mine = top("sleep", executor)
        if mine:
            share = f"{mine['pct_of_ideal']} %" if "pct_of_ideal" in mine else na
            lines.append(f"20 ms, {executor} -c {mine['concurrency']}: {share} of the ideal (80 %)")
    noop = [e for e in table["noop"] if e["system"] == "taskq" and ok(e) and e["batch"] == 1]
    fastest = max(noop, key=lambda e: e["per_s"]) if noop else None
    if fastest and "noop" in best_peer:
        lines.append(
            f"no-op, fastest taskq mode ({fastest['mode']}) / best peer "
            f"({best_peer['noop']['mode']}): {ratio(fastest, best_peer['noop'])} (target x1.5)"
        )
    tiger_fork, tiger_sync = find("tasktiger", "fork"), find("tasktiger", "sync")
    widest_fork = top("noop", "fork")
    for mine, theirs, target in (
        (find("taskq", "fork"), tiger_fork, 2),
        (widest_fork if widest_fork and widest_fork["concurrency"] > 1 else None, tiger_fork, 2),
        (find("taskq", "sync"), tiger_sync, 2.5),
    ):
        if mine and theirs:
            lines.append(
                f"no-op, {mine['mode']} / TaskTiger {theirs['executor']}: "
                f"{ratio(mine, theirs)} (target x{target})"
            )
    plain = find("taskq", "sync")
    if plain:
        lines.append(
            f"no-op, taskq sync -c 1: {plain['cmds_per_task']} Redis commands and "
            f"{plain.get('round_trips_per_task')} round trips per task (12, stretch 8; 1.1)"
        )
        if tiger_sync:
            lines.append(
                f"worker RSS, sync -c 1: taskq {plain['rss_mib']} MiB, "
                f"TaskTiger {tiger_sync['rss_mib']} MiB (target: not above TaskTiger)"
            )
        latency = plain.get("latency", {})
        huey = find("huey", "threads", 8)
        if latency.get("status") == "ok":
            huey_p50 = huey.get("latency", {}).get("p50_ms") if huey else None
            huey_text = f"{huey_p50} ms" if huey_p50 is not None else "not measured"
            lines.append(
                f"latency, sync -c 1: p50 {latency['p50_ms']} ms (target: Huey's, {huey_text}), "
                f"p99 {latency['p99_ms']} ms (target 5 ms)"
            )
    return lines


def _cell(value: Any, suffix: str = "") -> str:
    return "—" if value is None else f"{value}{suffix}"


def print_report(
    report: dict[str, Any], memory: dict[str, float], bulk_row: dict[str, Any]
) -> None:
    print(f"Redis {report['redis_version']}, Python {report['python']}, {report['cpus']} CPUs")
    for system, found in report["versions"].items():
        rss = found.get("redis_py_rss_mib")
        alone = f"; a process that imports only redis-py: {rss} MiB" if rss else ""
        print(f"  {system} {found['version']} (redis-py {found['redis_py']}{alone})")
    for workload, title in (
        ("noop", "No-op tasks"),
        ("sleep", f"Tasks that sleep {SLEEP_SECONDS * 1000:g} ms"),
    ):
        best = report["best_peer"].get(workload)
        print()
        print(
            f"{title}" + (f" (best peer: {best['mode']}, {best['per_s']} tasks/s)" if best else "")
        )
        print()
        if workload == "noop":
            header = (
                "system / mode",
                "tasks/s",
                "x best peer",
                "cmds/task",
                "round trips/task",
                "Redis reads/task",
                "latency p50 / p99 ms",
                "RSS MiB (children)",
            )
        else:
            header = (
                "system / mode",
                "tasks/s",
                "x best peer",
                "% of ideal",
                "cmds/task",
                "round trips/task",
                "RSS MiB (children)",
            )
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for entry in report["table"][workload]:
            if entry.get("status") != "ok":
                print(f"| {entry['mode']} | {entry['status']} |" + " |" * (len(header) - 2))
                continue
            rss = f"{entry['rss_mib']}" + (
                f" ({entry['children_rss_mib']})" if entry["children_rss_mib"] else ""
            )
            cells = [entry["mode"], entry["per_s"], _cell(entry.get("x_best_peer"), "")]
            if workload == "noop":
                lat = entry.get("latency", {})
                lat_cell = (
                    f"{lat['p50_ms']} / {lat['p99_ms']}" if lat.get("status") == "ok" else "—"
                )
                cells += [
                    entry["cmds_per_task"],
                    _cell(entry.get("round_trips_per_task")),
                    entry["reads_per_task"],
                    lat_cell,
                    rss,
                ]
            else:
                cells += [
                    entry["pct_of_ideal"],
                    entry["cmds_per_task"],
                    _cell(entry.get("round_trips_per_task")),
                    rss,
                ]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    print()
    for name, ratio in report["ratios"].items():
        print(f"{name}: " + ", ".join(f"{k} x{v}" for k, v in ratio.items()))
    print(
        f"taskq bulk enqueue (delay_many, 500 per call): {bulk_row['enqueue_per_s']} tasks/s, "
        f"{bulk_row['cmds_per_task']} commands per task"
    )
    print("Redis memory per queued task: " + ", ".join(f"{k} {v} B" for k, v in memory.items()))
    print()
    print("Targets of the concurrency issue, as measured:")
    for line in report["targets"]:
        print(f"- {line}")


if __name__ == "__main__":
    main()
