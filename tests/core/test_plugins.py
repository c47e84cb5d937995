"""Plugin discovery, the loading switches, the registry, brokers, runners and
hook isolation, with fake distributions installed on ``sys.path``."""

from __future__ import annotations

import sys
from typing import Any

import click
import pytest
from structlog.testing import capture_logs

from taskq_core import plugins
from taskq_core.broker import Broker
from taskq_core.exceptions import PluginError, TaskImportError, UnknownBrokerError
from taskq_core.hookspecs import hookimpl
from taskq_core.plugins import (
    Registry,
    broker_cli_options,
    call_hook_safely,
    get_broker_entry,
    get_plugin_manager,
    get_registry,
    get_runner_class,
    make_broker,
    plugin_infos,
)

pytestmark = pytest.mark.usefixtures("plugin_env")

RECORDING = """
from taskq_core.hookspecs import hookimpl

CALLS = []
REGISTER_CALLS = []


@hookimpl
def taskq_register(register):
    REGISTER_CALLS.append(register)


@hookimpl
def taskq_worker_started(tq, worker):
    CALLS.append(worker)
"""

BROKER = """
from taskq_core.broker import Broker
from taskq_core.hookspecs import hookimpl

_Concrete = type(
    "_Concrete",
    (Broker,),
    {name: (lambda self, *args, **kwargs: None) for name in Broker.__abstractmethods__},
)


class RecordingBroker(_Concrete):
    name = "{name}"

    def __init__(self, **options):
        self.options = options


@hookimpl
def taskq_register(register):
    register.broker("{name}", RecordingBroker, schemes=("{name}",))
"""


def loaded_names() -> list[str]:
    return [name for name, _ in get_plugin_manager().list_name_plugin()]


# -- discovery and the switches -------------------------------------------------------------


