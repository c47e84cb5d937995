"""Configuration keys: TaskTiger's keys and defaults, floats for time values,
and errors that name an unknown key or a value of the wrong type."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
import tasks_fixture as tf

from taskq_core import TaskQ, fixed
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.config import DEFAULTS, SETTINGS, validate_config
from taskq_core.exceptions import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: TaskTiger's defaults for the keys API.md lists (DEFAULT_RETRY_METHOD is
#: checked separately: it is a policy object).
TASKTIGER_DEFAULTS: dict[str, Any] = {
    "ALWAYS_EAGER": False,
    "BATCH_QUEUES": {},
    "ONLY_QUEUES": [],
    "EXCLUDE_QUEUES": [],
    "SINGLE_WORKER_QUEUES": [],
    "DEFAULT_QUEUE": "default",
    "DEFAULT_HARD_TIMEOUT": 300,
    "LOCK_RETRY": 1,
    "ACTIVE_TASK_UPDATE_TIMER": 10,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 60,
    "REQUEUE_EXPIRED_TASKS_INTERVAL": 30,
    "QUEUE_SCHEDULED_TASKS_TIME": 1,
    "SELECT_TIMEOUT": 1,
    "STORE_TRACEBACKS": True,
    "CHILD_CONTEXT_MANAGERS": [],
    "STATS_INTERVAL": 60,
    # TaskTiger keys taskq keeps although API.md does not list them
    "REQUEUE_EXPIRED_TASKS_BATCH_SIZE": 10,
    "SCHEDULED_TASK_BATCH_SIZE": 1000,
}

TIME_KEYS = [
    "DEFAULT_HARD_TIMEOUT",
    "LOCK_RETRY",
    "ACTIVE_TASK_UPDATE_TIMER",
    "ACTIVE_TASK_UPDATE_TIMEOUT",
    "REQUEUE_EXPIRED_TASKS_INTERVAL",
    "QUEUE_SCHEDULED_TASKS_TIME",
    "SELECT_TIMEOUT",
    "STATS_INTERVAL",
]


def test_defaults_are_tasktigers() -> None:
    """Every key API.md lists exists, with TaskTiger's default."""
    config = TaskQ(broker=MemoryBroker()).config
    for key, default in TASKTIGER_DEFAULTS.items():
        assert key in SETTINGS, key
        assert config[key] == default, key
        assert type(config[key]) is type(default), key


def test_default_retry_method_is_fixed_60_3() -> None:
    """``DEFAULT_RETRY_METHOD`` defaults to ``fixed(60, 3)``: 60 s, three retries."""
    config = validate_config(None)
    assert config["DEFAULT_RETRY_METHOD"] == fixed(60, 3)


def test_every_api_key_is_accepted() -> None:
    """A config naming every key of API.md (with non-default values) is accepted as given."""
    manager = tf.CountingContext()
    given: dict[str, Any] = {
        "ALWAYS_EAGER": True,
        "BATCH_QUEUES": {"batch": 10},
        "ONLY_QUEUES": ["a"],
        "EXCLUDE_QUEUES": ["b"],
        "SINGLE_WORKER_QUEUES": ["c"],
        "DEFAULT_QUEUE": "main",
        "DEFAULT_RETRY_METHOD": fixed(5, 2),
        "DEFAULT_HARD_TIMEOUT": 30,
        "LOCK_RETRY": 2,
        "ACTIVE_TASK_UPDATE_TIMER": 5,
        "ACTIVE_TASK_UPDATE_TIMEOUT": 30,
        "REQUEUE_EXPIRED_TASKS_INTERVAL": 15,
        "QUEUE_SCHEDULED_TASKS_TIME": 0,
        "SELECT_TIMEOUT": 2,
        "STORE_TRACEBACKS": False,
        "CHILD_CONTEXT_MANAGERS": [manager],
        "STATS_INTERVAL": 0,
    }
    config = TaskQ(broker=MemoryBroker(), config=given).config
    for key, value in given.items():
        assert config[key] == value, key


@pytest.mark.parametrize("key", TIME_KEYS)
def test_time_values_accept_floats(key: str) -> None:
    """Every time value (seconds) accepts a float."""
    assert validate_config({key: 0.25})[key] == 0.25


