"""Reads by id of a whole sync slice: the filtered GETs travel as parts of one ``$batch``."""

from __future__ import annotations

import uuid

from tests.adapters.dataverse.conftest import Harness


def test_rows_of_many_ids_are_read_through_one_batch(dv: Harness) -> None:
    outcomes = dv.port.create_rows("accounts", [{"name": f"SLICE {i:03d}"} for i in range(420)])
    ids = [str(o.record_id) for o in outcomes if o.ok]
    assert len(ids) == 420
    dv.forget_calls()

    rows = dv.port.get_rows("accounts", [*ids, str(uuid.uuid4())], select=["name", "modifiedon"])

    assert dv.count("POST", "$batch") == 1 == len(dv.calls)
    assert set(rows) == set(ids)
    assert rows[ids[321]]["name"] == "SLICE 321" and rows[ids[321]]["modifiedon"]
