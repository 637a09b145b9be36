"""Paging, the query subset, $expand limits and change tracking (E.1 items 7, 8, 15)."""

from __future__ import annotations

import pytest

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack


def _names(response_json: dict[str, object]) -> list[str]:
    return [str(row["name"]) for row in response_json["value"]]  # type: ignore[attr-defined]


def test_maxpagesize_pages_with_an_opaque_next_link(dv: Dv) -> None:
    dv.door.seed({"rows": {"account": [{"name": f"Paged {i:02d}"} for i in range(7)]}})
    prefer = {"Prefer": "odata.maxpagesize=3"}
    first = dv.get("accounts?$select=name&$filter=startswith(name,'Paged')&$orderby=name", headers=prefer)
    assert first.status_code == 200
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=3"
    body = first.json()
    assert _names(body) == ["Paged 00", "Paged 01", "Paged 02"]
    next_link = body["@odata.nextLink"]
    assert (next_link.startswith(f"{dv.base}/accounts?") and "%24skiptoken=" in next_link) or "$skiptoken=" in next_link
    seen = _names(body)
    while "@odata.nextLink" in body:
        body = dv.get(body["@odata.nextLink"], headers=prefer).json()
        seen += _names(body)
    assert seen == [f"Paged {i:02d}" for i in range(7)]


