"""Type-checked only (``nox -s typecheck``), never run: pins how the public
API looks to a type checker. A wrong call must fail, hence the ignores that
mypy's ``warn_unused_ignores`` turns into errors if a call stops failing."""

from __future__ import annotations

import datetime as dt

from taskq_core import Task, TaskQ, fixed, periodic

tq = TaskQ("memory://")


@tq.task
def add(a: int, b: int) -> int:
    return a + b


@tq.task(queue="email", retry_method=fixed(60, 3))
def send(address: str, *, urgent: bool = False) -> None:
    del address, urgent


@tq.task(schedule=periodic(minutes=5))
def cleanup() -> None:
    pass


result: int = add(1, 2)
task: Task = add.delay(1, 2)
send.delay("a@example.com", urgent=True)
cleanup.delay()
other: Task = tq.delay(add, args=[1, 2], queue="math", when=dt.timedelta(seconds=5))
sizes: dict[str, int] = tq.get_queue_sizes("email")

add.delay("one", 2)  # type: ignore[arg-type]
send.delay()  # type: ignore[call-arg]
