"""Fixtures for the core tests.

Plugin tests: ``plugin_env`` gives each test fresh plugin loading with only
``core`` autoloading; ``fake_dists`` writes real (fake) installed
distributions into a directory on ``sys.path``, so ``importlib.metadata``
discovers their ``taskq`` entry points exactly as it would after ``pip
install``; ``isolated_python`` runs subprocesses in an environment where
only taskq-core and its dependencies are installed (``isolated_pythons`` for
other sets), so they cannot see the other plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from taskq_core.plugins import reset_plugin_manager

TASKQ_SWITCHES = ("TASKQ_PLUGINS", "TASKQ_DISABLE_PLUGIN_AUTOLOAD", "TASKQ_URL")
_module_counter = itertools.count()


def write_distribution(
    site: Path,
    dist: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str] | None = None,
) -> None:
    """Write ``<dist>-<version>.dist-info`` (METADATA, entry_points.txt with
    group ``taskq``) and the given modules (name -> source) into ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[taskq]", *(f"{name} = {value}" for name, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()


class FakeDistributions:
    """Installs fake plugin distributions into a directory on ``sys.path``."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.modules: list[str] = []

    def add(
        self,
        name: str,
        source: str = "",
        *,
        dist: str | None = None,
        version: str = "0.1",
        value: str | None = None,
    ) -> str:
        """Install plugin ``name`` (distribution ``dist``, default ``taskq-<name>``)
        whose module has ``source``; ``value`` overrides the entry point's
        target. Returns the module name."""
        module = f"fake_taskq_plugin_{name}_{next(_module_counter)}"
        self.modules.append(module)
        write_distribution(
            self.site,
            dist or f"taskq-{name}",
            version,
            {name: value or module},
            {module: source},
        )
        return module


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plugins loaded afresh before and after the test, with only ``core``
    autoloading (``TASKQ_DISABLE_PLUGIN_AUTOLOAD=1``): the test names the
    plugins it wants with ``TASKQ_PLUGINS``, so the real plugins installed in
    the environment stay out of it."""
    for name in TASKQ_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKQ_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDistributions]:
    """A site directory on ``sys.path`` to install fake distributions into."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    fakes = FakeDistributions(site)
    yield fakes
    for module in fakes.modules:
        sys.modules.pop(module, None)


def _requirements_of(dist_name: str) -> list[str]:
    dist = importlib.metadata.distribution(dist_name)
    names = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def _install_into(site: Path, dist_name: str, top_level: dict[str, list[str]]) -> None:
    """Make the installed distribution ``dist_name`` importable from ``site``:
    link its top-level modules and write its metadata and entry points."""
    dist = importlib.metadata.distribution(dist_name)
    name = str(dist.metadata["Name"])
    canonical = name.lower().replace("_", "-")
    modules = [
        module
        for module, owners in top_level.items()
        if module.isidentifier()
        and canonical in {owner.lower().replace("_", "-") for owner in owners}
    ] or [canonical.replace("-", "_")]  # an editable install lists no modules
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            target = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            target = Path(spec.origin)
        else:
            continue
        link = site / target.name
        if not link.exists():
            link.symlink_to(target)
    info = site / f"{canonical.replace('-', '_')}-{dist.version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {dist.version}\n"
    )
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)


def build_site(site: Path, distributions: tuple[str, ...]) -> None:
    """Install ``distributions`` and everything they require into ``site``, as
    ``pip install`` would in a fresh virtualenv (but from this environment)."""
    top_level = importlib.metadata.packages_distributions()
    seen: set[str] = set()
    pending = list(distributions)
    while pending:
        name = pending.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        _install_into(site, name, top_level)
        pending.extend(_requirements_of(name))


class IsolatedPython:
    """Runs ``python -S`` (no site-packages) with only taskq-core importable."""

    def __init__(self, site: Path) -> None:
        self.site = site

    def run(
        self, *args: str, extra_paths: tuple[Path, ...] = (), env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -S *args`` in the site directory; ``extra_paths`` go on
        PYTHONPATH after the site."""
        full_env = {
            k: v
            for k, v in os.environ.items()
            # the session's default SQLite file stays (tests/conftest.py)
            if not k.startswith(("TASKQ_", "PYTHON")) or k == "TASKQ_SQLITE_PATH"
        }
        full_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (self.site, *extra_paths))
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-S", *args],
            cwd=self.site,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="session")
def isolated_pythons(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., IsolatedPython]:
    """``isolated_pythons("taskq-core", "taskq-redis")``: Python in a fresh
    environment where only these distributions (and their requirements) are
    installed. Each set is built once per session."""
    built: dict[tuple[str, ...], IsolatedPython] = {}

    def make(*distributions: str) -> IsolatedPython:
        key = tuple(sorted(distributions))
        if key not in built:
            site = tmp_path_factory.mktemp("isolated-site")
            build_site(site, key)
            built[key] = IsolatedPython(site)
        return built[key]

    return make


@pytest.fixture
def isolated_python(isolated_pythons: Callable[..., IsolatedPython]) -> IsolatedPython:
    """Python in a fresh environment where only taskq-core is installed."""
    return isolated_pythons("taskq-core")


@pytest.fixture
def clean_calls() -> Iterator[None]:
    """Empty the call log of ``tasks_fixture`` before and after the test."""
    import tasks_fixture

    tasks_fixture.calls.clear()
    yield
    tasks_fixture.calls.clear()
