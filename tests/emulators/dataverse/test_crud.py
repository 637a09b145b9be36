"""Create, update, upsert, delete, ETags, alternate keys, binds, validation, annotations (E.1 2-6, 9-11)."""

from __future__ import annotations

import uuid

import pytest

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack

REPRESENTATION = {"Prefer": "return=representation"}
ORDER = sid("salesorder", "Bikes for the Adatum fleet")


def test_create_answers_204_with_odata_entity_id(dv: Dv) -> None:
    response = dv.post("accounts", {"name": "Northwind Traders", "accountnumber": "N-1"})
    assert response.status_code == 204, response.text
    assert response.content == b""
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(f"{dv.base}/accounts(")
    record_id = entity_id[-37:-1]
    assert dv.get(f"accounts({record_id})").json()["name"] == "Northwind Traders"


def test_create_with_representation_answers_201_with_etag_and_select(dv: Dv) -> None:
    response = dv.post("accounts?$select=name,accountnumber", {"name": "Fabrikam"}, headers=REPRESENTATION)
    assert response.status_code == 201, response.text
    assert "OData-EntityId" not in response.headers
    body = response.json()
    assert body["@odata.etag"].startswith('W/"')
    assert set(body) == {"@odata.context", "@odata.etag", "name", "accountnumber", "accountid"}
    assert body["@odata.context"] == f"{dv.base}/$metadata#accounts(name,accountnumber)/$entity"


def test_update_and_etag_rules(dv: Dv) -> None:
    created = dv.create("accounts", {"name": "Before"})
    url = f"accounts({created['accountid']})"
    old_etag = created["@odata.etag"]
    assert dv.patch(url, {"name": "After"}, headers={"If-Match": "*"}).status_code == 204
    current = dv.get(url).json()
    assert current["name"] == "After" and current["@odata.etag"] != old_etag

    stale = dv.patch(url, {"name": "Stale"}, headers={"If-Match": old_etag})
    assert stale.status_code == 412
    assert stale.json()["error"]["message"] == (
        "The version of the existing record doesn't match the RowVersion property provided."
    )
    assert dv.delete(url, headers={"If-Match": old_etag}).status_code == 412

    fresh = dv.patch(url, {"telephone1": "123"}, headers={"If-Match": current["@odata.etag"], **REPRESENTATION})
    assert fresh.status_code == 200 and fresh.json()["telephone1"] == "123"

    etag = fresh.json()["@odata.etag"]
    assert dv.get(url, headers={"If-None-Match": etag}).status_code == 304
    annotated = dv.get(url, headers={"If-None-Match": etag, "Prefer": 'odata.include-annotations="*"'})
    assert annotated.status_code == 200  # never 304 when annotations are asked for
    assert (
        dv.get(f"{url}?$expand=primarycontactid($select=fullname)", headers={"If-None-Match": etag}).status_code == 200
    )

    assert dv.delete(url, headers={"If-Match": etag}).status_code == 204
    gone = dv.get(url)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"account With Id = {created['accountid']} Does Not Exist"


def test_patch_with_if_match_star_never_creates(dv: Dv) -> None:
    missing = str(uuid.uuid4())
    response = dv.patch(f"accounts({missing})", {"name": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "", "message": f"account With Id = {missing} Does Not Exist"}}


def test_upsert_creates_then_updates(dv: Dv) -> None:
    record_id = str(uuid.uuid4())
    created = dv.patch(f"accounts({record_id})", {"name": "Upserted"})
    assert created.status_code == 204
    assert created.headers["OData-EntityId"] == f"{dv.base}/accounts({record_id})"
    updated = dv.patch(f"accounts({record_id})", {"name": "Upserted again"}, headers=REPRESENTATION)
    assert updated.status_code == 200 and updated.json()["name"] == "Upserted again"
    other = dv.patch(f"accounts({uuid.uuid4()})", {"name": "New"}, headers=REPRESENTATION)
    assert other.status_code == 201
    blocked = dv.patch(f"accounts({record_id})", {"name": "x"}, headers={"If-None-Match": "*"})
    assert blocked.status_code == 412
    assert blocked.json()["error"]["message"] == "A record with matching key values already exists."


