"""The plugin's settings: PLUGIN_CONFIG["rollbar"], the environment, checks."""

from __future__ import annotations

from typing import Any

import pytest

from taskq_core.exceptions import ConfigError
from taskq_rollbar import RollbarSettings, load_settings


def test_defaults_without_config_or_environment() -> None:
    """Nothing configured: no token (inert), production, errors only, no arguments."""
    settings = load_settings(None, environ={})
    assert settings == RollbarSettings()
    assert settings.access_token is None
    assert settings.environment == "production"
    assert settings.level == "error"
    assert settings.retry_level == "warning"
    assert settings.report_retries is False
    assert settings.include_args is False


def test_environment_variables_fill_in() -> None:
    """Token, environment and endpoint come from ROLLBAR_* variables; the
    endpoint gains the trailing slash Rollbar needs."""
    settings = load_settings(
        {},
        environ={
            "ROLLBAR_ACCESS_TOKEN": "tok",
            "ROLLBAR_ENVIRONMENT": "staging",
            "ROLLBAR_ENDPOINT": "http://127.0.0.1:9/api/1",
        },
    )
    assert settings.access_token == "tok"
    assert settings.environment == "staging"
    assert settings.endpoint == "http://127.0.0.1:9/api/1/"


def test_config_wins_over_environment() -> None:
    """A setting given in PLUGIN_CONFIG["rollbar"] beats the environment variable."""
    settings = load_settings(
        {"access_token": "from-config", "environment": "dev"},
        environ={"ROLLBAR_ACCESS_TOKEN": "from-env", "ROLLBAR_ENVIRONMENT": "staging"},
    )
    assert (settings.access_token, settings.environment) == ("from-config", "dev")


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping the process environment is read."""
    monkeypatch.setenv("ROLLBAR_ACCESS_TOKEN", "abc")
    assert load_settings({}).access_token == "abc"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"acess_token": "x"}, ["unknown", "'acess_token'", "access_token"]),
        ({"report_retries": "yes"}, ["report_retries", "True or False", "'yes'"]),
        ({"include_args": 1}, ["include_args", "True or False"]),
        ({"level": "fatal"}, ["level", "critical, error, warning", "'fatal'"]),
        ({"retry_level": "WARN"}, ["retry_level", "one of"]),
        ({"min_executions": 0}, ["min_executions", ">= 1"]),
        ({"min_executions": True}, ["min_executions", "whole number"]),
        ({"min_executions": 2.5}, ["min_executions", "whole number"]),
        ({"timeout": 0}, ["timeout", "positive"]),
        ({"flush_timeout": -1}, ["flush_timeout", ">= 0"]),
        ({"timeout": "3"}, ["timeout", "seconds"]),
        ({"endpoint": "127.0.0.1:80/api/1/"}, ["endpoint", "http:// or https://"]),
        ({"access_token": ""}, ["access_token", "non-empty string"]),
        ({"environment": None}, ["environment", "non-empty string"]),
        (
            {"report_retries": False, "min_executions": 3},
            ["min_executions", "report_retries=False", "drop one"],
        ),
    ],
)
def test_bad_settings_are_named(config: dict[str, Any], words: list[str]) -> None:
    """A bad setting raises ConfigError naming the key and what it expects."""
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    for word in words:
        assert word in str(info.value)


def test_bad_environment_variable_is_named() -> None:
    """A bad ROLLBAR_ENDPOINT names the variable."""
    with pytest.raises(ConfigError, match="ROLLBAR_ENDPOINT"):
        load_settings({}, environ={"ROLLBAR_ENDPOINT": "ftp://example.com/"})


def test_plugin_config_must_be_a_dict() -> None:
    """PLUGIN_CONFIG["rollbar"] that is not a dict is refused."""
    with pytest.raises(ConfigError, match="must be a dict"):
        load_settings(["access_token"], environ={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "reported"),
    [
        ({}, [False, False, False, False]),
        ({"report_retries": True}, [True, True, True, True]),
        ({"min_executions": 3}, [False, False, True, True]),
        ({"report_retries": True, "min_executions": 2}, [False, True, True, True]),
    ],
)
def test_which_retried_failures_are_reported(config: dict[str, Any], reported: list[bool]) -> None:
    """Retried failures: never by default, every one with report_retries, and
    from the N-th failed run with min_executions (which turns reporting on)."""
    settings = load_settings(config, environ={})
    assert [settings.reports_retry(n) for n in (1, 2, 3, 4)] == reported