def test_top_applies_without_maxpagesize_and_is_ignored_with_it(dv: Dv) -> None:
    top = dv.get("accounts?$select=name&$top=2").json()
    assert len(top["value"]) == 2 and "@odata.nextLink" not in top
    both = dv.get("accounts?$select=name&$top=1", headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert len(both["value"]) == 3 and "@odata.nextLink" in both


def test_skip_and_unsupported_options_are_400_with_a_hex_code(dv: Dv) -> None:
    skip = dv.get("accounts?$skip=2")
    assert skip.status_code == 400
    assert skip.json() == {"error": {"code": "0x80060888", "message": "The query parameter $skip is not supported"}}
    for query in (
        "$filter=revenue add 1 gt 2",
        "$apply=groupby((name))",
        "$filter=name eq",
        "$select=nosuchcolumn",
        "$orderby=nosuch",
        "$filter=nosuch eq 1",
        "$expand=nosuch",
    ):
        response = dv.get(f"accounts?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"].startswith("0x"), query


def test_filter_orderby_count_and_lookup_columns(dv: Dv) -> None:
    response = dv.get(
        "accounts?$select=name,address1_city&$filter=(contains(name,'R') or startswith(name,'Café')) "
        "and statecode eq 0 and address1_city ne null&$orderby=name desc&$count=true"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert _names(body) == ["Trey Research", "School of Fine Art", "Café Nørrebro & Søn", "Adatum Corporation"]
    assert body["@odata.count"] == 4
    contacts = dv.get(f"contacts?$select=fullname&$filter=_parentcustomerid_value eq {sid('account', '10000')}").json()
    assert [c["fullname"] for c in contacts["value"]] == ["Robert Townes"]
    by_path = dv.get("contacts?$select=fullname&$filter=parentcustomerid_account/accountnumber eq '20000'").json()
    assert [c["fullname"] for c in by_path["value"]] == ["Ilse Peeters"]
    dated = dv.get(
        "accounts?$select=name&$filter=createdon gt 2000-01-01T00:00:00Z and modifiedon le 2999-01-01"
    ).json()
    assert len(dated["value"]) == 4


def test_expand_with_nested_options(dv: Dv) -> None:
    order_id = sid("salesorder", "Bikes for the Adatum fleet")
    response = dv.get(
        f"salesorders({order_id})?$select=name&$expand=customerid_account($select=name),"
        "order_details($select=quantity,productdescription;$filter=isproductoverridden eq false;"
        "$orderby=lineitemnumber desc)"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customerid_account"]["name"] == "Adatum Corporation"
    assert [line["quantity"] for line in body["order_details"]] == [4.0, 4.0]
    nested = dv.get(
        f"accounts({sid('account', '10000')})?$select=name&$expand=primarycontactid($select=fullname;"
        "$expand=parentcustomerid_account($select=accountnumber))"
    ).json()
    assert nested["primarycontactid"]["parentcustomerid_account"]["accountnumber"] == "10000"
    too_many = ",".join(["primarycontactid($select=fullname)"] * 16)
    assert dv.get(f"accounts?$expand={too_many}").status_code == 400
    collection_with_top_and_expand = dv.get(
        "accounts?$expand=contact_customer_accounts($top=1;$expand=parentcustomerid_account($select=name))"
    )
    assert collection_with_top_and_expand.status_code == 400


def test_change_tracking_delta_with_tombstones(dv: Dv) -> None:
    track = {"Prefer": "odata.track-changes"}
    first = dv.get("accounts?$select=name,accountnumber", headers=track)
    assert first.status_code == 200
    assert first.headers["Preference-Applied"] == "odata.track-changes"
    delta_link = first.json()["@odata.deltaLink"]
    assert "%24deltatoken=" in delta_link or "$deltatoken=" in delta_link

    empty = dv.get(delta_link).json()
    assert empty["value"] == []
    assert empty["@odata.context"] == f"{dv.base}/$metadata#accounts(name,accountnumber)/$delta"

    created = dv.create("accounts", {"name": "Tracked"})
    dv.patch(f"accounts({sid('account', '20000')})", {"name": "Trey Research Ltd"})
    deleted_id = sid("account", "30000")
    assert dv.delete(f"accounts({deleted_id})").status_code == 204
    changes = dv.get(delta_link).json()
    rows = [r for r in changes["value"] if "name" in r]
    tombstones = [r for r in changes["value"] if r.get("reason") == "deleted"]
    assert sorted(r["name"] for r in rows) == ["Tracked", "Trey Research Ltd"]
    assert tombstones == [
        {"@odata.context": f"{dv.base}/$metadata#accounts/$deletedEntity", "id": deleted_id, "reason": "deleted"}
    ]
    assert changes["value"].index(tombstones[0]) == len(changes["value"]) - 1  # changes first, then deletes
    assert changes["@odata.deltaLink"] != delta_link
    assert dv.get(changes["@odata.deltaLink"]).json()["value"] == []
    assert created["accountid"] in {r["accountid"] for r in rows}


def test_change_tracking_refuses_what_the_service_refuses(dv: Dv) -> None:
    track = {"Prefer": "odata.track-changes"}
    for query in ("$filter=statecode eq 0", "$orderby=name", "$top=1", "$expand=primarycontactid($select=fullname)"):
        response = dv.get(f"accounts?$select=name&{query}", headers=track)
        assert response.status_code == 400, query
        assert "Change Tracking" in response.json()["error"]["message"]
    assert dv.get("serviceendpoints?$select=name", headers=track).status_code == 400
    expired = dv.get("accounts?$select=name&$deltatoken=1000!01/01/2020 00:00:00")
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "0x80044352"


def test_change_tracking_expiry_is_configurable(dv: Dv) -> None:
    link = dv.get("accounts?$select=name", headers={"Prefer": "odata.track-changes"}).json()["@odata.deltaLink"]
    dv.door.call("PATCH", "change_tracking", {"expiry_seconds": -1})
    try:
        assert dv.get(link).status_code == 400
    finally:
        dv.door.call("PATCH", "change_tracking", {"expiry_seconds": 7 * 86400})
    assert dv.get(link).status_code == 200


def test_default_page_is_5000_and_count_is_capped(dv: Dv) -> None:
    dv.door.seed({"name": "large", "accounts": 5010})
    response = dv.get("accounts?$select=name&$count=true", headers={"Prefer": 'odata.include-annotations="*"'})
    assert response.status_code == 200
    body = response.json()
    assert len(body["value"]) == 5000
    assert body["@odata.count"] == 5000
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    rest = dv.get(body["@odata.nextLink"]).json()
    assert len(rest["value"]) == 14 and "@odata.nextLink" not in rest  # 4 demo accounts + 5010
    capped = dv.get("accounts?$select=name", headers={"Prefer": "odata.maxpagesize=9000"})
    assert capped.headers["Preference-Applied"] == "odata.maxpagesize=5000"


def test_initial_tracked_sync_pages_then_hands_out_the_delta_link(dv: Dv) -> None:
    headers = {"Prefer": "odata.track-changes,odata.maxpagesize=3"}
    body = dv.get("accounts?$select=name", headers=headers).json()
    assert "@odata.deltaLink" not in body and "istracking%3D%22True" in body["@odata.nextLink"].replace('"', "%22")
    seen = len(body["value"])
    while "@odata.nextLink" in body:
        body = dv.get(body["@odata.nextLink"], headers=headers).json()
        seen += len(body["value"])
    assert seen == 4
    dv.patch(f"accounts({sid('account', '40000')})", {"telephone1": "9"})
    changes = dv.get(body["@odata.deltaLink"]).json()["value"]
    assert [row["accountid"] for row in changes] == [sid("account", "40000")]
