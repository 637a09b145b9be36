"""E.2 items 1-2: auth, URL forms, environment and company routing, company scoping."""

from __future__ import annotations

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack

OTHER_COMPANY = "8c1e2d4a-1b7f-4c33-a0e2-5d9f6b3c2e02"


def test_start_line(bc: Bc) -> None:
    line = bc.line
    assert line["scope"] == "https://api.businesscentral.dynamics.com/.default"
    assert line["base_url"].endswith(f"/v2.0/{line['tenant_id']}/production/api/v2.0")
    for key in ("token_url", "client_id", "client_secret", "ca_bundle", "company_id", "authority", "admin"):
        assert line[key]


def test_companies_listed_with_real_fields(bc: Bc) -> None:
    companies = bc.one("/companies")["value"]
    assert {c["id"] for c in companies} >= {bc.company_id, OTHER_COMPANY}
    assert set(companies[0]) >= {"@odata.etag", "id", "systemVersion", "name", "displayName", "businessProfileId"}


def test_missing_token_is_401(bc: Bc) -> None:
    response = bc.session.get(bc.url("customers"))
    assert_bc_error(response, 401, "Authentication_InvalidCredentials")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_expired_token_is_401(bc: Bc) -> None:
    token = bc.door.mint_token(audience="https://api.businesscentral.dynamics.com", lifetime=-5)
    response = bc.session.get(bc.url("customers"), headers={"Authorization": f"Bearer {token}"})
    assert_bc_error(response, 401, "Authentication_InvalidCredentials")


def test_token_for_another_resource_is_401(bc: Bc) -> None:
    token = bc.door.mint_token(audience="https://org.crm4.dynamics.com")
    response = bc.session.get(bc.url("customers"), headers={"Authorization": f"Bearer {token}"})
    assert_bc_error(response, 401, "Authentication_InvalidCredentials")


def test_url_without_tenant_segment_works(bc: Bc) -> None:
    root = bc.base.replace(f"/{bc.line['tenant_id']}/", "/")
    response = bc.get(f"{root}/companies({bc.company_id})/customers")
    assert response.status_code == 200


def test_unknown_environment_is_404(bc: Bc) -> None:
    url = bc.base.replace("/production/", "/sandbox-x/") + "/companies"
    assert_bc_error(bc.get(url), 404, "BadRequest_NotFound")


def test_unknown_company_is_404(bc: Bc) -> None:
    response = bc.get("/companies(11111111-2222-3333-4444-555555555555)/customers")
    assert_bc_error(response, 404, "Internal_CompanyNotFound")


def test_company_query_parameter_form(bc: Bc) -> None:
    by_path = bc.one("customers", **{"$select": "id"})["value"]
    by_query = bc.one(f"/customers?company={bc.company_id}", **{"$select": "id"})["value"]
    assert by_path == by_query


def test_entity_of_one_company_is_invisible_from_another(bc: Bc) -> None:
    customer = bc.first("customers", "number eq 'C00010'")
    response = bc.get(f"/companies({OTHER_COMPANY})/customers({customer['id']})")
    assert_bc_error(response, 404, "BadRequest_NotFound")
    # The other company has its own C00010: same number, other record.
    other = bc.one(f"/companies({OTHER_COMPANY})/customers", **{"$filter": "number eq 'C00010'"})["value"]
    assert len(other) == 1
    assert other[0]["id"] != customer["id"]


def test_invalid_guid_key_is_400(bc: Bc) -> None:
    assert_bc_error(bc.get("customers(not-a-guid)"), 400, "Application_InvalidGUID")


def test_unknown_entity_set_is_404_and_unserved_real_one_is_loud_501(bc: Bc) -> None:
    assert_bc_error(bc.get("nonsenseThings"), 404, "BadRequest_NotFound")
    response = bc.get("vendors")
    assert response.status_code == 501
    assert "vendors" in response.json()["error"]["message"]


def test_metadata_is_loudly_unsupported(bc: Bc) -> None:
    assert bc.get("/$metadata").status_code == 501
