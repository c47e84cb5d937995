"""Queue the example tasks of :mod:`examples.tasks` and print the queues.

Run from the repository's root, with taskq-core installed::

    python -m examples.enqueue

The tasks go to the broker of ``examples.tasks.tq``: ``TASKQ_URL`` when it
is set, else the default broker (a SQLite file, no server). A worker on the
same broker runs them: ``taskq worker -m examples.tasks --burst``.
"""

from __future__ import annotations

from examples import tasks


def enqueue() -> None:
    """Queue every kind of example task once (the unique one twice)."""
    for user_id in range(1, 11):
        tasks.send_welcome_email.delay(user_id)
    tasks.build_report.delay("weekly", rows=1000)
    tasks.flaky_payment.delay(42)
    tasks.reindex.delay(1)
    tasks.reindex.delay(1)  # unique: still one task
    tasks.always_fails.delay()


def main() -> None:
    enqueue()
    print(f"queued: {tasks.tq.get_queue_stats()}", flush=True)


if __name__ == "__main__":
    main()
