"""Hook implementations of taskq-rollbar (registered by the ``taskq`` entry point).

Reports come from the worker process, which knows the outcome of every run
(hard timeouts, killed children and lost workers included); the forked child
that ran the task never reports. Reports are sent by a background thread
(:mod:`taskq_rollbar.sender`), and a stopping worker waits a bounded time for
the last ones.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, cast

from taskq_core.exceptions import ConfigError
from taskq_core.hookspecs import hookimpl
from taskq_rollbar.report import Report, build_report
from taskq_rollbar.sender import Sender
from taskq_rollbar.settings import RollbarSettings, load_settings

if TYPE_CHECKING:
    from taskq_core.app import TaskQ
    from taskq_core.broker import Execution
    from taskq_core.task import Task
    from taskq_core.worker import Worker

__all__ = [
    "reset_state",
    "settings_for",
    "taskq_app_created",
    "taskq_task_failed",
    "taskq_task_permanently_failed",
    "taskq_worker_started",
    "taskq_worker_stopping",
]

NO_TOKEN = (
    "no access token: set the ROLLBAR_ACCESS_TOKEN environment variable or "
    'PLUGIN_CONFIG["rollbar"]["access_token"], or call rollbar.init() in your app'
)


class _State:
    """What this process knows: one per process (Rollbar's own state is too)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sender = Sender(on_error=self._send_failed)
        #: ``rollbar.init`` was called by this plugin (not by the application).
        self.initialized_by_us = False
        #: messages already logged (each is logged once per process).
        self.said: set[str] = set()
        #: the id of the worker running in this process.
        self.worker_id: str | None = None
        self.settings: weakref.WeakKeyDictionary[TaskQ, RollbarSettings | None] = (
            weakref.WeakKeyDictionary()
        )
        self.dropped_logged = 0
        self.log: Any = None

    def _send_failed(self, exc: BaseException) -> None:
        if self.log is not None:
            self.log.error("rollbar report failed", error=repr(exc))


_state = _State()


def reset_state() -> None:
    """Forget what this process did: settings, messages said, whether this
    plugin initialized Rollbar (for tests; Rollbar's own state is not reset)."""
    global _state
    _state = _State()


def _log(tq: TaskQ) -> Any:
    log = tq.log.bind(plugin="rollbar")
    _state.log = log
    return log


def _say_once(tq: TaskQ, level: str, event: str, **fields: Any) -> None:
    key = f"{level}|{event}|{sorted(fields.items())!r}"
    with _state.lock:
        if key in _state.said:
            return
        _state.said.add(key)
    getattr(_log(tq), level)(event, **fields)


def settings_for(tq: TaskQ, *, reload: bool = False) -> RollbarSettings | None:
    """The plugin's settings for ``tq`` (``None``, after logging the error
    once, when they are invalid)."""
    with _state.lock:
        if not reload and tq in _state.settings:
            return _state.settings[tq]
        settings: RollbarSettings | None
        try:
            plugin_config = tq.config.get("PLUGIN_CONFIG") or {}
            settings = load_settings(plugin_config.get("rollbar"))
        except ConfigError as exc:
            _say_once(tq, "error", "rollbar reporting off: invalid settings", error=str(exc))
            settings = None
        _state.settings[tq] = settings
        return settings


def _active(tq: TaskQ) -> RollbarSettings | None:
    """The settings when reports are sent, after initializing Rollbar if the
    application has not; ``None`` (said once) when the plugin is inert."""
    settings = settings_for(tq)
    if settings is None:
        return None
    if not settings.enabled:
        _say_once(
            tq,
            "info",
            "rollbar reporting off",
            reason='PLUGIN_CONFIG["rollbar"]["enabled"] is False',
        )
        return None
    loaded = sys.modules.get("rollbar")
    app_initialized = loaded is not None and getattr(loaded, "_initialized", False)
    if not settings.access_token and not app_initialized and not _state.initialized_by_us:
        # inert: decided without importing rollbar (and its HTTP stack), so a
        # worker without a token starts, and forks, as light as one without the plugin
        _say_once(tq, "info", "rollbar reporting off", reason=NO_TOKEN)
        return None
    import rollbar

    with _state.lock:
        if _state.initialized_by_us:
            return settings
        if rollbar._initialized:
            handler = rollbar.SETTINGS.get("handler")
            if not rollbar.SETTINGS.get("access_token") and handler != "agent":
                _say_once(tq, "info", "rollbar reporting off", reason=NO_TOKEN)
                return None
            _say_once(
                tq,
                "info",
                "rollbar reporting on",
                source="the application's rollbar.init()",
                environment=rollbar.SETTINGS.get("environment"),
            )
            return settings
        if not settings.access_token:
            _say_once(tq, "info", "rollbar reporting off", reason=NO_TOKEN)
            return None
        options: dict[str, Any] = {
            # the plugin's thread sends; the worker itself never waits for Rollbar
            "handler": "blocking",
            "timeout": settings.timeout,
            "allow_logging_basic_config": False,
        }
        if settings.endpoint:
            options["endpoint"] = settings.endpoint
        rollbar.init(settings.access_token, settings.environment, **options)
        _state.initialized_by_us = True
    _say_once(
        tq,
        "info",
        "rollbar reporting on",
        source="taskq-rollbar",
        environment=settings.environment,
        endpoint=settings.endpoint or rollbar.SETTINGS.get("endpoint"),
    )
    return settings


def _failed_executions(task: Task) -> int | None:
    """How many runs of ``task`` have failed, the one just recorded included."""
    stored = getattr(task, "_stored", None)
    count = getattr(stored, "executions_count", None)
    if isinstance(count, int):
        return count + 1
    try:
        return task.n_executions()
    except Exception:  # gone (dropped) or unreachable: unknown
        return None


def _send(report: Report) -> None:
    import rollbar

    rollbar.report_message(
        report.message,
        level=cast(Any, report.level),
        extra_data=report.extra,
        payload_data=report.payload_data,
    )


def _submit(tq: TaskQ, report: Report) -> None:
    sender = _state.sender
    if sender.submit(lambda: _send(report)):
        return
    with _state.lock:
        first = _state.dropped_logged == 0
        _state.dropped_logged = sender.dropped
    if first or sender.dropped % 100 == 0:
        _log(tq).warning(
            "rollbar report dropped: too many waiting to be sent",
            task_id=report.extra.get("task_id"),
            dropped=sender.dropped,
            pending=sender.pending,
        )


def _report(
    tq: TaskQ,
    task: Task,
    execution: Execution,
    settings: RollbarSettings,
    *,
    level: str,
    will_retry: bool,
    executions: int | None,
) -> None:
    report = build_report(
        task,
        execution,
        level=level,
        executions=executions,
        will_retry=will_retry,
        include_args=settings.include_args,
        worker_id=_state.worker_id,
    )
    _submit(tq, report)


# -- hooks ----------------------------------------------------------------------------


@hookimpl
def taskq_app_created(tq: TaskQ) -> None:
    """Check the settings early: a mistake is logged when the app is created."""
    settings_for(tq, reload=True)


@hookimpl
def taskq_worker_started(tq: TaskQ, worker: Worker) -> None:
    """Read the settings and initialize Rollbar (unless the application did),
    or say once that reporting is off."""
    _state.worker_id = worker.id
    settings_for(tq, reload=True)
    _active(tq)


@hookimpl
def taskq_task_failed(tq: TaskQ, task: Task, execution: Execution, will_retry: bool) -> None:
    """Report a failure that will be retried, when the settings ask for it
    (permanent failures are reported by :func:`taskq_task_permanently_failed`)."""
    if not will_retry:
        return
    settings = settings_for(tq)
    if settings is None or not (settings.report_retries or settings.min_executions):
        return
    executions = _failed_executions(task)
    if executions is not None and not settings.reports_retry(executions):
        return
    if _active(tq) is None:
        return
    _report(
        tq,
        task,
        execution,
        settings,
        level=settings.retry_level,
        will_retry=True,
        executions=executions,
    )


@hookimpl
def taskq_task_permanently_failed(tq: TaskQ, task: Task, execution: Execution) -> None:
    """Report a task that failed for good, once. A failure dropped with
    ``RetryException(log_error=False)`` is not reported."""
    if execution.get("log_error") is False:
        return
    settings = _active(tq)
    if settings is None:
        return
    _report(
        tq,
        task,
        execution,
        settings,
        level=settings.level,
        will_retry=False,
        executions=_failed_executions(task),
    )


@hookimpl
def taskq_worker_stopping(tq: TaskQ, worker: Worker) -> None:
    """Wait, at most ``flush_timeout`` seconds, for reports still being sent."""
    settings = settings_for(tq)
    timeout = settings.flush_timeout if settings is not None else 0.0
    sender = _state.sender
    if sender.pending:
        started = time.monotonic()
        if not sender.flush(timeout):
            _log(tq).warning(
                "rollbar reports not sent before exit",
                pending=sender.pending,
                flush_timeout=timeout,
            )
            return
        timeout = max(0.0, timeout - (time.monotonic() - started))
    if not _wait_for_rollbar_threads(timeout):
        _log(tq).warning("rollbar reports not sent before exit", flush_timeout=timeout)


def _wait_for_rollbar_threads(timeout: float) -> bool:
    """``rollbar.wait()``, bounded: Rollbar's own sending threads (when the
    application chose its ``thread`` handler) finish within ``timeout``."""
    rollbar = sys.modules.get("rollbar")
    if rollbar is None or not getattr(rollbar, "_initialized", False):
        return True
    threads = getattr(rollbar, "_threads", None)
    if threads is None or not getattr(threads, "unfinished_tasks", 1):
        return True
    done = threading.Event()

    def wait() -> None:
        try:
            rollbar.wait()
        finally:
            done.set()

    threading.Thread(target=wait, name="taskq-rollbar-wait", daemon=True).start()
    return done.wait(timeout)
