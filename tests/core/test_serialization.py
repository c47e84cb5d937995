"""Task arguments and payloads: what can be enqueued, the errors for what
cannot (raised before anything is written), payload versions, and task ids."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import tasks_fixture as tf

from taskq_core import SerializationError, State, Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.serialization import (
    SCHEMA_VERSION,
    decode_payload,
    decode_task_data,
    encode_payload,
    gen_id,
    gen_lock_id,
    gen_unique_id,
    pack,
)

EMPTY = {"queued": 0, "scheduled": 0, "active": 0}


pytestmark = pytest.mark.usefixtures("clean_calls")


@pytest.fixture
def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker())


@pytest.fixture
def eager_app() -> TaskQ:
    return TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})


BAD_VALUES = [
    pytest.param(object(), "builtins.object", id="object"),
    pytest.param(dt.datetime(2020, 1, 1), "datetime.datetime", id="datetime"),
    pytest.param({1, 2}, "builtins.set", id="set"),
    pytest.param(2**80, "builtins.int", id="huge-int"),
]


@pytest.mark.parametrize(("value", "type_name"), BAD_VALUES)
def test_bad_positional_argument_is_refused_before_writing(
    app: TaskQ, value: Any, type_name: str
) -> None:
    """An argument msgpack cannot encode raises SerializationError naming the
    function, the argument's position and its type; nothing is written."""
    with pytest.raises(SerializationError) as info:
        app.delay(tf.record, args=[1, value])
    message = str(info.value)
    assert "tasks_fixture:record" in message
    assert "positional argument 1" in message
    assert type_name in message
    assert app.get_queue_sizes("default") == EMPTY
    assert app.get_queue_stats() == {}
    assert tf.calls == []


@pytest.mark.parametrize(("value", "type_name"), BAD_VALUES)
def test_bad_keyword_argument_is_refused_before_writing(
    app: TaskQ, value: Any, type_name: str
) -> None:
    """A keyword argument that cannot be encoded is named with its type."""
    with pytest.raises(SerializationError) as info:
        app.delay(tf.record, kwargs={"fine": 1, "when": value})
    message = str(info.value)
    assert "keyword argument 'when'" in message
    assert type_name in message
    assert app.get_queue_stats() == {}


def test_serialization_error_is_a_type_error(app: TaskQ) -> None:
    """SerializationError is also a TypeError (what ``json.dumps`` raised in
    TaskTiger), so existing ``except TypeError`` handlers keep working."""
    with pytest.raises(TypeError):
        app.delay(tf.record, args=[object()])


def test_nested_bad_value_is_refused(app: TaskQ) -> None:
    """A bad value nested in a list or dict is refused too, naming the
    top-level argument that holds it."""
    with pytest.raises(SerializationError, match=r"positional argument 0 of type builtins\.list"):
        app.delay(tf.record, args=[[1, {"x": object()}]])
    with pytest.raises(SerializationError, match="keyword argument 'payload'"):
        app.delay(tf.record, kwargs={"payload": {"when": dt.date(2020, 1, 1)}})
    assert app.get_queue_stats() == {}


def test_decorated_delay_is_checked_too() -> None:
    """``f.delay(...)`` on a decorated function checks its arguments the same way."""
    broker = tf.tq.broker
    assert isinstance(broker, MemoryBroker)
    broker.clear()
    with pytest.raises(SerializationError, match="positional argument 0"):
        tf.bare_task.delay({1, 2})  # type: ignore[attr-defined]
    assert tf.tq.get_queue_stats() == {}


def test_scheduled_task_is_checked_too(app: TaskQ) -> None:
    """A task for later is checked at enqueue as well (not when it runs)."""
    with pytest.raises(SerializationError):
        app.delay(tf.record, args=[object()], when=dt.timedelta(hours=1))
    assert app.get_queue_stats() == {}


def test_bad_argument_is_refused_in_eager_mode(eager_app: TaskQ) -> None:
    """With ``ALWAYS_EAGER`` the arguments are still checked, and the function
    does not run."""
    with pytest.raises(SerializationError, match=r"builtins\.object"):
        eager_app.delay(tf.record, args=[object()])
    with pytest.raises(SerializationError):
        Task(eager_app, tf.record, kwargs={"s": {1}})
    assert tf.calls == []


