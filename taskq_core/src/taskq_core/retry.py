"""Retry policies: how long to wait before the next run of a failed task.

A retry policy is any callable ``policy(retry_number) -> seconds`` that raises
:class:`~taskq_core.exceptions.StopRetry` when the task should not run again.
``retry_number`` counts the failed executions so far: it is 1 after the first
failure. ``fixed(60, 3)`` therefore allows 4 executions in all.

The built-in policies are frozen dataclasses: plain values that compare equal,
hash, and have no clock or random source, so they can be property-tested.

A task stores its policy as a msgpack-friendly ``[path, [args...]]`` spec
(:func:`serialize_retry_method`); the worker rebuilds it with
:func:`load_retry_method`. Besides the built-in policies, TaskTiger's forms are
accepted: an importable function ``f(n)``, or a tuple ``(f, args)`` meaning
``f(n, *args)``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self, cast

import msgpack

from taskq_core._internal import import_attribute, serialize_func
from taskq_core.exceptions import SerializationError, StopRetry
from taskq_core.task_modules import ModuleRule

__all__ = [
    "ExponentialRetry",
    "FixedRetry",
    "LinearRetry",
    "RetryPolicy",
    "call_retry_method",
    "exponential",
    "fixed",
    "linear",
    "load_retry_method",
    "policy_rule",
    "serialize_retry_method",
]

# The largest float; delays above it cannot be represented.
_FLOAT_MAX_LOG = math.log(1.7976931348623157e308)


def _real(owner: str, name: str, value: Any, *, minimum: float | None = None) -> float:
    """Check that ``value`` is a finite real number (not a bool), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return float(value)


def _count(owner: str, name: str, value: Any) -> int:
    """Check that ``value`` is a whole number >= 0 (an integral float is accepted)."""
    number = _real(owner, name, value, minimum=0)
    if not number.is_integer():
        raise ValueError(f"{owner}: {name} must be a whole number, got {value!r}")
    return int(number)


def _retry_number(value: Any) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"retry_number must be an int, got {value!r}") from None
    if number < 1:
        raise ValueError(f"retry_number counts failed executions and starts at 1, got {number}")
    return number


# -- the spec format shared with schedules ----------------------------------


class _SpecValue:
    """Base of policy values (dataclasses) that serialize as ``[class path, args]``."""

    def _spec_args(self) -> list[Any]:
        """The msgpack-friendly arguments that :meth:`_from_spec_args` takes back."""
        fields = dataclasses.fields(cast(Any, self))
        return [getattr(self, f.name) for f in fields if f.init]

    @classmethod
    def _from_spec_args(cls, args: Sequence[Any]) -> Self:
        factory: Callable[..., Self] = cls
        return factory(*args)


@dataclasses.dataclass(frozen=True)
class _Bound:
    """A TaskTiger-style ``(f, args)`` pair, loaded: calls ``f(value, *args)``."""

    path: str
    args: tuple[Any, ...]
    func: Callable[..., Any] = dataclasses.field(compare=False, repr=False)


def _check_packable(args: list[Any], what: str) -> None:
    try:
        msgpack.packb(args)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"the arguments of {what} {args!r} cannot be stored: {exc}; "
            "use numbers, strings, bools, None, lists and dicts"
        ) from exc


def _path_of(func: Any, what: str) -> str:
    """``module:qualname`` of ``func``, checked to import back to the same object."""
    if not callable(func):
        raise TypeError(f"{what} {func!r} is not callable")
    path = serialize_func(func, what=what)
    policy_rule(None).check_path(path, what)
    try:
        found = import_attribute(path)
    except ImportError as exc:
        raise ValueError(f"{what} {path} cannot be imported back: {exc}") from exc
    if found is not func:
        raise ValueError(
            f"{what} {path} names a different object when imported; "
            "use the module-level function itself"
        )
    return path


def _serialize_spec(value: Any, *, what: str, value_type: type[_SpecValue]) -> list[Any]:
    """``[path, [args...]]`` for a policy value, a function, ``(f, args)`` or a spec."""
    if isinstance(value, _Bound):
        path, args = value.path, list(value.args)
    elif isinstance(value, value_type):
        path, args = _path_of(type(value), what), value._spec_args()
    elif isinstance(value, (list, tuple)):
        if len(value) != 2 or not isinstance(value[1], (list, tuple)):
            raise TypeError(f"a {what} tuple must be (function, args), got {value!r}")
        head, args = value[0], list(value[1])
        if isinstance(head, str):
            if not head.strip():
                raise ValueError(f"a {what} spec needs a dotted path, got {value!r}")
            policy_rule(None).check_path(head, what)
            path = head
        else:
            path = _path_of(head, what)
    elif callable(value):
        path, args = _path_of(value, what), []
    else:
        raise TypeError(
            f"{what} must be a policy, an importable function or a (function, args) tuple, "
            f"got {value!r}"
        )
    _check_packable(args, what)
    return [path, args]


