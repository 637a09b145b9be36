"""The adapter's pure parts: row translation, the $batch format and the service-protection gate."""

from __future__ import annotations

import json
import time

import pytest
import requests

from shared.adapters.dataverse._batch import BatchOperation, decode_batch, encode_batch
from shared.adapters.dataverse._metadata import Lookup, LookupTarget, TableMetadata
from shared.adapters.dataverse._rows import from_wire, to_wire, wire_select
from shared.adapters.dataverse.client import _Gate
from shared.adapters.dataverse.errors import part_error
from shared.errors import PermanentError, RetriableError

pytestmark = pytest.mark.unit

GUID = "5b0c7a38-1f4e-4d2a-9a57-0e3f1c2d4b6a"
TYPE = "@Microsoft.Dynamics.CRM.lookuplogicalname"

CONTACT = TableMetadata(
    entity_set="contacts",
    logical_name="contact",
    primary_key="contactid",
    lookups={
        "parentcustomerid": Lookup(
            "parentcustomerid",
            (
                LookupTarget("account", "accounts", "parentcustomerid_account"),
                LookupTarget("contact", "contacts", "parentcustomerid_contact"),
            ),
        ),
        "ownerid": Lookup(
            "ownerid", (LookupTarget("systemuser", "systemusers", "ownerid"), LookupTarget("team", "teams", "ownerid"))
        ),
        "bcbi_companyid": Lookup("bcbi_companyid", (LookupTarget("bcbi_company", "bcbi_companies", "bcbi_CompanyId"),)),
    },
)


def test_lookups_become_binds_on_their_navigation_property() -> None:
    body = to_wire(
        CONTACT,
        {
            "lastname": "O'Neil",
            "parentcustomerid": GUID.upper(),
            "parentcustomerid" + TYPE: "contact",
            "ownerid": GUID,
            "bcbi_companyid": GUID,
            "@odata.etag": 'W/"1"',
            "lastname@OData.Community.Display.V1.FormattedValue": "x",
            "transactioncurrencyid@odata.bind": "/transactioncurrencies(1)",
        },
        creating=True,
    )
    assert body == {
        "lastname": "O'Neil",
        "parentcustomerid_contact@odata.bind": f"/contacts({GUID})",
        "ownerid@odata.bind": f"/systemusers({GUID})",  # an owner without a type is a user
        "bcbi_CompanyId@odata.bind": f"/bcbi_companies({GUID})",  # case from metadata, not guessed
        "transactioncurrencyid@odata.bind": "/transactioncurrencies(1)",
    }


def test_a_cleared_lookup_is_left_out_of_a_create_and_unbound_on_an_update() -> None:
    assert to_wire(CONTACT, {"bcbi_companyid": None}, creating=True) == {}
    assert to_wire(CONTACT, {"bcbi_companyid": None}, creating=False) == {"bcbi_CompanyId@odata.bind": None}
    assert to_wire(CONTACT, {"parentcustomerid": None}, creating=False) == {"parentcustomerid_account@odata.bind": None}


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"parentcustomerid": GUID}, "AmbiguousLookup"),
        ({"parentcustomerid": GUID, "parentcustomerid" + TYPE: "lead"}, "UnknownLookupTarget"),
        ({"bcbi_companyid": "1 or 1 eq 1"}, "InvalidGuid"),
    ],
)
def test_lookup_values_that_cannot_be_bound_are_permanent_errors(values: dict[str, str], code: str) -> None:
    with pytest.raises(PermanentError) as caught:
        to_wire(CONTACT, values, creating=False)
    assert caught.value.code == code


def test_lookup_values_are_read_by_logical_name() -> None:
    wire = {
        "@odata.etag": 'W/"7"',
        "contactid": GUID,
        "_parentcustomerid_value": GUID,
        f"_parentcustomerid_value{TYPE}": "account",
        "_unknown_value": 1,
    }
    assert from_wire(CONTACT, wire) == {
        "@odata.etag": 'W/"7"',
        "contactid": GUID,
        "parentcustomerid": GUID,
        "parentcustomerid" + TYPE: "account",
        "_unknown_value": 1,
    }
    assert wire_select(CONTACT, ["lastname", "parentcustomerid"]) == "contactid,lastname,_parentcustomerid_value"
    with pytest.raises(PermanentError):
        wire_select(CONTACT, ["name) or (1 eq 1"])


def test_a_batch_round_trips_through_its_wire_format() -> None:
    content_type, body = encode_batch(
        [
            BatchOperation("POST", "https://x/api/data/v9.2/accounts", {"name": "Ø'"}),
            BatchOperation("DELETE", f"https://x/api/data/v9.2/accounts({GUID})"),
        ]
    )
    text = body.decode()
    boundary = content_type.split("boundary=")[1]
    assert text.count(f"--{boundary}\r\n") == 2 and text.endswith(f"--{boundary}--\r\n")
    assert "POST https://x/api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json" in text

    error = json.dumps({"error": {"code": "0x80044331", "message": "too long"}})
    response = (
        "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nOData-EntityId: https://x/accounts(1)\r\n\r\n\r\n"
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        "--changesetresponse_2\r\nContent-Type: application/http\r\n\r\n"
        f"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{error}\r\n"
        "--changesetresponse_2--\r\n"
        '--batchresponse_1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{"a": 1}\r\n'
        "--batchresponse_1--\r\n"
    )
    parts = decode_batch("multipart/mixed; boundary=batchresponse_1", response.encode())
    assert [p.status for p in parts] == [204, 400, 200]
    assert parts[0].headers["odata-entityid"] == "https://x/accounts(1)"
    assert parts[2].body == b'{"a": 1}'
    failure = part_error(parts[1].status, parts[1].headers, parts[1].body, "writing")
    assert isinstance(failure, PermanentError) and failure.code == "0x80044331"
    throttled = part_error(429, {"Retry-After": "3"}, b'{"error":{"code":"0x80072322","message":"m"}}', "w")
    assert isinstance(throttled, RetriableError) and throttled.retry_after == 3.0
    with pytest.raises(ValueError, match="boundary"):
        decode_batch("application/json", b"{}")


def _response(status: int, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    return response


def test_the_gate_follows_the_hint_halves_on_429_and_grows_back() -> None:
    gate = _Gate(ceiling=16)
    gate.observe(_response(200, **{"x-ms-dop-hint": "50"}))
    assert gate.hint == 16 and gate._limit == 16  # our ceiling wins over a larger hint
    gate.observe(_response(429, **{"Retry-After": "0.2"}))
    assert gate._limit == 8
    started = time.monotonic()
    with gate.slot():
        assert time.monotonic() - started >= 0.15  # everyone waits out the Retry-After
    for _ in range(8):
        gate.observe(_response(204))
    assert gate._limit == 9
