"""Pure parts of the Dataverse emulator: key segments and the $batch wire format."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from emulators.dataverse._batch import BatchOperation, ChangeSet, PartResponse, parse_batch, write_batch
from emulators.dataverse._errors import DataverseError
from emulators.dataverse._model import Attribute, AttrType, EntityDefinition
from emulators.dataverse._records import Key, parse_key

pytestmark = pytest.mark.unit

CONTACT = EntityDefinition(
    logical_name="contact",
    entity_set="contacts",
    primary_id="contactid",
    primary_name="fullname",
    object_type_code=2,
    attributes=MappingProxyType({
        "contactid": Attribute("contactid", AttrType.UNIQUEIDENTIFIER),
        "firstname": Attribute("firstname", AttrType.STRING, max_length=50),
        "emailaddress1": Attribute("emailaddress1", AttrType.STRING, max_length=100),
        "parentcustomerid": Attribute("parentcustomerid", AttrType.LOOKUP, targets=("account",)),
    }),
    alternate_keys=(("firstname", "emailaddress1"), ("parentcustomerid",)),
)  # fmt: skip


def test_keys_primary_multi_part_and_lookup() -> None:
    assert parse_key(CONTACT, "3F2504E0-4F89-11D3-9A0C-0305E82C3301") == Key(id="3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    assert parse_key(CONTACT, "firstname='Jo''e', emailaddress1='a@b.com'") == Key(
        values={"firstname": "Jo'e", "emailaddress1": "a@b.com"}
    )
    lookup = parse_key(CONTACT, "_parentcustomerid_value=3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    assert lookup == Key(values={"parentcustomerid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"})
    for bad in ("firstname='Joe'", "lastname='x'", "'just a string'", "firstname=Joe,emailaddress1='a'"):
        with pytest.raises(DataverseError) as caught:
            parse_key(CONTACT, bad)
        assert caught.value.status == 400


def test_batch_parser_reads_lf_or_crlf_parts_and_change_sets() -> None:
    body = (
        "--batch_1\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        "GET accounts?$select=name HTTP/1.1\nAccept: application/json\n\n"
        "--batch_1\n"
        "Content-Type: multipart/mixed; boundary=changeset_2\n\n"
        "--changeset_2\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 1\n\n"
        'POST accounts HTTP/1.1\nContent-Type: application/json\n\n{"name": "A"}\n'
        "--changeset_2--\n"
        "--batch_1--\n"
    )
    for text in (body, body.replace("\n", "\r\n")):
        items = parse_batch(text.encode(), 'multipart/mixed; boundary="batch_1"')
        assert isinstance(items[0], BatchOperation)
        assert (items[0].method, items[0].url, items[0].headers["accept"]) == (
            "GET",
            "accounts?$select=name",
            "application/json",
        )
        assert isinstance(items[1], ChangeSet)
        create = items[1].operations[0]
        assert (create.method, create.content_id, create.body) == ("POST", "1", b'{"name": "A"}')
    with pytest.raises(DataverseError):
        parse_batch(b"--batch_1\n", "multipart/mixed; boundary=batch_1")  # no closing boundary


def test_batch_writer_nests_change_set_responses_in_order() -> None:
    content_type, body = write_batch([
        PartResponse(200, {"Content-Type": "application/json"}, b"{}"),
        [PartResponse(204, {"OData-EntityId": "x"}, content_id="1"), PartResponse(204, {}, content_id="2")],
    ])  # fmt: skip
    boundary = content_type.split("boundary=")[1]
    text = body.decode()
    assert boundary.startswith("batchresponse_") and text.rstrip().endswith(f"--{boundary}--")
    assert text.index("HTTP/1.1 200 OK") < text.index("changesetresponse_") < text.index("HTTP/1.1 204 No Content")
    assert "Content-ID: 1" in text and "OData-EntityId: x" in text


def test_push_trims_oversized_contexts_and_marks_them() -> None:
    from emulators.dataverse._push import SERVICE_BUS_LIMIT, Publisher

    small = {"InputParameters": [{"key": "Target", "value": "x"}], "PreEntityImages": [], "PostEntityImages": []}
    body, exceeded = Publisher._trim(dict(small), SERVICE_BUS_LIMIT)
    assert not exceeded and b'"Target"' in body
    big = {**small, "PostEntityImages": [{"key": "AsynchronousStepPrimaryName", "value": "y" * SERVICE_BUS_LIMIT}],
           "ParentContext": {"x": 1}, "MessageName": "Update"}  # fmt: skip
    body, exceeded = Publisher._trim(big, SERVICE_BUS_LIMIT)
    assert exceeded and len(body) < 1000 and b'"MessageName": "Update"' in body
