"""Reads by id of a whole sync slice: the id queries travel together in one ``$batch`` of GETs."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import PermanentError
from tests.adapters.business_central.conftest import Bench


def test_get_records_of_many_ids_sends_their_queries_in_one_batch(bench: Bench) -> None:
    outcomes = bench.adapter.create_records("customers", [{"displayName": f"Slice {i:03d}"} for i in range(230)])
    assert all(o.ok for o in outcomes)
    created = [o.record for o in outcomes if o.record is not None]
    bench.wire.sent.clear()

    ids = [str(r["id"]) for r in created] + [str(uuid.uuid4())]
    found = bench.adapter.get_records("customers", ids, select=["displayName"])

    assert bench.wire.sent == [("POST", "/$batch")]  # 5 queries of up to 50 ids, one request
    assert set(found) == {str(r["id"]) for r in created}
    assert found[str(created[123]["id"])]["displayName"] == "Slice 123"


def test_a_refused_query_inside_the_batch_is_the_read_error(bench: Bench) -> None:
    ids = [str(uuid.uuid4()) for _ in range(160)]
    with pytest.raises(PermanentError, match="nope"):
        bench.adapter.get_records("customers", ids, select=["nope"])
