"""Reads by primary key in bulk (``pk eq … or …``), the way the connector reads a page back."""

from __future__ import annotations

import pytest

from tests.emulators.dataverse.conftest import Dv

pytestmark = pytest.mark.stack


def test_primary_key_or_chain_returns_exactly_those_rows_in_scan_order(dv: Dv) -> None:
    dv.door.seed({"rows": {"account": [{"name": f"Seek {i:03d}"} for i in range(40)]}})
    rows = dv.get("accounts?$select=accountid,name&$filter=startswith(name,'Seek')").json()["value"]
    wanted = rows[5:25:2]
    clause = " or ".join(f"accountid eq {r['accountid']}" for r in wanted)
    found = dv.get(f"accounts?$select=accountid,name,modifiedon&$filter={clause}").json()["value"]
    assert [r["name"] for r in found] == [r["name"] for r in wanted]
    assert all(r["modifiedon"] for r in found)
    narrowed = dv.get(f"accounts?$select=name&$filter=({clause}) and name eq '{wanted[3]['name']}'").json()["value"]
    assert [r["name"] for r in narrowed] == [wanted[3]["name"]]
    # An or-chain that mixes in another column is evaluated as written, not as a key seek.
    mixed = dv.get(f"accounts?$select=name&$filter=({clause}) or name eq 'Seek 000'").json()["value"]
    assert sorted(r["name"] for r in mixed) == sorted(["Seek 000", *(r["name"] for r in wanted)])
