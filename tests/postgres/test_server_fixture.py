"""The private PostgreSQL server of the tests: the ``pg_ctl`` it is started
with is found without a machine's path, the fallback binaries of the
``pgserver`` wheel start a working server too (as root through
``pg_ctl_as_user.py``), and the session's server is never the shared one on
the default port."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import port_for
import psycopg
import pytest
from pytest_postgresql.executors import PostgreSQLExecutor

from postgres_server import _from_wheel, find_pg_ctls, pg_ctl_for_fixture

pytestmark = pytest.mark.postgres


def test_the_session_server_is_private(postgres_url: str) -> None:
    """The tests' server listens on loopback on a port of its own, not 5432."""
    params = psycopg.conninfo.conninfo_to_dict(postgres_url)
    assert params["host"] == "127.0.0.1"
    assert int(params["port"]) != 5432
    with psycopg.connect(postgres_url) as conn:
        directory = conn.execute("SHOW data_directory").fetchone()
    assert directory is not None
    assert "pytest-postgresql" in directory[0]


def test_pg_ctl_is_found_in_order_of_preference(monkeypatch: pytest.MonkeyPatch) -> None:
    """``$TASKQ_TEST_PG_CTL`` comes first; every candidate is an executable
    ``pg_ctl``; without a server on the machine the wheel's is used."""
    found = find_pg_ctls()
    assert found, "no pg_ctl at all"
    assert all(os.path.basename(path) == "pg_ctl" for path in found)
    wheel = _from_wheel()
    if wheel is None:
        pytest.skip("the pgserver wheel is not installed")
    monkeypatch.setenv("TASKQ_TEST_PG_CTL", wheel)
    assert find_pg_ctls()[0] == wheel
    monkeypatch.delenv("TASKQ_TEST_PG_CTL")
    monkeypatch.setenv("PATH", "/nonexistent")  # no pg_config, no pg_ctl on PATH
    assert find_pg_ctls() == [wheel]


def test_the_wheel_binaries_start_a_working_server(tmp_path: Path) -> None:
    """The fallback for machines without server binaries: the pgserver
    wheel's pg_ctl, run as pytest-postgresql runs it (through the root
    wrapper when the suite is root), starts a server that answers."""
    wheel = _from_wheel()
    if wheel is None:
        pytest.skip("the pgserver wheel is not installed")
    executable = pg_ctl_for_fixture(wheel)
    assert executable is not None
    port = port_for.select_random()
    holder = tmp_path / "server"
    holder.mkdir()
    server = PostgreSQLExecutor(
        executable=executable,
        host="127.0.0.1",
        port=port,
        datadir=str(holder / "data"),
        unixsocketdir=tempfile.gettempdir(),  # writable by the server user too
        logfile=str(holder / "server.log"),
        startparams="-w",
        dbname="postgres",
        postgres_options="-c fsync=off",
    )
    server.start()
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as conn:
            version = conn.execute("SHOW server_version").fetchone()
        assert version is not None
        assert version[0].startswith("16.")
    finally:
        server.stop()
