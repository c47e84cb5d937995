"""``worker_app``'s tasks on the SQLite file of ``TASKQ_URL``, with a busy
timeout of 0.2 s (``--app short_wait_app:tq``): while another program holds
the file's write lock longer than that, every move of the worker fails at
once and the broker is unavailable to it, as Redis is when its server is
down. (Imported by the workers only: it configures ``worker_app``'s
``TaskQ``.)

Its running tasks are lost only after ``ACTIVE_TASK_UPDATE_TIMEOUT`` = 30 s
without a heartbeat, longer than any lock the tests hold (as the Redis
outage tests run with the default of 60 s): a worker cut off from the broker
longer than that takes its own running tasks for lost when the broker is
back, before its next heartbeat (it recovers expired tasks first).
"""

from __future__ import annotations

import os

import worker_app
from taskq_core.brokers.sqlite import SQLiteBroker

#: how long a move waits for the write lock before it fails
BUSY_TIMEOUT = 0.2

tq = worker_app.tq
tq.configure(
    broker=SQLiteBroker(url=os.environ["TASKQ_URL"], timeout=BUSY_TIMEOUT),
    config={**tq.config, "ACTIVE_TASK_UPDATE_TIMEOUT": 30},
)
