"""Where the database file is: ``sqlite://`` URLs and the default file.

URLs are spelt as SQLAlchemy spells them, except the bare ``sqlite://``:

* ``sqlite:///relative/path.db``: relative to the working directory (made
  absolute when the broker is built, so a later ``chdir`` changes nothing);
* ``sqlite:////absolute/path.db``: an absolute path;
* ``sqlite://``: the default file (SQLAlchemy's in-memory database would be a
  different database for every connection, which no queue can use).

The default file is ``$TASKQ_SQLITE_PATH`` when that is set, else
``taskq/taskq.db`` in the user's data directory: ``$XDG_DATA_HOME``, else
``~/.local/share``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_PATH_ENV", "default_path", "path_from_url"]

#: the environment variable that names the default file
DEFAULT_PATH_ENV = "TASKQ_SQLITE_PATH"

_IN_MEMORY = frozenset({":memory:", ""})


def default_path() -> Path:
    """The default database file: ``$TASKQ_SQLITE_PATH``, else
    ``$XDG_DATA_HOME/taskq/taskq.db`` (``~/.local/share/taskq/taskq.db``)."""
    named = os.environ.get(DEFAULT_PATH_ENV)
    if named:
        return Path(named).expanduser().absolute()
    data_home = os.environ.get("XDG_DATA_HOME")
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return (base / "taskq" / "taskq.db").absolute()


def path_from_url(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names (absolute), or ``None`` for the
    bare ``sqlite://`` (the default file).

    Raises :class:`ValueError` for another scheme, a host, query options or
    an in-memory database.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError(f"SQLiteBroker needs a sqlite:// URL, not {url!r}")
    if parts.netloc:
        raise ValueError(
            f"a sqlite:// URL names a file, not a host: {url!r} "
            "(sqlite:///relative.db or sqlite:////absolute/path.db)"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            f"a sqlite:// URL takes no options: {url!r}; pass them to SQLiteBroker(...)"
        )
    if parts.path in ("", "/"):
        return None
    name = unquote(parts.path[1:])
    if name in _IN_MEMORY or name.startswith("file:"):
        raise ValueError(
            f"{url!r} is not a file that worker processes can share; "
            "use memory:// for an in-process broker"
        )
    return Path(name).expanduser().absolute()
