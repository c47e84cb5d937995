"""Schedules: periodic arithmetic (TaskTiger's), the cron parser, bounds, serialization."""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import time
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskq_core.exceptions import TaskImportError
from taskq_core.schedule import (
    DEFAULT_START,
    BoundSchedule,
    Cron,
    Periodic,
    call_schedule,
    cron,
    load_schedule,
    periodic,
    serialize_schedule,
)
from taskq_core.testing.strategies import schedules

D = dt.datetime
UTC = dt.UTC

moments = st.datetimes(min_value=D(2000, 1, 1), max_value=D(2100, 1, 1))


def every_hour_from(now: dt.datetime, offset_minutes: int) -> dt.datetime:
    """A module-level schedule function taking an argument, for ``(f, args)``."""
    base = now.replace(minute=0, second=0, microsecond=0)
    return base + dt.timedelta(hours=1, minutes=offset_minutes)


def tomorrow(now: dt.datetime) -> dt.datetime:
    """A module-level schedule function: midnight after ``now``."""
    return D(now.year, now.month, now.day) + dt.timedelta(days=1)


def aware_noon(now: dt.datetime) -> dt.datetime:
    """A schedule function returning an aware datetime (12:00 at UTC+2)."""
    return D(2030, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))


# -- periodic: TaskTiger's examples ---------------------------------------------


def test_periodic_tasktiger_examples() -> None:
    """The examples of TaskTiger's periodic tests give the same answers."""
    assert periodic(seconds=1)(D(2010, 1, 1)) == D(2010, 1, 1, 0, 0, 1)
    assert periodic(weeks=1)(D(2010, 1, 1)) == D(2010, 1, 2)
    assert periodic(weeks=1, start_date=D(2000, 1, 2))(D(2010, 1, 1)) == D(2010, 1, 3)
    ending = periodic(minutes=1, end_date=D(2010, 1, 1))
    assert ending(D(2009, 12, 31, 23, 59)) == D(2010, 1, 1)
    assert ending(D(2010, 1, 1)) is None


def test_periodic_before_start_returns_start() -> None:
    """Before start_date the next run is start_date itself."""
    schedule = periodic(hours=1, start_date=D(2030, 5, 5, 10, 30))
    assert schedule(D(2020, 1, 1)) == D(2030, 5, 5, 10, 30)


def test_periodic_units_add_up() -> None:
    """All units add into one period; the default start is 2000-01-01."""
    schedule = periodic(seconds=1, minutes=1, hours=1, days=1, weeks=1)
    assert schedule.period == 1 + 60 + 3600 + 86400 + 604800
    assert schedule.start_date == DEFAULT_START == D(2000, 1, 1)


def test_periodic_accepts_fractional_periods_and_stays_after_now() -> None:
    """A fractional period gives runs on the grid strictly after now."""
    schedule = periodic(seconds=1.5)
    assert schedule(D(2000, 1, 1, 0, 0, 10, 700000)) == D(2000, 1, 1, 0, 0, 12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"seconds": 0},
        {"seconds": -5},
        {"minutes": 1, "seconds": -60},
        {"seconds": float("nan")},
        {"seconds": float("inf")},
        {"seconds": 1e-9},
    ],
)
def test_periodic_needs_a_positive_period(kwargs: dict[str, Any]) -> None:
    """A zero, negative, NaN, infinite or sub-microsecond period is a ValueError."""
    with pytest.raises(ValueError, match=r"period|seconds"):
        periodic(**kwargs)


def test_periodic_refuses_end_before_start() -> None:
    """end_date before start_date is a ValueError naming both."""
    with pytest.raises(ValueError, match="end_date"):
        periodic(hours=1, start_date=D(2020, 1, 2), end_date=D(2020, 1, 1))


def test_periodic_refuses_non_numbers() -> None:
    """A string period is a TypeError naming the argument."""
    with pytest.raises(TypeError, match="minutes"):
        periodic(minutes="5")  # type: ignore[arg-type]


