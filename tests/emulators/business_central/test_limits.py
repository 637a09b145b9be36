"""E.2 item 16: per-user request rate, concurrency queue, 429 and 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack

DEFAULTS = {
    "requests_per_window": 6000,
    "window_seconds": 300,
    "max_concurrent": 5,
    "max_queued": 95,
    "queue_timeout": 480,
    "retry_after_on_429": False,
}


@pytest.fixture
def limits(bc: Bc) -> Iterator[Bc]:
    yield bc
    bc.door.call("PATCH", "limits", DEFAULTS)
    bc.door.costs(time_scale=1, sleep=False, costs={"read": 0.005})


def test_request_rate_limit_gives_429_then_recovers(limits: Bc) -> None:
    bc = limits
    token = bc.token()
    bc.door.costs(time_scale=100)  # the 300 s window passes in 3 s
    bc.door.call("PATCH", "limits", {"requests_per_window": 5, "window_seconds": 100, "retry_after_on_429": True})
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [bc.session.get(bc.url("currencies"), headers=headers).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = bc.session.get(bc.url("currencies"), headers=headers)
    assert_bc_error(refused, 429, "TooManyRequests")
    assert int(refused.headers["Retry-After"]) >= 1
    time.sleep(1.1)
    assert bc.session.get(bc.url("currencies"), headers=headers).status_code == 200


def test_retry_after_on_429_is_optional(limits: Bc) -> None:
    bc = limits
    headers = {"Authorization": f"Bearer {bc.token()}"}
    bc.door.call("PATCH", "limits", {"requests_per_window": 1, "window_seconds": 60})
    bc.session.get(bc.url("currencies"), headers=headers)
    refused = bc.session.get(bc.url("currencies"), headers=headers)
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers


def test_concurrency_over_queue_is_429_and_queue_timeout_is_503(limits: Bc) -> None:
    bc = limits
    headers = {"Authorization": f"Bearer {bc.token()}"}
    bc.door.costs(sleep=True, costs={"read": 0.6})
    bc.door.call("PATCH", "limits", {"max_concurrent": 1, "max_queued": 0})
    with ThreadPoolExecutor(3) as pool:
        statuses = sorted(
            pool.map(lambda _: bc.session.get(bc.url("currencies"), headers=headers).status_code, range(3))
        )
    assert statuses == [200, 429, 429]
    bc.door.call("PATCH", "limits", {"max_queued": 5, "queue_timeout": 0.2})
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: bc.session.get(bc.url("currencies"), headers=headers), range(2)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 503]
    unavailable = next(r for r in responses if r.status_code == 503)
    assert unavailable.headers["Retry-After"] == "1"


def test_long_operations_time_out_with_408_and_504(limits: Bc) -> None:
    bc = limits
    bc.door.costs(time_scale=10000, sleep=True, costs={"create": 500, "read": 700})
    timed_out = bc.post("customers", {"displayName": "Never written"})
    assert_bc_error(timed_out, 408, "RequestTimeout")
    assert_bc_error(bc.get("customers"), 504, "GatewayTimeout")
    bc.door.costs(sleep=False, costs={"create": 0.005, "read": 0.005})
    assert bc.one("customers", **{"$filter": "displayName eq 'Never written'"})["value"] == []
