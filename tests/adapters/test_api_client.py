"""The shared API client against a real local HTTP server: retries keep the caller's headers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stamina

from shared.adapters._api_client import ApiClient
from shared.adapters.dataverse.errors import dataverse_error
from shared.adapters.http_session import ApiSession

pytestmark = pytest.mark.unit


class _Tokens:
    def token(self) -> str:
        return "token-1"


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            seen.append(dict(self.headers))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if len(seen) == 1:
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.end_headers()
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_retried_request_sends_the_callers_headers_every_time(
    flaky_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = flaky_server
    stamina.set_testing(True, attempts=3)
    try:
        with ApiSession() as session:
            client = ApiClient("Test", url, _Tokens(), session, map_error=dataverse_error)
            response = client.send("PATCH", "rows(1)", doing="updating", headers={"If-Match": 'W/"7"'}, json={"a": 1})
    finally:
        stamina.set_testing(False)
    assert response.status_code == 204
    assert [h.get("If-Match") for h in seen] == ['W/"7"', 'W/"7"']
    assert all(h.get("Authorization") == "Bearer token-1" for h in seen)