def test_aware_datetimes_are_converted_to_naive_utc() -> None:
    """Aware now/start/end are taken as the UTC instant they denote."""
    plus_two = dt.timezone(dt.timedelta(hours=2))
    schedule = periodic(hours=1, start_date=D(2020, 1, 1, 2, tzinfo=plus_two))
    assert schedule.start_date == D(2020, 1, 1)
    assert schedule(D(2020, 1, 1, 3, 30, tzinfo=plus_two)) == D(2020, 1, 1, 2)
    assert cron("0 * * * *")(D(2020, 1, 1, 3, 30, tzinfo=plus_two)) == D(2020, 1, 1, 2)


def tasktiger_periodic(
    now: dt.datetime, period: int, start: dt.datetime, end: dt.datetime | None
) -> dt.datetime | None:
    """TaskTiger's documented arithmetic, written out for comparison (whole seconds)."""
    if end is not None and now >= end:
        return None
    if now < start:
        return start
    delta = now - start
    whole_seconds = delta.days * 86400 + delta.seconds
    runs = whole_seconds // period
    result = start + dt.timedelta(seconds=(runs + 1) * period)
    if end is not None and result > end:
        return None
    return result


@given(
    period=st.integers(min_value=1, max_value=90 * 86400),
    start=moments,
    now=moments,
    end_offset=st.none() | st.integers(min_value=0, max_value=200 * 365 * 86400),
)
def test_periodic_matches_tasktiger_arithmetic(
    period: int, start: dt.datetime, now: dt.datetime, end_offset: int | None
) -> None:
    """For whole-second periods, the next run equals TaskTiger's formula."""
    end = None if end_offset is None else start + dt.timedelta(seconds=end_offset)
    expected = tasktiger_periodic(now, period, start, end)
    assert periodic(seconds=period, start_date=start, end_date=end)(now) == expected


@given(schedule=schedules(), now=moments)
def test_periodic_runs_are_on_the_grid_and_after_now(schedule: Periodic, now: dt.datetime) -> None:
    """Every run is start + k*period, strictly after now, and no grid point is skipped."""
    result = schedule(now)
    assert schedule.start_date is not None
    if result is None:
        assert schedule.end_date is not None
        return
    assert result > now
    if schedule.end_date is not None:
        assert result <= schedule.end_date
    if result == schedule.start_date:
        return
    offset = (result - schedule.start_date).total_seconds()
    assert offset % schedule.period == 0
    assert result - dt.timedelta(seconds=schedule.period) <= now


