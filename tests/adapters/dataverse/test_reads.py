"""DataverseAdapter reads against the Dataverse emulator: metadata, paging, windows, bulk get, count."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from emulators.dataverse import seed_id
from shared.errors import PermanentError, RetriableError
from shared.odata import string_literal
from tests.adapters.dataverse.conftest import Harness

pytestmark = pytest.mark.stack

LOOKUP_TYPE = "@Microsoft.Dynamics.CRM.lookuplogicalname"


def _seed_accounts(dv: Harness, prefix: str, count: int) -> None:
    rows = [{"name": f"{prefix} {i:04d}", "accountnumber": f"{prefix[:4]}{i}"} for i in range(count)]
    dv.door.seed({"rows": {"account": rows}})


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_metadata_gives_keys_and_lookup_binds_once_per_process(dv: Harness) -> None:
    assert dv.port.primary_key("contacts") == "contactid"
    # The emulator has no ManyToOneRelationships (a 400), so the adapter reads lookup targets from the
    # attributes instead, then the targets' entity set names: three requests for the first table.
    assert [c.status for c in dv.calls] == [400, 200, 200]
    dv.forget_calls()
    assert dv.port.primary_key("contacts") == "contactid"
    assert dv.calls == []  # cached
    assert dv.port.primary_key("accounts") == "accountid"
    assert [c.status for c in dv.calls] == [200, 200]  # the relationships question is not asked again
    assert all(c.path == "EntityDefinitions" for c in dv.calls)

    contact = dv.port._catalog.table("contacts")
    parent = contact.lookups["parentcustomerid"]
    assert {(t.entity, t.entity_set, t.navigation) for t in parent.targets} == {
        ("account", "accounts", "parentcustomerid_account"),
        ("contact", "contacts", "parentcustomerid_contact"),
    }
    currency = contact.lookups["transactioncurrencyid"].targets
    assert [(t.entity_set, t.navigation) for t in currency] == [("transactioncurrencies", "transactioncurrencyid")]


def test_an_unknown_entity_set_is_a_permanent_error(dv: Harness) -> None:
    with pytest.raises(PermanentError) as caught:
        dv.port.primary_key("nosuchthings")
    assert caught.value.code == "UnknownEntitySet"


def test_lookups_are_read_by_logical_name_with_their_target_table(dv: Harness) -> None:
    contact_id = seed_id("contact", "Robert Townes")
    rows = dv.port.get_rows("contacts", [contact_id], select=["fullname", "parentcustomerid", "transactioncurrencyid"])
    row = rows[contact_id]
    assert row["parentcustomerid"] == seed_id("account", "10000")
    assert row["parentcustomerid" + LOOKUP_TYPE] == "account"
    assert "_parentcustomerid_value" not in row


def test_paging_follows_next_links_one_request_per_page(dv: Harness) -> None:
    _seed_accounts(dv, "PAGE", 230)
    dv.port.primary_key("accounts")
    dv.forget_calls()

    pages = list(dv.port.list_rows("accounts", filter="startswith(name,'PAGE ')", select=["name"], page_size=50))

    assert [len(p) for p in pages] == [50, 50, 50, 50, 30]
    assert dv.count("GET", "accounts") == 5 == len(dv.calls)
    names = [r["name"] for p in pages for r in p]
    assert len(set(names)) == 230
    assert all(set(r) >= {"accountid", "name"} for p in pages for r in p)
    assert "maxpagesize" not in dv.calls[0].query  # a header, not a query option


def test_the_modification_window_and_the_echo_rule_filter_on_the_server(dv: Harness) -> None:
    before = dv.port.create_rows("accounts", [{"name": f"WIN A{i}"} for i in range(3)])
    time.sleep(1.1)  # modifiedon has whole seconds
    after = dv.port.create_rows("accounts", [{"name": f"WIN B{i}"} for i in range(2)])
    assert all(o.ok for o in before + after)

    def window(**options: Any) -> list[str]:
        pages = dv.port.list_rows(
            "accounts", filter="startswith(name,'WIN ')", select=["name", "modifiedon"], **options
        )
        return sorted(r["name"] for p in pages for r in p)

    everything = {r["name"]: r for p in dv.port.list_rows("accounts", filter="startswith(name,'WIN ')") for r in p}
    end_of_a = max(_moment(everything[f"WIN A{i}"]["modifiedon"]) for i in range(3))
    end_of_b = max(_moment(everything[f"WIN B{i}"]["modifiedon"]) for i in range(2))

    assert window(modified_after=end_of_a) == ["WIN B0", "WIN B1"]
    assert window(modified_until=end_of_a) == ["WIN A0", "WIN A1", "WIN A2"]
    assert window(modified_after=end_of_a, modified_until=end_of_b) == ["WIN B0", "WIN B1"]
    # Every row here was written by the connector itself, so the echo rule leaves none.
    me = dv.port.application_user_id()
    assert window(exclude_modified_by=me) == []
    assert f"_modifiedby_value ne {me}" in _last_filter(dv)
    assert len(window(exclude_modified_by=seed_id("systemuser", "alice"))) == 5


def _last_filter(dv: Harness) -> str:
    from urllib.parse import parse_qs

    return parse_qs(dv.calls[-1].query)["$filter"][0]


def test_rows_by_id_come_in_a_few_requests_and_missing_ids_are_absent(dv: Harness) -> None:
    _seed_accounts(dv, "BULK", 250)
    ids = [r["accountid"] for p in dv.port.list_rows("accounts", filter="startswith(name,'BULK ')") for r in p]
    unknown = [str(uuid.uuid4()), str(uuid.uuid4())]
    dv.forget_calls()

    rows = dv.port.get_rows("accounts", [i.upper() for i in ids] + unknown, select=["name"])

    assert len(rows) == 250 and not set(unknown) & set(rows)
    assert set(rows) == {i.upper() for i in ids}  # keyed by the ids as given
    assert dv.count("GET", "accounts") == len(dv.calls) <= 3
    with pytest.raises(PermanentError) as caught:
        dv.port.get_rows("accounts", ["not-a-guid"])
    assert caught.value.code == "InvalidGuid"


def test_quotes_in_values_stay_inside_their_literal(dv: Harness) -> None:
    name = "O'Brien's Bikes' or name ne '"
    created = dv.port.create_rows("accounts", [{"name": name}, {"name": "O"}])
    assert all(o.ok for o in created)

    rows = [r for p in dv.port.list_rows("accounts", filter=f"name eq {string_literal(name)}") for r in p]

    assert [r["name"] for r in rows] == [name]
    assert dv.port.count_rows("accounts", filter=f"name eq {string_literal(name)}") == 1


def test_count_is_exact_beyond_the_5000_limit_of_count(dv: Harness) -> None:
    demo = dv.port.count_rows("accounts")
    dv.door.seed({"name": "large", "accounts": 5_001})
    dv.forget_calls()

    assert dv.port.count_rows("accounts") == demo + 5_001
    assert dv.count("GET", "accounts") == 1 + 2  # the capped $count, then two pages of ids


def test_the_application_user_is_who_am_i(dv: Harness) -> None:
    assert dv.port.application_user_id() == dv.line["application_user_id"]
    dv.port.application_user_id()
    assert dv.count("GET", "WhoAmI") == 1


def test_an_answer_that_is_no_page_of_rows_is_retriable(dv: Harness) -> None:
    # A proxy's 200 with some other JSON (or a body cut short) must not read as an empty table.
    dv.port.primary_key("accounts")
    dv.door.fail_next(200, method="GET", path=r"/accounts$", body={"value": {"not": "a list"}})
    with pytest.raises(RetriableError) as raised:
        list(dv.port.list_rows("accounts", select=["name"]))
    assert raised.value.code == "UnreadableResponse"
