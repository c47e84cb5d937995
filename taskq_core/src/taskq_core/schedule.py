"""Schedules: when a periodic task runs next.

A schedule is any callable ``schedule(now) -> datetime | None``: given the
current time (naive UTC) it returns the next run time (naive UTC), or ``None``
when the task should not run any more. Aware datetimes are converted to naive
UTC on the way in.

:func:`periodic` runs every fixed period counted from a start date;
:func:`cron` follows a standard five-field cron expression. Both are frozen
dataclasses (plain values) and serialize like retry policies, as
``[path, [args...]]`` (:func:`serialize_schedule`, :func:`load_schedule`).
TaskTiger's forms are accepted too: an importable function ``f(now)`` or a
tuple ``(f, args)`` meaning ``f(now, *args)``.
"""

from __future__ import annotations

import bisect
import calendar
import dataclasses
import datetime as dt
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Self, cast

from taskq_core.retry import _Bound, _load_spec, _serialize_spec, _SpecValue

__all__ = [
    "BoundSchedule",
    "Cron",
    "Periodic",
    "Schedule",
    "call_schedule",
    "cron",
    "load_schedule",
    "periodic",
    "serialize_schedule",
]

#: Where a :func:`periodic` schedule counts from unless told: a Saturday.
DEFAULT_START = dt.datetime(2000, 1, 1)

_ONE_MICROSECOND = dt.timedelta(microseconds=1)
_ONE_MINUTE = dt.timedelta(minutes=1)