# -- cron: explicit examples --------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "now", "expected"),
    [
        ("* * * * *", D(2024, 3, 10, 10, 0, 30), D(2024, 3, 10, 10, 1)),
        ("* * * * *", D(2024, 3, 10, 10, 0), D(2024, 3, 10, 10, 1)),
        ("* * * * *", D(2024, 12, 31, 23, 59, 59, 999999), D(2025, 1, 1)),
        ("*/15 * * * *", D(2024, 3, 10, 10, 7), D(2024, 3, 10, 10, 15)),
        ("*/15 * * * *", D(2024, 3, 10, 10, 45), D(2024, 3, 10, 11, 0)),
        ("*/15 * * * *", D(2024, 3, 10, 23, 50), D(2024, 3, 11, 0, 0)),
        ("0-30/10 * * * *", D(2024, 3, 10, 10, 25), D(2024, 3, 10, 10, 30)),
        ("0-30/10 * * * *", D(2024, 3, 10, 10, 31), D(2024, 3, 10, 11, 0)),
        ("5/20 * * * *", D(2024, 3, 10, 10, 26), D(2024, 3, 10, 10, 45)),
        ("1-3,10 * * * *", D(2024, 3, 10, 10, 3), D(2024, 3, 10, 10, 10)),
        ("0 9-17 * * *", D(2024, 3, 10, 17, 30), D(2024, 3, 11, 9, 0)),
        ("0 9-17 * * *", D(2024, 3, 10, 8, 59, 59), D(2024, 3, 10, 9, 0)),
        # 2024-03-08 is a Friday
        ("30 8 * * mon-fri", D(2024, 3, 8, 9, 0), D(2024, 3, 11, 8, 30)),
        ("30 8 * * MON-FRI", D(2024, 3, 8, 8, 0), D(2024, 3, 8, 8, 30)),
        # 2024-03-12 is a Tuesday
        ("0 5 * * tue", D(2024, 3, 11, 12, 0), D(2024, 3, 12, 5, 0)),
        ("0 5 * * tue", D(2024, 3, 12, 5, 0), D(2024, 3, 19, 5, 0)),
        ("0 5 * * Tue", D(2024, 3, 12, 4, 59), D(2024, 3, 12, 5, 0)),
        ("0 0 1 jan *", D(2024, 3, 10), D(2025, 1, 1)),
        ("0 12 * JAN,Jul *", D(2024, 3, 10), D(2024, 7, 1, 12, 0)),
        ("0 0 1 1 *", D(2024, 12, 31, 23, 59), D(2025, 1, 1)),
        ("0 0 31 * *", D(2024, 4, 1), D(2024, 5, 31)),
        ("0 0 30 * *", D(2024, 1, 30, 0, 0), D(2024, 3, 30)),
        # Sunday as 0, 7 and a name; 2024-03-10 is a Sunday
        ("0 0 * * 0", D(2024, 3, 5), D(2024, 3, 10)),
        ("0 0 * * 7", D(2024, 3, 5), D(2024, 3, 10)),
        ("0 0 * * sun", D(2024, 3, 5), D(2024, 3, 10)),
        ("0 0 * * 5-7", D(2024, 3, 9, 1), D(2024, 3, 10)),
        # both day fields restricted: either one matches (2024-01-01 is a Monday)
        ("0 0 13 * fri", D(2024, 1, 1), D(2024, 1, 5)),
        ("0 0 13 * fri", D(2024, 1, 12), D(2024, 1, 13)),
        ("0 0 */2 * mon", D(2024, 1, 1, 1), D(2024, 1, 3)),
        # only day-of-month restricted
        ("0 0 13 * *", D(2024, 1, 1), D(2024, 1, 13)),
        # only day-of-week restricted
        ("0 0 * * fri", D(2024, 1, 6), D(2024, 1, 12)),
        # leap days
        ("0 0 29 2 *", D(2021, 3, 1), D(2024, 2, 29)),
        ("0 0 29 2 *", D(2024, 2, 29), D(2028, 2, 29)),
        ("0 0 29 2 *", D(2096, 3, 1), D(2104, 2, 29)),
        ("@hourly", D(2024, 3, 10, 10, 5), D(2024, 3, 10, 11, 0)),
        ("@daily", D(2024, 3, 10, 10, 5), D(2024, 3, 11)),
        ("@weekly", D(2024, 3, 10, 10, 5), D(2024, 3, 17)),
        ("@monthly", D(2024, 3, 10, 10, 5), D(2024, 4, 1)),
        ("@yearly", D(2024, 3, 10, 10, 5), D(2025, 1, 1)),
        ("  0   5  *  *  tue ", D(2024, 3, 11), D(2024, 3, 12, 5, 0)),
    ],
)
def test_cron_examples(expr: str, now: dt.datetime, expected: dt.datetime) -> None:
    """The next run is the first matching minute strictly after now."""
    assert cron(expr)(now) == expected


def test_cron_stops_at_the_end_of_time() -> None:
    """Past the last representable minute there is no next run."""
    assert cron("* * * * *")(D(9999, 12, 31, 23, 59)) is None
    assert cron("0 0 29 2 *")(D(9996, 3, 1)) is None