def _is_policy_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, _SpecValue)


#: where taskq's own policy classes live (allowed whatever ALLOWED_TASK_MODULES says)
_POLICY_MODULES = ("taskq_core.retry", "taskq_core.schedule")


def policy_rule(allowed: Sequence[str] | None) -> ModuleRule:
    """What a worker may import for a stored retry method or schedule: nothing
    of the standard library; with ``allowed`` (``ALLOWED_TASK_MODULES``), only
    those modules, plus taskq's own policy classes."""
    return ModuleRule(
        None if allowed is None else tuple(allowed), _POLICY_MODULES, _is_policy_class
    )


def _load_spec(
    spec: Any,
    *,
    what: str,
    bound_type: type[_Bound],
    allowed_modules: Sequence[str] | None = None,
) -> Any:
    """Rebuild what :func:`_serialize_spec` stored; ``TaskImportError`` if it
    cannot, ``TaskRefused`` if its path is one a worker must not import.

    Values that are loaded already (a policy, a function, ``(f, args)`` with
    ``f`` a function) are accepted too, so callers need not tell them apart.
    """
    if isinstance(spec, (list, tuple)) and len(spec) == 2 and callable(spec[0]):
        spec = _serialize_spec(spec, what=what, value_type=_SpecValue)
    elif callable(spec):
        return spec
    if isinstance(spec, str):
        path, args = spec, []
    elif isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[1], (list, tuple)):
        path, args = spec[0], list(spec[1])
        if not isinstance(path, str):
            raise TypeError(f"a stored {what} starts with a dotted path, got {spec!r}")
    else:
        raise TypeError(f"a stored {what} is [path, [args...]], got {spec!r}")
    target = policy_rule(allowed_modules).resolve(path, f"stored {what}")
    if isinstance(target, type) and issubclass(target, _SpecValue):
        return target._from_spec_args(args)
    if not callable(target):
        raise TypeError(f"stored {what} {path} is not callable")
    if not args:
        return target
    return bound_type(path, tuple(args), target)


# -- retry policies ---------------------------------------------------------


class RetryPolicy(_SpecValue):
    """Base class of the built-in retry policies.

    A subclass is a frozen dataclass whose fields are its spec arguments, with
    a ``max_retries`` field, and implements :meth:`delay_for`; calling it
    checks ``max_retries``.
    """

    max_retries: int

    def delay_for(self, retry_number: int) -> float:
        """The delay in seconds before retry ``retry_number`` (not bounds-checked)."""
        raise NotImplementedError

    def __call__(self, retry_number: int) -> float:
        """Seconds to wait before the next run; ``StopRetry`` past ``max_retries``."""
        number = _retry_number(retry_number)
        if number > self.max_retries:
            raise StopRetry(f"retry {number} is past max_retries={self.max_retries}")
        return self.delay_for(number)


@dataclasses.dataclass(frozen=True)
class FixedRetry(RetryPolicy):
    """Wait ``delay`` seconds before each of at most ``max_retries`` retries."""

    delay: float
    max_retries: int
    _owner: ClassVar[str] = "fixed()"

    def __post_init__(self) -> None:
        _real(self._owner, "delay", self.delay, minimum=0)
        max_retries = _count(self._owner, "max_retries", self.max_retries)
        object.__setattr__(self, "max_retries", max_retries)

    def delay_for(self, retry_number: int) -> float:
        return float(self.delay)


@dataclasses.dataclass(frozen=True)
class LinearRetry(RetryPolicy):
    """Wait ``delay + increment * (n - 1)`` seconds before retry ``n``."""

    delay: float
    increment: float
    max_retries: int
    _owner: ClassVar[str] = "linear()"

    def __post_init__(self) -> None:
        delay = _real(self._owner, "delay", self.delay, minimum=0)
        increment = _real(self._owner, "increment", self.increment)
        max_retries = _count(self._owner, "max_retries", self.max_retries)
        object.__setattr__(self, "max_retries", max_retries)
        if max_retries > 0:
            last = delay + increment * (max_retries - 1)
            if not math.isfinite(last):
                raise ValueError(f"{self._owner}: increment {increment!r} makes delays overflow")
            if last < 0:
                raise ValueError(
                    f"{self._owner}: increment {increment!r} makes the delay of retry "
                    f"{max_retries} negative ({last!r})"
                )

    def delay_for(self, retry_number: int) -> float:
        return float(self.delay + self.increment * (retry_number - 1))


