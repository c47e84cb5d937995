"""The plugin with the real ``rollbar`` library and a local Rollbar, driven by
an in-process worker (memory broker, sync executor)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import rollbar
import rollbar_app
import structlog
from fake_rollbar import FakeRollbar, unused_endpoint

from taskq_core import TaskQ
from taskq_core.plugins import plugin_infos
from taskq_rollbar import fingerprint, plugin

TOKEN = "test-token"


def make_app(**settings: Any) -> TaskQ:
    """A memory-broker app whose plugin settings are ``settings``."""
    return TaskQ(
        "memory://",
        config={**rollbar_app.FAST_CONFIG, "PLUGIN_CONFIG": {"rollbar": settings}},
    )


def reporting_app(server: FakeRollbar, **settings: Any) -> TaskQ:
    return make_app(access_token=TOKEN, endpoint=server.endpoint, **settings)


def run(tq: TaskQ) -> float:
    """Run a burst worker; return how long it took."""
    started = time.monotonic()
    tq.run_worker(burst=True)
    return time.monotonic() - started


@pytest.fixture(autouse=True)
def trace_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    return tmp_path


def test_plugin_is_discovered_by_entry_point() -> None:
    """Installed, the plugin loads as "rollbar" from taskq-rollbar with its hooks."""
    (info,) = [i for i in plugin_infos() if i.name == "rollbar"]
    assert info.distribution == "taskq-rollbar"
    assert {
        "taskq_task_failed",
        "taskq_task_permanently_failed",
        "taskq_worker_started",
        "taskq_worker_stopping",
    } <= set(info.hooks)


def test_one_item_per_permanent_failure(fake_rollbar: FakeRollbar) -> None:
    """Two tasks that fail for good: two items, one per task, at level error,
    with the traceback as message and the task's facts as custom data; they
    are all sent by the time the worker has stopped."""
    tq = reporting_app(fake_rollbar, environment="ci")
    first = tq.delay(rollbar_app.charge, args=["ann"], queue="billing")
    second = tq.delay(rollbar_app.charge, args=["bob"], queue="billing")
    run(tq)
    items = fake_rollbar.data
    assert len(items) == 2
    assert {item["custom"]["task_id"] for item in items} == {first.id, second.id}
    assert fake_rollbar.tokens == [TOKEN, TOKEN]
    assert fake_rollbar.paths == ["/api/1/item/", "/api/1/item/"]
    for item in items:
        assert item["level"] == "error"
        assert item["environment"] == "ci"
        assert item["title"] == "taskq: rollbar_app:charge failed in billing: PaymentDeclined"
        assert item["fingerprint"] == fingerprint(
            "billing", "rollbar_app:charge", "rollbar_app:PaymentDeclined"
        )
        body = item["body"]["message"]["body"]
        assert body.startswith("Traceback (most recent call last):")
        assert "PaymentDeclined: card declined for" in body
        custom = item["custom"]
        assert custom["queue"] == "billing"
        assert custom["func"] == "rollbar_app:charge"
        assert custom["exception_name"] == "rollbar_app:PaymentDeclined"
        assert custom["executions"] == 1
        assert custom["will_retry"] is False
        assert custom["host"]
        assert custom["worker_id"]
    assert tq.get_queue_stats()["billing"]["error"] == 2


def test_arguments_absent_unless_enabled(fake_rollbar: FakeRollbar) -> None:
    """By default no argument appears anywhere in the item."""
    tq = reporting_app(fake_rollbar)
    tq.delay(rollbar_app.charge, args=["ann"], kwargs={"card": "4000-1234-5678-9999"})
    run(tq)
    (item,) = fake_rollbar.data
    text = json.dumps(item)
    assert "4000-1234-5678-9999" not in text
    assert "args" not in item["custom"]
    assert "kwargs" not in item["custom"]


def test_arguments_included_when_enabled(fake_rollbar: FakeRollbar) -> None:
    """include_args=True adds the task's args and kwargs."""
    tq = reporting_app(fake_rollbar, include_args=True)
    tq.delay(rollbar_app.charge, args=["ann"], kwargs={"card": "4000-1234-5678-9999"})
    run(tq)
    (item,) = fake_rollbar.data
    assert item["custom"]["args"] == ["ann"]
    assert item["custom"]["kwargs"] == {"card": "4000-1234-5678-9999"}


