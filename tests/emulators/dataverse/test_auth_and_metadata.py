"""Auth (E.1 item 1), the start line, WhoAmI, EntityDefinitions and the common response headers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulators.dataverse.conftest import ODATA_HEADERS, Dv, sid

pytestmark = pytest.mark.stack


def test_start_line_names_everything_a_client_needs(dv: Dv) -> None:
    line = dv.line
    port = line["org_url"].rsplit(":", 1)[1]
    assert line["base_url"] == f"https://127.0.0.1:{port}/api/data/v9.2"
    assert line["scope"] == f"https://127.0.0.1:{port}/.default"
    for key in ("token_url", "client_id", "client_secret", "ca_bundle", "authority", "admin"):
        assert line[key], key
    assert line["application_user_id"] == sid("systemuser", "connector")


def test_msal_token_reaches_whoami_as_the_application_user(dv: Dv) -> None:
    response = dv.get("WhoAmI")
    assert response.status_code == 200, response.text
    assert response.json()["UserId"] == dv.line["application_user_id"]
    assert response.headers["x-ms-dop-hint"] == "4"
    assert response.headers["OData-Version"] == "4.0"
    assert int(response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) > 0


def _get_with(dv: Dv, token: str | None) -> Any:
    headers = dict(ODATA_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return dv.session.get(dv.url("accounts"), headers=headers, timeout=30)


def test_missing_expired_foreign_or_misaddressed_tokens_get_401_with_a_json_body(dv: Dv) -> None:
    cases = {
        "missing": None,
        "expired": dv.door.mint_token(audience=dv.line["org_url"], lifetime=-60),
        "foreign": dv.door.mint_token(audience=dv.line["org_url"], foreign=True),
        "audience": dv.door.mint_token(audience="https://other.crm.dynamics.com"),
    }
    for case, token in cases.items():
        response = _get_with(dv, token)
        assert response.status_code == 401, case
        assert response.json()["error"]["message"], case
        assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri="), case


def test_a_token_without_an_application_user_is_403(dv: Dv) -> None:
    token = dv.door.call(
        "POST", "token", {"audience": dv.line["org_url"], "client_id": "5e1f0000-0000-0000-0000-00000000dead"}
    )
    response = _get_with(dv, token["access_token"])
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "0x80072560", "message": "The user is not a member of the organization."}
    }


def test_a_disabled_application_user_is_403(dv: Dv) -> None:
    user = dv.get(f"systemusers({dv.line['application_user_id']})?$select=isdisabled").json()
    assert user["isdisabled"] is False
    assert dv.patch(f"systemusers({dv.line['application_user_id']})", {"isdisabled": True}).status_code == 204
    assert dv.get("WhoAmI").status_code == 403


def test_entity_definitions_resolve_set_names_and_keys(dv: Dv) -> None:
    response = dv.get("EntityDefinitions(LogicalName='account')?$select=EntitySetName,PrimaryIdAttribute")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["EntitySetName"] == "accounts" and body["PrimaryIdAttribute"] == "accountid"
    assert "PrimaryNameAttribute" not in body

    listing = dv.get(
        "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=ChangeTrackingEnabled eq true"
    ).json()["value"]
    by_name = {e["LogicalName"]: e for e in listing}
    assert by_name["nav_accountstatistics"]["EntitySetName"] == "nav_accountstatisticses"
    assert by_name["salesorder"]["EntitySetName"] == "salesorders"
    assert "serviceendpoint" not in by_name  # change tracking is off for it

    keys = dv.get("EntityDefinitions(LogicalName='account')/Keys?$select=KeyAttributes").json()["value"]
    assert [k["KeyAttributes"] for k in keys] == [["accountnumber"]]
    expanded = dv.get(
        "EntityDefinitions(LogicalName='salesorderdetail')?$select=LogicalName"
        "&$expand=Attributes($select=LogicalName,MaxLength;$filter=LogicalName eq 'productdescription')"
    ).json()
    assert expanded["Attributes"] == [
        {"LogicalName": "productdescription", "MaxLength": 500, "MetadataId": expanded["Attributes"][0]["MetadataId"]}
    ]
    missing = dv.get("EntityDefinitions(LogicalName='nope')")
    assert missing.status_code == 404


def test_unknown_segments_and_unsupported_paths_fail_loudly(dv: Dv) -> None:
    unknown = dv.get("widgets")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": "0x80060888", "message": "Resource not found for the segment 'widgets'."}
    metadata = dv.get("$metadata")
    assert metadata.status_code == 501


def test_injected_faults_answer_in_the_dataverse_error_shape(dv: Dv) -> None:
    dv.door.fail_next(503, path="/api/data/v9.2/accounts")
    failed = dv.get("accounts?$select=name")
    assert failed.status_code == 503
    assert set(failed.json()["error"]) == {"code", "message"}
    dv.door.throttle(path="/api/data/v9.2/WhoAmI", retry_after=2)
    throttled = dv.get("WhoAmI")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "0x80072322"
    assert dv.get("WhoAmI").status_code == 200


def test_back_door_reset_keeps_the_application_user(dv: Dv) -> None:
    dv.door.reset()
    assert dv.get("WhoAmI").status_code == 200
    assert dv.get("accounts?$select=name").json()["value"] == []
    rows = dv.door.call("GET", "rows?entity=systemuser")["value"]
    assert [r["systemuserid"] for r in rows] == [dv.line["application_user_id"]]
