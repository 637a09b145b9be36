"""The BC adapter built as composition builds it (MSAL + CA-verified session) against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import requests

from emulators._http.client import BackDoor
from shared.adapters.auth import MsalTokenProvider
from shared.adapters.business_central import BusinessCentralAdapter, BusinessCentralApi
from shared.adapters.http_session import ApiSession
from shared.config import ClientCredential

if TYPE_CHECKING:
    # Typing only: importing the plugin module at conftest import time trips assertion rewriting.
    from tests.plugins._emulators import RunningEmulator


@dataclass
class Wire:
    """Every API request the adapter sent (token requests left out), as (method, path-and-query)."""

    base_url: str
    sent: list[tuple[str, str]] = field(default_factory=list)

    def record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        url = str(response.request.url)
        if url.startswith(self.base_url):
            self.sent.append((str(response.request.method), url[len(self.base_url) :]))

    def count(self, method: str, contains: str = "") -> int:
        return sum(1 for m, path in self.sent if m == method and contains in path)


@dataclass
class Bench:
    adapter: BusinessCentralAdapter
    door: BackDoor
    wire: Wire
    session: ApiSession
    company_id: str


@pytest.fixture(scope="module")
def _bench(business_central_emulator: RunningEmulator) -> Iterator[Bench]:
    line = business_central_emulator.start_line
    session = ApiSession(str(line["ca_bundle"]))
    credential = ClientCredential(
        authority=str(line["authority"]), client_id=str(line["client_id"]), client_secret=str(line["client_secret"])
    )
    tokens = MsalTokenProvider("Business Central", credential, str(line["scope"]), session)
    api = BusinessCentralApi(str(line["base_url"]), tokens, session)
    wire = Wire(str(line["base_url"]))
    session.hooks["response"].append(wire.record)
    yield Bench(
        BusinessCentralAdapter(api, str(line["company_id"])),
        business_central_emulator.back_door,
        wire,
        session,
        str(line["company_id"]),
    )
    session.close()


@pytest.fixture
def bench(_bench: Bench) -> Iterator[Bench]:
    """The bench with an empty request log; the emulator's data and faults are put back afterwards."""
    before = _bench.door.snapshot()
    _bench.wire.sent.clear()
    yield _bench
    _bench.door.clear_faults()
    _bench.door.restore(before)
