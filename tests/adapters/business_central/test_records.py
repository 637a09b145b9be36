"""BusinessCentralAdapter reads and bulk writes against the BC emulator, counting requests on the wire."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest
import requests

from shared.errors import ConfigurationError, PermanentError, RetriableError
from shared.odata import string_literal
from shared.ports import RecordChange
from tests.adapters.business_central.conftest import Bench

pytestmark = pytest.mark.stack


def _create(bench: Bench, count: int, prefix: str) -> list[dict[str, Any]]:
    outcomes = bench.adapter.create_records("customers", [{"displayName": f"{prefix} {i:03d}"} for i in range(count)])
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    records = [o.record for o in outcomes]
    assert all(r is not None for r in records)
    return [r for r in records if r is not None]


def _stamp(record: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(record["lastModifiedDateTime"]).replace("Z", "+00:00"))


def test_create_of_130_records_takes_two_batches_and_keeps_order(bench: Bench) -> None:
    records = _create(bench, 130, "Batch")
    assert bench.wire.count("POST", "$batch") == 2
    assert len(bench.wire.sent) == 2
    assert [r["displayName"] for r in records] == [f"Batch {i:03d}" for i in range(130)]
    assert all(r["id"] and r["@odata.etag"].startswith('W/"') and "@odata.context" not in r for r in records)


def test_paging_follows_next_links_lazily_with_one_request_per_page(bench: Bench) -> None:
    records = sorted(_create(bench, 110, "Paged"), key=_stamp)
    bench.wire.sent.clear()
    pages = bench.adapter.list_records(
        "customers", filter="startswith(displayName,'Paged')", select=["displayName"], page_size=25
    )
    assert bench.wire.sent == []  # nothing is read before the first page is asked for
    first = next(pages)
    assert len(first) == 25
    assert bench.wire.count("GET") == 1
    rest = list(pages)
    assert [len(p) for p in [first, *rest]] == [25, 25, 25, 25, 10]
    assert bench.wire.count("GET") == 5  # requests = pages
    assert all("odata.maxpagesize" not in path for _, path in bench.wire.sent)  # a header, not in the URL
    seen = [r for page in [first, *rest] for r in page]
    assert [r["id"] for r in seen] == [r["id"] for r in records]  # oldest change first
    assert set(seen[0]) == {"@odata.etag", "id", "displayName", "lastModifiedDateTime"}


def test_window_is_after_exclusive_and_until_inclusive(bench: Bench) -> None:
    records = sorted(_create(bench, 20, "Window"), key=_stamp)
    pages = bench.adapter.list_records(
        "customers", modified_after=_stamp(records[4]), modified_until=_stamp(records[14]), page_size=100
    )
    seen = [r["id"] for page in pages for r in page]
    assert seen == [r["id"] for r in records[5:15]]
    later = bench.adapter.list_records("customers", modified_after=_stamp(records[-1]))
    assert list(later) == []


def test_get_records_asks_for_50_ids_per_request(bench: Bench) -> None:
    records = _create(bench, 60, "Bulk")
    bench.wire.sent.clear()
    missing = str(uuid.uuid4())
    ids = [r["id"].upper() for r in records] + [missing, "not-a-guid"]
    found = bench.adapter.get_records("customers", iter(ids), select=["displayName"])
    assert bench.wire.count("GET") == 2
    assert set(found) == {r["id"].upper() for r in records}  # keyed as the caller spelled the ids
    assert found[records[7]["id"].upper()]["displayName"] == "Bulk 007"
    assert bench.adapter.get_records("customers", []) == {}
    assert bench.wire.count("GET") == 2


def test_count_records_is_one_request(bench: Bench) -> None:
    _create(bench, 7, "Counted")
    bench.wire.sent.clear()
    assert bench.adapter.count_records("customers", filter="startswith(displayName,'Counted')") == 7
    assert bench.adapter.count_records("customers") >= 7
    assert bench.wire.count("GET") == 2


def test_a_quote_in_a_filter_value_is_escaped(bench: Bench) -> None:
    name = "O'Brien & Sons ' or displayName ne '"
    created = _create(bench, 1, "x")[0]
    bench.adapter.update_records("customers", [RecordChange(created["id"], {"displayName": name})])
    pages = list(bench.adapter.list_records("customers", filter=f"displayName eq {string_literal(name)}"))
    assert [[r["id"] for r in page] for page in pages] == [[created["id"]]]
    assert bench.adapter.count_records("customers", filter=f"displayName eq {string_literal(name)}") == 1


def test_per_record_failures_stay_in_their_outcome(bench: Bench) -> None:
    outcomes = bench.adapter.create_records(
        "customers", [{"displayName": "Fine one"}, {"displayName": "x" * 101}, {"displayName": "Fine two"}]
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert isinstance(error, PermanentError)
    assert error.code == "Application_StringExceededLength"
    assert "too long" in error.message
    assert outcomes[1].record_id is None and outcomes[1].record is None
    assert bench.wire.count("POST", "$batch") == 1


def test_stale_etag_is_a_retriable_outcome_and_no_etag_overwrites(bench: Bench) -> None:
    first, second = _create(bench, 2, "Etag")
    changed = bench.adapter.update_records(
        "customers",
        [RecordChange(first["id"], {"displayName": "Etag A"}, first["@odata.etag"]), RecordChange(second["id"], {})],
    )
    assert all(o.ok for o in changed)
    assert changed[0].record is not None and changed[0].record["@odata.etag"] != first["@odata.etag"]
    stale, blind, missing, bad = bench.adapter.update_records(
        "customers",
        [
            RecordChange(first["id"], {"displayName": "Etag B"}, first["@odata.etag"]),
            RecordChange(second["id"], {"displayName": "Etag C"}),
            RecordChange(str(uuid.uuid4()), {"displayName": "nobody"}),
            RecordChange("42", {"displayName": "bad id"}),
        ],
    )
    assert not stale.ok and isinstance(stale.error, RetriableError)
    assert stale.error.code == "Request_EntityChanged" and stale.record_id == first["id"]
    assert blind.ok and blind.record is not None and blind.record["displayName"] == "Etag C"
    assert not missing.ok and isinstance(missing.error, PermanentError)
    assert not bad.ok and isinstance(bad.error, PermanentError) and bad.error.code == "InvalidGuid"
    assert bench.wire.count("POST", "$batch") == 3  # create, update, update: the bad id never went out


def test_delete_of_a_missing_record_is_ok(bench: Bench) -> None:
    (record,) = _create(bench, 1, "Doomed")
    outcomes = bench.adapter.delete_records("customers", [record["id"], str(uuid.uuid4()), record["id"]])
    assert [o.ok for o in outcomes] == [True, True, True]
    assert outcomes[0].record_id == record["id"]
    assert bench.adapter.get_records("customers", [record["id"]]) == {}


def test_a_throttled_batch_is_retried_after_retry_after(bench: Bench) -> None:
    bench.door.throttle(method="POST", path=r"\$batch$", count=1, retry_after=0.2)
    outcomes = bench.adapter.create_records("customers", [{"displayName": "Throttled"}])
    assert outcomes[0].ok
    assert bench.wire.count("POST", "$batch") == 2  # the 429 (BC ran nothing), then the retry
    assert bench.door.faults()["fired"]["throttle"] >= 1
    assert bench.adapter.count_records("customers", filter="displayName eq 'Throttled'") == 1


def test_an_ambiguous_failure_of_a_create_batch_is_not_resent(bench: Bench) -> None:
    bench.door.fail_next(500, method="POST", path=r"\$batch$")
    outcomes = bench.adapter.create_records("customers", [{"displayName": "Maybe 1"}, {"displayName": "Maybe 2"}])
    assert bench.wire.count("POST", "$batch") == 1
    assert all(not o.ok and isinstance(o.error, RetriableError) for o in outcomes)
    assert {o.error.code for o in outcomes if o.error} == {"OutcomeUnknown"}


def test_an_ambiguous_failure_of_an_update_batch_is_resent(bench: Bench) -> None:
    (record,) = _create(bench, 1, "Resent")
    bench.door.fail_next(502, method="POST", path=r"\$batch$")
    (outcome,) = bench.adapter.update_records("customers", [RecordChange(record["id"], {"displayName": "Again"})])
    assert outcome.ok
    assert bench.wire.count("POST", "$batch") == 3  # the create, the 502, the retry


def test_operations_throttled_inside_a_batch_are_resent_alone(bench: Bench) -> None:
    records = _create(bench, 3, "Inner")
    # BC may answer one operation of a batch 429; the emulator throttles whole requests only,
    # so this rewrites the first batch answer on the wire (the PATCHes are idempotent).
    rewritten: list[int] = []

    def throttle_second_item(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if rewritten or not str(response.request.url).endswith("$batch"):
            return
        body = response.json()
        body["responses"][1] = {
            "id": body["responses"][1]["id"],
            "status": 429,
            "headers": {"retry-after": "0.1"},
            "body": {"error": {"code": "TooManyRequests", "message": "slow down"}},
        }
        response._content = json.dumps(body).encode()
        rewritten.append(1)

    bench.session.hooks["response"].insert(0, throttle_second_item)
    try:
        outcomes = bench.adapter.update_records(
            "customers", [RecordChange(r["id"], {"displayName": f"Inner x{i}"}) for i, r in enumerate(records)]
        )
    finally:
        bench.session.hooks["response"].remove(throttle_second_item)
    assert [o.ok for o in outcomes] == [True, True, True]
    assert bench.wire.count("POST", "$batch") == 3  # the create, the batch of 3, the resent one
    assert outcomes[1].record is not None and outcomes[1].record["displayName"] == "Inner x1"


def test_bad_arguments_and_refusals_raise_categories_without_secrets(bench: Bench) -> None:
    with pytest.raises(PermanentError):
        bench.adapter.list_records("customers", page_size=20_001)
    with pytest.raises(PermanentError):
        bench.adapter.list_records("customers/../x")
    with pytest.raises(PermanentError):
        bench.adapter.get_records("customers", [str(uuid.uuid4())], select=["displayName desc"])
    with pytest.raises(PermanentError) as refused:
        list(bench.adapter.list_records("customers", filter="nosuchfield eq 1"))
    assert refused.value.code.startswith("BadRequest") or refused.value.code.startswith("HTTP")
    bench.door.fail_next(401, method="GET", path="customers", body={"error": {"code": "Unauthorized", "message": "no"}})
    with pytest.raises(ConfigurationError) as denied:
        bench.adapter.count_records("customers")
    assert "Bearer" not in denied.value.message and "eyJ" not in denied.value.message


def test_batches_run_in_parallel_within_the_concurrency_limit(bench: Bench) -> None:
    costs, limits = bench.door.costs(), bench.door.call("GET", "settings")
    # Each $batch holds one of BC's running slots for 0.5 s; a 5th concurrent request would be 429.
    bench.door.costs(sleep=True, costs={"batch": 0.5})
    bench.door.call("PATCH", "limits", {"max_concurrent": 4, "max_queued": 0})
    try:
        started = time.monotonic()
        outcomes = bench.adapter.create_records("customers", [{"displayName": f"Par {i}"} for i in range(450)])
        elapsed = time.monotonic() - started
    finally:
        bench.door.costs(sleep=costs["sleep"], costs={"batch": costs["costs"].get("batch", costs["default"])})
        bench.door.call("PATCH", "limits", {k: limits[k] for k in ("max_concurrent", "max_queued")})
    assert all(o.ok for o in outcomes)
    assert bench.wire.count("POST", "$batch") == 5  # none refused for concurrency, none resent
    assert elapsed < 2.3  # two waves of 0.5 s, where one batch after another takes 2.5 s


def test_an_answer_that_is_no_page_of_records_is_retriable(bench: Bench) -> None:
    # A proxy's 200 with some other JSON (or a body cut short) must not read as an empty table.
    bench.door.fail_next(200, method="GET", path=r"/customers$", body={"message": "maintenance"})
    with pytest.raises(RetriableError) as raised:
        list(bench.adapter.list_records("customers"))
    assert raised.value.code == "BadResponse"
    assert list(bench.adapter.list_records("customers", page_size=1))  # the next read is served