def test_installed_plugin_is_discovered_and_its_hooks_called(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin installed under the ``taskq`` entry-point group is loaded after
    core, and its hook implementations are called."""
    module = fake_dists.add("alpha", RECORDING, version="1.2")
    monkeypatch.setenv("TASKQ_PLUGINS", "alpha")
    assert loaded_names() == ["core", "alpha"]
    call_hook_safely("taskq_worker_started", tq="tq", worker="w1")
    assert sys.modules[module].CALLS == ["w1"]
    info = {info.name: info for info in plugin_infos()}["alpha"]
    assert (info.distribution, info.version) == ("taskq-alpha", "1.2")
    assert info.hooks == ("taskq_register", "taskq_worker_started")


def test_plugins_load_lazily_and_once(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is imported until the manager is first used; the manager and
    the registry are then built once and reused."""
    module = fake_dists.add("alpha", RECORDING)
    monkeypatch.setenv("TASKQ_PLUGINS", "alpha")
    assert module not in sys.modules
    manager = get_plugin_manager()
    assert module in sys.modules
    assert get_plugin_manager() is manager
    registry = get_registry()
    assert get_registry() is registry
    assert [registry] == sys.modules[module].REGISTER_CALLS


def test_disable_autoload_loads_core_only(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """TASKQ_DISABLE_PLUGIN_AUTOLOAD=1 loads core and no installed plugin."""
    module = fake_dists.add("alpha", RECORDING)
    monkeypatch.setenv("TASKQ_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert loaded_names() == ["core"]
    assert module not in sys.modules
    assert "memory" in get_registry().brokers


def test_allow_list_loads_only_named_plugins(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TASKQ_PLUGINS=name loads that plugin and core; other installed plugins
    are not even imported."""
    alpha = fake_dists.add("alpha", RECORDING)
    beta = fake_dists.add("beta", RECORDING)
    monkeypatch.setenv("TASKQ_PLUGINS", " beta ,")
    assert loaded_names() == ["core", "beta"]
    assert alpha not in sys.modules
    assert beta in sys.modules


def test_allow_list_wins_over_disable_autoload(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugins named in TASKQ_PLUGINS load even when autoloading is disabled."""
    fake_dists.add("alpha", RECORDING)
    fake_dists.add("beta", RECORDING)
    monkeypatch.setenv("TASKQ_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("TASKQ_PLUGINS", "alpha,core")
    assert loaded_names() == ["core", "alpha"]


def test_allow_list_naming_a_missing_plugin_fails(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name in TASKQ_PLUGINS that is not installed is an error that lists
    the installed plugins."""
    fake_dists.add("alpha", RECORDING)
    monkeypatch.setenv("TASKQ_PLUGINS", "alpha,nope")
    with pytest.raises(PluginError) as excinfo:
        get_plugin_manager()
    # the plugins really installed in this environment follow, sorted by name
    assert str(excinfo.value).startswith(
        'TASKQ_PLUGINS names "nope", which is not installed. Installed plugins: core, alpha'
    )


def test_plugin_that_fails_to_import_is_named(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import error names the plugin, its distribution and the underlying
    error, and nothing half-loaded is kept: the next use fails the same way."""
    fake_dists.add("broken", "import not_a_module_taskq_needs\n", version="0.3")
    monkeypatch.setenv("TASKQ_PLUGINS", "broken")
    expected = (
        'Error importing plugin "broken" (taskq-broken 0.3): ModuleNotFoundError: '
        "No module named 'not_a_module_taskq_needs'"
    )
    with pytest.raises(PluginError) as first:
        get_plugin_manager()
    assert str(first.value) == expected
    assert isinstance(first.value.__cause__, ModuleNotFoundError)
    with pytest.raises(PluginError) as second:
        call_hook_safely("taskq_worker_started", tq=None, worker=None)
    assert str(second.value) == expected


def test_entry_point_to_missing_module_is_named(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry point whose module does not exist says which plugin it is."""
    fake_dists.add("ghost", value="taskq_ghost_plugin_module")
    monkeypatch.setenv("TASKQ_PLUGINS", "ghost")
    with pytest.raises(PluginError, match=r'Error importing plugin "ghost" \(taskq-ghost 0\.1\)'):
        get_plugin_manager()


def test_misspelt_hook_implementation_fails_loudly(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook implementation whose name matches no hook is an error naming the
    plugin, the hook and the closest real hook."""
    fake_dists.add(
        "typo",
        """
        from taskq_core.hookspecs import hookimpl

        @hookimpl
        def taskq_task_enqued(tq, task):
            pass
        """,
    )
    monkeypatch.setenv("TASKQ_PLUGINS", "typo")
    with pytest.raises(PluginError) as excinfo:
        get_plugin_manager()
    message = str(excinfo.value)
    assert message.startswith(
        'Plugin "typo" (taskq-typo 0.1) implements unknown hook "taskq_task_enqued" '
        '(did you mean "taskq_task_enqueued"?)'
    )


def test_hook_implementation_with_unknown_argument_fails(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An implementation asking for an argument the hook does not have cannot
    be registered, and the error names the plugin."""
    fake_dists.add(
        "badargs",
        """
        from taskq_core.hookspecs import hookimpl

        @hookimpl
        def taskq_task_enqueued(tq, task, colour):
            pass
        """,
    )
    monkeypatch.setenv("TASKQ_PLUGINS", "badargs")
    with pytest.raises(PluginError, match=r'(?s)Plugin "badargs" \(taskq-badargs 0\.1\).*colour'):
        get_plugin_manager()


def test_plugin_registered_later_is_checked_too() -> None:
    """A plugin registered in-process after loading is checked for unknown
    hooks at once and is not kept when it fails."""
    manager = get_plugin_manager()

    class Misspelt:
        @hookimpl
        def taskq_worker_startd(self, tq: Any, worker: Any) -> None:
            """Misspelt on purpose."""

    plugin = Misspelt()
    with pytest.raises(PluginError, match='unknown hook "taskq_worker_startd"'):
        manager.register(plugin, name="misspelt")
    assert not manager.is_registered(plugin)


def test_duplicate_entry_point_names_are_refused(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two distributions declaring the same plugin name is an error naming both."""
    fake_dists.add("twin", RECORDING, dist="taskq-twin-one")
    fake_dists.add("twin", RECORDING, dist="taskq-twin-two")
    monkeypatch.setenv("TASKQ_PLUGINS", "twin")
    with pytest.raises(PluginError, match=r"taskq-twin-(one|two) and taskq-twin-(one|two)"):
        get_plugin_manager()


def test_the_core_name_is_reserved(fake_dists: Any) -> None:
    """A third-party entry point may not call itself ``core``."""
    fake_dists.add("core", RECORDING, dist="taskq-impostor")
    with pytest.raises(PluginError, match=r"taskq-impostor.*reserved"):
        get_plugin_manager()


# -- hooks that raise ---------------------------------------------------------------------------


def test_raising_hook_is_logged_with_plugin_name_and_others_still_run(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An implementation that raises is logged with its plugin's name; the
    other implementations run and the caller gets no exception."""
    good = fake_dists.add("good", RECORDING)
    bad = fake_dists.add(
        "bad",
        """
        from taskq_core.hookspecs import hookimpl

        CALLS = []

        @hookimpl
        def taskq_worker_started(tq, worker):
            CALLS.append(worker)
            raise RuntimeError("boom")
        """,
    )
    # pluggy calls the last registered plugin first, so "bad" runs before "good".
    monkeypatch.setenv("TASKQ_PLUGINS", "good,bad")
    with capture_logs() as logs:
        results = call_hook_safely("taskq_worker_started", tq="tq", worker="w")
    assert results == []
    assert sys.modules[bad].CALLS == ["w"]
    assert sys.modules[good].CALLS == ["w"]
    failures = [entry for entry in logs if entry["event"] == "hook failed"]
    assert len(failures) == 1
    assert failures[0]["plugin"] == "bad"
    assert failures[0]["hook"] == "taskq_worker_started"
    assert failures[0]["log_level"] == "error"


def test_call_hook_safely_returns_results_in_call_order() -> None:
    """Non-None results come back in pluggy's order (last registered first)."""
    manager = get_plugin_manager()

    class First:
        @hookimpl
        def taskq_app_created(self, tq: Any) -> str:
            return f"first:{tq}"

    class Second:
        @hookimpl
        def taskq_app_created(self, tq: Any) -> None:
            return None

    class Third:
        @hookimpl
        def taskq_app_created(self, tq: Any) -> str:
            return f"third:{tq}"

    for plugin in (First(), Second(), Third()):
        manager.register(plugin)
    assert call_hook_safely("taskq_app_created", tq="x") == ["third:x", "first:x"]


def test_call_hook_safely_rejects_unknown_hooks_and_missing_arguments() -> None:
    """A typo in the hook name or a missing argument is the caller's bug and raises."""
    with pytest.raises(AttributeError, match="taskq_no_such_hook"):
        call_hook_safely("taskq_no_such_hook")
    with pytest.raises(TypeError, match="worker"):
        call_hook_safely("taskq_worker_started", tq=None)


# -- the registry ------------------------------------------------------------------------------


def test_core_registers_through_the_same_hook() -> None:
    """Core's memory broker and default runner are registry entries of plugin ``core``."""
    registry = get_registry()
    assert registry.brokers["memory"].plugin == "core"
    assert registry.brokers["memory"].schemes == ("memory",)
    assert registry.brokers["memory"].distribution == "taskq-core"
    assert registry.runners["default"].plugin == "core"
    assert registry.schemes["memory"] is registry.brokers["memory"]


def test_exception_in_taskq_register_names_the_plugin(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin whose taskq_register raises gives an error naming it."""
    fake_dists.add(
        "clumsy",
        """
        from taskq_core.hookspecs import hookimpl

        @hookimpl
        def taskq_register(register):
            raise KeyError("oops")
        """,
    )
    monkeypatch.setenv("TASKQ_PLUGINS", "clumsy")
    with pytest.raises(
        PluginError, match=r"Plugin \"clumsy\" \(taskq-clumsy 0\.1\) failed in taskq_register: "
    ):
        get_registry()


def test_duplicate_broker_name_names_both_plugins(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two plugins registering one broker name is an error naming both."""
    fake_dists.add("one", BROKER.replace("{name}", "dup"))
    fake_dists.add("two", BROKER.replace("{name}", "dup"))
    monkeypatch.setenv("TASKQ_PLUGINS", "one,two")
    with pytest.raises(PluginError) as excinfo:
        get_registry()
    message = str(excinfo.value)
    assert "broker 'dup'" in message
    assert '"one"' in message
    assert '"two"' in message


def test_duplicate_runner_in_one_plugin_is_refused() -> None:
    """Registering the same runner name twice is an error."""
    registry = Registry()
    registry.runner("fast", "pkg.mod:Fast")
    with pytest.raises(PluginError, match="runner 'fast' twice"):
        registry.runner("fast", "pkg.mod:Faster")


def test_invalid_registrations_are_refused() -> None:
    """Schemes written as URLs, non-callable factories and unnamed commands are refused."""
    registry = Registry()
    with pytest.raises(PluginError, match="invalid URL scheme 'redis://'"):
        registry.broker("redis", dict, schemes=("redis://",))
    with pytest.raises(PluginError, match="non-callable factory"):
        registry.executor("thread", "not callable")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"give a named click\.Command"):
        registry.command(print)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="not a class or a dotted path"):
        registry.runner("x", 3)  # type: ignore[arg-type]


def test_plugin_asking_for_the_registry_while_registering_gets_it(
    fake_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_registry() called inside taskq_register returns the registry being filled."""
    module = fake_dists.add(
        "curious",
        """
        from taskq_core.hookspecs import hookimpl
        from taskq_core.plugins import get_registry

        SEEN = []

        @hookimpl
        def taskq_register(register):
            SEEN.append(get_registry() is register)
        """,
    )
    monkeypatch.setenv("TASKQ_PLUGINS", "curious")
    get_registry()
    assert sys.modules[module].SEEN == [True]


def test_registry_follows_plugins_registered_later() -> None:
    """A plugin registered in-process after loading adds to the registry; once
    unregistered its entries are gone."""
    assert "late" not in get_registry().runners

    class Late:
        @hookimpl
        def taskq_register(self, register: Registry) -> None:
            register.runner("late", "pkg.mod:LateRunner")

    plugin = Late()
    manager = get_plugin_manager()
    manager.register(plugin, name="late-plugin")
    assert get_registry().runners["late"].plugin == "late-plugin"
    manager.unregister(plugin)
    assert "late" not in get_registry().runners


# -- brokers ---------------------------------------------------------------------------------


@pytest.fixture
def fakeb(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake plugin ``fakeb`` registering broker ``fakeb`` (scheme ``fakeb``)."""
    module: str = fake_dists.add("fakeb", BROKER.replace("{name}", "fakeb"))
    monkeypatch.setenv("TASKQ_PLUGINS", "fakeb")
    return module


def test_make_broker_by_name_passes_options(fakeb: str) -> None:
    """A broker name calls the factory with the options."""
    broker: Any = make_broker("fakeb", host="example", db=3)
    assert type(broker).__module__ == fakeb
    assert broker.options == {"host": "example", "db": 3}


def test_make_broker_by_url_passes_the_url(fakeb: str) -> None:
    """A URL picks the broker by its scheme (any case) and is passed as ``url=``."""
    broker: Any = make_broker("FakeB://host:1/0", timeout=2)
    assert broker.options == {"url": "FakeB://host:1/0", "timeout": 2}


def test_make_broker_defaults_to_taskq_url(fakeb: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no spec the broker comes from TASKQ_URL."""
    monkeypatch.setenv("TASKQ_URL", "fakeb://from-env")
    broker: Any = make_broker()
    assert broker.options == {"url": "fakeb://from-env"}


def test_make_broker_returns_an_instance_as_is(fakeb: str) -> None:
    """A broker instance is returned unchanged; options for it are refused."""
    broker = make_broker("fakeb")
    assert make_broker(broker) is broker
    with pytest.raises(TypeError, match="broker instance"):
        make_broker(broker, host="x")


def test_factory_must_return_a_broker() -> None:
    """A factory that returns something else is a plugin error naming the broker."""

    class Wrong:
        @hookimpl
        def taskq_register(self, register: Registry) -> None:
            register.broker("wrong", lambda **options: object())

    get_plugin_manager().register(Wrong(), name="wrong-plugin")
    with pytest.raises(PluginError, match='broker "wrong" \\(plugin "wrong-plugin"\\)'):
        make_broker("wrong")


def test_unknown_broker_lists_installed_and_names_the_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``redis`` unknown (only core loaded): the message lists the installed
    brokers and names the distribution that provides redis."""
    monkeypatch.setenv("TASKQ_PLUGINS", "core")
    with pytest.raises(UnknownBrokerError) as by_name:
        make_broker("redis")
    message = str(by_name.value)
    assert message.startswith(
        'Unknown broker "redis". Installed brokers: memory (memory://), sqlite (sqlite://).'
    )
    assert "taskq-redis" in message
    with pytest.raises(UnknownBrokerError) as by_url:
        make_broker("rediss://:secret@host:6380/0")
    message = str(by_url.value)
    assert message.startswith('No installed broker handles the URL scheme "rediss://".')
    assert "taskq-redis" in message
    assert "secret" not in message


def test_unknown_broker_not_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A known broker whose distribution is not installed: pip install it."""
    monkeypatch.setitem(plugins.KNOWN_BROKER_DISTRIBUTIONS, "fakeb", "taskq-fakeb")  # type: ignore[arg-type]
    with pytest.raises(UnknownBrokerError) as excinfo:
        get_broker_entry("fakeb")
    assert str(excinfo.value).endswith(
        'The "fakeb" broker is provided by taskq-fakeb: install it with `pip install taskq-fakeb`.'
    )


def test_unknown_broker_installed_but_left_out_says_how_to_enable(
    fakeb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known broker whose distribution is installed but whose plugin the
    allow-list leaves out: the message says how to load it."""
    monkeypatch.setitem(plugins.KNOWN_BROKER_DISTRIBUTIONS, "fakeb", "taskq-fakeb")  # type: ignore[arg-type]
    monkeypatch.setenv("TASKQ_PLUGINS", "core")
    with pytest.raises(UnknownBrokerError) as excinfo:
        make_broker("fakeb")
    message = str(excinfo.value)
    assert "taskq-fakeb 0.1, which is installed" in message
    assert "TASKQ_PLUGINS='core' does not list it" in message
    assert 'add "fakeb" to TASKQ_PLUGINS' in message


def test_unknown_broker_without_known_distribution() -> None:
    """An unknown name nobody ships lists the installed brokers only."""
    with pytest.raises(UnknownBrokerError) as excinfo:
        make_broker("carrier-pigeon")
    message = str(excinfo.value)
    assert message.startswith('Unknown broker "carrier-pigeon". Installed brokers: ')
    assert "pip install" not in message


def test_broker_cli_options_are_collected() -> None:
    """Every broker's CLI options are returned once, by the registry entry too;
    an identical option shared by two brokers is listed once."""
    host = click.Option(["-H", "--host"])
    same_host = click.Option(["-H", "--host"])
    port = click.Option(["--port"], type=int)

    class Options:
        @hookimpl
        def taskq_register(self, register: Registry) -> None:
            register.broker("one", dict, schemes=("one",), cli_options=[host, port])
            register.broker("two", dict, cli_options=[same_host])

    get_plugin_manager().register(Options(), name="options")
    assert get_broker_entry("one").cli_options == (host, port)
    assert get_broker_entry("one://x") is get_broker_entry("one")
    options = broker_cli_options()
    assert host in options
    assert port in options
    assert same_host not in options


def test_clashing_broker_cli_options_are_refused() -> None:
    """Two brokers claiming one flag for different options is an error naming both."""

    class Clash:
        @hookimpl
        def taskq_register(self, register: Registry) -> None:
            register.broker("one", dict, cli_options=[click.Option(["-h", "--host"])])
            register.broker("two", dict, cli_options=[click.Option(["-h", "--hostname"])])

    get_plugin_manager().register(Clash(), name="clash")
    with pytest.raises(PluginError, match=r"broker 'two'.*clashes.*broker 'one'"):
        broker_cli_options()


# -- runners ---------------------------------------------------------------------------------


class CustomRunner:
    """A stand-in runner class."""


def test_runner_by_registered_name_and_by_path() -> None:
    """Runners resolve by registered name (class or path) or by dotted path."""

    class Runners:
        @hookimpl
        def taskq_register(self, register: Registry) -> None:
            register.runner("custom", CustomRunner)
            register.runner("by-path", f"{__name__}:CustomRunner")

    get_plugin_manager().register(Runners(), name="runners")
    assert get_runner_class("custom") is CustomRunner
    assert get_runner_class("by-path") is CustomRunner
    assert get_runner_class(f"{__name__}:CustomRunner") is CustomRunner
    assert get_runner_class(f"{__name__}.CustomRunner") is CustomRunner


def test_default_runner_is_cores() -> None:
    """``default`` is core's DefaultRunner."""
    from taskq_core.runners import DefaultRunner

    assert get_runner_class("default") is DefaultRunner


def test_runner_errors_say_what_to_do() -> None:
    """Unknown names list the registered runners; bad paths and non-classes are explained."""
    with pytest.raises(
        TaskImportError, match=r'Unknown runner "nope"\. Registered runners: default'
    ):
        get_runner_class("nope")
    with pytest.raises(TaskImportError, match="cannot load runner 'no_such_module:Runner'"):
        get_runner_class("no_such_module:Runner")
    with pytest.raises(TaskImportError, match="not a class"):
        get_runner_class(f"{__name__}:loaded_names")


def test_broker_base_class_is_the_contract() -> None:
    """make_broker's result type is the Broker contract (a guard for the fixtures above)."""
    assert Broker.__abstractmethods__


def test_unknown_broker_installed_but_autoload_disabled_says_how_to_enable(
    fakeb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With autoloading disabled, the message names the switch and the plugin to allow."""
    monkeypatch.setitem(plugins.KNOWN_BROKER_DISTRIBUTIONS, "fakeb", "taskq-fakeb")  # type: ignore[arg-type]
    monkeypatch.delenv("TASKQ_PLUGINS")
    with pytest.raises(UnknownBrokerError) as excinfo:
        make_broker("fakeb")
    assert str(excinfo.value).endswith(
        'its plugin "fakeb" is not loaded because TASKQ_DISABLE_PLUGIN_AUTOLOAD is set: '
        'unset it or set TASKQ_PLUGINS to include "fakeb".'
    )
