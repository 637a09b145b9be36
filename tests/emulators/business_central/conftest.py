"""Helpers for the BC emulator tests: an authenticated client over real HTTPS, and state hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msal
import pytest
import requests

if TYPE_CHECKING:
    # Imported for typing only: a conftest that imports the plugin module at import time beats
    # pytest's registration of it and trips the assertion-rewrite warning (an error here).
    from tests.plugins._emulators import RunningEmulator


class Bc:
    """A thin client: MSAL token, CA-verified session, URLs relative to the API root or the company."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.line = emulator.start_line
        self.door = emulator.back_door
        self.session = emulator.session()
        self.base = str(self.line["base_url"])
        self.company_id = str(self.line["company_id"])
        self.app = msal.ConfidentialClientApplication(
            self.line["client_id"],
            client_credential=self.line["client_secret"],
            authority=self.line["authority"],
            instance_discovery=False,
            validate_authority=False,
            http_client=self.session,
        )

    def token(self) -> str:
        result = self.app.acquire_token_for_client([self.line["scope"]])
        return str(result["access_token"])

    def url(self, path: str) -> str:
        if path.startswith("https://"):
            return path
        if path.startswith("/"):
            return f"{self.base}{path}"
        return f"{self.base}/companies({self.company_id})/{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, etag: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if etag is not None:
            headers["If-Match"] = etag
        return self.request("PATCH", path, json=body, headers=headers, **kwargs)

    def delete(self, path: str, etag: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if etag is not None:
            headers["If-Match"] = etag
        return self.request("DELETE", path, headers=headers, **kwargs)

    def one(self, path: str, **params: str) -> dict[str, Any]:
        response = self.get(path, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def first(self, set_name: str, filter_: str) -> dict[str, Any]:
        values = self.one(set_name, **{"$filter": filter_})["value"]
        assert values, f"nothing in {set_name} matches {filter_}"
        first: dict[str, Any] = values[0]
        return first


def assert_bc_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a BC error with this status and code, in BC's shape."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert "CorrelationId:" in body["error"]["message"]
    return body


@pytest.fixture(scope="module")
def bc(business_central_emulator: RunningEmulator) -> Iterator[Bc]:
    """A client; the emulator's data is put back as it was after each test module."""
    client = Bc(business_central_emulator)
    before = client.door.snapshot()
    yield client
    client.door.clear_faults()
    client.door.restore(before)
