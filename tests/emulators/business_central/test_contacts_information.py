"""contactsInformation (page 30072 "APIV2 - Contacts Information"): contact ↔ customer relations, read-only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack

PROPERTIES = {"@odata.etag", "contactId", "contactNumber", "contactName", "contactType", "relatedId", "relatedType"}


def _customer(bc: Bc, number: str) -> dict[str, Any]:
    return bc.first("customers", f"number eq '{number}'")


def _contact(bc: Bc, number: str) -> dict[str, Any]:
    return bc.first("contacts", f"number eq '{number}'")


def _information(bc: Bc, customer_id: str, **params: str) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = bc.one(f"customers({customer_id})/contactsInformation", **params)["value"]
    return values


def test_customer_navigation_lists_company_contact_and_its_people(bc: Bc) -> None:
    adatum = _customer(bc, "C00010")
    rows = _information(bc, adatum["id"])
    assert all(set(row) == PROPERTIES for row in rows)
    assert sorted((r["contactNumber"], r["contactName"], r["contactType"]) for r in rows) == [
        ("CT000010", "Adatum Corporation", "Company"),
        ("CT000020", "Robert Townes", "Person"),
    ]
    assert {(r["relatedId"], r["relatedType"]) for r in rows} == {(adatum["id"], "Customer")}
    assert {r["contactId"] for r in rows} == {_contact(bc, "CT000010")["id"], _contact(bc, "CT000020")["id"]}
    assert [r["contactId"] for r in rows] == sorted(r["contactId"] for r in rows)  # the buffer's key order
    trey = _information(bc, _customer(bc, "C00020")["id"])
    assert sorted(r["contactName"] for r in trey) == ["Kim Akers", "Trey Research", "Zoë Ŝmith"]


def test_customer_without_business_relation_has_none(bc: Bc) -> None:
    assert _information(bc, _customer(bc, "C00030")["id"]) == []


def test_query_options_on_the_navigation(bc: Bc) -> None:
    adatum = _customer(bc, "C00010")
    people = _information(bc, adatum["id"], **{"$filter": "contactType eq 'Person'", "$select": "contactNumber"})
    assert people == [{"@odata.etag": people[0]["@odata.etag"], "contactNumber": "CT000020"}]
    first = _information(bc, adatum["id"], **{"$orderby": "contactNumber desc", "$top": "1"})
    assert [r["contactNumber"] for r in first] == ["CT000020"]
    assert_bc_error(
        bc.get(f"customers({adatum['id']})/contactsInformation", params={"$select": "email"}), 400, "BadRequest"
    )


def test_company_level_collection_needs_related_id_and_type(bc: Bc) -> None:
    adatum = _customer(bc, "C00010")
    both = f"relatedId eq {adatum['id']} and relatedType eq 'Customer'"
    rows = bc.one("contactsInformation", **{"$filter": both})["value"]
    assert rows == _information(bc, adatum["id"])
    persons = bc.one("contactsInformation", **{"$filter": f"{both} and contactType eq 'Person'"})["value"]
    assert [r["contactName"] for r in persons] == ["Robert Townes"]
    for params in ({}, {"$filter": f"relatedId eq {adatum['id']}"}, {"$filter": "relatedType eq 'Customer'"}):
        body = assert_bc_error(bc.get("contactsInformation", params=params), 400, "Application_DialogException")
        assert body["error"]["message"].startswith("id type not specified.")
    keyed = bc.get(f"contactsInformation({rows[0]['contactId']})")
    assert_bc_error(keyed, 400, "Application_DialogException")


def test_company_level_other_related_types(bc: Bc) -> None:
    anything = uuid.uuid4()
    for kind in ("Bank Account", "Employee"):
        found = bc.one("contactsInformation", **{"$filter": f"relatedId eq {anything} and relatedType eq '{kind}'"})
        assert found["value"] == []
    vendor = bc.get("contactsInformation", params={"$filter": f"relatedId eq {anything} and relatedType eq 'Vendor'"})
    assert vendor.status_code == 501
    unknown = bc.get(
        "contactsInformation", params={"$filter": f"relatedId eq {anything} and relatedType eq 'Customer'"}
    )
    assert_bc_error(unknown, 404, "BadRequest_NotFound")
    bad = bc.get("contactsInformation", params={"$filter": f"relatedId eq {anything} and relatedType eq 'Nope'"})
    assert_bc_error(bad, 400, "BadRequest")


def test_single_by_contact_id(bc: Bc) -> None:
    adatum = _customer(bc, "C00010")
    robert = _contact(bc, "CT000020")
    one = bc.one(f"customers({adatum['id']})/contactsInformation({robert['id']})")
    assert one["contactName"] == "Robert Townes" and one["relatedId"] == adatum["id"]
    assert "@odata.context" in one and set(one) - {"@odata.context"} == PROPERTIES
    kim = _contact(bc, "CT000040")  # Trey's, not Adatum's
    assert_bc_error(bc.get(f"customers({adatum['id']})/contactsInformation({kim['id']})"), 404, "BadRequest_NotFound")


def test_expand_both_ways(bc: Bc) -> None:
    expanded = bc.one(
        "customers",
        **{"$filter": "number eq 'C00010'", "$expand": "contactsInformation($select=contactNumber)"},
    )["value"][0]["contactsInformation"]
    assert sorted(r["contactNumber"] for r in expanded) == ["CT000010", "CT000020"]
    adatum = _customer(bc, "C00010")
    rows = _information(bc, adatum["id"], **{"$expand": "contact($select=email)"})
    emails = {r["contactName"]: r["contact"]["email"] for r in rows}
    assert emails == {"Adatum Corporation": "ap@adatum.example", "Robert Townes": "robert.townes@adatum.example"}


def test_read_only(bc: Bc) -> None:
    adatum = _customer(bc, "C00010")
    robert = _contact(bc, "CT000020")
    base = f"customers({adatum['id']})/contactsInformation"
    assert_bc_error(bc.post(base, {"contactId": robert["id"]}), 405, "BadRequest_MethodNotAllowed")
    assert_bc_error(bc.patch(f"{base}({robert['id']})", {}, etag="*"), 405, "BadRequest_MethodNotAllowed")
    assert_bc_error(bc.delete(f"{base}({robert['id']})", etag="*"), 405, "BadRequest_MethodNotAllowed")
    deep = bc.post("customers", {"displayName": "Deep relation", "contactsInformation": []})
    assert_bc_error(deep, 400, "BadRequest_NotSupported")


def test_only_customers_and_vendors_have_the_navigation(bc: Bc) -> None:
    order = bc.one("salesOrders", **{"$top": "1"})["value"][0]
    assert_bc_error(bc.get(f"salesOrders({order['id']})/contactsInformation"), 400, "BadRequest")
    assert bc.get(f"vendors({uuid.uuid4()})/contactsInformation").status_code == 501


def test_new_customer_gets_a_company_contact_that_follows_it(bc: Bc) -> None:
    created = bc.post("customers", {"displayName": "Relation Test NV", "city": "Leuven", "email": "a@rt.example"})
    assert created.status_code == 201, created.text
    customer = created.json()
    (row,) = _information(bc, customer["id"])
    assert (row["contactType"], row["contactName"], row["relatedType"]) == ("Company", "Relation Test NV", "Customer")
    contact = bc.one(f"contacts({row['contactId']})")
    assert contact["number"] == row["contactNumber"] == contact["companyNumber"]
    assert (contact["contactBusinessRelation"], contact["city"], contact["email"]) == (
        "Customer",
        "Leuven",
        "a@rt.example",
    )

    person = bc.post("contacts", {"displayName": "Pia Relation", "companyNumber": contact["number"]}).json()
    rows = _information(bc, customer["id"])
    assert sorted(r["contactName"] for r in rows) == ["Pia Relation", "Relation Test NV"]

    renamed = bc.patch(
        f"customers({customer['id']})", {"displayName": "Relation Renamed NV"}, etag=customer["@odata.etag"]
    )
    assert renamed.status_code == 200, renamed.text
    names = {r["contactType"]: r["contactName"] for r in _information(bc, customer["id"])}
    assert names == {"Company": "Relation Renamed NV", "Person": "Pia Relation"}
    assert bc.one(f"contacts({person['id']})")["companyName"] == "Relation Renamed NV"

    assert bc.delete(f"customers({customer['id']})", etag=renamed.json()["@odata.etag"]).status_code == 204
    kept = bc.one(f"contacts({contact['id']})")
    assert kept["contactBusinessRelation"] == "None"


def test_new_person_customer_gets_a_person_contact(bc: Bc) -> None:
    customer = bc.post("customers", {"displayName": "Rita Private", "type": "Person"}).json()
    (row,) = _information(bc, customer["id"])
    assert (row["contactType"], row["contactName"]) == ("Person", "Rita Private")
    assert bc.one(f"contacts({row['contactId']})")["companyNumber"] == ""
