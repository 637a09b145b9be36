"""DataverseAdapter writes against the Dataverse emulator: bulk messages, $batch, lookups, throttling."""

from __future__ import annotations

import time
import uuid

import pytest

from emulators.dataverse import seed_id
from shared.errors import ConfigurationError, PermanentError, RetriableError
from shared.ports import RecordChange
from tests.adapters.dataverse.conftest import Harness, build_adapter

pytestmark = pytest.mark.stack

LOOKUP_TYPE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
CREATE_MULTIPLE = "accounts/Microsoft.Dynamics.CRM.CreateMultiple"
UPDATE_MULTIPLE = "accounts/Microsoft.Dynamics.CRM.UpdateMultiple"


def _stored(dv: Harness, entity: str) -> dict[str, dict[str, object]]:
    rows = dv.door.call("GET", f"rows?entity={entity}")["value"]
    return {str(r[f"{entity}id"]): r for r in rows}


def test_lookups_round_trip_including_the_polymorphic_parent_customer(dv: Harness) -> None:
    account, other_contact = seed_id("account", "20000"), seed_id("contact", "Ilse Peeters")
    eur = seed_id("transactioncurrency", "EUR")
    [created] = dv.port.create_rows(
        "contacts",
        [
            {
                "lastname": "Lookup",
                "parentcustomerid": account,
                "parentcustomerid" + LOOKUP_TYPE: "account",
                "transactioncurrencyid": eur,
                "bcbi_companyid": None,  # left out of a create
            }
        ],
    )
    assert created.ok and created.record_id
    contact = created.record_id
    select = ["lastname", "parentcustomerid", "transactioncurrencyid"]

    row = dv.port.get_rows("contacts", [contact], select=select)[contact]
    assert (row["parentcustomerid"], row["parentcustomerid" + LOOKUP_TYPE]) == (account, "account")
    assert row["transactioncurrencyid"] == eur

    # A row read can be written back as it is; then re-point the parent at a contact, then clear it.
    assert dv.port.update_rows("contacts", [RecordChange(contact, row)])[0].ok
    moved = {"parentcustomerid": other_contact, "parentcustomerid" + LOOKUP_TYPE: "contact"}
    assert dv.port.update_rows("contacts", [RecordChange(contact, moved)])[0].ok
    row = dv.port.get_rows("contacts", [contact], select=select)[contact]
    assert (row["parentcustomerid"], row["parentcustomerid" + LOOKUP_TYPE]) == (other_contact, "contact")

    assert dv.port.update_rows("contacts", [RecordChange(contact, {"parentcustomerid": None})])[0].ok
    assert dv.port.get_rows("contacts", [contact], select=select)[contact]["parentcustomerid"] is None


def test_a_polymorphic_lookup_without_its_target_fails_only_its_own_row(dv: Harness) -> None:
    outcomes = dv.port.create_rows(
        "contacts",
        [{"lastname": "Good"}, {"lastname": "Ambiguous", "parentcustomerid": seed_id("account", "10000")}],
    )
    assert outcomes[0].ok
    assert not outcomes[1].ok and isinstance(outcomes[1].error, PermanentError)
    assert outcomes[1].error.code == "AmbiguousLookup"


def test_create_multiple_writes_250_rows_in_three_requests(dv: Harness) -> None:
    dv.port.primary_key("accounts")
    dv.forget_calls()

    outcomes = dv.port.create_rows("accounts", [{"name": f"BULK {i:03d}", "creditlimit": i} for i in range(250)])

    assert all(o.ok for o in outcomes)
    assert len({o.record_id for o in outcomes}) == 250
    assert dv.count("POST", CREATE_MULTIPLE) == 3 == len(dv.calls)
    stored = _stored(dv, "account")
    assert all(o.record_id in stored for o in outcomes)
    assert stored[str(outcomes[7].record_id)]["name"] == "BULK 007"

    changes = [RecordChange(str(o.record_id), {"telephone1": f"+1 {i}"}) for i, o in enumerate(outcomes)]
    dv.forget_calls()
    assert all(o.ok for o in dv.port.update_rows("accounts", changes))
    assert dv.count("POST", UPDATE_MULTIPLE) == 3 == len(dv.calls)
    assert _stored(dv, "account")[str(outcomes[249].record_id)]["telephone1"] == "+1 249"


