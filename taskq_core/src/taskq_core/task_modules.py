"""Which callables a task may make a worker import and run (API decision 18).

A task names its function, its runner class and its retry method by dotted
path, and a worker imports what the path names. Anyone who can write to the
broker can write any path, so a worker refuses:

- every standard-library and builtin module (``os:system``, ``posix:system``,
  ``subprocess:run``, ``builtins:eval``, ``importlib:import_module``...),
  whatever the configuration;
- with the config key ``ALLOWED_TASK_MODULES``, every module that is not one
  of those listed or a submodule of one.

A path is checked three times: its module before anything is imported, every
module met while resolving the rest of the path, and the module that defines
the object found at the end, so ``myapp.tasks:os.system`` (which is
``posix.system``) is refused although ``myapp.tasks`` is allowed.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from taskq_core.exceptions import TaskImportError, TaskRefused

__all__ = [
    "ModuleRule",
    "defining_module",
    "is_standard_library",
    "normalize_allowed_modules",
    "split_path",
    "task_rule",
]


def is_standard_library(module: str) -> bool:
    """Whether ``module`` (a dotted name) belongs to the standard library or is
    a builtin module. A module whose top-level name is a standard-library name
    counts, whatever file it comes from."""
    top = module.partition(".")[0]
    return (
        top in sys.stdlib_module_names
        or top in sys.builtin_module_names
        or module in sys.builtin_module_names
    )


def _within(module: str, names: Iterable[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


def _dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def split_path(path: object) -> tuple[str, str]:
    """``"package.module:qualname"`` (or ``"package.module.attr"``) as
    ``(module, qualname)``; ``TaskImportError`` if it has another shape."""
    if not isinstance(path, str):
        raise TaskImportError(f"{path!r} is not a dotted path like 'package.module:name'")
    if ":" in path:
        module, _, qualname = path.partition(":")
    else:
        module, _, qualname = path.rpartition(".")
    if not (_dotted(module) and _dotted(qualname)):
        raise TaskImportError(f"{path!r} is not a dotted path like 'package.module:name'")
    return module, qualname


def defining_module(obj: Any) -> str | None:
    """The name of the module that defines ``obj``, or ``None`` if it cannot be told.

    This is ``__module__``: for a function, the module whose code defines it
    (kept by decorators that use :func:`functools.wraps`, so a task decorated
    by a third-party decorator still counts as the application's); for a bound
    method, that of its function; for a builtin function, its module. A payload
    can only name objects, not change their ``__module__``.
    """
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    try:
        name = getattr(obj, "__module__", None)
    except Exception:  # a broken __getattr__: cannot tell
        return None
    if isinstance(name, str) and name:
        return name
    if isinstance(obj, types.FunctionType):
        globals_name = obj.__globals__.get("__name__")
        return globals_name if isinstance(globals_name, str) and globals_name else None
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    return None


def normalize_allowed_modules(value: object) -> tuple[str, ...]:
    """``ALLOWED_TASK_MODULES`` checked, as a tuple; ``ValueError`` saying what is wrong."""
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(
            f"must be a list of module names such as ['myapp'], got {type(value).__name__} "
            f"{value!r}"
        )
    names = list(value)
    if not names:
        raise ValueError(
            "is empty, so no task could run; list the modules that hold your tasks, or "
            "leave the key out to allow every module outside the standard library"
        )
    for name in names:
        if not isinstance(name, str) or not _dotted(name):
            raise ValueError(f"must list module names such as 'myapp.tasks', got {name!r}")
        if is_standard_library(name):
            raise ValueError(
                f"lists {name!r}, which is in the standard library: a worker never imports "
                "or runs a standard-library or builtin callable named by a task"
            )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ModuleRule:
    """What a worker may import for one kind of path (task function, runner
    class, retry method).

    :param allowed: ``ALLOWED_TASK_MODULES`` (``None``: every module outside
        the standard library).
    :param exempt_modules: modules of taskq's own objects of this kind (its
        runner classes, its retry policies), allowed whatever ``allowed`` says,
        but only for objects that pass ``exempt``.
    :param exempt: which objects of ``exempt_modules`` are allowed.
    """

    allowed: tuple[str, ...] | None = None
    exempt_modules: tuple[str, ...] = ()
    exempt: Callable[[Any], bool] | None = None

    def module_refusal(self, module: str) -> str | None:
        """Why no path of ``module`` may be imported, or ``None`` if it may."""
        if module.partition(".")[0] == "__main__":
            return "__main__ is the worker's own main script, which no task may name"
        if is_standard_library(module):
            return (
                f"{module} is in the standard library, and a worker never imports or runs "
                "a standard-library or builtin callable named by a task; call it from a "
                "function of your own module and use that function instead"
            )
        if self.allowed is None or _within(module, self.allowed):
            return None
        if _within(module, self.exempt_modules):
            return None
        return self._outside(module)

    def _outside(self, module: str) -> str:
        return (
            f"{module} is not in ALLOWED_TASK_MODULES ({', '.join(self.allowed or ())}); "
            "add it to that setting or move the callable into one of those modules"
        )

    def object_refusal(self, obj: Any) -> str | None:
        """Why ``obj`` (found by resolving a path) may not be used, or ``None``."""
        module = defining_module(obj)
        if module is None:
            return f"taskq cannot tell which module defines {obj!r}"
        reason = self.module_refusal(module)
        if reason is not None:
            return reason
        if self.allowed is None or _within(module, self.allowed):
            return None
        if self.exempt is not None and self.exempt(obj):
            return None
        return self._outside(module)

    def path_refusal(self, path: object) -> str | None:
        """Why ``path`` may not be imported, judged by its module alone (nothing
        is imported); ``None`` if it may, or if it is not a dotted path at all
        (importing it then fails with :class:`TaskImportError`)."""
        try:
            module, _ = split_path(path)
        except TaskImportError:
            return None
        return self.module_refusal(module)

    def check_path(self, path: object, what: str) -> None:
        """Raise :class:`TaskRefused` if ``path`` may not be imported (imports nothing)."""
        reason = self.path_refusal(path)
        if reason is not None:
            raise TaskRefused(f"{what} {path} is refused: {reason}")

    def check_object(self, obj: Any, what: str, path: str) -> None:
        """Raise :class:`TaskRefused` if ``obj``, found at ``path``, may not be used."""
        reason = self.object_refusal(obj)
        if reason is None:
            return
        module = defining_module(obj)
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        found = f"{module}:{name}" if module and isinstance(name, str) else repr(obj)
        where = "" if found == path else f" (it is {found})"
        raise TaskRefused(f"{what} {path} is refused{where}: {reason}")

    def resolve(self, path: str, what: str) -> Any:
        """Import what ``path`` names, checking the path first, each module met
        on the way, then the object found. Raises :class:`TaskRefused` (nothing
        refused is imported) or :class:`TaskImportError`."""
        module_name, qualname = split_path(path)
        self.check_path(path, what)
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
                if isinstance(obj, types.ModuleType):
                    reason = self.module_refusal(obj.__name__)
                    if reason is not None:
                        raise TaskRefused(
                            f"{what} {path} is refused (it goes through module "
                            f"{obj.__name__}): {reason}"
                        )
        except (ImportError, AttributeError) as exc:
            raise TaskImportError(f"cannot import {path!r}: {exc}") from exc
        self.check_object(obj, what, path)
        return obj


def task_rule(allowed: Sequence[str] | None) -> ModuleRule:
    """The rule for task functions (and the classes in ``retry_on``)."""
    return ModuleRule(None if allowed is None else tuple(allowed))