def test_non_string_keyword_name_is_refused(app: TaskQ) -> None:
    """Keyword argument names must be strings."""
    with pytest.raises(SerializationError, match="must be strings"):
        app.delay(tf.record, kwargs={1: "x"})  # type: ignore[dict-item]


def test_plain_data_round_trips(app: TaskQ) -> None:
    """None, bools, ints, floats, strings, bytes, lists and dicts come back
    equal after a trip through the broker (tuples come back as lists)."""
    args: list[Any] = [None, True, -(2**63), 2**64 - 1, 1.5, "ü", b"\x00\xff", [1, [2]], {"a": {}}]
    kwargs: dict[str, Any] = {"t": (1, 2), "empty_list": [], "empty_dict": {}}
    task = app.delay(tf.record, args=args, kwargs=kwargs)
    loaded = Task.from_id(app, "default", State.QUEUED, task.id)
    assert loaded.args == args
    assert loaded.kwargs == {"t": [1, 2], "empty_list": [], "empty_dict": {}}
    app.run_worker(burst=True)
    assert tf.calls == [(tuple(args), {"t": [1, 2], "empty_list": [], "empty_dict": {}})]


def test_empty_args_and_kwargs_are_not_stored(app: TaskQ) -> None:
    """Empty ``args``/``kwargs`` are left out of the stored data."""
    task = app.delay(tf.record)
    assert "args" not in task.data
    assert "kwargs" not in task.data
    assert task.args == []
    assert task.kwargs == {}


# -- payloads ------------------------------------------------------------------------


def test_payload_round_trip_and_version() -> None:
    """A payload decodes to the data it was made from; it carries the schema version."""
    data = {"id": "x", "func": "m:f", "args": [1, b"b"], "kwargs": {"k": None}}
    payload = encode_payload(data)
    assert decode_payload(payload) == data
    from taskq_core.serialization import unpack

    assert unpack(payload)["v"] == SCHEMA_VERSION


def test_payload_with_unknown_version_is_refused() -> None:
    """A payload written by another schema version is refused with a message
    that says what to do."""
    payload = pack({"v": SCHEMA_VERSION + 1, "id": "x", "func": "m:f"})
    with pytest.raises(SerializationError, match="schema version") as info:
        decode_payload(payload)
    assert "Upgrade" in str(info.value)
    with pytest.raises(SerializationError, match="not a mapping"):
        decode_payload(pack([1, 2]))


def test_decode_task_data_reads_back_every_option_taskq_writes(app: TaskQ) -> None:
    """Decision 19: the typed decode accepts every field a task is stored with
    (all options set) and gives back exactly the data that was encoded."""
    task = Task(
        app,
        tf.record,
        args=[1, "two", b"three", [4.5], {"k": None}],
        kwargs={"name": "x", "nested": {"a": [1]}},
        queue="q",
        hard_timeout=12.5,
        unique=True,
        unique_key=["name"],
        lock=True,
        lock_key="name",
        retry=True,
        retry_on=[ValueError, "builtins:KeyError"],
        max_queue_size=10,
        max_stored_executions=3,
        runner_class="tasks_fixture:EchoRunner",
        priority=-7,
    )
    assert decode_task_data(task.payload()) == task.data


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("func", 12, "func"),
        ("func", "no_separator", "func"),
        ("func", "a:b:c", "func"),
        ("args", 5, "args"),
        ("kwargs", [1], "kwargs"),
        ("kwargs", {b"k": 1}, "kwargs"),
        ("hard_timeout", "soon", "hard_timeout"),
        ("hard_timeout", float("nan"), "hard_timeout"),
        ("lock_key", 5, "lock_key"),
        ("lock_key", [1], "lock_key"),
        ("max_stored_executions", "3", "max_stored_executions"),
        ("max_stored_executions", -1, "max_stored_executions"),
        ("retry_on", 5, "retry_on"),
        ("retry_on", [ValueError.__name__, 3], "retry_on"),
        ("retry_method", [1, []], "retry_method"),
        ("priority", True, "priority"),
        ("priority", 5000, "priority"),
        ("unique", "yes", "unique"),
        ("runner_class", 1, "runner_class"),
    ],
)
def test_decode_task_data_names_the_bad_field(field: str, value: Any, expected: str) -> None:
    """Decision 19: a payload that is valid msgpack but has a field of the wrong
    type or shape is refused with a SerializationError naming that field."""
    payload = pack({"v": SCHEMA_VERSION, "id": "t", "func": "m:f", field: value})
    with pytest.raises(SerializationError, match=f"field '{expected}'"):
        decode_task_data(payload)


