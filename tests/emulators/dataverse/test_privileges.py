"""Table privileges: withheld ones refuse the request with 403 0x80040220 and show in
RetrieveUserPrivilegeByPrivilegeName; EntityDefinitions carries the SchemaName they are named after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.dataverse.conftest import Dv

pytestmark = pytest.mark.stack


@pytest.fixture
def withheld(dv: Dv) -> Iterator[list[str]]:
    names = ["prvReadAccount", "prvCreateSalesOrder"]
    dv.door.call("POST", "privileges", {"userId": dv.line["application_user_id"], "withhold": names})
    yield names
    dv.door.call("POST", "privileges", {"userId": dv.line["application_user_id"], "withhold": []})


def test_a_withheld_privilege_refuses_the_request_naming_it(dv: Dv, withheld: list[str]) -> None:
    refused = dv.get("accounts?$top=1")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "0x80040220" and "is missing prvReadAccount privilege" in error["message"]
    assert dv.get("contacts?$top=1").status_code == 200  # other tables are untouched
    # Order lines are governed by the order's privileges.
    lines = dv.post("salesorders", {"name": "x"})
    assert lines.status_code == 403 and "prvCreateSalesOrder" in lines.json()["error"]["message"]


def test_retrieve_user_privilege_by_name_lists_held_privileges_only(dv: Dv, withheld: list[str]) -> None:
    user = dv.line["application_user_id"]

    def role_privileges(name: str) -> list[dict[str, str]]:
        response = dv.get(
            f"systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivilegeByPrivilegeName(PrivilegeName='{name}')"
        )
        assert response.status_code == 200, response.text
        return list(response.json()["RolePrivileges"])

    assert role_privileges("prvReadAccount") == []
    (held,) = role_privileges("prvWriteAccount")
    assert held["PrivilegeName"] == "prvWriteAccount" and held["Depth"] == "Global"


def test_entity_definitions_carry_the_schema_name_privileges_are_named_after(dv: Dv) -> None:
    response = dv.get("EntityDefinitions(LogicalName='salesorder')?$select=LogicalName,SchemaName")
    assert response.status_code == 200, response.text
    assert response.json()["SchemaName"] == "SalesOrder"
