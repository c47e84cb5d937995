"""Which ``pg_ctl`` starts the private PostgreSQL server of the tests.

pytest-postgresql's process fixture starts the server with ``pg_ctl`` on a
free loopback port (never the default 5432) in a temporary directory, and
removes it at the end. This module tells it which ``pg_ctl``:

1. ``$TASKQ_TEST_PG_CTL``, when set;
2. the ``pg_ctl`` in the directory ``pg_config --bindir`` names (the server
   binaries of the installed PostgreSQL);
3. a ``pg_ctl`` on ``PATH``;
4. the one shipped in the ``pgserver`` wheel (PostgreSQL's binaries built for
   Python; found without importing it), for machines without a server:
   ``pip install pgserver`` (the ``tests_postgres`` nox session installs it).

PostgreSQL refuses to run as root. When the suite runs as root, the fixture
is given ``pg_ctl_as_user.py`` (beside this file) instead, which runs the
chosen ``pg_ctl`` as an unprivileged user: ``$TASKQ_TEST_PG_USER``, else
``postgres`` when that user exists, else ``nobody``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "REAL_PG_CTL_ENV",
    "find_pg_ctl",
    "find_pg_ctls",
    "pg_ctl_for_fixture",
    "reset_database",
]

#: the environment variable that tells ``pg_ctl_as_user.py`` the real pg_ctl
REAL_PG_CTL_ENV = "TASKQ_TEST_PG_CTL_REAL"
_AS_USER = Path(__file__).with_name("pg_ctl_as_user.py")


def _usable(path: str | Path) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_pg_config() -> str | None:
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    candidate = os.path.join(bindir, "pg_ctl")
    return candidate if _usable(candidate) else None


def _from_wheel() -> str | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin" / "pg_ctl"
        if _usable(candidate):
            return str(candidate)
    return None


def find_pg_ctls() -> list[str]:
    """Every ``pg_ctl`` found, in the order of preference above."""
    found: list[str] = []
    named = os.environ.get("TASKQ_TEST_PG_CTL")
    on_path = shutil.which("pg_ctl")
    for candidate in (named, _from_pg_config(), on_path, _from_wheel()):
        if candidate and _usable(candidate):
            known = {os.path.realpath(path) for path in found}
            if os.path.realpath(candidate) not in known:
                found.append(candidate)
    return found


def find_pg_ctl() -> str | None:
    """The preferred ``pg_ctl``, or ``None`` when there is none."""
    found = find_pg_ctls()
    return found[0] if found else None


def pg_ctl_for_fixture(pg_ctl: str | None = None) -> str | None:
    """What to give pytest-postgresql as its ``executable``: ``pg_ctl`` (the
    preferred one by default), or, as root, ``pg_ctl_as_user.py`` running it
    (told through ``$TASKQ_TEST_PG_CTL_REAL``)."""
    chosen = pg_ctl or find_pg_ctl()
    if chosen is None or os.geteuid() != 0:
        return chosen
    os.environ[REAL_PG_CTL_ENV] = chosen
    return str(_AS_USER)


def reset_database(url: str) -> None:
    """Drop every table of the database's ``public`` schema (taskq's and a
    docs page's own), as on a new database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