def test_decode_task_data_needs_a_function_path() -> None:
    """A task map without ``func`` is refused, naming the missing field."""
    with pytest.raises(SerializationError, match="'func' is missing"):
        decode_task_data(pack({"v": SCHEMA_VERSION, "id": "t"}))


def test_decode_task_data_keeps_fields_it_does_not_know() -> None:
    """Fields a newer taskq (or a plugin) adds are kept as they are."""
    data = {"func": "m:f", "id": "t", "verbose_name": "nice", "custom": [1]}
    assert decode_task_data(encode_payload(data)) == data


# -- ids -------------------------------------------------------------------------------


def test_gen_id_is_random_hex() -> None:
    """Random ids are 64 lowercase hex characters and differ."""
    ids = {gen_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)


def test_unique_id_depends_on_queue_function_and_arguments() -> None:
    """A unique id hashes queue, function and arguments; dict order and
    tuple-vs-list do not matter."""
    base = gen_unique_id("q", "m:f", [1, {"a": 1, "b": 2}], {"k": 1, "j": 2})
    assert base == gen_unique_id("q", "m:f", (1, {"b": 2, "a": 1}), {"j": 2, "k": 1})
    assert base != gen_unique_id("other", "m:f", [1, {"a": 1, "b": 2}], {"k": 1, "j": 2})
    assert base != gen_unique_id("q", "m:g", [1, {"a": 1, "b": 2}], {"k": 1, "j": 2})
    assert base != gen_unique_id("q", "m:f", [2, {"a": 1, "b": 2}], {"k": 1, "j": 2})
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert gen_unique_id("q", "m:f", None, None) == gen_unique_id("q", "m:f", [], {})


def test_unique_key_id_ignores_positional_and_other_kwargs() -> None:
    """With ``unique_key`` only the named kwargs count; a missing one counts as None."""
    one = gen_unique_id("q", "m:f", [1], {"a": 1, "b": 2}, ["a"])
    assert one == gen_unique_id("q", "m:f", [2], {"a": 1, "b": 3}, ["a"])
    assert one != gen_unique_id("q", "m:f", [1], {"a": 2, "b": 2}, ["a"])
    assert gen_unique_id("q", "m:f", [], {}, ["a"]) == gen_unique_id(
        "q", "m:f", [], {"a": None}, ["a"]
    )


def test_lock_id_does_not_depend_on_the_queue() -> None:
    """A lock id is shared by the same call in every queue (it takes no queue)."""
    assert gen_lock_id("m:f", [1], {}) == gen_lock_id("m:f", (1,), None)
    assert gen_lock_id("m:f", [1], {"a": 1}, ["a"]) == gen_lock_id("m:f", [2], {"a": 1}, ["a"])
    assert gen_lock_id("m:f", [1], {}) != gen_lock_id("m:f", [2], {})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("hard_timeout", -5),
        ("hard_timeout", float("inf")),
        ("max_stored_executions", -1),
        ("max_queue_size", -3),
    ],
)
def test_enqueue_refuses_options_a_worker_would_refuse(app: TaskQ, option: str, value: Any) -> None:
    """What the typed decode would refuse in a worker is refused at enqueue,
    with a ValueError naming the option, and nothing is written."""
    with pytest.raises(ValueError, match=f"'{option}'"):
        app.delay(tf.record, **{option: value})
    assert app.get_queue_sizes("default") == EMPTY
