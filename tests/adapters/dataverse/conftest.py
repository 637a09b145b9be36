"""The Dataverse adapter built as composition builds it (MSAL + ApiSession), counting its API requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from emulators._http.client import BackDoor
from shared.adapters.auth import MsalTokenProvider
from shared.adapters.dataverse import DataverseAdapter, DataverseWebApi
from shared.adapters.http_session import ApiSession
from shared.config import ClientCredential
from tests.plugins._emulators import RunningEmulator


@dataclass(frozen=True)
class Call:
    """One HTTP exchange with the Web API (token requests are not counted)."""

    method: str
    path: str  # below the API root, without the query
    query: str
    status: int


class CountingSession(ApiSession):
    """The production session, recording every request that reaches the API root."""

    def __init__(self, ca_bundle: str, api_url: str) -> None:
        super().__init__(ca_bundle)
        self.api_path = urlsplit(api_url).path.rstrip("/") + "/"
        self.api_url = api_url
        self.calls: list[Call] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if str(url).startswith(self.api_url):
            parts = urlsplit(response.request.url or "")
            self.calls.append(
                Call(str(method).upper(), parts.path.removeprefix(self.api_path), parts.query, response.status_code)
            )
        return response


@dataclass
class Harness:
    """The adapter under test plus what a test needs around it."""

    port: DataverseAdapter
    api: DataverseWebApi
    session: CountingSession
    door: BackDoor
    line: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> list[Call]:
        return self.session.calls

    def count(self, method: str | None = None, path: str | None = None, *, status: int | None = None) -> int:
        """Requests matching ``method``, exact ``path`` and ``status`` (any when ``None``)."""
        return sum(
            1
            for c in self.calls
            if (method is None or c.method == method)
            and (path is None or c.path == path)
            and (status is None or c.status == status)
        )

    def forget_calls(self) -> None:
        self.session.calls.clear()


def build_adapter(line: dict[str, Any], **options: Any) -> tuple[DataverseAdapter, DataverseWebApi, CountingSession]:
    """Adapter, client and session exactly as ``shared.composition`` wires them, on a counting session."""
    session = CountingSession(str(line["ca_bundle"]), str(line["base_url"]))
    credential = ClientCredential(
        authority=str(line["authority"]), client_id=str(line["client_id"]), client_secret=str(line["client_secret"])
    )
    tokens = MsalTokenProvider("Dataverse", credential, str(line["scope"]), session)
    api = DataverseWebApi(str(line["base_url"]), tokens, session)
    return DataverseAdapter(api, **options), api, session


@pytest.fixture(scope="session")
def dataverse_baseline(dataverse_emulator: RunningEmulator) -> dict[str, Any]:
    """The demo data, limits and cost model as the session started them, to put back after each test."""
    door = dataverse_emulator.back_door
    costs = door.costs()
    return {
        "snapshot": door.snapshot(),
        "limits": door.call("GET", "limits"),
        "costs": {k: costs[k] for k in ("costs", "default", "time_scale", "sleep")},
    }


@pytest.fixture
def dv(dataverse_emulator: RunningEmulator, dataverse_baseline: dict[str, Any]) -> Iterator[Harness]:
    """A fresh adapter (empty metadata cache) per test; the emulator is put back afterwards."""
    line = dataverse_emulator.start_line
    port, api, session = build_adapter(line)
    door = dataverse_emulator.back_door
    try:
        yield Harness(port=port, api=api, session=session, door=door, line=line)
    finally:
        session.close()
        door.clear_faults()
        door.call("PATCH", "limits", dataverse_baseline["limits"])
        door.costs(**dataverse_baseline["costs"])
        door.restore(dataverse_baseline["snapshot"])