def test_alternate_keys_for_read_write_delete_and_bind(dv: Dv) -> None:
    by_key = dv.get("accounts(accountnumber='10000')?$select=name")
    assert by_key.status_code == 200 and by_key.json()["name"] == "Adatum Corporation"
    assert by_key.json()["accountid"] == sid("account", "10000")

    created = dv.patch("accounts(accountnumber='K-''1')", {"name": "Key upsert"}, headers=REPRESENTATION)
    assert created.status_code == 201
    assert created.json()["accountnumber"] == "K-'1"  # copied from the URL on create
    assert dv.patch("accounts(accountnumber='K-''1')", {"name": "Key update"}).status_code == 204

    contact = dv.create(
        "contacts", {"lastname": "Keyed", "parentcustomerid_account@odata.bind": "/accounts(accountnumber='K-''1')"}
    )
    assert contact["_parentcustomerid_value"] == created.json()["accountid"]

    assert dv.delete("accounts(accountnumber='K-''1')").status_code == 204
    assert dv.get("accounts(accountnumber='K-''1')").status_code == 404

    duplicate = dv.post("accounts", {"name": "Dup", "accountnumber": "10000"})
    assert duplicate.status_code == 412
    taken = dv.patch(f"accounts({sid('account', '20000')})", {"accountnumber": "10000"})
    assert taken.status_code == 412  # an update may not take another row's key either

    bad = dv.get("accounts(name='Adatum Corporation')")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith(
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.account'."
    )
    # systemusers are addressable by their GUID only, never as (systemuserid=...) (wire-protocols §A.1)
    assert dv.get(f"systemusers({sid('systemuser', 'alice')})").status_code == 200
    assert dv.get(f"systemusers(systemuserid={sid('systemuser', 'alice')})").status_code == 400
    assert dv.get(f"accounts(accountid={sid('account', '10000')})").status_code == 200


def test_lookups_read_as_value_columns_and_bind_polymorphically(dv: Dv) -> None:
    order = dv.create(
        "salesorders",
        {
            "name": "Bound order",
            "customerid_contact@odata.bind": f"/contacts({sid('contact', 'Robert Townes')})",
            "pricelevelid@odata.bind": f"pricelevels({sid('pricelevel', 'Standard EUR')})",
            "ownerid@odata.bind": f"{dv.base}/systemusers({sid('systemuser', 'bob')})",
        },
    )
    assert order["_customerid_value"] == sid("contact", "Robert Townes")
    assert order["_pricelevelid_value"] == sid("pricelevel", "Standard EUR")
    assert order["_ownerid_value"] == sid("systemuser", "bob")
    assert order["_transactioncurrencyid_value"] == sid("transactioncurrency", "EUR")  # from the price list
    assert "customerid" not in order

    rebound = dv.patch(
        f"salesorders({order['salesorderid']})",
        {"customerid_account@odata.bind": f"/accounts({sid('account', '20000')})"},
        headers=REPRESENTATION,
    )
    assert rebound.json()["_customerid_value"] == sid("account", "20000")

    wrong_set = dv.post("salesorders", {"name": "x", "customerid_account@odata.bind": f"/contacts({uuid.uuid4()})"})
    assert wrong_set.status_code == 400
    missing = dv.post("salesorders", {"name": "x", "customerid_account@odata.bind": f"/accounts({uuid.uuid4()})"})
    assert missing.status_code == 400 and "Does Not Exist" in missing.json()["error"]["message"]
    unknown_nav = dv.post("salesorders", {"name": "x", "customer@odata.bind": f"/accounts({uuid.uuid4()})"})
    assert unknown_nav.status_code == 400
    direct = dv.post("salesorders", {"name": "x", "_customerid_value": sid("account", "20000")})
    assert direct.status_code == 400


