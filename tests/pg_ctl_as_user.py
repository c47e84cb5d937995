#!/usr/bin/env python3
"""``pg_ctl`` for a test suite that runs as root: PostgreSQL refuses to.

Runs the ``pg_ctl`` named by ``$TASKQ_TEST_PG_CTL_REAL`` with the same
arguments as an unprivileged user (``$TASKQ_TEST_PG_USER``, else
``postgres`` when it exists, else ``nobody``). First, still as root, it gives
that user what the server needs: the directory that holds the data
directory and the log file (``-D``/``--pgdata``, ``-l``/``--log``) becomes
the user's, and the directories above it and above the binaries become
traversable (``o+x``) where they are not.

pytest-postgresql runs it (``tests/postgres_server.py`` chooses it); it is
not meant for anything else.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path

_PATH_OPTIONS = ("-D", "--pgdata", "-l", "--log")


def _user() -> pwd.struct_passwd:
    named = os.environ.get("TASKQ_TEST_PG_USER")
    for name in (named,) if named else ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise SystemExit(f"pg_ctl_as_user: no user {named or 'postgres or nobody'} to run pg_ctl as")


def _paths(argv: list[str]) -> list[Path]:
    """The data directory and log file named in ``argv``."""
    found: list[Path] = []
    for number, arg in enumerate(argv):
        if arg in _PATH_OPTIONS and number + 1 < len(argv):
            found.append(Path(argv[number + 1]))
        for option in _PATH_OPTIONS:
            if option.startswith("--") and arg.startswith(option + "="):
                found.append(Path(arg.split("=", 1)[1]))
    return found


def _traversable(directory: Path) -> None:
    """Let any user pass through ``directory`` and every directory above it."""
    for current in (directory, *directory.parents):
        mode = current.stat().st_mode
        if not mode & stat.S_IXOTH:
            current.chmod(mode | stat.S_IXOTH)


def main(argv: list[str]) -> None:
    real = os.environ.get("TASKQ_TEST_PG_CTL_REAL")
    if not real:
        raise SystemExit("pg_ctl_as_user: TASKQ_TEST_PG_CTL_REAL names no pg_ctl")
    user = _user()
    if os.geteuid() == 0:
        for path in _paths(argv):
            holder = path.parent.resolve()
            holder.mkdir(parents=True, exist_ok=True)
            os.chown(holder, user.pw_uid, user.pw_gid)
            if path.exists():
                os.chown(path, user.pw_uid, user.pw_gid)
            _traversable(holder)
        _traversable(Path(real).resolve().parent)
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    os.execv(real, [real, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
