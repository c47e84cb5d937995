"""The brokers part of the benchmark: taskq on Redis, SQLite and PostgreSQL,
and Procrastinate beside taskq's PostgreSQL broker, in one run.

Every system runs one worker process on a store of its own kind:

- ``taskq-redis``: the run's private Redis (emptied before each run);
- ``taskq-sqlite``: a SQLite file in the run's temporary directory (a copy
  of a file whose schema is made once, so no run pays for it);
- ``taskq-postgres`` and ``procrastinate``: a database of a private
  PostgreSQL server the run starts (:mod:`pg_server`), made for each run from
  a template database that holds the system's schema.

For each system, in rounds (each round runs every system and mode once, so a
change of load hits them all alike; the median is reported):

- **enqueue**: N no-op tasks, one call each (taskq's ``delay``,
  Procrastinate's ``defer``), the connection made before the clock starts;
- **bulk enqueue**: N tasks, 500 per call (``delay_many``, ``batch_defer``);
- **drain**: the N tasks enqueued one at a time, run by one worker process
  that stops once the queue is empty (taskq's burst mode, Procrastinate's
  ``wait=False``): N over the time from the first start to the last finish;
  with taskq's ``sync`` executor at ``-c 1`` and ``threads`` at ``-c 8``,
  Procrastinate at its default concurrency (1) and at 8 (plain functions,
  which it runs in threads);

and once, after the rounds, the **latency** from enqueue to start with an
idle worker at ``-c 1`` (p50/p99, tasks sent one at a time; an idle worker
at ``-c 8`` waits the same way, and measuring it too would add half a
minute to the run). A system its environment
cannot run (no taskq-postgres in this build, no PostgreSQL server binaries,
no Procrastinate) is shown as not available, with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import Agent, Mode, Sampler, read_records, stop
from pg_server import PostgresServer, find_bindir, launch

WARMUP = 5  # latency samples dropped at the start
#: what latest.json keeps of each round of a mode, beside the medians
ROUND_FIELDS = ("status", "enqueue_per_s", "per_s", "rss_mib", "load_average")


@dataclass(frozen=True)
class System:
    key: str  # the name in the results
    title: str
    system: str  # agent.py's SYSTEM
    broker: str  # redis, sqlite, postgres
    modes: tuple[tuple[str, int], ...]


TASKQ_MODES = (("sync", 1), ("threads", 8))
SYSTEMS = (
    System("taskq-redis", "taskq, Redis", "taskq", "redis", TASKQ_MODES),
    System("taskq-sqlite", "taskq, SQLite", "taskq", "sqlite", TASKQ_MODES),
    System("taskq-postgres", "taskq, PostgreSQL", "taskq", "postgres", TASKQ_MODES),
    System(
        "procrastinate",
        "Procrastinate, PostgreSQL",
        "procrastinate",
        "postgres",
        (("threads", 1), ("threads", 8)),
    ),
)
KEYS = tuple(s.key for s in SYSTEMS)
#: the broker each ratio is taken against, and the peer of taskq-postgres
BASELINE, PEER = "taskq-redis", "procrastinate"


def mode_name(system: System, executor: str, concurrency: int) -> str:
    if system.system == "procrastinate":
        default = " (its default)" if concurrency == 1 else ""
        return f"{system.key} -c {concurrency}{default}"
    return f"{system.key} {executor} -c {concurrency}"


def _reason(exc: subprocess.CalledProcessError | subprocess.TimeoutExpired) -> str:
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"timed out after {exc.timeout:g} s"
    lines = [line for line in (exc.stderr or "").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else f"exit {exc.returncode}"


class Stores:
    """A fresh, empty store for each run, with the system's schema in it."""

    def __init__(
        self, redis_client: Any, redis_url: str, pg: PostgresServer | None, tmp: Path
    ) -> None:
        self.redis_client, self.redis_url, self.pg = redis_client, redis_url, pg
        self.tmp = tmp / "brokers"
        self.tmp.mkdir(exist_ok=True)
        self.count = 0
        self.templates: dict[str, str] = {}  # system key -> template file or database

    def prepare(self, system: System, python: str, timeout: float) -> None:
        """The template of ``system``: a store its agent has made the schema in."""
        if system.broker == "redis":
            return
        if system.broker == "sqlite":
            path = self.tmp / f"template-{system.key}.db"
            url = f"sqlite:///{path}"
        else:
            assert self.pg is not None
            name = f"template_{system.key.replace('-', '_')}"
            url = self.pg.create_database(name)
        agent = Agent(system.system, python, url)
        agent("prepare", timeout=timeout)
        if system.broker == "sqlite":
            self.templates[system.key] = str(path)
        else:
            self.templates[system.key] = name

    def fresh(self, system: System) -> str:
        """A new store for one run; its URL."""
        self.count += 1
        if system.broker == "redis":
            self.redis_client.flushall()
            return self.redis_url
        if system.broker == "sqlite":
            path = self.tmp / f"run-{self.count}.db"
            template = self.templates[system.key]
            shutil.copyfile(template, path)
            if os.path.exists(f"{template}-wal"):  # no process has it open: the pair is whole
                shutil.copyfile(f"{template}-wal", f"{path}-wal")
            return f"sqlite:///{path}"
        assert self.pg is not None
        name = f"run_{self.count}"
        self.pg.sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.templates[system.key]}"')
        return self.pg.url(name)

    def done(self, system: System, url: str) -> None:
        """Remove a run's store (SQLite: the file and what SQLite keeps beside it)."""
        if system.broker == "sqlite":
            path = url.removeprefix("sqlite:///")
            for extra in ("", "-wal", "-shm", "-journal"):
                Path(path + extra).unlink(missing_ok=True)
            shutil.rmtree(path + "-wake", ignore_errors=True)
        elif system.broker == "postgres":
            assert self.pg is not None
            self.pg.drop_database(url.rsplit("/", 1)[1])


