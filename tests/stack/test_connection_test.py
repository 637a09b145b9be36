"""``GET /api/connection/test`` on the session's stack: each failure named, with its fix.

The emulators' back doors withhold a Dataverse privilege or a BC permission, or disable the
connector's application user, the way an administrator's mistake would; each test puts it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators._launch import PROJECT_ROOT
from tests.plugins._emulators import RunningEmulator
from tests.plugins.functions_host import FunctionsHostHandle, start_functions_host

pytestmark = pytest.mark.stack


def _test(host: FunctionsHostHandle) -> tuple[int, dict[str, Any]]:
    response = requests.get(host.url("connection/test"), headers=host.key_headers, timeout=90)
    return response.status_code, response.json()


def _checks(body: dict[str, Any], system: str) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in body["checks"] if c["system"] == system}


def test_every_check_passes_on_a_healthy_stack(connector: FunctionsHostHandle) -> None:
    status, body = _test(connector)
    assert status == 200 and body["status"] == "ok", body
    assert list(_checks(body, "dataverse")) == ["token", "applicationUser", "privileges"]
    assert list(_checks(body, "businessCentral")) == ["token", "appRegistration", "company", "permissions"]
    assert "table privileges held" in _checks(body, "dataverse")["privileges"]["detail"]


def test_the_key_is_required(connector: FunctionsHostHandle) -> None:
    assert requests.get(connector.url("connection/test"), timeout=30).status_code == 401


@pytest.fixture
def withheld(dataverse_emulator: RunningEmulator, business_central_emulator: RunningEmulator) -> Iterator[None]:
    user = dataverse_emulator.start_line["application_user_id"]
    dataverse_emulator.back_door.call("POST", "privileges", {"userId": user, "withhold": ["prvCreatePost"]})
    business_central_emulator.back_door.call("POST", "permissions", {"withhold": ["items:Read"]})
    try:
        yield
    finally:
        dataverse_emulator.back_door.call("POST", "privileges", {"userId": user, "withhold": []})
        business_central_emulator.back_door.call("POST", "permissions", {"withhold": []})


def test_a_missing_privilege_and_a_missing_permission_set_are_named(
    connector: FunctionsHostHandle, withheld: None
) -> None:
    status, body = _test(connector)
    assert status == 503 and body["status"] == "failed"
    privileges = _checks(body, "dataverse")["privileges"]
    assert privileges["ok"] is False and privileges["detail"].endswith("privileges: prvCreatePost")
    assert "security role" in privileges["fix"]
    permissions = _checks(body, "businessCentral")["permissions"]
    assert permissions["ok"] is False
    assert permissions["detail"].startswith("items: ") and "TableData 27 Item Read" in permissions["detail"]
    assert "permission sets" in permissions["fix"]


def test_a_disabled_application_user_is_named_with_the_fix(
    connector: FunctionsHostHandle, dataverse_emulator: RunningEmulator
) -> None:
    door = dataverse_emulator.back_door
    before = door.snapshot()
    user = dataverse_emulator.start_line["application_user_id"]
    session = dataverse_emulator.session()
    token = door.call("POST", "token", {"client_id": dataverse_emulator.start_line["client_id"]})["access_token"]
    disabled = session.patch(
        f"{dataverse_emulator.start_line['base_url']}/systemusers({user})",
        json={"isdisabled": True},
        headers={"Authorization": f"Bearer {token}", "If-Match": "*"},
        timeout=30,
        verify=str(dataverse_emulator.start_line["ca_bundle"]),
    )
    assert disabled.status_code == 204, disabled.text
    try:
        status, body = _test(connector)
    finally:
        door.restore(before)
    checks = _checks(body, "dataverse")
    assert status == 503 and checks["token"]["ok"] and not checks["applicationUser"]["ok"]
    assert "not a member of the organization" in checks["applicationUser"]["detail"]
    assert "Application users" in checks["applicationUser"]["fix"]
    assert "privileges" not in checks  # later checks would only fail for the same reason
    assert all(c["ok"] for c in _checks(body, "businessCentral").values())


def test_an_unknown_company_lists_the_ones_the_app_sees(connector_settings_for_stack: dict[str, str]) -> None:
    unknown = "00000000-0000-0000-0000-0000000000cc"
    with start_functions_host(PROJECT_ROOT, {**connector_settings_for_stack, "BC_COMPANY_ID": unknown}) as host:
        status, body = _test(host)
    company = _checks(body, "businessCentral")["company"]
    assert status == 503 and company["ok"] is False
    assert unknown in company["detail"] and "CRONUS" in company["detail"]
    assert "BC_COMPANY_ID" in company["fix"]
