"""Multipart $batch (E.1 items 12-14) and the bulk messages CreateMultiple/UpdateMultiple/UpsertMultiple."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import requests

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack


def _part(method: str, url: str, body: Any = None, content_id: str | None = None, headers: str = "") -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    text = f"{head}\r\n{method} {url} HTTP/1.1\r\n{headers}"
    if body is not None:
        text += "Content-Type: application/json; type=entry\r\n\r\n" + json.dumps(body) + "\r\n"
    else:
        text += "\r\n"
    return text


def _batch(dv: Dv, items: list[str | list[str]], prefer: str | None = None) -> requests.Response:
    boundary = f"batch_{uuid.uuid4()}"
    chunks = []
    for item in items:
        chunks.append(f"--{boundary}\r\n")
        if isinstance(item, list):
            change_set = f"changeset_{uuid.uuid4()}"
            chunks.append(f"Content-Type: multipart/mixed; boundary={change_set}\r\n\r\n")
            chunks += [f"--{change_set}\r\n{part}" for part in item]
            chunks.append(f"--{change_set}--\r\n")
        else:
            chunks.append(item)
    chunks.append(f"--{boundary}--\r\n")
    headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
    if prefer:
        headers["Prefer"] = prefer
    return dv.request("POST", "$batch", data="".join(chunks).encode(), headers=headers)


def _responses(response: requests.Response) -> list[tuple[int, dict[str, str], str]]:
    boundary = re.search(r"boundary=([^;]+)", response.headers["Content-Type"])
    assert boundary is not None and boundary.group(1).startswith("batchresponse_")
    parts = []
    for match in re.finditer(r"HTTP/1\.1 (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n", response.text):
        headers = dict(line.split(": ", 1) for line in match.group(2).strip().split("\r\n") if line)
        rest = response.text[match.end() :]
        body = rest.split("\r\n--", 1)[0].strip()
        parts.append((int(match.group(1)), headers, body))
    return parts


def test_batch_runs_parts_in_order_with_change_sets_and_content_ids(dv: Dv) -> None:
    account_url = f"{dv.base}/accounts"
    response = _batch(
        dv,
        [
            _part("GET", f"{dv.base}/accounts({sid('account', '10000')})?$select=name"),
            [
                _part("POST", account_url, {"name": "Batch parent"}, content_id="1"),
                _part(
                    "POST",
                    "contacts",
                    {"lastname": "Batch child", "parentcustomerid_account@odata.bind": "$1"},
                    content_id="2",
                ),
                _part("PATCH", "$1", {"telephone1": "555"}, content_id="3"),
            ],
            _part("GET", "/api/data/v9.2/accounts?$select=name&$filter=name eq 'Batch parent'"),
        ],
    )
    assert response.status_code == 200, response.text
    assert "changesetresponse_" in response.text
    parts = _responses(response)
    assert [p[0] for p in parts] == [200, 204, 204, 204, 200]
    assert json.loads(parts[0][2])["name"] == "Adatum Corporation"
    assert parts[1][1]["OData-EntityId"].startswith(f"{dv.base}/accounts(")
    assert parts[1][1]["Location"] == parts[1][1]["OData-EntityId"]
    parent_id = parts[1][1]["OData-EntityId"][-37:-1]
    found = json.loads(parts[4][2])["value"]
    assert [row["accountid"] for row in found] == [parent_id]
    child = dv.get(f"contacts?$filter=_parentcustomerid_value eq {parent_id}&$select=lastname").json()["value"]
    assert [c["lastname"] for c in child] == ["Batch child"]
    assert dv.get(f"accounts({parent_id})?$select=telephone1").json()["telephone1"] == "555"


def test_a_failing_change_set_rolls_back_and_stops_the_batch(dv: Dv) -> None:
    response = _batch(
        dv,
        [
            [
                _part("POST", "accounts", {"name": "Rolled back", "accountnumber": "RB-1"}, content_id="1"),
                _part("POST", "accounts", {"name": "x" * 200}, content_id="2"),
            ],
            _part("POST", "accounts", {"name": "Never reached"}),
        ],
    )
    assert response.status_code == 400
    parts = _responses(response)
    assert len(parts) == 1 and parts[0][0] == 400
    assert json.loads(parts[0][2])["error"]["code"] == "0x80044331"
    names = dv.get("accounts?$select=name&$filter=name eq 'Rolled back' or name eq 'Never reached'").json()["value"]
    assert names == []
    assert dv.get("accounts(accountnumber='RB-1')").status_code == 404
    assert dv.post("accounts", {"name": "Key is free again", "accountnumber": "RB-1"}).status_code == 204


def test_continue_on_error_processes_every_part(dv: Dv) -> None:
    response = _batch(
        dv,
        [
            _part("POST", "accounts", {"name": "x" * 200}),
            _part("POST", "accounts", {"name": "Still created"}),
            [_part("POST", "accounts", {"name": "ok"}, content_id="1"), _part("GET", "accounts", content_id="2")],
        ],
        prefer="odata.continue-on-error",
    )
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "odata.continue-on-error"
    statuses = [p[0] for p in _responses(response)]
    assert statuses == [400, 204, 400]
    assert len(dv.get("accounts?$select=name&$filter=name eq 'Still created'").json()["value"]) == 1
    assert dv.get("accounts?$select=name&$filter=name eq 'ok'").json()["value"] == []  # GET in a change set


def test_forward_content_id_and_oversized_batches_are_rejected(dv: Dv) -> None:
    forward = _batch(
        dv,
        [
            [
                _part(
                    "POST", "contacts", {"lastname": "x", "parentcustomerid_account@odata.bind": "$2"}, content_id="1"
                ),
                _part("POST", "accounts", {"name": "later"}, content_id="2"),
            ]
        ],
    )
    assert forward.status_code == 400
    assert "Content-ID Reference: '$2' does not exist in the batch context." in forward.text
    too_many = _batch(dv, [_part("GET", "WhoAmI") for _ in range(1001)])
    assert too_many.status_code == 400
    assert "exceeds the limit of 1000" in too_many.json()["error"]["message"]
    malformed = dv.request("POST", "$batch", data=b"nonsense", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400


def test_create_multiple_is_all_or_nothing(dv: Dv) -> None:
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": f"Bulk {i}"} for i in range(3)]
    created = dv.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": targets})
    assert created.status_code == 200, created.text
    assert created.headers["x-ms-dop-hint"] == "4"
    ids = created.json()["Ids"]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert dv.get(f"accounts({ids[0]})?$select=name").json()["name"] == "Bulk 0"

    bad = [
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "Fine"},
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "y" * 161},
    ]
    failed = dv.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": bad})
    assert failed.status_code == 400 and failed.json()["error"]["code"] == "0x80044331"
    assert dv.get("accounts?$select=name&$filter=name eq 'Fine'").json()["value"] == []
    wrong_type = dv.post(
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        {"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "x"}]},
    )
    assert wrong_type.status_code == 400
    unsupported = dv.post(
        "posts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.post"}]}
    )
    assert unsupported.status_code == 405


def test_update_and_upsert_multiple(dv: Dv) -> None:
    adatum, trey = sid("account", "10000"), sid("account", "20000")
    updated = dv.post(
        "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": adatum, "telephone1": "1"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": trey, "telephone1": "2"},
            ]
        },
    )
    assert updated.status_code == 204, updated.text
    assert dv.get(f"accounts({trey})?$select=telephone1").json()["telephone1"] == "2"
    missing = dv.post(
        "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": adatum, "telephone1": "changed"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": str(uuid.uuid4()), "telephone1": "3"},
            ]
        },
    )
    assert missing.status_code == 404
    assert dv.get(f"accounts({adatum})?$select=telephone1").json()["telephone1"] == "1"  # rolled back

    upserted = dv.post(
        "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountnumber": "20000", "name": "Trey (upserted)"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountnumber": "U-1", "name": "Brand new"},
            ]
        },
    )
    assert upserted.status_code == 200, upserted.text
    results = upserted.json()["Results"]
    assert [r["RecordCreated"] for r in results] == [False, True]
    assert results[0]["Id"] == trey
    assert dv.get("accounts(accountnumber='U-1')?$select=name").json()["name"] == "Brand new"