def test_a_table_without_bulk_messages_falls_back_to_batch_and_remembers(dv: Harness) -> None:
    def currency(code: str) -> dict[str, object]:
        return {"isocurrencycode": code, "currencyname": code, "currencysymbol": code, "exchangerate": 1.5}

    dv.port.primary_key("transactioncurrencies")
    dv.forget_calls()
    first = dv.port.create_rows("transactioncurrencies", [currency("GBP"), currency("CHF")])
    assert all(o.ok for o in first)
    assert [(c.path, c.status) for c in dv.calls] == [
        ("transactioncurrencies/Microsoft.Dynamics.CRM.CreateMultiple", 405),
        ("$batch", 200),
    ]

    dv.forget_calls()
    second = dv.port.create_rows("transactioncurrencies", [currency("SEK"), currency("EUR"), currency("NOK")])
    # No second 405. The duplicate on a new id is checked with one read: a create of ours that landed
    # before a lost response would be there (and count as done); here it is an alternate-key clash.
    assert [(c.path, c.status) for c in dv.calls] == [("$batch", 200), ("transactioncurrencies", 200)]
    assert [o.ok for o in second] == [True, False, True]  # EUR exists: its alternate key is taken
    assert isinstance(second[1].error, PermanentError) and second[1].record_id is None
    codes = {r["isocurrencycode"] for r in _stored(dv, "transactioncurrency").values()}
    assert {"GBP", "CHF", "SEK", "NOK"} <= codes


def test_one_invalid_row_among_many_fails_alone(dv: Harness) -> None:
    rows = [{"name": f"MANY {i:02d}"} for i in range(30)]
    rows[17] = {"name": "x" * 161}  # account.name holds 160 characters
    dv.port.primary_key("accounts")
    dv.forget_calls()

    outcomes = dv.port.create_rows("accounts", rows)

    failed = [i for i, o in enumerate(outcomes) if not o.ok]
    assert failed == [17]
    error = outcomes[17].error
    assert isinstance(error, PermanentError) and error.code == "0x80044331"
    assert [(c.path, c.status) for c in dv.calls] == [(CREATE_MULTIPLE, 400), ("$batch", 200)]
    names = {r["name"] for r in _stored(dv, "account").values()}
    assert {f"MANY {i:02d}" for i in range(30) if i != 17} <= names

    # Updates the same way: UpdateMultiple fails for one missing row, the others still land.
    missing = str(uuid.uuid4())
    changes = [RecordChange(str(o.record_id), {"telephone1": "555"}) for o in outcomes if o.ok][:5]
    changes.insert(2, RecordChange(missing, {"telephone1": "555"}))
    updated = dv.port.update_rows("accounts", changes)
    assert [o.ok for o in updated] == [True, True, False, True, True, True]
    assert isinstance(updated[2].error, PermanentError) and updated[2].record_id == missing


def test_updates_with_an_etag_are_conditional(dv: Harness) -> None:
    account = seed_id("account", "30000")
    etag = dv.port.get_rows("accounts", [account])[account]["@odata.etag"]
    assert dv.port.update_rows("accounts", [RecordChange(account, {"fax": "1"}, etag=etag)])[0].ok

    stale = dv.port.update_rows("accounts", [RecordChange(account, {"fax": "2"}, etag=etag)])[0]
    assert not stale.ok and isinstance(stale.error, RetriableError)  # changed since read: re-read, retry
    assert _stored(dv, "account")[account]["fax"] == "1"


