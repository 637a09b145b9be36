"""The hand-written entity-group transaction: entity JSON and reading the service's answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.tables._changesets import entity_json, etags_of

_OK_PART = (
    b"--changesetresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\nDataServiceVersion: 3.0;\r\n"
    b"ETag: W/\"datetime'2026-11-24T05%3A26%3A58.9486987Z'\"\r\n\r\n"
)
# What the service answers when one operation of the changeset is refused: that one part only.
_REFUSED = (
    b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
    b"--changesetresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
    b'{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US",'
    b'"value":"1:The specified entity already exists."}}}\r\n--changesetresponse_1--\r\n--batchresponse_1--\r\n'
)


def test_entity_json_types_datetimes_and_leaves_out_none() -> None:
    local = datetime(2026, 3, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    body = entity_json({"PartitionKey": "P", "RowKey": "bc:1", "At": local, "Gone": None, "N": 3, "B": False})
    assert body == {
        "PartitionKey": "P",
        "RowKey": "bc:1",
        "At": "2026-03-01T09:00:00.000005Z",
        "At@odata.type": "Edm.DateTime",
        "N": 3,
        "B": False,
    }
    assert entity_json({"Big": 2**40}) == {"Big": str(2**40), "Big@odata.type": "Edm.Int64"}
    with pytest.raises(TypeError):
        entity_json({"Bytes": b"x"})


def test_etags_only_when_every_operation_succeeded() -> None:
    body = b"--batchresponse_1\r\n" + _OK_PART * 2 + b"--changesetresponse_1--\r\n--batchresponse_1--\r\n"
    assert etags_of(body, 2) == [
        "W/\"datetime'2026-11-24T05%3A26%3A58.9486987Z'\"",
        "W/\"datetime'2026-11-24T05%3A26%3A58.9486987Z'\"",
    ]
    assert etags_of(body, 3) is None  # fewer answers than operations: not known to be written
    assert etags_of(_REFUSED, 2) is None
    assert etags_of(b"", 1) is None
