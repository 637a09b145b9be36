"""Webhook subscriptions through BusinessCentralAdapter, with a local receiver answering BC's handshake."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from shared.errors import PermanentError
from tests.adapters.business_central.conftest import Bench

pytestmark = pytest.mark.stack


class _Echo(BaseHTTPRequestHandler):
    handshakes = 0

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        token = parse_qs(urlparse(self.path).query).get("validationToken", [""])[0]
        type(self).handshakes += 1 if token else 0
        data = token.encode()
        self.send_response(200 if token else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver_url() -> Iterator[str]:
    """A notification URL that echoes validationToken (BC's handshake), on a free local port."""
    _Echo.handshakes = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/bc"
    server.shutdown()
    server.server_close()


def test_create_list_renew_delete(bench: Bench, receiver_url: str) -> None:
    adapter = bench.adapter
    created = adapter.create_subscription(receiver_url, "customers", "s3cret")
    assert _Echo.handshakes == 1
    assert created.resource == f"/api/v2.0/companies({bench.company_id})/customers"
    assert created.client_state == "s3cret" and "s3cret" not in repr(created)
    assert created.expiration is not None and created.etag
    assert created.subscription_id in {s.subscription_id for s in adapter.list_subscriptions()}

    renewed = adapter.renew_subscription(created.subscription_id, created.etag)
    assert _Echo.handshakes == 2
    assert renewed.etag != created.etag
    assert renewed.expiration is not None and renewed.expiration >= created.expiration

    adapter.delete_subscription(renewed.subscription_id, renewed.etag)
    assert created.subscription_id not in {s.subscription_id for s in adapter.list_subscriptions()}
    adapter.delete_subscription(renewed.subscription_id)  # already gone: fine
    with pytest.raises(PermanentError):
        adapter.renew_subscription(created.subscription_id, renewed.etag)


def test_refusals_are_permanent(bench: Bench, receiver_url: str) -> None:
    with pytest.raises(PermanentError):
        bench.adapter.create_subscription(receiver_url, "contacts", "s")  # no webhooks on contacts
    with pytest.raises(PermanentError):
        bench.adapter.create_subscription(receiver_url + "/nothing-here", "customers", "x" * 2049)
    assert _Echo.handshakes == 0
