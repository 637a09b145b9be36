"""The shared HTTPS + OAuth base, through the echo API it ships for this purpose (a real subprocess)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import jwt
import msal
import pytest
import requests

from emulators._http.client import BackDoor, https_session
from emulators._launch import StackProcess, free_port, start_json_line_process

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def echo() -> Iterator[StackProcess]:
    process = start_json_line_process(
        "echo-emulator", [sys.executable, "-m", "emulators._http", "--port", str(free_port())]
    )
    yield process
    process.stop()


@pytest.fixture
def line(echo: StackProcess) -> Iterator[dict[str, Any]]:
    yield echo.start_line
    BackDoor(echo.start_line).reset()


def _msal_app(line: dict[str, Any], secret: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        line["client_id"],
        client_credential=secret or line["client_secret"],
        authority=line["authority"],
        instance_discovery=False,
        validate_authority=False,
        http_client=https_session(line["ca_bundle"]),
    )


def _token(line: dict[str, Any]) -> str:
    result = _msal_app(line).acquire_token_for_client([line["scope"]])
    return str(result["access_token"])


def test_start_line_names_everything_a_client_needs(line: dict[str, Any]) -> None:
    for key in ("base_url", "authority", "token_url", "client_id", "client_secret", "ca_bundle", "scope"):
        assert line[key], key
    assert line["token_url"] == f"{line['authority']}/oauth2/v2.0/token"
    assert set(line["admin"]) == {"url", "key", "header"}


def test_tls_is_verified_against_the_local_ca_only(line: dict[str, Any]) -> None:
    # The machine's CA store does not know our CA: a default session must refuse the certificate.
    plain = requests.Session()
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(f"{line['authority']}/v2.0/.well-known/openid-configuration", timeout=5)
    ok = https_session(line["ca_bundle"]).get(f"{line['authority']}/v2.0/.well-known/openid-configuration", timeout=5)
    assert ok.status_code == 200
    assert ok.json()["token_endpoint"] == line["token_url"]


def test_msal_client_credentials_flow_and_cache_work_unchanged(line: dict[str, Any]) -> None:
    app = _msal_app(line)
    first = app.acquire_token_for_client([line["scope"]])
    assert first["token_type"] == "Bearer"
    assert first["token_source"] == "identity_provider"
    second = app.acquire_token_for_client([line["scope"]])
    assert second["token_source"] == "cache"
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert claims["aud"] == line["scope"].removesuffix("/.default")
    assert claims["appid"] == line["client_id"]
    assert jwt.get_unverified_header(first["access_token"])["alg"] == "RS256"


def test_token_is_accepted_by_the_api(line: dict[str, Any]) -> None:
    session = https_session(line["ca_bundle"])
    response = session.get(f"{line['base_url']}/echo", headers={"Authorization": f"Bearer {_token(line)}"})
    assert response.status_code == 200
    assert response.json()["claims"]["tid"] == line["tenant_id"]


def test_wrong_secret_gives_aadsts7000215(line: dict[str, Any]) -> None:
    result = _msal_app(line, secret="not-the-secret").acquire_token_for_client([line["scope"]])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    raw = https_session(line["ca_bundle"]).post(
        line["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": line["client_id"],
            "client_secret": "x",
            "scope": line["scope"],
        },
    )
    assert raw.status_code == 401  # Entra answers invalid_client with 401


def test_unknown_resource_gives_aadsts500011(line: dict[str, Any]) -> None:
    result = _msal_app(line).acquire_token_for_client(["https://nowhere.example/.default"])
    assert result["error"] == "invalid_resource"
    assert result["error_codes"] == [500011]
    raw = https_session(line["ca_bundle"]).post(
        line["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": line["client_id"],
            "client_secret": line["client_secret"],
            "scope": "https://nowhere.example/.default",
        },
    )
    assert raw.status_code == 400


def test_unknown_client_gives_aadsts700016(line: dict[str, Any]) -> None:
    raw = https_session(line["ca_bundle"]).post(
        line["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": "00000000-0000-0000-0000-000000000000",
            "client_secret": "x",
            "scope": line["scope"],
        },
    )
    assert raw.status_code == 400
    assert raw.json()["error_codes"] == [700016]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("missing", "missing"),
        ("expired", "expired"),
        ("audience", "audience"),
        ("foreign", "signature"),
        ("garbage", "malformed"),
    ],
)
def test_bad_bearer_tokens_get_401_in_the_api_shape(line: dict[str, Any], how: str, reason: str) -> None:
    door = BackDoor(line)
    headers = {
        "missing": {},
        "expired": {"Authorization": f"Bearer {door.mint_token(lifetime=-60)}"},
        "audience": {"Authorization": f"Bearer {door.mint_token(audience='https://other.example')}"},
        "foreign": {"Authorization": f"Bearer {door.mint_token(foreign=True)}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }[how]
    response = https_session(line["ca_bundle"]).get(f"{line['base_url']}/echo", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == f"Unauthorized_{reason}"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_short_token_lifetime_expires(line: dict[str, Any]) -> None:
    door = BackDoor(line)
    door.set_token_lifetime(1)
    try:
        token = _token(line)
        time.sleep(1.2)
        response = https_session(line["ca_bundle"]).get(
            f"{line['base_url']}/echo", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "Unauthorized_expired"
    finally:
        door.set_token_lifetime(3599)


def test_back_door_needs_its_key(line: dict[str, Any]) -> None:
    response = https_session(line["ca_bundle"]).get(f"{line['admin']['url']}/snapshot")
    assert response.status_code == 401


def test_seed_snapshot_restore_reset(line: dict[str, Any]) -> None:
    door = BackDoor(line)
    door.seed({"items": [{"id": "a", "name": "Ä unicode"}]})
    snap = door.snapshot()
    assert snap == {"items": [{"id": "a", "name": "Ä unicode"}]}
    door.reset()
    assert door.snapshot() == {"items": []}
    door.restore(snap)
    assert door.snapshot() == snap


def test_fail_next_answers_then_disarms(line: dict[str, Any]) -> None:
    door, session = BackDoor(line), https_session(line["ca_bundle"])
    headers = {"Authorization": f"Bearer {_token(line)}"}
    door.fail_next(503, method="GET", path="^/items$", count=2, retry_after=3)
    assert session.get(f"{line['base_url']}/echo", headers=headers).status_code == 200  # no match
    for _ in range(2):
        failed = session.get(f"{line['base_url']}/items", headers=headers)
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "3"
        assert failed.json()["error"]["code"] == "InjectedFault"
    assert session.get(f"{line['base_url']}/items", headers=headers).status_code == 200
    assert door.faults()["faults"] == []


def test_throttle_gives_429_with_retry_after(line: dict[str, Any]) -> None:
    door, session = BackDoor(line), https_session(line["ca_bundle"])
    door.throttle(path="/items", retry_after=7)
    response = session.get(f"{line['base_url']}/items", headers={"Authorization": f"Bearer {_token(line)}"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_fault_with_explicit_body(line: dict[str, Any]) -> None:
    door, session = BackDoor(line), https_session(line["ca_bundle"])
    door.fail_next(400, path="/items", body={"error": {"code": "Custom", "message": "m"}})
    response = session.get(f"{line['base_url']}/items", headers={"Authorization": f"Bearer {_token(line)}"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "Custom")


def test_delay_holds_the_request(line: dict[str, Any]) -> None:
    door, session = BackDoor(line), https_session(line["ca_bundle"])
    headers = {"Authorization": f"Bearer {_token(line)}"}
    door.delay(0.5, path="/items")
    started = time.monotonic()
    assert session.get(f"{line['base_url']}/items", headers=headers).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_drop_after_commit_applies_the_write_and_loses_the_answer(line: dict[str, Any]) -> None:
    door, session = BackDoor(line), https_session(line["ca_bundle"])
    headers = {"Authorization": f"Bearer {_token(line)}"}
    door.drop_after_commit(method="POST", path="^/items$")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(f"{line['base_url']}/items", json={"name": "lost answer"}, headers=headers, timeout=5)
    assert [i["name"] for i in door.snapshot()["items"]] == ["lost answer"]
    # The server survives and the next request is answered normally.
    assert session.get(f"{line['base_url']}/items", headers=headers).status_code == 200


def test_unsupported_is_a_loud_501(line: dict[str, Any]) -> None:
    response = https_session(line["ca_bundle"]).get(
        f"{line['base_url']}/nothing-here", headers={"Authorization": f"Bearer {_token(line)}"}
    )
    assert response.status_code == 501
    assert "GET /nothing-here" in response.json()["error"]["message"]


def test_cost_model_knobs(line: dict[str, Any]) -> None:
    door = BackDoor(line)
    settings = door.costs(costs={"read": 0.25}, time_scale=100)
    assert settings["costs"]["read"] == 0.25
    assert settings["time_scale"] == 100
    before = settings["server_time"]
    time.sleep(0.1)
    assert door.costs()["server_time"] - before >= 9  # 0.1 real s ≈ 10 server s
    door.costs(time_scale=1)