def test_validation_errors_use_the_platform_shape(dv: Dv) -> None:
    too_long = dv.post("accounts", {"name": "x" * 161})
    assert too_long.status_code == 400
    assert too_long.json() == {
        "error": {
            "code": "0x80044331",
            "message": "A validation error occurred. The length of the 'name' attribute of the 'account' entity "
            "exceeded the maximum allowed length of '160'.",
        }
    }
    post = dv.post(
        "posts",
        {
            "text": "y" * 2001,
            "source": 1,
            "type": 7,
            "regardingobjectid_account@odata.bind": f"/accounts({sid('account', '10000')})",
        },
    )
    assert post.status_code == 400 and post.json()["error"]["code"] == "0x80044331"
    unknown = dv.post("accounts", {"name": "x", "colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["message"]
    wrong_type = dv.post("accounts", {"name": 12})
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["code"] == "0x80048d19"
    option = dv.post("accounts", {"name": "x", "customertypecode": 99})
    assert option.status_code == 400 and "outside the valid range" in option.json()["error"]["message"]


def test_posts_are_create_only(dv: Dv) -> None:
    post = dv.create(
        "posts",
        {
            "text": "The order status has changed to Released.",
            "source": 1,
            "type": 7,
            "regardingobjectid_salesorder@odata.bind": f"/salesorders({ORDER})",
        },
    )
    assert post["regardingobjecttypecode"] == "salesorder"
    assert post["_regardingobjectid_value"] == sid("salesorder", "Bikes for the Adatum fleet")
    update = dv.patch(f"posts({post['postid']})", {"text": "changed"})
    assert update.status_code == 405
    assert "does not support entities of type 'post'" in update.json()["error"]["message"]


def test_annotations_on_request(dv: Dv) -> None:
    url = f"salesorders({ORDER})?$select=statecode,totalamount,_customerid_value,submitdate"
    plain = dv.get(url).json()
    assert not [k for k in plain if "@OData" in k or "@Microsoft" in k]
    response = dv.get(url, headers={"Prefer": 'odata.include-annotations="*"'})
    assert response.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    body = response.json()
    assert body["statecode@OData.Community.Display.V1.FormattedValue"] == "Submitted"
    assert body["totalamount@OData.Community.Display.V1.FormattedValue"].startswith("€")
    assert body["_customerid_value@OData.Community.Display.V1.FormattedValue"] == "Adatum Corporation"
    assert body["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert body["_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == "customerid_account"
    only_lookups = dv.get(
        url, headers={"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}
    ).json()
    assert "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname" in only_lookups
    assert "statecode@OData.Community.Display.V1.FormattedValue" not in only_lookups


def test_single_property_put_and_delete(dv: Dv) -> None:
    account = dv.create("accounts", {"name": "Props", "telephone1": "1"})
    url = f"accounts({account['accountid']})"
    assert dv.request("PUT", f"{url}/telephone1", json={"value": "2"}).status_code == 204
    assert dv.get(f"{url}/telephone1").json()["value"] == "2"
    assert dv.delete(f"{url}/telephone1").status_code == 204
    assert dv.get(url).json()["telephone1"] is None


def test_deep_insert_creates_lines_and_returns_the_root_id(dv: Dv) -> None:
    response = dv.post(
        "salesorders",
        {
            "name": "Deep",
            "customerid_account@odata.bind": f"/accounts({sid('account', '10000')})",
            "pricelevelid@odata.bind": f"/pricelevels({sid('pricelevel', 'Standard EUR')})",
            "order_details": [
                {
                    "productid@odata.bind": f"/products({sid('product', '1001')})",
                    "uomid@odata.bind": f"/uoms({sid('uom', 'Primary Unit')})",
                    "quantity": 3,
                },
            ],
        },
    )
    assert response.status_code == 204
    order_id = response.headers["OData-EntityId"][-37:-1]
    lines = dv.get(f"salesorders({order_id})?$select=name&$expand=order_details($select=quantity,baseamount)").json()
    assert [(line["quantity"], line["baseamount"]) for line in lines["order_details"]] == [(3.0, 119.85)]


def test_error_details_annotations_on_request(dv: Dv) -> None:
    response = dv.post("accounts", {"name": "x" * 161}, headers={"Prefer": 'odata.include-annotations="*"'})
    error = response.json()["error"]
    assert error["code"] == "0x80044331"
    assert error["@Microsoft.PowerApps.CDS.InnerError.Message"] == error["message"]
    assert "@Microsoft.PowerApps.CDS.HelpLink" in error


def test_overriddencreatedon_sets_createdon(dv: Dv) -> None:
    account = dv.create("accounts", {"name": "Migrated", "overriddencreatedon": "2019-05-01T08:00:00Z"})
    assert account["createdon"] == "2019-05-01T08:00:00Z"
