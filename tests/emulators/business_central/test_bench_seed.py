"""The benchmark data set (``bench:N``) and the id lookups a sync page makes against it."""

from __future__ import annotations

import pytest

from tests.emulators.business_central.conftest import Bc

pytestmark = pytest.mark.stack


def test_bench_seed_is_valid_for_the_default_mappings_and_ids_filter_exactly(bc: Bc) -> None:
    before = bc.door.snapshot()
    try:
        bc.door.seed({"name": "bench:120"})
        prefer = {"Prefer": "odata.maxpagesize=20000"}
        customers = bc.get("customers", params={"$select": "id,number,displayName"}, headers=prefer).json()["value"]
        people = bc.get(
            "contacts", params={"$filter": "type eq 'Person' and companyNumber ne ''"}, headers=prefer
        ).json()["value"]
        items = bc.get("items", params={"$filter": "blocked eq false"}, headers=prefer).json()["value"]
        assert (len(customers), len(people), len(items)) == (120, 120, 12)
        assert {i["baseUnitOfMeasureCode"] for i in items} == {"PCS"}

        # Each person's company is the company contact linked to the customer of the same name.
        first = customers[0]
        links = bc.get(f"customers({first['id']})/contactsInformation").json()["value"]
        company = next(link for link in links if link["contactType"] == "Company")
        person = next(p for p in people if p["companyNumber"] == company["contactNumber"])
        assert person["companyName"] == first["displayName"]
        assert {link["contactNumber"] for link in links} == {company["contactNumber"], person["number"]}

        # "id eq … or …" (as the connector reads a page's records by id), alone and and-ed.
        wanted = [c["id"] for c in customers[10:60]]
        clause = " or ".join(f"id eq {i}" for i in wanted)
        found = bc.get("customers", params={"$filter": clause, "$select": "id"}, headers=prefer).json()["value"]
        assert sorted(c["id"] for c in found) == sorted(wanted)
        narrowed = bc.get(
            "customers", params={"$filter": f"({clause}) and number eq '{customers[10]['number']}'"}
        ).json()["value"]
        assert [c["id"] for c in narrowed] == [customers[10]["id"]]
        names = " or ".join(f"displayName eq '{c['displayName']}'" for c in customers[:3])
        assert len(bc.get("customers", params={"$filter": names}).json()["value"]) == 3
    finally:
        bc.door.restore(before)