class BrokerBench:
    def __init__(
        self,
        stores: Stores,
        pythons: dict[str, str],
        args: argparse.Namespace,
        tmp: Path,
        log: Any,
    ) -> None:
        self.stores, self.pythons, self.args, self.tmp, self.log = stores, pythons, args, tmp, log

    def agent(self, system: System, url: str) -> Agent:
        return Agent(system.system, self.pythons[system.key], url, system.key)

    def probe(self, system: System) -> dict[str, str]:
        """Why ``system`` (or one of its modes) cannot run here: {} if it can."""
        try:
            self.stores.prepare(system, self.pythons[system.key], self.args.timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return {"*": _reason(exc)}
        if system.system != "taskq":
            return {}
        url = self.stores.fresh(system)
        try:
            keys = ",".join(f"{e}:{c}" for e, c in system.modes)
            found = self.agent(system, url)("probe", modes=keys, timeout=self.args.timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return {"*": _reason(exc)}
        finally:
            self.stores.done(system, url)
        return {key: why for key, why in found["modes"].items() if why}

    def versions(self, system: System) -> dict[str, Any]:
        url = self.stores.fresh(system)
        try:
            found = self.agent(system, url)("versions", timeout=self.args.timeout)
        finally:
            self.stores.done(system, url)
        found.pop("seconds", None)
        return found

    def bulk(self, system: System) -> dict[str, Any]:
        n, url = self.args.broker_tasks, self.stores.fresh(system)
        try:
            found = self.agent(system, url)(
                "enqueue_bulk", Mode(system.key, system.modes[0][0], 1), tasks=n, warm=True
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return {"status": f"failed: {_reason(exc)}"}
        finally:
            self.stores.done(system, url)
        return {"status": "ok", "enqueue_per_s": round(n / found["seconds"], 1)}

    def drain(self, system: System, executor: str, concurrency: int) -> dict[str, Any]:
        """Enqueue N tasks one at a time, then one worker runs them all."""
        n, url, timeout = self.args.broker_tasks, self.stores.fresh(system), self.args.timeout
        mode = Mode(system.key, executor, concurrency)
        row: dict[str, Any] = {"load_average": round(os.getloadavg()[0], 2)}
        try:
            agent = self.agent(system, url)
            try:
                enqueued = agent("enqueue", mode, tasks=n, warm=True, timeout=timeout)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                return {**row, "status": f"failed: could not enqueue: {_reason(exc)}"}
            row["enqueue_per_s"] = round(n / enqueued["seconds"], 1)
            record, log = self.tmp / "brokers-record.bin", self.tmp / "brokers-worker.log"
            record.write_bytes(b"")
            spawned = time.time()
            proc = agent.spawn(mode, "noop", record, log, burst=True)
            sampler = Sampler(proc.pid)
            deadline = time.monotonic() + timeout
            # every system here stops by itself once its queue is empty
            while proc.poll() is None and time.monotonic() < deadline:
                sampler.sample()
                time.sleep(0.02)
            stop(proc, sampler)
            records = read_records(record)
            row["rss_mib"] = round(sampler.peak_kib / 1024, 1)
            if len(records) < n:
                timed_out = time.monotonic() > deadline
                why = f"timeout after {timeout:g} s" if timed_out else f"exit {proc.returncode}"
                tail = log.read_text(errors="replace")[-1500:]
                return {**row, "status": f"failed: {len(records)} of {n} ran ({why})", "log": tail}
            first_start, last_end = min(r[1] for r in records), max(r[2] for r in records)
            row.update(
                status="ok",
                per_s=round(n / (last_end - first_start), 1),
                startup_s=round(first_start - spawned, 3),
                duplicates=len(records) - n,
            )
            return row
        finally:
            self.stores.done(system, url)

    def latency(self, system: System, executor: str, concurrency: int) -> dict[str, Any]:
        """p50/p99 from enqueue to start, tasks one at a time, an idle worker."""
        n, url = self.args.broker_latency_samples + WARMUP, self.stores.fresh(system)
        mode = Mode(system.key, executor, concurrency)
        record, log = self.tmp / "brokers-latency.bin", self.tmp / "brokers-latency.log"
        record.write_bytes(b"")
        agent = self.agent(system, url)
        proc = agent.spawn(mode, "noop", record, log, burst=False)
        sampler = Sampler(proc.pid)
        try:
            agent(
                "latency",
                mode,
                tasks=n,
                record=record,
                gap=self.args.gap,
                timeout=self.args.timeout,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            stop(proc, sampler)
            self.stores.done(system, url)
            return {"status": f"failed: {_reason(exc)}", "log": log.read_text()[-1500:]}
        sampler.sample()
        stop(proc, sampler)
        self.stores.done(system, url)
        waits = sorted((r[1] - r[0]) * 1000 for r in read_records(record)[WARMUP:])
        return {
            "status": "ok",
            "samples": len(waits),
            "p50_ms": round(statistics.median(waits), 2),
            "p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 2),
        }


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get("status") == "ok" and key in r]
    return round(statistics.median(values), 1) if values else None


def run_brokers(
    args: argparse.Namespace,
    redis_client: Any,
    redis_url: str,
    tmp: Path,
    pythons: dict[str, str | None],
    began: float,
) -> dict[str, Any]:
    """Measure every system of :data:`SYSTEMS` that ``--systems`` keeps; the
    report (``brokers`` in ``latest.json``)."""

    def log(text: str) -> None:
        print(f"[{time.monotonic() - began:6.0f} s] brokers: {text}", file=sys.stderr, flush=True)

    only = {k for k in args.systems.split(",") if k in KEYS}
    chosen = [s for s in SYSTEMS if not only or s.key in only]
    unavailable: dict[str, str] = {}
    for system in chosen:
        if not pythons.get(system.key):
            unavailable[system.key] = f"no Python given for it (--{system.key}-python)"
    needs_pg = any(s.broker == "postgres" and s.key not in unavailable for s in chosen)
    with _postgres(needs_pg) as (pg, pg_error):
        if pg_error:
            for system in chosen:
                if system.broker == "postgres":
                    unavailable.setdefault(system.key, pg_error)
        stores = Stores(redis_client, redis_url, pg, tmp)
        ready = {k: v for k, v in pythons.items() if v}
        bench = BrokerBench(stores, ready, args, tmp, log)
        mode_unavailable: dict[str, str] = {}
        for system in chosen:
            if system.key in unavailable:
                continue
            found = bench.probe(system)
            if "*" in found:
                unavailable[system.key] = found["*"]
            for executor, concurrency in system.modes:
                why = found.get(f"{executor}:{concurrency}")
                if why:
                    mode_unavailable[mode_name(system, executor, concurrency)] = why
        runnable = [s for s in chosen if s.key not in unavailable]
        for system in chosen:
            log(f"{system.key}: " + unavailable.get(system.key, "ready"))
        versions = {s.key: bench.versions(s) for s in runnable}
        drains: dict[str, list[dict[str, Any]]] = {}
        bulks: dict[str, list[dict[str, Any]]] = {}
        for round_no in range(args.broker_repeat):
            for system in runnable:
                for executor, concurrency in system.modes:
                    name = mode_name(system, executor, concurrency)
                    done = drains.setdefault(name, [])
                    if name in mode_unavailable or any(r["status"] != "ok" for r in done):
                        continue
                    row = bench.drain(system, executor, concurrency)
                    done.append(row)
                    drained = row.get("per_s", row["status"])
                    enqueued = row.get("enqueue_per_s", "-")
                    log(f"round {round_no + 1}: {name}: enqueue {enqueued}/s, drain {drained}/s")
                done = bulks.setdefault(system.key, [])
                if not any(r["status"] != "ok" for r in done):
                    done.append(bench.bulk(system))
                    log(f"round {round_no + 1}: {system.key} bulk: {done[-1]}")
        latency: dict[str, dict[str, Any]] = {}
        if not args.no_latency:
            for system in runnable:  # with the first (-c 1) mode: -c 8 waits as long idle
                executor, concurrency = system.modes[0]
                name = mode_name(system, executor, concurrency)
                if name not in mode_unavailable:
                    latency[name] = bench.latency(system, executor, concurrency)
                    log(f"latency {name}: {latency[name]}")
        server_version = pg.version() if pg else None
    found = (unavailable, mode_unavailable, drains, bulks, latency, versions)
    return build_report(chosen, *found, server_version, args)


@contextlib.contextmanager
def _postgres(needed: bool) -> Iterator[tuple[PostgresServer | None, str | None]]:
    """The private PostgreSQL server, if one is needed and can be started:
    ``(server, None)``, or ``(None, why not)``."""
    if not needed:
        yield None, None
        return
    bindir = find_bindir()
    if bindir is None:
        yield None, "no PostgreSQL server binaries (pg_config --bindir, or pg_ctl on PATH)"
        return
    try:
        server = launch(bindir)
    except (OSError, RuntimeError) as exc:
        yield None, f"the private PostgreSQL server did not start: {exc}"
        return
    try:
        yield server, None
    finally:
        server.stop()


def build_report(
    chosen: list[System],
    unavailable: dict[str, str],
    mode_unavailable: dict[str, str],
    drains: dict[str, list[dict[str, Any]]],
    bulks: dict[str, list[dict[str, Any]]],
    latency: dict[str, dict[str, Any]],
    versions: dict[str, Any],
    server_version: str | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Rows per system and mode (medians of the rounds), and the ratios:
    each broker against Redis, taskq-postgres against Procrastinate."""
    systems: dict[str, Any] = {}
    for system in chosen:
        if system.key in unavailable:
            why = f"not available in this build ({unavailable[system.key]})"
            systems[system.key] = {"title": system.title, "status": why}
            continue
        modes = []
        enqueue_runs: list[dict[str, Any]] = []
        for executor, concurrency in system.modes:
            name = mode_name(system, executor, concurrency)
            entry: dict[str, Any] = {
                "mode": name,
                "executor": executor,
                "concurrency": concurrency,
            }
            if name in mode_unavailable:
                entry["status"] = f"not available in this build ({mode_unavailable[name]})"
                modes.append(entry)
                continue
            runs = drains.get(name, [])
            enqueue_runs += runs
            ok = [r for r in runs if r.get("status") == "ok"]
            entry["status"] = "ok" if ok else (runs[-1]["status"] if runs else "not run")
            if not ok and runs and "log" in runs[-1]:
                entry["log_tail"] = runs[-1]["log"]
            for key in ("per_s", "rss_mib", "startup_s", "load_average"):
                value = _median(runs, key)
                if value is not None:
                    entry[key] = value
            entry["runs"] = len(ok)
            entry["rounds"] = [{k: r[k] for k in ROUND_FIELDS if k in r} for r in runs]
            if name in latency:
                entry["latency"] = latency[name]
            modes.append(entry)
        bulk_runs = bulks.get(system.key, [])
        systems[system.key] = {
            "title": system.title,
            "status": "ok",
            "version": versions.get(system.key, {}),
            "enqueue_per_s": _median(enqueue_runs, "enqueue_per_s"),
            "enqueue_bulk_per_s": _median(bulk_runs, "enqueue_per_s"),
            "bulk_status": bulk_runs[-1]["status"] if bulk_runs else "not run",
            "bulk_rounds": [r.get("enqueue_per_s") for r in bulk_runs],
            "modes": modes,
        }
    ratios: dict[str, dict[str, float]] = {}
    for mine, theirs in [(k, BASELINE) for k in ("taskq-sqlite", "taskq-postgres")] + [
        ("taskq-postgres", PEER)
    ]:
        figures = _ratios(systems.get(mine), systems.get(theirs))
        if figures:
            ratios[f"{mine} / {theirs}"] = figures
    return {
        "systems": systems,
        "ratios": ratios,
        "postgres_version": server_version,
        "postgres_settings": "synchronous_commit=off (fsync on)",
        "options": {
            "tasks": args.broker_tasks,
            "rounds": args.broker_repeat,
            "latency_samples": args.broker_latency_samples,
        },
    }


def _ratios(mine: Any, theirs: Any) -> dict[str, float]:
    """``mine / theirs`` for each figure both have: rates (above 1: ``mine`` is
    faster) and latency p50/p99 (above 1: ``mine`` waits longer). Modes are
    paired in order (taskq's sync -c 1 with Procrastinate's -c 1...)."""
    if not mine or not theirs or mine["status"] != "ok" or theirs["status"] != "ok":
        return {}
    found: dict[str, float] = {}
    for key, label in (("enqueue_per_s", "enqueue"), ("enqueue_bulk_per_s", "bulk enqueue")):
        if mine.get(key) and theirs.get(key):
            found[label] = round(mine[key] / theirs[key], 2)
    for a, b in zip(mine["modes"], theirs["modes"], strict=False):
        if a["status"] != "ok" or b["status"] != "ok":
            continue
        where = f"-c {a['concurrency']}"
        found[f"drain {where}"] = round(a["per_s"] / b["per_s"], 2)
        la, lb = a.get("latency", {}), b.get("latency", {})
        if la.get("status") == "ok" and lb.get("status") == "ok":
            found[f"latency p50 {where}"] = round(la["p50_ms"] / lb["p50_ms"], 2)
            found[f"latency p99 {where}"] = round(la["p99_ms"] / lb["p99_ms"], 2)
    return found


def print_brokers(report: dict[str, Any]) -> None:
    """The brokers part as Markdown tables."""
    systems = report["systems"]
    print()
    pg = report.get("postgres_version")
    print(
        "Brokers: one worker process each, no-op tasks"
        + (f"; PostgreSQL {pg} ({report['postgres_settings']})" if pg else "")
    )
    for key, entry in systems.items():
        version = entry.get("version", {})
        if version:
            extra = ", ".join(f"{k} {v}" for k, v in version.items() if k != "version")
            print(f"  {key} {version.get('version')}" + (f" ({extra})" if extra else ""))
    print()
    header = (
        "system / mode",
        "enqueue/s, one a call",
        "enqueue/s, 500 a call",
        "drain tasks/s",
        "drain x Redis",
        "latency p50 / p99 ms",
        "worker RSS MiB",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    redis_modes = {
        m["concurrency"]: m
        for m in systems.get(BASELINE, {}).get("modes", [])
        if m.get("status") == "ok"
    }
    for key, entry in systems.items():
        if entry["status"] != "ok":
            print(f"| {entry['title']} | {entry['status']} |" + " |" * (len(header) - 2))
            continue
        for number, mode in enumerate(entry["modes"]):
            first = number == 0
            if mode["status"] != "ok":
                print(f"| {mode['mode']} | {mode['status']} |" + " |" * (len(header) - 2))
                continue
            lat = mode.get("latency", {})
            lat_cell = f"{lat['p50_ms']} / {lat['p99_ms']}" if lat.get("status") == "ok" else "—"
            base = redis_modes.get(mode["concurrency"]) if key.startswith("taskq") else None
            versus = f"x{mode['per_s'] / base['per_s']:.2f}" if base else "—"
            cells = [
                mode["mode"],
                entry["enqueue_per_s"] if first else "",
                (entry["enqueue_bulk_per_s"] or entry["bulk_status"]) if first else "",
                mode["per_s"],
                versus,
                lat_cell,
                mode.get("rss_mib", "—"),
            ]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    ratios = report["ratios"]
    if not ratios:
        return
    columns: list[str] = []
    for figures in ratios.values():
        columns += [k for k in figures if k not in columns]
    print()
    print("Ratios (rates: above 1 is faster; latency: above 1 waits longer)")
    print()
    print("| ratio | " + " | ".join(columns) + " |")
    print("|" + "---|" * (len(columns) + 1))
    for name, figures in ratios.items():
        cells = [f"x{figures[c]}" if c in figures else "—" for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
