"""Every ```python block of every docs page runs, in order.

One test per page in ``docs/``; the blocks of a page share one namespace, a
module named ``docs_<page>`` registered in ``sys.modules`` (so tasks defined in
a page can be imported back by a worker). Each page runs in an empty temporary
directory, with ``docs/`` on ``sys.path`` and plugins loaded afresh. A page
whose python blocks read ``TASKQ_URL`` gets it pointing at the test Redis
server; the others run without it, so a ``TaskQ()`` there is on the default
broker (the session's own SQLite file: ``tests/conftest.py`` sets
``TASKQ_SQLITE_PATH``). A page whose python blocks read ``DATABASE_URL`` gets
it pointing at an emptied database of the test PostgreSQL server.

Only fences opened with exactly ```python run; use ```text, ```console or
```pycon for anything that must not run.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from postgres_server import reset_database
from taskq_core.app import PERIODIC_TASKS
from taskq_core.plugins import reset_plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """A python code block and the line of the page it starts on."""

    line: int
    code: str


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a page, in order."""
    return [
        Block(text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in FENCE.finditer(text)
    ]


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_fence_parser_finds_blocks_and_lines() -> None:
    """The harness finds only ```python blocks, with their first line number."""
    text = "intro\n```python\na = 1\n```\n```text\nno\n```\n\n```python\nb = a\n```\n"
    assert python_blocks(text) == [Block(3, "a = 1\n"), Block(10, "b = a\n")]


@pytest.fixture
def page_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """A clean directory, docs on sys.path, fresh plugins; Redis and PostgreSQL
    when the page needs them."""
    page: Path = request.node.callspec.params["page"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(DOCS))
    monkeypatch.delenv("TASKQ_URL", raising=False)
    code = "\n".join(block.code for block in python_blocks(page.read_text()))
    if "TASKQ_URL" in code:
        monkeypatch.setenv("TASKQ_URL", request.getfixturevalue("redis_url"))
    if "DATABASE_URL" in code:
        url = request.getfixturevalue("postgres_url")
        reset_database(url)
        monkeypatch.setenv("DATABASE_URL", url)
    reset_plugin_manager()
    periodic = dict(PERIODIC_TASKS)
    yield
    # periodic tasks a page declared must not follow workers of later pages
    PERIODIC_TASKS.clear()
    PERIODIC_TASKS.update(periodic)
    reset_plugin_manager()
    structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.stem)
def test_docs_page_runs(page: Path, page_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of the page runs without error, in order."""
    blocks = python_blocks(page.read_text())
    module = types.ModuleType(f"docs_{page.stem}")
    module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    filename = f"docs/{page.name}"
    for block in blocks:
        # pad with newlines so tracebacks show the page's own line numbers
        code = compile("\n" * (block.line - 1) + block.code, filename, "exec")
        exec(code, module.__dict__)
