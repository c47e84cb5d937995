"""``docs/hooks.md`` documents exactly the hooks in ``hookspecs.py``, each with
an example implementation."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from taskq_core import hookspecs

HOOKS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
SECTION = re.compile(r"^## (\S+)[ \t]*$", re.MULTILINE)


def hook_names() -> list[str]:
    """The hooks declared in hookspecs.py, in declaration order."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    functions = inspect.getmembers(hookspecs, inspect.isfunction)
    declared = [func for _, func in functions if hasattr(func, marker)]
    return [func.__name__ for func in sorted(declared, key=lambda f: f.__code__.co_firstlineno)]


def sections() -> dict[str, str]:
    """``## name`` sections of the hooks page -> their text."""
    text = HOOKS_PAGE.read_text()
    found: dict[str, str] = {}
    matches = list(SECTION.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        found[match.group(1)] = text[match.end() : end]
    return found


def test_every_hook_is_a_taskq_hook() -> None:
    """The spec module declares hooks, all prefixed ``taskq_`` (guards the checks below)."""
    names = hook_names()
    assert "taskq_register" in names
    assert len(names) >= 10
    assert all(name.startswith("taskq_") for name in names)


@pytest.mark.parametrize("hook", hook_names())
def test_hook_has_a_section_with_an_example(hook: str) -> None:
    """Each hook has a ``## <hook>`` section whose python example implements it."""
    page_sections = sections()
    assert hook in page_sections, f"docs/hooks.md has no '## {hook}' section"
    body = page_sections[hook]
    examples = re.findall(r"^```python\n(.*?)^```", body, re.MULTILINE | re.DOTALL)
    assert examples, f"the '## {hook}' section has no ```python example"
    assert any(re.search(rf"^\s*def {hook}\(", code, re.MULTILINE) for code in examples), (
        f"the example of '## {hook}' does not implement {hook}"
    )


def test_no_section_names_a_missing_hook() -> None:
    """A ``## taskq_...`` section must name a hook that exists."""
    unknown = [name for name in sections() if name.startswith("taskq_")]
    missing = sorted(set(unknown) - set(hook_names()))
    assert not missing, f"docs/hooks.md documents hooks that do not exist: {missing}"


def test_sections_follow_the_spec_order() -> None:
    """Hooks are documented in the order hookspecs.py declares them."""
    documented = [name for name in sections() if name.startswith("taskq_")]
    assert documented == hook_names()
