"""Local option sets (metadata, writes, InsertOptionValue/UpdateOptionValue), the organization row
and the attributes added for the connector's disabled mapping fields."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack

FORMATTED = {"Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}
PICKLIST = "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"


def _options(dv: Dv, attribute: str) -> dict[int, str]:
    response = dv.get(
        f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='{attribute}')/{PICKLIST}"
        "?$select=LogicalName&$expand=OptionSet($select=Options)"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["LogicalName"] == attribute
    assert body["@odata.context"].endswith(f"/Attributes/{PICKLIST}(LogicalName,OptionSet,OptionSet(Options))/$entity")
    options = body["OptionSet"]["Options"]
    for option in options:
        assert option["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033
        assert option["Label"]["LocalizedLabels"][0]["Label"] == option["Label"]["UserLocalizedLabel"]["Label"]
    return {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in options}


def _insert(dv: Dv, label: str, value: int | None = None, attribute: str = "paymenttermscode") -> Any:
    body: dict[str, Any] = {
        "EntityLogicalName": "account",
        "AttributeLogicalName": attribute,
        "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": 1033}]},
    }
    if value is not None:
        body["Value"] = value
    return dv.post("InsertOptionValue", body)


def test_account_option_sets_read_the_way_clients_query_them(dv: Dv) -> None:
    assert _options(dv, "paymenttermscode") == {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}
    assert _options(dv, "address1_freighttermscode") == {1: "FOB", 2: "No Charge"}
    assert _options(dv, "address1_shippingmethodcode") == {
        1: "Airborne", 2: "DHL", 3: "FedEx", 4: "UPS", 5: "Postal Mail", 6: "Full Load", 7: "Will Call",
    }  # fmt: skip
    every = dv.get(
        f"EntityDefinitions(LogicalName='account')/Attributes/{PICKLIST}?$select=LogicalName&$expand=OptionSet"
    ).json()["value"]
    freight = next(a for a in every if a["LogicalName"] == "address1_freighttermscode")
    assert [o["Value"] for o in freight["OptionSet"]["Options"]] == [1, 2]
    state = dv.get(
        "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='statecode')/"
        "Microsoft.Dynamics.CRM.StateAttributeMetadata?$expand=OptionSet($select=Options)"
    )
    assert [o["Value"] for o in state.json()["OptionSet"]["Options"]] == [0, 1]
    # OptionSet lives on the derived type only; a string attribute is not a picklist.
    plain = dv.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')?$expand=OptionSet")
    assert plain.status_code == 400
    cast = dv.get(f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')/{PICKLIST}")
    assert cast.status_code == 404


def test_picklist_writes_are_validated_and_formatted_with_the_labels(dv: Dv) -> None:
    codes = {"paymenttermscode": 2, "address1_freighttermscode": 1, "address1_shippingmethodcode": 4}
    account = dv.create("accounts", {"name": "Options Ltd", **codes})
    read = dv.get(f"accounts({account['accountid']})", headers=FORMATTED).json()
    assert read["paymenttermscode@OData.Community.Display.V1.FormattedValue"] == "2% 10, Net 30"
    assert read["address1_freighttermscode@OData.Community.Display.V1.FormattedValue"] == "FOB"
    assert read["address1_shippingmethodcode@OData.Community.Display.V1.FormattedValue"] == "UPS"
    bad = dv.patch(f"accounts({account['accountid']})", {"address1_shippingmethodcode": 8})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "0x80044331"
    assert "outside the valid range. Accepted Values: 1,2,3,4,5,6,7" in bad.json()["error"]["message"]
    assert dv.patch(f"accounts({account['accountid']})", {"paymenttermscode": 0}).status_code == 400
    assert dv.patch(f"accounts({account['accountid']})", {"paymenttermscode": None}).status_code == 204


def test_insert_option_value_appends_in_the_publisher_range_and_is_usable_at_once(dv: Dv) -> None:
    first = _insert(dv, "Net 14")
    assert first.status_code == 200, first.text
    assert first.json()["NewOptionValue"] == 100000000
    assert _insert(dv, "Net 7").json()["NewOptionValue"] == 100000001
    assert _insert(dv, "Prepaid", value=5).json()["NewOptionValue"] == 5
    options = _options(dv, "paymenttermscode")
    assert list(options)[-3:] == [100000000, 100000001, 5] and options[100000000] == "Net 14"
    account = dv.create("accounts", {"name": "Net 14 Ltd", "paymenttermscode": 100000000})
    read = dv.get(f"accounts({account['accountid']})?$select=paymenttermscode", headers=FORMATTED).json()
    assert read["paymenttermscode@OData.Community.Display.V1.FormattedValue"] == "Net 14"
    # Other tables keep their own local option set.
    assert dv.post("salesorders", {"name": "x", "paymenttermscode": 100000000}).status_code == 400

    duplicate_label = _insert(dv, "net 30")
    assert duplicate_label.status_code == 400 and duplicate_label.json()["error"]["code"] == "0x80040203"
    duplicate_value = _insert(dv, "Net 90", value=1)
    assert duplicate_value.status_code == 400 and duplicate_value.json()["error"]["code"] == "0x80040203"
    assert _insert(dv, "Text", attribute="name").status_code == 400
    assert dv.post("InsertOptionValue", {"EntityLogicalName": "account"}).status_code == 400

    relabel = {
        "EntityLogicalName": "account",
        "AttributeLogicalName": "paymenttermscode",
        "Value": 100000000,
        "Label": {"LocalizedLabels": [{"Label": "Net 14 days", "LanguageCode": 1033}]},
        "MergeLabels": True,
    }
    assert dv.post("UpdateOptionValue", relabel).status_code == 204
    assert _options(dv, "paymenttermscode")[100000000] == "Net 14 days"
    assert dv.post("UpdateOptionValue", {**relabel, "Value": 42}).status_code == 400


def test_restoring_a_snapshot_undoes_inserted_options(dv: Dv, demo_snapshot: Any) -> None:
    assert _insert(dv, "Collect", attribute="address1_freighttermscode").status_code == 200
    dv.door.restore(demo_snapshot)
    assert _options(dv, "address1_freighttermscode") == {1: "FOB", 2: "No Charge"}


def test_the_organization_row_names_the_base_currency_and_is_read_only(dv: Dv) -> None:
    org_id = dv.get("WhoAmI").json()["OrganizationId"]
    response = dv.get("organizations?$select=organizationid,name,_basecurrencyid_value", headers=FORMATTED)
    assert response.status_code == 200, response.text
    (row,) = response.json()["value"]
    assert row["organizationid"] == org_id
    assert row["name"]
    assert row["_basecurrencyid_value"] == sid("transactioncurrency", "EUR")
    assert row["_basecurrencyid_value@OData.Community.Display.V1.FormattedValue"] == "Euro"
    single = dv.get(f"organizations({org_id})?$select=_basecurrencyid_value")
    assert single.json()["_basecurrencyid_value"] == sid("transactioncurrency", "EUR")

    usd = f"/transactioncurrencies({sid('transactioncurrency', 'USD')})"
    patch = dv.patch(f"organizations({org_id})", {"basecurrencyid@odata.bind": usd})
    assert patch.status_code == 405 and patch.json()["error"]["code"] == "0x80040800"
    assert dv.post("organizations", {"name": "second"}).status_code == 405
    assert dv.delete(f"organizations({org_id})").status_code == 405
    assert dv.get(f"organizations({org_id})?$select=_basecurrencyid_value").json()["_basecurrencyid_value"] == sid(
        "transactioncurrency", "EUR"
    )


NEW_ATTRIBUTES = {
    "systemuser": {"mobilephone": ("String", 64), "islicensed": ("Boolean", None),
                   "isintegrationuser": ("Boolean", None)},
    "contact": {"websiteurl": ("String", 200), "middlename": ("String", 50), "fax": ("String", 50),
                "pager": ("String", 50)},
    "account": {"address1_primarycontactname": ("String", 100), "fax": ("String", 50),
                "address1_freighttermscode": ("Picklist", None), "address1_shippingmethodcode": ("Picklist", None)},
    "product": {"stockvolume": ("Decimal", None), "stockweight": ("Decimal", None), "vendorid": ("String", 100),
                "vendorpartnumber": ("String", 100)},
    "productpricelevel": {"productnumber": ("String", 100)},
    "organization": {"basecurrencyid": ("Lookup", None), "name": ("String", 160)},
}  # fmt: skip


@pytest.mark.parametrize("entity", sorted(NEW_ATTRIBUTES))
def test_added_attributes_have_their_real_types_and_lengths(dv: Dv, entity: str) -> None:
    response = dv.get(
        f"EntityDefinitions(LogicalName='{entity}')/Attributes?$select=LogicalName,AttributeType,MaxLength"
    )
    by_name = {a["LogicalName"]: (a["AttributeType"], a["MaxLength"]) for a in response.json()["value"]}
    for name, expected in NEW_ATTRIBUTES[entity].items():
        assert by_name.get(name) == expected, name


def test_added_attributes_round_trip_and_the_seed_marks_the_integration_user(dv: Dv) -> None:
    users = dv.get("systemusers?$select=fullname,islicensed,isintegrationuser&$orderby=fullname").json()["value"]
    flags = {u["fullname"]: (u["islicensed"], u["isintegrationuser"]) for u in users}
    assert flags["# Connector"] == (False, True)
    assert flags["Alice Seller"] == (True, False)
    contact = dv.create(
        "contacts",
        {"firstname": "Ada", "middlename": "B.", "lastname": "Ng", "fax": "+1 555 0100", "pager": "555-0101",
         "websiteurl": "https://ada.example"},
    )  # fmt: skip
    assert (contact["middlename"], contact["websiteurl"], contact["pager"]) == ("B.", "https://ada.example", "555-0101")
    too_long = dv.post("contacts", {"lastname": "x", "middlename": "m" * 51})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "0x80044331"
    product = sid("product", "1000")
    patch = {"stockweight": 12.5, "stockvolume": 0.25, "vendorid": "V-10000", "vendorpartnumber": "BK-1000"}
    assert dv.patch(f"products({product})", patch).status_code == 204
    read = dv.get(f"products({product})?$select=stockweight,stockvolume,vendorid,vendorpartnumber").json()
    assert {k: read[k] for k in patch} == patch
    prices = dv.get(f"productpricelevels?$select=productnumber&$filter=_productid_value eq {product}").json()
    assert [p["productnumber"] for p in prices["value"]] == ["1000"]