def _naive_utc(value: Any, name: str) -> dt.datetime:
    """``value`` as a naive UTC datetime (aware ones converted, dates at midnight)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise TypeError(f"{name} must be a datetime, got {value!r}")


def _optional_naive_utc(value: Any, name: str) -> dt.datetime | None:
    return None if value is None else _naive_utc(value, name)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: Any, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"a stored {name} is an ISO date string, got {value!r}")
    return dt.datetime.fromisoformat(value)


class Schedule(_SpecValue):
    """Base class of the built-in schedules (frozen dataclasses).

    Subclasses implement :meth:`next_after` for ``now`` inside the bounds;
    calling the schedule applies ``start_date`` and ``end_date``.
    """

    start_date: dt.datetime | None
    end_date: dt.datetime | None

    def _check_bounds(self, owner: str) -> None:
        start = _optional_naive_utc(self.start_date, "start_date")
        end = _optional_naive_utc(self.end_date, "end_date")
        if start is not None and end is not None and end < start:
            raise ValueError(f"{owner}: end_date {end} is before start_date {start}")
        object.__setattr__(self, "start_date", start)
        object.__setattr__(self, "end_date", end)

    def _spec_args(self) -> list[Any]:
        return [*super()._spec_args()[:-2], _iso(self.start_date), _iso(self.end_date)]

    @classmethod
    def _from_spec_args(cls, args: Sequence[Any]) -> Self:
        *head, start, end = args
        factory: Callable[..., Self] = cls
        return factory(*head, _from_iso(start, "start_date"), _from_iso(end, "end_date"))

    def first_run(self) -> dt.datetime | None:
        """The earliest run time allowed by ``start_date`` (``None``: no start)."""
        return self.start_date

    def next_after(self, now: dt.datetime) -> dt.datetime | None:
        """The next run strictly after ``now``, ignoring ``end_date``."""
        raise NotImplementedError

    def __call__(self, now: dt.datetime) -> dt.datetime | None:
        """The next run time after ``now`` (naive UTC), or ``None`` to stop."""
        now = _naive_utc(now, "now")
        if self.end_date is not None and now >= self.end_date:
            return None
        try:
            if self.start_date is not None and now < self.start_date:
                result = self.first_run()
            else:
                result = self.next_after(now)
        except OverflowError:  # past datetime.max
            return None
        if result is not None and self.end_date is not None and result > self.end_date:
            return None
        return result


# -- periodic ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Periodic(Schedule):
    """Every ``period`` seconds, counted from ``start_date`` (see :func:`periodic`)."""

    period: float
    start_date: dt.datetime | None = DEFAULT_START
    end_date: dt.datetime | None = None

    def __post_init__(self) -> None:
        owner = "periodic()"
        period: Any = self.period
        if isinstance(period, bool) or not isinstance(period, numbers.Real):
            raise TypeError(f"{owner}: period must be a number of seconds, got {period!r}")
        if not math.isfinite(period) or period <= 0:
            raise ValueError(f"{owner}: the period must be finite and > 0, got {period!r}")
        if round(float(period) * 1_000_000) < 1:
            raise ValueError(f"{owner}: the period must be at least 1 microsecond, got {period!r}")
        if self.start_date is None:
            object.__setattr__(self, "start_date", DEFAULT_START)
        self._check_bounds(owner)

    def first_run(self) -> dt.datetime:
        assert self.start_date is not None
        return self.start_date

    def next_after(self, now: dt.datetime) -> dt.datetime:
        start = self.first_run()
        step = round(float(self.period) * 1_000_000)
        runs = ((now - start) // _ONE_MICROSECOND) // step
        return start + dt.timedelta(microseconds=(runs + 1) * step)


def periodic(
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
    weeks: float = 0,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
) -> Periodic:
    """Run every ``seconds + minutes + hours + days + weeks``, from ``start_date``.

    Runs fall on ``start_date + k * period`` (``start_date`` defaults to
    2000-01-01 00:00, a Saturday, so ``weeks=1`` means Saturdays at midnight).
    Before ``start_date`` the next run is ``start_date``; at or after
    ``end_date`` there is none, and a run later than ``end_date`` is dropped.
    The period must be > 0.
    """
    parts: dict[str, Any] = {
        "seconds": seconds,
        "minutes": minutes,
        "hours": hours,
        "days": days,
        "weeks": weeks,
    }
    factors = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
    total: float = 0
    for name, value in parts.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"periodic(): {name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"periodic(): {name} must be finite, got {value!r}")
        total += cast(float, value) * factors[name]
    if total <= 0:
        raise ValueError(f"periodic(): the period must be > 0 seconds, got {total!r}")
    return Periodic(total, start_date, end_date)


# -- cron --------------------------------------------------------------------

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # highest value a number may have (7 for day-of-week)
    star_high: int  # highest value of ``*`` and ``a/n`` (6 for day-of-week)
    names: dict[str, int] = dataclasses.field(default_factory=dict)

    def allowed(self) -> str:
        text = f"'*', numbers {self.low}-{self.high}"
        if self.name == "day-of-week":
            text += " (0 and 7 are Sunday), names sun-sat"
        elif self.names:
            text += ", names jan-dec"
        return text + ", ranges a-b, steps */n, a/n or a-b/n, and lists a,b"


_FIELDS = (
    _Field("minute", 0, 59, 59),
    _Field("hour", 0, 23, 23),
    _Field("day-of-month", 1, 31, 31),
    _Field("month", 1, 12, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 7, 6, _DAY_NAMES),
)


class _CronSyntaxError(ValueError):
    pass


def _parse_value(token: str, field: _Field) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
        if not field.low <= value <= field.high:
            raise _CronSyntaxError(f"{value} is out of range")
        return value
    if token.lower() in field.names:
        return field.names[token.lower()]
    raise _CronSyntaxError(f"{token!r} is not a number{' or a name' if field.names else ''}")


def _parse_field(text: str, field: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
                raise _CronSyntaxError(f"step {step_text!r} is not a whole number >= 1")
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.star_high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _parse_value(first, field), _parse_value(last, field)
            if low > high:
                raise _CronSyntaxError(f"range {base!r} runs backwards")
        elif base:
            low = _parse_value(base, field)
            high = field.star_high if slash else low
        else:
            raise _CronSyntaxError("empty value")
        values.update(range(low, high + 1, step))
    if field.name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def _parse_cron(expr: str) -> tuple[tuple[int, ...], ...]:
    if not isinstance(expr, str):
        raise TypeError(f"cron(): expr must be a string, got {expr!r}")
    text = _MACROS.get(expr.strip().lower(), expr)
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(
            f"cron expression {expr!r} has {len(parts)} fields; it needs 5: "
            "minute hour day-of-month month day-of-week (or @hourly, @daily, @weekly, "
            "@monthly, @yearly)"
        )
    parsed = []
    for part, field in zip(parts, _FIELDS, strict=True):
        try:
            parsed.append(_parse_field(part, field))
        except _CronSyntaxError as exc:
            raise ValueError(
                f"cron expression {expr!r}: bad {field.name} field {part!r} ({exc}); "
                f"allowed: {field.allowed()}"
            ) from None
    return tuple(parsed)


def _first_at_least(values: tuple[int, ...], value: int) -> int | None:
    index = bisect.bisect_left(values, value)
    return values[index] if index < len(values) else None


@dataclasses.dataclass(frozen=True)
class Cron(Schedule):
    """The times matching a five-field cron expression (see :func:`cron`)."""

    expr: str
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    _minutes: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _hours: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _days: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _months: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _weekdays: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        minutes, hours, days, months, weekdays = _parse_cron(self.expr)
        for name, values in zip(
            ("_minutes", "_hours", "_days", "_months", "_weekdays"),
            (minutes, hours, days, months, weekdays),
            strict=True,
        ):
            object.__setattr__(self, name, values)
        if self._days_restricted and not self._weekdays_restricted:
            longest = max(calendar.monthrange(2000, month)[1] for month in months)
            if days[0] > longest:
                raise ValueError(
                    f"cron expression {self.expr!r} never matches: no month it allows "
                    f"has a day {days[0]}"
                )
        self._check_bounds("cron()")

    @property
    def _days_restricted(self) -> bool:
        return len(self._days) < 31

    @property
    def _weekdays_restricted(self) -> bool:
        return len(self._weekdays) < 7

    def first_run(self) -> dt.datetime | None:
        if self.start_date is None:
            return None
        start = self.start_date
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + _ONE_MINUTE
        return self._first_match(start)

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        in_month = day in self._days
        weekday = (calendar.weekday(year, month, day) + 1) % 7  # cron: Sunday is 0
        in_week = weekday in self._weekdays
        if self._days_restricted and self._weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def _first_match(self, start: dt.datetime) -> dt.datetime | None:
        """The first matching minute at or after ``start`` (whole minutes)."""
        year, month, day, hour, minute = (
            start.year,
            start.month,
            start.day,
            start.hour,
            start.minute,
        )
        while year <= dt.MAXYEAR:
            if month not in self._months:
                next_month = _first_at_least(self._months, month)
                if next_month is None:
                    year, month = year + 1, self._months[0]
                else:
                    month = next_month
                day, hour, minute = 1, 0, 0
                continue
            last_day = calendar.monthrange(year, month)[1]
            found = next(
                (d for d in range(day, last_day + 1) if self._day_matches(year, month, d)), None
            )
            if found is None:
                year, month = (year, month + 1) if month < 12 else (year + 1, 1)
                day, hour, minute = 1, 0, 0
                continue
            if found != day:
                day, hour, minute = found, 0, 0
            next_hour = _first_at_least(self._hours, hour)
            if next_hour is None:
                day, hour, minute = day + 1, 0, 0
                continue
            if next_hour != hour:
                hour, minute = next_hour, 0
            next_minute = _first_at_least(self._minutes, minute)
            if next_minute is None:
                hour, minute = hour + 1, 0
                continue
            return dt.datetime(year, month, day, hour, next_minute)
        return None

    def next_after(self, now: dt.datetime) -> dt.datetime | None:
        return self._first_match(now.replace(second=0, microsecond=0) + _ONE_MINUTE)


def cron(
    expr: str, start_date: dt.datetime | None = None, end_date: dt.datetime | None = None
) -> Cron:
    """Run at the times a five-field cron expression matches (UTC).

    Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
    ``jan``-``dec``), day of week (0-7, 0 and 7 are Sunday, or ``sun``-``sat``).
    Each field takes ``*``, numbers, ranges ``a-b``, steps ``*/n``, ``a/n`` and
    ``a-b/n``, and lists ``a,b``; names are case-insensitive. When both day
    fields are restricted (neither allows every day), a day matching either
    one matches. ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and
    ``@yearly`` are shorthands.

    The next run is the first matching minute strictly after ``now``. Before
    ``start_date`` it is the first matching minute at or after ``start_date``;
    at or after ``end_date`` there is none, and a run later than ``end_date``
    is dropped. An invalid expression raises ``ValueError`` naming the field.
    """
    return Cron(expr, start_date, end_date)


# -- serialization ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BoundSchedule(_Bound):
    """A loaded ``(f, args)`` schedule: ``schedule(now)`` calls ``f(now, *args)``."""

    def __call__(self, now: dt.datetime) -> dt.datetime | None:
        result: dt.datetime | None = self.func(now, *self.args)
        return result


def serialize_schedule(schedule: Any) -> list[Any]:
    """The ``[path, [args...]]`` spec of a schedule.

    Accepts a built-in schedule, an importable function ``f(now)``, a tuple
    ``(f, args)`` meaning ``f(now, *args)``, or a spec already made. Lambdas
    and functions a worker could not import are refused with ``ValueError``.
    """
    return _serialize_spec(schedule, what="schedule", value_type=Schedule)


def load_schedule(spec: Any) -> Callable[[dt.datetime], dt.datetime | None]:
    """Rebuild a schedule from :func:`serialize_schedule`'s spec.

    A built-in schedule comes back equal to the original. Raises
    :class:`~taskq_core.exceptions.TaskImportError` if the path cannot be imported.
    Whatever :func:`serialize_schedule` accepts is accepted too.
    """
    schedule: Callable[[dt.datetime], dt.datetime | None] = _load_spec(
        spec, what="schedule", bound_type=BoundSchedule
    )
    return schedule


def call_schedule(schedule: Any, now: dt.datetime) -> dt.datetime | None:
    """The next run after ``now`` (naive UTC) from a schedule or a stored spec.

    ``schedule`` is anything :func:`serialize_schedule` accepts, or its spec.
    An aware result is converted to naive UTC; a result that is neither a
    datetime nor ``None`` raises ``TypeError``.
    """
    result = load_schedule(schedule)(now)
    if result is None:
        return None
    if not isinstance(result, dt.datetime):
        raise TypeError(f"schedule returned {result!r}, not a datetime or None")
    return _naive_utc(result, "the next run time")