def test_unknown_key_is_an_error_naming_it() -> None:
    """An unknown key (a typo) is a ConfigError, a ValueError, that names it
    and suggests close keys."""
    with pytest.raises(ConfigError) as info:
        TaskQ(broker=MemoryBroker(), config={"DEFAULT_QUEUES": "x"})
    message = str(info.value)
    assert "'DEFAULT_QUEUES'" in message
    assert "DEFAULT_QUEUE" in message
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match="'REDIS_PREFIX'"):
        validate_config({"REDIS_PREFIX": "t"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SELECT_TIMEOUT", "1"),
        ("DEFAULT_HARD_TIMEOUT", None),
        ("LOCK_RETRY", True),
        ("ALWAYS_EAGER", 1),
        ("STORE_TRACEBACKS", "yes"),
        ("DEFAULT_QUEUE", 5),
        ("ONLY_QUEUES", "a,b"),
        ("EXCLUDE_QUEUES", "a"),
        ("BATCH_QUEUES", [("a", 1)]),
        ("CHILD_CONTEXT_MANAGERS", contextlib.nullcontext()),
        ("REQUEUE_EXPIRED_TASKS_BATCH_SIZE", 2.5),
        ("SCHEDULED_TASK_BATCH_SIZE", True),
    ],
)
def test_wrong_type_is_an_error_naming_the_key(key: str, value: Any) -> None:
    """A value of the wrong type is a ConfigError naming the key and the type."""
    with pytest.raises(ConfigError) as info:
        validate_config({key: value})
    assert repr(key) in str(info.value)
    assert type(value).__name__ in str(info.value)


@pytest.mark.parametrize("value", [-1, -0.5, float("nan")])
def test_negative_or_nan_time_is_an_error(value: float) -> None:
    """A time value must be a number >= 0."""
    with pytest.raises(ConfigError, match="'LOCK_RETRY'"):
        validate_config({"LOCK_RETRY": value})


@pytest.mark.parametrize("batch_queues", [{"a": 0}, {"a": 1.5}, {1: 2}, {"a": True}])
def test_batch_queues_must_map_names_to_positive_ints(batch_queues: dict[Any, Any]) -> None:
    """``BATCH_QUEUES`` maps queue names to batch sizes >= 1."""
    with pytest.raises(ConfigError, match="BATCH_QUEUES"):
        validate_config({"BATCH_QUEUES": batch_queues})


@pytest.mark.parametrize(
    "value",
    [5, "fixed", (lambda n: 1.0)],
    ids=["int", "str", "lambda"],
)
def test_unusable_default_retry_method_is_an_error(value: Any) -> None:
    """A ``DEFAULT_RETRY_METHOD`` a worker could not use (not a policy, a
    lambda) is refused when the app is configured, naming the key."""
    with pytest.raises(ConfigError, match="DEFAULT_RETRY_METHOD"):
        validate_config({"DEFAULT_RETRY_METHOD": value})


def test_default_retry_method_accepts_tasktiger_forms() -> None:
    """A module-level function and a ``(function, args)`` tuple are accepted."""
    assert (
        validate_config({"DEFAULT_RETRY_METHOD": tf.no_delay_twice})["DEFAULT_RETRY_METHOD"]
        is tf.no_delay_twice
    )
    spec = (tf.no_delay_twice, ())
    assert validate_config({"DEFAULT_RETRY_METHOD": spec})["DEFAULT_RETRY_METHOD"] == spec


def test_child_context_managers_must_be_instances() -> None:
    """``CHILD_CONTEXT_MANAGERS`` lists context manager instances, not classes
    or other objects."""
    with pytest.raises(ConfigError, match="CHILD_CONTEXT_MANAGERS"):
        validate_config({"CHILD_CONTEXT_MANAGERS": [tf.CountingContext]})
    with pytest.raises(ConfigError, match="CHILD_CONTEXT_MANAGERS"):
        validate_config({"CHILD_CONTEXT_MANAGERS": [object()]})


def test_configs_do_not_share_mutable_defaults() -> None:
    """Changing one app's list or dict setting does not change another's or the defaults."""
    one = TaskQ(broker=MemoryBroker())
    two = TaskQ(broker=MemoryBroker())
    one.config["ONLY_QUEUES"].append("x")
    one.config["BATCH_QUEUES"]["x"] = 2
    assert two.config["ONLY_QUEUES"] == []
    assert two.config["BATCH_QUEUES"] == {}
    assert DEFAULTS["ONLY_QUEUES"] == []
    assert DEFAULTS["BATCH_QUEUES"] == {}


def test_config_is_not_the_callers_dict() -> None:
    """The app keeps its own copy of the given mapping."""
    given: dict[str, Any] = {"DEFAULT_QUEUE": "main"}
    app = TaskQ(broker=MemoryBroker(), config=given)
    given["DEFAULT_QUEUE"] = "changed"
    assert app.config["DEFAULT_QUEUE"] == "main"


def test_every_setting_is_documented() -> None:
    """``docs/configuration.md`` has a row for every key in SETTINGS."""
    text = (DOCS / "configuration.md").read_text()
    missing = [key for key in SETTINGS if not re.search(rf"^\| `{key}` \|", text, re.MULTILINE)]
    assert missing == []