def test_cron_bounds() -> None:
    """Before start_date: the first match at or after it; at or after end_date: none."""
    schedule = cron("0 * * * *", start_date=D(2024, 1, 1, 10, 30), end_date=D(2024, 1, 1, 12))
    assert schedule(D(2020, 1, 1)) == D(2024, 1, 1, 11)
    assert schedule(D(2024, 1, 1, 10, 59)) == D(2024, 1, 1, 11)
    assert schedule(D(2024, 1, 1, 11)) == D(2024, 1, 1, 12)
    assert schedule(D(2024, 1, 1, 12)) is None
    on_time = cron("0 * * * *", start_date=D(2024, 1, 1, 10))
    assert on_time(D(2020, 1, 1)) == D(2024, 1, 1, 10)
    with_seconds = cron("* * * * *", start_date=D(2024, 1, 1, 10, 0, 1))
    assert with_seconds(D(2020, 1, 1)) == D(2024, 1, 1, 10, 1)


def test_cron_drops_a_run_after_end_date() -> None:
    """A next run later than end_date gives None."""
    schedule = cron("0 0 1 * *", end_date=D(2024, 1, 15))
    assert schedule(D(2024, 1, 10)) is None


@pytest.mark.parametrize(
    ("expr", "field"),
    [
        ("* * * *", "5"),
        ("* * * * * *", "5"),
        ("", "5"),
        ("60 * * * *", "minute"),
        ("-1 * * * *", "minute"),
        ("a * * * *", "minute"),
        ("*/0 * * * *", "minute"),
        ("*/x * * * *", "minute"),
        ("5-1 * * * *", "minute"),
        ("1,,2 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day-of-month"),
        ("* * 32 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("* * * foo *", "month"),
        ("* * * * 8", "day-of-week"),
        ("* * * * funday", "day-of-week"),
        ("* * * jan-feb-mar *", "month"),
        ("* * mon * *", "day-of-month"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 4,6,9,11 *", "never matches"),
        ("@reboot", "5"),
    ],
)
def test_invalid_cron_expressions_name_the_field(expr: str, field: str) -> None:
    """An invalid expression is a ValueError at construction naming what is wrong."""
    with pytest.raises(ValueError, match=field):
        cron(expr)


def test_invalid_cron_message_says_what_is_allowed() -> None:
    """The error lists what the bad field allows."""
    with pytest.raises(ValueError, match=r"numbers 0-7 \(0 and 7 are Sunday\), names sun-sat"):
        cron("0 0 * * someday")


def test_impossible_day_is_fine_when_day_of_week_is_restricted() -> None:
    """Feb 30 or Monday: the day-of-week part still matches, so it is valid."""
    assert cron("0 0 30 2 mon")(D(2024, 2, 1)) == D(2024, 2, 5)


def test_cron_is_efficient_for_rare_schedules() -> None:
    """Rare schedules are found by skipping months and days, not minute by minute."""
    schedule = cron("59 23 29 2 *")
    began = time.perf_counter()
    now = D(2001, 3, 1)
    for _ in range(200):
        result = schedule(now)
        assert result is not None
        now = result
    assert now.year > 2700
    assert time.perf_counter() - began < 5


def test_cron_is_a_frozen_hashable_value() -> None:
    """Equal expressions and bounds give equal, hashable, immutable schedules."""
    assert cron("0 5 * * tue") == Cron("0 5 * * tue")
    assert len({cron("0 5 * * tue"), cron("0 5 * * tue"), cron("0 6 * * tue")}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cron("* * * * *").expr = "0 * * * *"  # type: ignore[misc]


# -- cron against a brute-force reference --------------------------------------

FIELD_RANGES = {
    "minute": (0, 59),
    "hour": (0, 23),
    "dom": (1, 31),
    "month": (1, 12),
    "dow": (0, 6),
}
MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def cron_field(draw: st.DrawFn, kind: str) -> tuple[str, set[int]]:
    """One field as (text, the set of values it means), built independently of the parser."""
    low, high = FIELD_RANGES[kind]
    names = {"month": MONTH_NAMES, "dow": DAY_NAMES}.get(kind)

    def show(value: int, *, in_range: bool = False) -> str:
        if kind == "dow" and value == 0 and not in_range and draw(st.booleans()):
            return "7"
        if names and draw(st.booleans()):
            name = names[value - low]
            return name.upper() if draw(st.booleans()) else name
        return str(value)

    shapes = ["star", "value", "range", "step", "range_step", "start_step", "list"]
    shape = draw(st.sampled_from(shapes))
    if shape == "star":
        return "*", set(range(low, high + 1))
    if shape == "value":
        value = draw(st.integers(low, high))
        return show(value), {value}
    if shape == "step":
        step = draw(st.integers(1, high - low + 1))
        return f"*/{step}", set(range(low, high + 1, step))
    first = draw(st.integers(low, high))
    last = draw(st.integers(first, high))
    if shape == "range":
        return f"{show(first, in_range=True)}-{show(last, in_range=True)}", set(
            range(first, last + 1)
        )
    if shape == "range_step":
        step = draw(st.integers(1, high - low + 1))
        text = f"{show(first, in_range=True)}-{show(last, in_range=True)}/{step}"
        return text, set(range(first, last + 1, step))
    if shape == "start_step":
        step = draw(st.integers(1, high - low + 1))
        return f"{show(first, in_range=True)}/{step}", set(range(first, high + 1, step))
    values = draw(st.lists(st.integers(low, high), min_size=1, max_size=4))
    return ",".join(show(v) for v in values), set(values)


@st.composite
def cron_cases(draw: st.DrawFn) -> tuple[str, dict[str, set[int]]]:
    """A cron expression and the value sets of its five fields."""
    kinds = ["minute", "hour", "dom", "month", "dow"]
    fields = [draw(cron_field(kind)) for kind in kinds]
    expr = " ".join(text for text, _ in fields)
    return expr, {kind: values for kind, (_, values) in zip(kinds, fields, strict=True)}


def reference_matches_day(sets: dict[str, set[int]], day: dt.date) -> bool:
    """Whether a day matches, by the textbook rule."""
    dom_all = sets["dom"] == set(range(1, 32))
    dow_all = sets["dow"] == set(range(7))
    in_dom = day.day in sets["dom"]
    in_dow = day.isoweekday() % 7 in sets["dow"]
    if day.month not in sets["month"]:
        return False
    if not dom_all and not dow_all:
        return in_dom or in_dow
    return in_dom and in_dow


def reference_next(
    sets: dict[str, set[int]], now: dt.datetime, horizon: dt.timedelta
) -> dt.datetime | None:
    """Walk minute by minute (jumping over days that cannot match) up to the horizon."""
    moment = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    limit = now + horizon
    while moment <= limit:
        if not reference_matches_day(sets, moment.date()):
            moment = D(moment.year, moment.month, moment.day) + dt.timedelta(days=1)
            continue
        if moment.hour in sets["hour"] and moment.minute in sets["minute"]:
            return moment
        moment += dt.timedelta(minutes=1)
    return None


def never_matches(sets: dict[str, set[int]]) -> bool:
    """Only day-of-month is restricted, and no allowed month has any of its days."""
    if sets["dow"] != set(range(7)) or sets["dom"] == set(range(1, 32)):
        return False
    return all(min(sets["dom"]) > calendar.monthrange(2000, m)[1] for m in sets["month"])


HORIZON = dt.timedelta(days=9 * 366)


@settings(max_examples=300, deadline=None)
@given(case=cron_cases(), now=moments)
def test_cron_agrees_with_brute_force(
    case: tuple[str, dict[str, set[int]]], now: dt.datetime
) -> None:
    """cron(expr)(now) is the first minute after now that the reference walk finds."""
    expr, sets = case
    if never_matches(sets):
        with pytest.raises(ValueError, match="never matches"):
            cron(expr)
        return
    result = cron(expr)(now)
    expected = reference_next(sets, now, HORIZON)
    if expected is None:
        assert result is None or result > now + HORIZON
    else:
        assert result == expected


# -- serialization ----------------------------------------------------------


@given(schedule=schedules())
def test_periodic_round_trips_through_msgpack(schedule: Periodic) -> None:
    """A periodic schedule serializes to msgpack and loads back equal."""
    spec = serialize_schedule(schedule)
    assert load_schedule(msgpack.unpackb(msgpack.packb(spec))) == schedule


def test_cron_round_trips_through_msgpack() -> None:
    """A cron schedule with bounds serializes to msgpack and loads back equal."""
    schedule = cron("*/5 9-17 * * mon-fri", start_date=D(2024, 1, 1), end_date=D(2025, 1, 1))
    spec = serialize_schedule(schedule)
    assert spec == [
        "taskq_core.schedule:Cron",
        ["*/5 9-17 * * mon-fri", "2024-01-01T00:00:00", "2025-01-01T00:00:00"],
    ]
    loaded = load_schedule(msgpack.unpackb(msgpack.packb(spec)))
    assert loaded == schedule
    assert loaded(D(2024, 3, 8, 17, 56)) == D(2024, 3, 11, 9, 0)


def test_periodic_spec_shape() -> None:
    """A periodic schedule is stored as [class path, [period, start, end]]."""
    assert serialize_schedule(periodic(minutes=1)) == [
        "taskq_core.schedule:Periodic",
        [60, "2000-01-01T00:00:00", None],
    ]


def test_function_schedules() -> None:
    """A plain function and (f, args) are accepted, as in TaskTiger."""
    assert serialize_schedule(tomorrow) == [f"{__name__}:tomorrow", []]
    assert load_schedule(serialize_schedule(tomorrow)) is tomorrow
    spec = serialize_schedule((every_hour_from, [15]))
    assert spec == [f"{__name__}:every_hour_from", [15]]
    loaded = load_schedule(spec)
    assert isinstance(loaded, BoundSchedule)
    assert loaded(D(2024, 1, 1, 10, 40)) == D(2024, 1, 1, 11, 15)
    assert load_schedule((every_hour_from, [15])) == loaded
    assert load_schedule(tomorrow) is tomorrow


def test_lambda_schedule_is_refused() -> None:
    """A lambda schedule is refused at serialization, saying why."""
    with pytest.raises(ValueError, match="lambda"):
        serialize_schedule(lambda now: now)


def test_load_unknown_schedule_raises_task_import_error() -> None:
    """An unimportable stored schedule raises TaskImportError."""
    with pytest.raises(TaskImportError):
        load_schedule(["no_such_module_here:every_day", []])


def test_call_schedule() -> None:
    """call_schedule works on values, specs and tuples and returns naive UTC."""
    now = D(2024, 1, 1, 10, 40)
    assert call_schedule(periodic(hours=1), now) == D(2024, 1, 1, 11)
    assert call_schedule(serialize_schedule(cron("0 0 * * *")), now) == D(2024, 1, 2)
    assert call_schedule((every_hour_from, [5]), now) == D(2024, 1, 1, 11, 5)
    assert call_schedule(aware_noon, now) == D(2030, 1, 1, 10)
    assert call_schedule(periodic(hours=1, end_date=now), now) is None


def not_a_time(now: dt.datetime) -> str:
    """A broken schedule function returning a string."""
    return "tomorrow"


def test_call_schedule_refuses_non_datetimes() -> None:
    """A schedule returning something that is not a datetime is a TypeError."""
    with pytest.raises(TypeError, match="not a datetime"):
        call_schedule(not_a_time, D(2024, 1, 1))


def test_schedule_now_must_be_a_datetime() -> None:
    """Calling a schedule with something that is not a datetime is a TypeError."""
    with pytest.raises(TypeError, match="now"):
        periodic(hours=1)("2024-01-01")  # type: ignore[arg-type]
