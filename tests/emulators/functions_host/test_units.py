"""Pure parts of the local Functions host: route templates and host.json/settings parsing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from emulators.functions_host._app import UserCall
from emulators.functions_host._invoke import InvocationResult, Invoker
from emulators.functions_host._routing import RouteTemplate, RouteTemplateError
from emulators.functions_host._settings import (
    HostConfigError,
    apply_settings_to_environ,
    load_host_config,
    load_local_settings,
    parse_timespan,
    resolve_app_setting_refs,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id:int}", "/items/42", {"id": "42"}),
        ("items/{id:int}", "/items/x", None),
        ("items/{id:int:min(10)}", "/items/9", None),
        ("Items/{name?}", "/items", {}),
        ("items/{name?}", "/items/", {}),
        ("items/{name=all}", "/items", {"name": "all"}),
        ("files/{*rest}", "/files/a/b/c", {"rest": "a/b/c"}),
        ("files/{*rest}", "/files", {}),
        ("a/{x}.{ext:alpha}", "/a/report.pdf", {"x": "report", "ext": "pdf"}),
        ("x/{code:regex(^[a-z]{{2}}$)}", "/x/ab", {"code": "ab"}),
        ("", "", {}),
        ("", "/", {}),
    ],
)
def test_route_template_matching(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_route_precedence_and_errors() -> None:
    assert RouteTemplate("items/special").precedence < RouteTemplate("items/{id:int}").precedence
    assert RouteTemplate("items/{id:int}").precedence < RouteTemplate("items/{id}").precedence
    with pytest.raises(RouteTemplateError, match="not supported"):
        RouteTemplate("items/{id:bogus}")
    with pytest.raises(RouteTemplateError, match="must be last"):
        RouteTemplate("items/{id?}/more")


def test_timespans() -> None:
    assert parse_timespan("00:05:00", what="t") == dt.timedelta(minutes=5)
    assert parse_timespan("1.02:00:00.5", what="t") == dt.timedelta(days=1, hours=2, milliseconds=500)
    assert parse_timespan("-1", what="t") is None
    with pytest.raises(HostConfigError):
        parse_timespan("5 minutes", what="t")


def test_host_json_defaults_file_and_overrides(tmp_path: Path) -> None:
    assert load_host_config(tmp_path / "missing.json").sb_max_concurrent_calls == 16
    host_json = tmp_path / "host.json"
    host_json.write_text(
        json.dumps({"functionTimeout": "00:10:00", "extensions": {"serviceBus": {"maxConcurrentCalls": 4}}}),
        encoding="utf-8",
    )
    config = load_host_config(
        host_json,
        {
            "AzureFunctionsJobHost__extensions__serviceBus__autoCompleteMessages": "false",
            "AzureFunctionsJobHost__extensions__http__routePrefix": "",
        },
    )
    assert config.function_timeout == dt.timedelta(minutes=10)
    assert config.sb_max_concurrent_calls == 4
    assert config.sb_auto_complete_messages is False
    assert config.route_prefix == ""


def test_local_settings_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(
        json.dumps({"Values": {"A": "file", "B": 2, "C": True}, "Host": {"LocalHttpPort": 7080}}), encoding="utf-8"
    )
    local = load_local_settings(path)
    assert local.local_http_port == 7080
    environ = {"A": "env"}
    assert apply_settings_to_environ(local.values, environ) == ["A"]
    assert environ == {"A": "env", "B": "2", "C": "true"}
    assert resolve_app_setting_refs("%B%-queue", environ, what="q") == "2-queue"
    with pytest.raises(HostConfigError, match="'Z'"):
        resolve_app_setting_refs("%Z%", environ, what="q")


def _call(target: Any, *, is_async: bool) -> UserCall:
    return UserCall("f", target, "value", None, pass_context=False, is_async=is_async, directory=".")


def test_invoker_times_out_sync_and_async_functions_on_the_loop() -> None:
    def slow_sync(value: float) -> str:
        time.sleep(value)
        return "late"

    async def slow_async(value: float) -> str:
        await asyncio.sleep(value)
        return "late"

    async def scenario() -> list[InvocationResult]:
        invoker = Invoker(asyncio.get_running_loop(), dt.timedelta(seconds=0.2))
        return [
            await invoker.ainvoke(_call(slow_sync, is_async=False), 0.6, "test"),
            await invoker.ainvoke(_call(slow_async, is_async=True), 5, "test"),
            await invoker.ainvoke(_call(slow_async, is_async=True), 0, "test"),
        ]

    sync_result, async_result, quick = asyncio.run(scenario())
    assert sync_result.timed_out and not sync_result.succeeded
    assert async_result.timed_out and not async_result.succeeded
    assert quick.succeeded and quick.value == "late"
    time.sleep(0.5)  # let the abandoned sync call finish before the test ends


def test_invoker_reports_a_users_own_timeout_error_as_a_failure_not_a_timeout() -> None:
    def raises(value: object) -> None:
        raise TimeoutError("the function's own")

    async def scenario() -> InvocationResult:
        invoker = Invoker(asyncio.get_running_loop(), dt.timedelta(seconds=5))
        return await invoker.ainvoke(_call(raises, is_async=False), None, "test")

    result = asyncio.run(scenario())
    assert not result.succeeded and not result.timed_out
    assert str(result.error) == "the function's own"
