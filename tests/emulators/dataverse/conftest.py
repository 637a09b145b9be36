"""Helpers for the Dataverse emulator tests: an MSAL-authenticated client over real HTTPS, state hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msal
import pytest
import requests

from emulators.dataverse import seed_id
from tests.plugins._emulators import RunningEmulator

ODATA_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


class Dv:
    """A thin Web API client: MSAL token (cached by MSAL), CA-verified session, URLs under the API root."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.line = emulator.start_line
        self.door = emulator.back_door
        self.session = emulator.session()
        self.base = str(self.line["base_url"])
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
        return path if path.startswith("https://") else f"{self.base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(entity_set, body, headers={"Prefer": "return=representation"})
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture(scope="session")
def dv(dataverse_emulator: RunningEmulator) -> Dv:
    return Dv(dataverse_emulator)


@pytest.fixture(scope="session")
def demo_snapshot(dataverse_emulator: RunningEmulator) -> Any:
    return dataverse_emulator.back_door.snapshot()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    # Every stack test leaves the demo data with no faults and default limits behind; unit tests here
    # must not start the emulator at all.
    if request.node.get_closest_marker("stack") is None:
        yield
        return
    emulator: RunningEmulator = request.getfixturevalue("dataverse_emulator")
    snapshot = request.getfixturevalue("demo_snapshot")
    yield
    door = emulator.back_door
    door.restore(snapshot)
    door.clear_faults()
    door.call(
        "PATCH",
        "limits",
        {"enabled": True, "requests": 6000, "execution_seconds": 1200.0, "concurrency": 52, "dop_hint": 4},
    )
    door.costs(time_scale=1.0, sleep=False, costs={"request": 0.005})
    door.call("PATCH", "change_tracking", {"expiry_seconds": 7 * 86400})


def sid(entity: str, name: str) -> str:
    """Id of a demo row (see emulators/dataverse/_seed.py)."""
    return seed_id(entity, name)