def test_retried_failures_are_not_reported_by_default(
    fake_rollbar: FakeRollbar, trace_dir: Path
) -> None:
    """A task that fails three times (two retries): one item, for the last run."""
    tq = reporting_app(fake_rollbar)
    tq.delay(rollbar_app.flaky, args=["flaky"])
    run(tq)
    assert (trace_dir / "flaky").read_text().splitlines() == ["run"] * 3
    (item,) = fake_rollbar.data
    assert item["level"] == "error"
    assert item["custom"]["executions"] == 3


def test_report_retries_at_warning(fake_rollbar: FakeRollbar) -> None:
    """report_retries=True: each retried failure at warning, the last at error."""
    tq = reporting_app(fake_rollbar, report_retries=True)
    tq.delay(rollbar_app.flaky, args=["flaky"])
    run(tq)
    items = fake_rollbar.data
    assert [(i["level"], i["custom"]["executions"], i["custom"]["will_retry"]) for i in items] == [
        ("warning", 1, True),
        ("warning", 2, True),
        ("error", 3, False),
    ]
    assert len({i["fingerprint"] for i in items}) == 1


def test_min_executions(fake_rollbar: FakeRollbar) -> None:
    """min_executions=2: retried failures from the second failed run on."""
    tq = reporting_app(fake_rollbar, min_executions=2, retry_level="info")
    tq.delay(rollbar_app.flaky, args=["flaky"])
    run(tq)
    assert [(i["level"], i["custom"]["executions"]) for i in fake_rollbar.data] == [
        ("info", 2),
        ("error", 3),
    ]


def test_quietly_dropped_task_is_not_reported(fake_rollbar: FakeRollbar) -> None:
    """RetryException(log_error=False) that runs out of retries: no item."""
    tq = reporting_app(fake_rollbar)
    tq.delay(rollbar_app.give_up_quietly)
    tq.delay(rollbar_app.charge, args=["ann"])
    run(tq)
    assert [i["custom"]["func"] for i in fake_rollbar.data] == ["rollbar_app:charge"]


def test_subqueues_share_a_fingerprint(fake_rollbar: FakeRollbar) -> None:
    """email.CUSTOMER1 and email.CUSTOMER2 group together; another root does not."""
    tq = reporting_app(fake_rollbar)
    for queue in ("email.CUSTOMER1", "email.CUSTOMER2", "sms"):
        tq.delay(rollbar_app.charge, args=["ann"], queue=queue)
    run(tq)
    by_queue = {i["custom"]["queue"]: i for i in fake_rollbar.data}
    assert set(by_queue) == {"email.CUSTOMER1", "email.CUSTOMER2", "sms"}
    one, two, other = (by_queue[q] for q in ("email.CUSTOMER1", "email.CUSTOMER2", "sms"))
    assert one["fingerprint"] == two["fingerprint"] != other["fingerprint"]
    assert (
        one["title"]
        == two["title"]
        == ("taskq: rollbar_app:charge failed in email: PaymentDeclined")
    )


def test_inert_without_token_says_so_once(fake_rollbar: FakeRollbar) -> None:
    """No token anywhere: nothing is sent, Rollbar is left uninitialized, and
    one log line (for two worker runs) says why."""
    with structlog.testing.capture_logs() as logs:
        tq = make_app(endpoint=fake_rollbar.endpoint)
        tq.delay(rollbar_app.charge, args=["ann"])
        run(tq)
        tq.delay(rollbar_app.charge, args=["bob"])
        run(tq)
    assert tq.get_queue_stats()["default"]["error"] == 2
    off = [entry for entry in logs if entry["event"] == "rollbar reporting off"]
    assert len(off) == 1
    assert "ROLLBAR_ACCESS_TOKEN" in off[0]["reason"]
    assert not rollbar._initialized
    time.sleep(0.2)
    assert fake_rollbar.data == []