@dataclasses.dataclass(frozen=True)
class ExponentialRetry(RetryPolicy):
    """Wait ``delay * factor ** (n - 1)`` seconds before retry ``n``."""

    delay: float
    factor: float
    max_retries: int
    _owner: ClassVar[str] = "exponential()"

    def __post_init__(self) -> None:
        delay = _real(self._owner, "delay", self.delay, minimum=0)
        factor = _real(self._owner, "factor", self.factor)
        if factor <= 0:
            raise ValueError(f"{self._owner}: factor must be > 0, got {self.factor!r}")
        max_retries = _count(self._owner, "max_retries", self.max_retries)
        object.__setattr__(self, "max_retries", max_retries)
        if delay > 0 and factor > 1 and max_retries > 1:
            # Check the largest delay on a log scale before computing it exactly.
            log_last = math.log(delay) + (max_retries - 1) * math.log(factor)
            if log_last >= _FLOAT_MAX_LOG or not math.isfinite(self.delay_for(max_retries)):
                raise ValueError(
                    f"{self._owner}: the delay of retry {max_retries} overflows; "
                    "lower max_retries or factor"
                )

    def delay_for(self, retry_number: int) -> float:
        if self.delay == 0:
            return 0.0
        try:
            return float(self.delay * self.factor ** (retry_number - 1))
        except OverflowError:
            return math.inf


def fixed(delay: float, max_retries: int) -> FixedRetry:
    """Retry after ``delay`` seconds, at most ``max_retries`` times.

    ``fixed(2, 3)`` gives 2, 2, 2 and stops (``StopRetry``) at retry 4.
    """
    return FixedRetry(delay, max_retries)


def linear(delay: float, increment: float, max_retries: int) -> LinearRetry:
    """Retry after ``delay``, then ``delay + increment``, ``delay + 2*increment``...

    ``linear(1, 2, 3)`` gives 1, 3, 5 and stops at retry 4.
    """
    return LinearRetry(delay, increment, max_retries)


def exponential(delay: float, factor: float, max_retries: int) -> ExponentialRetry:
    """Retry after ``delay``, then ``delay * factor``, ``delay * factor**2``...

    ``exponential(1, 2, 4)`` gives 1, 2, 4, 8 and stops at retry 5.
    """
    return ExponentialRetry(delay, factor, max_retries)


# -- serialization ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BoundRetryMethod(_Bound):
    """A loaded ``(f, args)`` retry method: ``method(n)`` calls ``f(n, *args)``."""

    def __call__(self, retry_number: int) -> float:
        result: float = self.func(retry_number, *self.args)
        return result


def serialize_retry_method(method: Any) -> list[Any]:
    """The ``[path, [args...]]`` spec a task stores for its retry policy.

    Accepts a built-in policy (``fixed(60, 3)``), an importable function
    ``f(n)``, a tuple ``(f, args)`` meaning ``f(n, *args)``, or a spec already
    made. A lambda, a function defined inside another one or in ``__main__``
    is refused here (``ValueError`` saying why), because a worker could not
    import it when the task fails. Arguments that cannot be stored raise
    :class:`~taskq_core.exceptions.SerializationError`.
    """
    return _serialize_spec(method, what="retry method", value_type=RetryPolicy)


def load_retry_method(
    spec: Any, *, allowed_modules: Sequence[str] | None = None
) -> Callable[[int], float]:
    """Rebuild a retry policy from :func:`serialize_retry_method`'s spec.

    A built-in policy comes back equal to the original. Raises
    :class:`~taskq_core.exceptions.TaskImportError` if the path cannot be
    imported, and :class:`~taskq_core.exceptions.TaskRefused` (importing
    nothing) if it names the standard library or, given ``allowed_modules``
    (``ALLOWED_TASK_MODULES``), a module outside those.
    Whatever :func:`serialize_retry_method` accepts is accepted too.
    """
    method: Callable[[int], float] = _load_spec(
        spec, what="retry method", bound_type=BoundRetryMethod, allowed_modules=allowed_modules
    )
    return method


def call_retry_method(
    method: Any, retry_number: int, *, allowed_modules: Sequence[str] | None = None
) -> float:
    """The delay in seconds for ``retry_number`` from a policy or a stored spec.

    ``method`` is anything :func:`serialize_retry_method` accepts, or its spec.
    Raises ``StopRetry`` to stop, ``TaskImportError`` if a spec cannot be
    loaded, ``TaskRefused`` if it may not be (see :func:`load_retry_method`),
    and ``ValueError`` if the policy returns something that is not a finite
    number of seconds >= 0.
    """
    delay: Any = load_retry_method(method, allowed_modules=allowed_modules)(retry_number)
    if isinstance(delay, bool) or not isinstance(delay, numbers.Real):
        raise ValueError(f"retry method returned {delay!r}, not a number of seconds")
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"retry method returned {delay!r}; a delay must be finite and >= 0")
    return float(delay)
