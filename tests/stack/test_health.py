"""``GET /api/health`` through the local Functions host against the whole local stack."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from emulators._launch import PROJECT_ROOT, free_port
from tests.plugins.functions_host import FunctionsHostHandle, start_functions_host

pytestmark = pytest.mark.stack

DEPENDENCIES = {"tables", "serviceBus", "dataverse", "businessCentral"}


def test_health_is_200_when_every_dependency_answers(connector: FunctionsHostHandle) -> None:
    response = requests.get(connector.url("health"), timeout=60)  # anonymous: no key
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == DEPENDENCIES
    assert all(d["ok"] for d in body["dependencies"].values())


def test_an_unreachable_dependency_is_named_and_makes_health_503(
    connector_settings_for_stack: dict[str, str],
) -> None:
    closed = free_port()
    settings = {
        **connector_settings_for_stack,
        "ServiceBusConnection": connector_settings_for_stack["ServiceBusConnection"].replace(
            connector_settings_for_stack["ServiceBusConnection"].split("sb://")[1].split(";")[0], f"127.0.0.1:{closed}"
        ),
    }
    with start_functions_host(PROJECT_ROOT, settings) as host:
        response = requests.get(host.url("health"), timeout=90)
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["dependencies"]["serviceBus"]["ok"] is False
    assert body["dependencies"]["serviceBus"]["error"]["code"] == "Unreachable"
    assert {n for n, d in body["dependencies"].items() if d["ok"]} == DEPENDENCIES - {"serviceBus"}


def test_a_wrong_client_secret_is_diagnosed_without_leaking_it(
    connector_settings_for_stack: dict[str, str],
) -> None:
    wrong = "not-the-secret-5b8e1"
    with start_functions_host(PROJECT_ROOT, {**connector_settings_for_stack, "BC_CLIENT_SECRET": wrong}) as host:
        response = requests.get(host.url("health"), timeout=90)
        log = host.log()
    body = response.json()
    assert response.status_code == 503
    bc = body["dependencies"]["businessCentral"]
    assert bc["ok"] is False and bc["error"]["code"] == "TokenRequestFailed"
    assert "client secret is wrong" in bc["error"]["message"]
    assert body["dependencies"]["dataverse"]["ok"] is True
    assert wrong not in response.text and wrong not in log


def test_bad_settings_stop_the_app_at_start_naming_each_setting(
    connector_settings_for_stack: dict[str, str], tmp_path: Path
) -> None:
    settings = {**connector_settings_for_stack, "BC_COMPANY_ID": "CRONUS", "DATAVERSE_URL": ""}
    with pytest.raises(RuntimeError) as failed, start_functions_host(PROJECT_ROOT, settings, timeout=60):
        pass
    said = str(failed.value)
    assert "BC_COMPANY_ID must be a GUID" in said and "DATAVERSE_URL is missing" in said
    assert "Traceback" not in said