def test_deletes_count_rows_already_gone_as_deleted(dv: Harness) -> None:
    created = dv.port.create_rows("accounts", [{"name": "DEL 1"}, {"name": "DEL 2"}])
    ids = [str(o.record_id) for o in created] + [str(uuid.uuid4())]
    dv.forget_calls()

    outcomes = dv.port.delete_rows("accounts", [*ids, "not-a-guid"])

    assert [o.ok for o in outcomes] == [True, True, True, False]
    assert outcomes[3].error is not None and outcomes[3].error.code == "InvalidGuid"
    assert dv.count("POST", "$batch") == 1 == len(dv.calls)
    assert not set(ids) & set(_stored(dv, "account"))


def test_an_injected_429_is_waited_out_and_retried(dv: Harness) -> None:
    dv.port.primary_key("accounts")
    dv.door.throttle(path="accounts", count=1, retry_after=1)
    dv.forget_calls()
    started = time.monotonic()

    pages = list(dv.port.list_rows("accounts", select=["name"]))

    assert sum(len(p) for p in pages) >= 4
    assert [c.status for c in dv.calls] == [429, 200]
    assert time.monotonic() - started >= 0.9  # Retry-After honoured


def test_low_service_protection_limits_slow_writes_down_without_failures(dv: Harness) -> None:
    # Eight parallel requests (the hint) against a limit of two concurrent requests that each hold
    # the server for a while: the gate must shrink to what the server accepts.
    dv.door.call("PATCH", "limits", {"concurrency": 2, "dop_hint": 8})
    dv.door.costs(time_scale=10.0, sleep=True, costs={"request": 1.5})
    port, _, session = build_adapter(dv.line, bulk_size=20)
    port.primary_key("accounts")
    session.calls.clear()

    outcomes = port.create_rows("accounts", [{"name": f"SP {i:03d}"} for i in range(320)])

    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:1]
    statuses = [c.status for c in session.calls]
    assert statuses.count(429) >= 1  # the limits did bite
    assert statuses.count(200) == 16  # and every chunk landed exactly once
    names = {r["name"] for r in _stored(dv, "account").values()}
    assert {f"SP {i:03d}" for i in range(320)} <= names
    session.close()


def test_a_create_whose_response_was_lost_after_commit_is_not_duplicated(dv: Harness) -> None:
    dv.port.primary_key("accounts")
    dv.door.drop_after_commit(path="CreateMultiple", count=1)
    dv.forget_calls()

    outcomes = dv.port.create_rows("accounts", [{"name": f"LOST {i}"} for i in range(5)])

    # The retry meets the rows the lost attempt created (our ids), so they count as created, once.
    assert all(o.ok for o in outcomes)
    names = [str(r["name"]) for r in _stored(dv, "account").values() if str(r["name"]).startswith("LOST ")]
    assert sorted(names) == [f"LOST {i}" for i in range(5)]
    assert {str(o.record_id) for o in outcomes} <= set(_stored(dv, "account"))
    assert [(c.path, c.status) for c in dv.calls] == [
        (CREATE_MULTIPLE, 412),  # the retry of the dropped request: duplicate ids
        ("$batch", 200),  # row by row: every one a duplicate
        ("accounts", 200),  # one read proves they are ours
    ]


def test_a_refused_token_is_a_configuration_error_without_secrets(dv: Harness) -> None:
    dv.port.primary_key("accounts")
    dv.door.fail_next(401, path="accounts", body={"error": {"code": "", "message": "Bearer token rejected"}})

    with pytest.raises(ConfigurationError) as caught:
        list(dv.port.list_rows("accounts"))

    assert dv.line["client_secret"] not in caught.value.message
    assert "Bearer ey" not in caught.value.message


def test_a_server_error_on_a_bulk_message_is_retried_in_process(dv: Harness) -> None:
    dv.port.primary_key("accounts")
    dv.door.fail_next(503, path="CreateMultiple", count=1)
    dv.forget_calls()

    outcomes = dv.port.create_rows("accounts", [{"name": "FLAKY"}])

    assert outcomes[0].ok
    assert [c.status for c in dv.calls] == [503, 200]
