"""Fixtures for the core tests.

Plugin tests: ``plugin_env`` gives each test fresh plugin loading with only
``core`` autoloading; ``fake_dists`` writes real (fake) installed
distributions into a directory on ``sys.path``, so ``importlib.metadata``
discovers their ``taskq`` entry points exactly as it would after ``pip
install``; ``isolated_site`` builds a directory holding only taskq-core and
its dependencies, for subprocesses that must not see the other plugins.
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
from collections.abc import Iterator
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


def _link_distribution(site: Path, dist_name: str, top_level: dict[str, list[str]]) -> None:
    dist = importlib.metadata.distribution(dist_name)
    canonical = str(dist.metadata["Name"]).lower().replace("_", "-")
    for module, owners in top_level.items():
        if canonical not in {owner.lower().replace("_", "-") for owner in owners}:
            continue
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
    for file in dist.files or []:
        if file.parts and file.parts[0].endswith(".dist-info"):
            info = Path(str(dist.locate_file(file.parts[0])))
            if info.is_dir() and not (site / info.name).exists():
                (site / info.name).symlink_to(info)
            break


@pytest.fixture(scope="session")
def isolated_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with taskq-core and its dependencies only (as after
    ``pip install taskq-core`` in a fresh virtualenv); use with ``python -S``."""
    site = tmp_path_factory.mktemp("isolated-site")
    top_level = importlib.metadata.packages_distributions()
    seen: set[str] = set()
    pending = _requirements_of("taskq-core")
    while pending:
        name = pending.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        _link_distribution(site, name, top_level)
        pending.extend(_requirements_of(name))
    core = importlib.metadata.distribution("taskq-core")
    package = importlib.util.find_spec("taskq_core")
    assert package is not None
    assert package.submodule_search_locations
    (site / "taskq_core").symlink_to(next(iter(package.submodule_search_locations)))
    info = site / f"taskq_core-{core.version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: taskq-core\nVersion: {core.version}\n"
    )
    (info / "entry_points.txt").write_text(core.read_text("entry_points.txt") or "")
    return site


class IsolatedPython:
    """Runs ``python -S`` (no site-packages) with only taskq-core importable."""

    def __init__(self, site: Path) -> None:
        self.site = site

    def run(
        self, *args: str, extra_paths: tuple[Path, ...] = (), env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -S *args``; ``extra_paths`` go on PYTHONPATH after the site."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "PYTHON"))}
        full_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (self.site, *extra_paths))
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-S", *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def isolated_python(isolated_site: Path) -> IsolatedPython:
    """Run Python in an environment where only taskq-core is installed."""
    return IsolatedPython(isolated_site)