def test_token_from_the_environment(
    fake_rollbar: FakeRollbar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROLLBAR_ACCESS_TOKEN, ROLLBAR_ENVIRONMENT and ROLLBAR_ENDPOINT are enough."""
    monkeypatch.setenv("ROLLBAR_ACCESS_TOKEN", "env-token")
    monkeypatch.setenv("ROLLBAR_ENVIRONMENT", "staging")
    monkeypatch.setenv("ROLLBAR_ENDPOINT", fake_rollbar.endpoint)
    tq = make_app()
    tq.delay(rollbar_app.charge, args=["ann"])
    run(tq)
    (item,) = fake_rollbar.data
    assert fake_rollbar.tokens == ["env-token"]
    assert item["environment"] == "staging"


def test_disabled_setting(fake_rollbar: FakeRollbar) -> None:
    """enabled=False turns reporting off even with a token."""
    with structlog.testing.capture_logs() as logs:
        tq = reporting_app(fake_rollbar, enabled=False)
        tq.delay(rollbar_app.charge, args=["ann"])
        run(tq)
    assert [e["reason"] for e in logs if e["event"] == "rollbar reporting off"] == [
        'PLUGIN_CONFIG["rollbar"]["enabled"] is False'
    ]
    time.sleep(0.2)
    assert fake_rollbar.data == []


def test_invalid_settings_are_logged_and_reporting_stays_off(fake_rollbar: FakeRollbar) -> None:
    """A bad setting is logged (naming it) when the app is created, the worker
    still runs its tasks, and nothing is sent."""
    with structlog.testing.capture_logs() as logs:
        tq = reporting_app(fake_rollbar, level="fatal")
        tq.delay(rollbar_app.charge, args=["ann"])
        run(tq)
    errors = [e for e in logs if e["event"] == "rollbar reporting off: invalid settings"]
    assert len(errors) == 1
    assert "'level'" in errors[0]["error"]
    assert tq.get_queue_stats()["default"]["error"] == 1
    time.sleep(0.2)
    assert fake_rollbar.data == []


def test_application_rollbar_init_is_kept(
    fake_rollbar: FakeRollbar, caplog: pytest.LogCaptureFixture
) -> None:
    """When the application called rollbar.init itself, the plugin does not call
    it again (no re-init warning) and reports with the application's settings,
    even without a token of its own."""
    rollbar.init(
        "app-token",
        "app-env",
        endpoint=fake_rollbar.endpoint,
        handler="thread",
        allow_logging_basic_config=False,
    )
    caplog.set_level(logging.WARNING, logger="rollbar")
    tq = make_app(endpoint=unused_endpoint())
    tq.delay(rollbar_app.charge, args=["ann"])
    run(tq)
    (item,) = fake_rollbar.data
    assert fake_rollbar.tokens == ["app-token"]
    assert item["environment"] == "app-env"
    assert rollbar.SETTINGS["handler"] == "thread"
    assert "re-init" not in caplog.text
    assert not plugin._state.initialized_by_us


def test_worker_keeps_going_while_rollbar_is_unreachable(trace_dir: Path) -> None:
    """Nobody listens at the endpoint: every task still runs, failures are
    stored, and the worker finishes promptly."""
    tq = make_app(access_token=TOKEN, endpoint=unused_endpoint())
    for i in range(3):
        tq.delay(rollbar_app.charge, args=[f"c{i}"])
        tq.delay(rollbar_app.record, args=["ok"], kwargs={"value": str(i)})
    elapsed = run(tq)
    assert sorted((trace_dir / "ok").read_text().split()) == ["0", "1", "2"]
    assert tq.get_queue_stats()["default"]["error"] == 3
    assert elapsed < 5


def test_slow_rollbar_never_holds_up_the_worker(trace_dir: Path) -> None:
    """A Rollbar that takes 5 s to answer: tasks run without waiting for it and
    the stopping worker waits no longer than flush_timeout for the reports."""
    server = FakeRollbar(delay=5.0)
    try:
        with structlog.testing.capture_logs() as logs:
            tq = make_app(
                access_token=TOKEN, endpoint=server.endpoint, timeout=1.0, flush_timeout=0.5
            )
            for i in range(3):
                tq.delay(rollbar_app.charge, args=[f"c{i}"])
                tq.delay(rollbar_app.record, args=["ok"], kwargs={"value": str(i)})
            elapsed = run(tq)
        assert sorted((trace_dir / "ok").read_text().split()) == ["0", "1", "2"]
        assert elapsed < 2.5
        assert any(e["event"] == "rollbar reports not sent before exit" for e in logs)
        server.wait_for(1)  # the first report did reach it
    finally:
        server.stop()
