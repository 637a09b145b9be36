"""The local Functions host serving the sample app: HTTP routes, keys, errors, timers, admin runs."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.plugins.functions_host import FunctionsHostHandle, start_functions_host

from ._support import QUEUES_DISABLED, copy_sample_app, read_records, wait_for

pytestmark = pytest.mark.stack

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
KEY = "test-function-key"


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("records") / "invocations.jsonl"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, record_file: Path) -> Iterator[FunctionsHostHandle]:
    app_dir = copy_sample_app(
        tmp_path_factory.mktemp("app") / "sample_app",
        {"SAMPLE_GREETING": "from-local-settings", "TICK_SCHEDULE": "0 0 0 1 1 *"},
    )
    settings = {
        **QUEUES_DISABLED,
        "SAMPLE_RECORD_FILE": str(record_file),
        # Environment wins over local.settings.json, as with Core Tools: ticks every second,
        # each run lasting longer than the interval, to show runs never overlap.
        "TICK_SCHEDULE": "* * * * * *",
        "TICK_SLEEP": "1.2",
        # host.json overridden the Azure way, so the timeout test is quick.
        "AzureFunctionsJobHost__functionTimeout": "00:00:02",
    }
    with start_functions_host(app_dir, settings, function_key=KEY) as handle:
        yield handle


def test_start_line_names_enabled_functions_and_key(host: FunctionsHostHandle) -> None:
    assert host.base_url.startswith("http://127.0.0.1:") and host.base_url.endswith("/api")
    assert host.function_key == KEY
    assert set(host.functions) == {
        "http_echo",
        "http_special",
        "http_item",
        "http_boom",
        "http_async",
        "http_slow",
        "timer_tick",
        "timer_startup",
        "timer_manual",
    }


def test_http_request_and_response_round_trip(host: FunctionsHostHandle) -> None:
    response = requests.post(
        host.url(f"echo/{GUID}/extra"),
        params={"a": "1"},
        data=b"hello body",
        headers={**host.key_headers, "X-Test": "t1"},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.headers["X-Echo"] == "yes"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["url"].endswith(f"/api/echo/{GUID}/extra?a=1")
    assert echoed["params"] == {"a": "1"}
    assert echoed["route_params"] == {"id": GUID, "part": "extra"}
    assert echoed["body"] == "hello body"
    assert echoed["x_test"] == "t1"
    assert echoed["function_name"] == "http_echo"
    assert echoed["setting"] == "from-local-settings"


def test_function_key_by_query_code_and_rejections(host: FunctionsHostHandle) -> None:
    ok = requests.get(host.url(f"echo/{GUID}"), params={"code": KEY}, timeout=10)
    assert ok.status_code == 201
    assert ok.json()["route_params"] == {"id": GUID}  # optional {part?} left out
    assert requests.get(host.url(f"echo/{GUID}"), timeout=10).status_code == 401
    wrong = requests.get(host.url(f"echo/{GUID}"), headers={"x-functions-key": "nope"}, timeout=10)
    assert wrong.status_code == 401


def test_routing_constraints_precedence_and_methods(host: FunctionsHostHandle) -> None:
    assert requests.get(host.url("echo/not-a-guid"), params={"code": KEY}, timeout=10).status_code == 404
    special = requests.get(host.url("items/special"), timeout=10)
    assert (special.status_code, special.text) == (200, "special")
    assert special.headers["Content-Type"].startswith("text/plain")
    assert requests.get(host.url("items/thing"), timeout=10).text == "item:thing"
    assert requests.post(host.url("items/thing"), timeout=10).status_code == 404
    assert requests.get(host.url("nowhere"), timeout=10).status_code == 404
    assert requests.get(host.url("async/21"), timeout=10).json() == {"double": 42}
    assert requests.get(host.url("async/x"), timeout=10).status_code == 404


def test_exception_is_500_json_without_traceback(host: FunctionsHostHandle) -> None:
    response = requests.get(host.url("boom"), timeout=10)
    assert response.status_code == 500
    body = response.json()
    assert body["function"] == "http_boom"
    assert "kaboom" not in response.text
    wait_for(lambda: "RuntimeError: kaboom-secret-detail" in host.log(), timeout=5, what="traceback", log=host.log)
    assert f"Executed 'Functions.http_boom' (Failed, Id={body['invocation_id']}" in host.log()


def test_function_timeout_gives_500(host: FunctionsHostHandle) -> None:
    started = time.monotonic()
    response = requests.get(host.url("slow"), params={"seconds": "4"}, timeout=10)
    assert response.status_code == 500
    assert response.json()["error"] == "function timed out"
    assert time.monotonic() - started < 3.5
    assert "Timeout value of 0:00:02 exceeded by function 'Functions.http_slow'" in host.log()


def test_timers_fire_on_schedule_without_overlap(host: FunctionsHostHandle, record_file: Path) -> None:
    assert read_records(record_file, "timer_startup")  # run_on_startup
    ticks = wait_for(
        lambda: len(rows := read_records(record_file, "timer_tick")) >= 3 and rows,
        timeout=10,
        what="three timer ticks",
        log=host.log,
    )
    for earlier, later in itertools.pairwise(ticks):
        assert later["start"] >= earlier["end"], "two runs of the same timer overlapped"
    assert "Executing 'Functions.timer_tick' (Reason='Timer fired at " in host.log()


def test_admin_endpoint_runs_a_timer_now(host: FunctionsHostHandle, record_file: Path) -> None:
    before = len(read_records(record_file, "timer_manual"))
    outcome = host.run_function("timer_manual")
    assert outcome["status"] == "Succeeded"
    assert len(read_records(record_file, "timer_manual")) == before + 1
    admin = f"{host.root_url}/admin/functions"
    assert requests.post(f"{admin}/timer_manual", timeout=10).status_code == 401
    assert requests.post(f"{admin}/missing", headers=host.key_headers, timeout=10).status_code == 404
    assert requests.post(f"{admin}/http_boom", headers=host.key_headers, timeout=10).status_code == 400
