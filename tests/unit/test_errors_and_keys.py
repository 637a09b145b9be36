"""The error taxonomy, the API error tables and the table-key encoding."""

from __future__ import annotations

import json

import pytest
import requests

from shared.adapters.business_central.errors import business_central_error
from shared.adapters.dataverse.errors import dataverse_error
from shared.adapters.tables._keys import decode_key, encode_key
from shared.errors import ConfigurationError, PermanentError, RetriableError, SkippableError, SyncError

pytestmark = pytest.mark.unit


def test_taxonomy_has_exactly_four_categories_under_one_root() -> None:
    for category in (RetriableError, PermanentError, SkippableError, ConfigurationError):
        assert issubclass(category, SyncError)
    assert not issubclass(RetriableError, PermanentError) and not issubclass(PermanentError, RetriableError)
    assert RetriableError("x", retry_after=3).retry_after == 3
    assert PermanentError("x").code == "Permanent" and PermanentError("x", code="Y").code == "Y"


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    ("status", "code", "category"),
    [
        (429, "0x80072322", RetriableError),
        (403, "0x80040220", ConfigurationError),
        (400, "0x80044331", PermanentError),
        (412, "", RetriableError),
        (404, "", PermanentError),
        (502, "", RetriableError),
        (418, "", PermanentError),
    ],
)
def test_dataverse_error_table(status: int, code: str, category: type[SyncError]) -> None:
    error = dataverse_error(_response(status, {"error": {"code": code, "message": "service says"}}), "doing x")
    assert type(error) is category
    assert "service says" in error.message and error.message.startswith("Dataverse: doing x")


def test_retry_after_is_carried() -> None:
    error = dataverse_error(
        _response(429, {"error": {"code": "0x80072321", "message": "m"}}, {"Retry-After": "7"}), "d"
    )
    assert isinstance(error, RetriableError) and error.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "code", "category"),
    [
        (404, "Internal_CompanyNotFound", ConfigurationError),
        (409, "Request_EntityChanged", RetriableError),
        (400, "Application_StringExceededLength", PermanentError),
        (401, "Authentication_InvalidCredentials", ConfigurationError),
        (503, "", RetriableError),
        (500, "Internal_ServerError", RetriableError),
        (403, "Internal_ServerError", ConfigurationError),  # "the current permissions prevented the action"
    ],
)
def test_business_central_error_table(status: int, code: str, category: type[SyncError]) -> None:
    error = business_central_error(_response(status, {"error": {"code": code, "message": "bc says"}}), "doing y")
    assert type(error) is category
    assert error.code == (code or f"HTTP{status}")


def test_non_json_error_bodies_are_still_mapped() -> None:
    response = requests.Response()
    response.status_code = 502
    response._content = b"<html>Bad gateway</html>"
    assert isinstance(dataverse_error(response, "d"), RetriableError)


@pytest.mark.parametrize("value", ["plain-guid-1234", "a/b\\c#d?e%f", "tab\there", "ünïcødé", "%41"])
def test_key_encoding_round_trips_and_is_legal(value: str) -> None:
    encoded = encode_key(value)
    assert decode_key(encoded) == value
    assert not any(ch in encoded for ch in "/\\#?") and all(ord(ch) >= 0x20 for ch in encoded)
