"""The threaded HTTPS server every HTTP emulator runs on: one dispatch point, issuer, back door.

Request flow (``EmulatorServer._wsgi``):

1. ``/_emulator/...`` → the back door (admin key required), never faulted or throttled;
2. otherwise an armed fault may fire (fail / throttle answer at once, delay sleeps first);
3. the issuer's endpoints go to :class:`TokenIssuer`, everything else to ``api.handle``;
4. a ``drop`` fault closes the connection after the API committed, without answering.

``NotImplementedError`` out of an API becomes a loud 501 in the API's error shape, so an
unsupported feature is never answered plausibly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from emulators._http._faults import CostModel, Fault, FaultPlan
from emulators._http._oauth import ClientApp, TokenIssuer
from emulators._http._tls import TlsMaterial, make_tls_material

__all__ = ["ADMIN_HEADER", "AdminError", "EmulatorApi", "EmulatorServer", "json_response", "print_start_line"]

ADMIN_PREFIX = "/_emulator/"
ADMIN_HEADER = "X-Emulator-Admin-Key"
# A file to append every counted API call to, one line each (for reading a benchmark's counts).
_REQUEST_LOG = os.environ.get("EMULATOR_REQUEST_LOG", "")

StartResponse = Callable[..., Any]


# A $batch part's method: a JSON batch's "method" member, or a multipart part's request line.
_BATCH_METHOD = re.compile(rb'"method"\s*:\s*"([A-Za-z]+)"|^(GET|POST|PATCH|PUT|DELETE|MERGE) ', re.MULTILINE)


def _reads_only(body: bytes) -> bool:
    """Whether a ``$batch`` body holds GET parts only (counted apart from batches that write)."""
    methods = {(m.group(1) or m.group(2)).upper() for m in _BATCH_METHOD.finditer(body)}
    return methods == {b"GET"}


class AdminError(Exception):
    """A back-door request the emulator refuses (answered 400 with the message)."""


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (``body`` ``None`` → empty body, for 204)."""
    if body is None:
        return Response(b"", status=status, headers=headers)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


class EmulatorApi:
    """What an emulator implements. Override :meth:`handle` and :meth:`error_response`.

    The back-door hooks (:meth:`seed`, :meth:`snapshot`, :meth:`restore`, :meth:`reset`,
    :meth:`admin`) raise ``NotImplementedError`` unless overridden, which the back door reports
    as 501, so an emulator advertises exactly what it supports.
    """

    def handle(self, request: Request) -> Response:
        """The API's one dispatch point."""
        raise NotImplementedError(f"emulator: {request.method} {request.path} unsupported")

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """An error in the API's own shape (used for faults, 501s and 500s)."""
        return json_response(status, {"error": {"code": code, "message": message}}, headers)

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Load data (``spec`` is emulator-defined, e.g. ``{"name": "demo"}``); return a summary."""
        raise NotImplementedError("seed")

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able deep copy of the whole state."""
        raise NotImplementedError("snapshot")

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Replace the state with an earlier :meth:`snapshot`."""
        raise NotImplementedError("restore")

    def reset(self) -> None:
        """Empty the state (no data at all)."""
        raise NotImplementedError("reset")

    def admin(self, action: str, request: Request) -> Response:
        """Emulator-specific back-door actions at ``/_emulator/<action>``."""
        raise NotImplementedError(f"admin action {action!r}")


class _QuietHandler(WSGIRequestHandler):
    # werkzeug only switches its own handler class to HTTP/1.1 when threaded; keep-alive matters
    # to clients that reuse connections (and to benchmarks).
    protocol_version = "HTTP/1.1"

    # One log line per request drowns the start line and test output; errors still print.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class EmulatorServer:
    """HTTPS listener + local CA + token issuer + back door, around one :class:`EmulatorApi`.

    Args:
        port: TCP port on 127.0.0.1 (0 picks a free one; read :attr:`port`).
        tenant: the tenant id in the authority path.
        resources: resource URIs the issuer mints tokens for (``<resource>/.default`` scopes).
        clients: app registrations; defaults to one random client id and secret.
        token_lifetime: seconds an issued token lives.
        workdir: where the CA files go; a fresh temp dir (removed on close) when omitted.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        tenant: str | None = None,
        resources: list[str],
        clients: list[ClientApp] | None = None,
        token_lifetime: float = 3599.0,
        workdir: Path | None = None,
        name: str = "emulator",
    ) -> None:
        self.name = name
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.tls: TlsMaterial = make_tls_material(self.workdir, common_name=f"{name} local")
        self.admin_key = secrets.token_urlsafe(24)
        self.faults = FaultPlan()
        self.costs = CostModel()
        self.request_counts: dict[str, int] = {}
        self._stats_lock = threading.Lock()
        self.api: EmulatorApi = EmulatorApi()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            port,
            self._wsgi,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=self.tls.server_context(),
        )
        self.port: int = self._server.server_address[1]
        self.origin = f"https://127.0.0.1:{self.port}"
        self.issuer = TokenIssuer(
            origin=self.origin,
            tenant=tenant or str(uuid.uuid4()),
            resources=resources,
            clients=clients or [ClientApp(client_id=str(uuid.uuid4()), client_secret=secrets.token_urlsafe(30))],
            token_lifetime=token_lifetime,
        )
        self._thread: threading.Thread | None = None

    # -- wiring ----------------------------------------------------------------------------------
    def mount(self, api: EmulatorApi) -> None:
        """Serve ``api`` (before :meth:`serve_forever` / :meth:`start`)."""
        self.api = api

    def start_info(self) -> dict[str, Any]:
        """The shared part of the start line: how to get a token and reach the back door."""
        client = next(iter(self.issuer.clients.values()))
        return {
            "authority": self.issuer.authority,
            "tenant_id": self.issuer.tenant,
            "token_url": self.issuer.token_url,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "ca_bundle": str(self.tls.ca_bundle),
            "admin": {"url": f"{self.origin}/_emulator", "key": self.admin_key, "header": ADMIN_HEADER},
            "pid": os.getpid(),
        }

    # -- running ---------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Serve until SIGTERM or SIGINT, then clean up."""

        def stop(signum: int, frame: FrameType | None) -> None:
            # werkzeug's serve_forever ends quietly on KeyboardInterrupt and closes the socket.
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            self._server.serve_forever()
        finally:
            self.close()

    def start(self) -> None:
        """Serve on a daemon thread (for in-process use)."""
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and delete the temp dir."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- dispatch --------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
            return self._admin(request)(environ, start_response)
        if not self.issuer.handles(path):
            # Counted for benchmarks (back door and token requests are not API calls).
            with self._stats_lock:
                key = f"{request.method} {'$batch' if path.endswith('$batch') else 'other'}"
                if path.endswith("$batch") and _reads_only(request.get_data()):
                    key += " of reads"
                self.request_counts[key] = self.request_counts.get(key, 0) + 1
                if _REQUEST_LOG:
                    # Which calls a benchmark's counts are made of (EMULATOR_REQUEST_LOG=<file>).
                    with open(_REQUEST_LOG, "a", encoding="utf-8") as log:
                        log.write(f"{time.time():.3f} {self.name} {request.method} {request.full_path}\n")
        fault = self.faults.take(request.method, path)
        if fault is not None and fault.kind in ("fail", "throttle"):
            return self._fault_response(fault)(environ, start_response)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay)
        try:
            response = self.issuer.handle(request) if self.issuer.handles(path) else self.api.handle(request)
        except NotImplementedError as exc:
            response = self.api.error_response(501, "NotImplemented", f"{self.name}: {exc}")
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            response = self.api.error_response(500, "Internal_ServerError", f"{type(exc).__name__}: {exc}")
        if fault is not None and fault.kind == "drop":
            _drop_connection(environ)
        return response(environ, start_response)

    def _fault_response(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(round(fault.retry_after)) if fault.retry_after >= 1 else "1"
        if fault.body is not None:
            return json_response(fault.status, fault.body, headers)
        code = "TooManyRequests" if fault.status == 429 else "InjectedFault"
        return self.api.error_response(fault.status, code, f"Injected fault {fault.id}.", headers)

    # -- back door -------------------------------------------------------------------------------
    def _admin(self, request: Request) -> Response:
        supplied = request.headers.get(ADMIN_HEADER, "")
        if not secrets.compare_digest(supplied.encode(), self.admin_key.encode()):
            return json_response(401, {"error": f"the back door needs the {ADMIN_HEADER} header"})
        action = request.path[len(ADMIN_PREFIX) :].strip("/")
        method = request.method
        try:
            body: Any = request.get_json(silent=True) if request.get_data() else {}
            if body is None:
                raise AdminError("the body must be JSON")
            return self._admin_action(action, method, body, request)
        except (AdminError, ValueError, TypeError, KeyError) as exc:
            return json_response(400, {"error": str(exc)})
        except NotImplementedError as exc:
            return json_response(501, {"error": f"{self.name} back door: {exc} unsupported"})

    def _admin_action(self, action: str, method: str, body: Any, request: Request) -> Response:
        if action == "health":
            return json_response(200, {"status": "ok", "name": self.name})
        if action == "stats":
            with self._stats_lock:
                counts = dict(self.request_counts)
                if method == "DELETE":
                    self.request_counts.clear()
            return json_response(200, {"requests": sum(counts.values()), "by_kind": counts})
        if action == "seed" and method == "POST":
            return json_response(200, self.api.seed(body))
        if action == "snapshot" and method == "GET":
            return json_response(200, self.api.snapshot())
        if action == "restore" and method == "POST":
            self.api.restore(body)
            return json_response(204, None)
        if action == "reset" and method == "POST":
            self.api.reset()
            self.faults.clear()
            return json_response(204, None)
        if action == "faults":
            if method == "POST":
                return json_response(201, self.faults.arm(Fault.from_dict(body)).as_dict())
            if method == "DELETE":
                self.faults.clear()
                return json_response(204, None)
            return json_response(200, {"faults": self.faults.list(), "fired": dict(self.faults.fired)})
        if action == "costs":
            if method in ("PATCH", "PUT", "POST"):
                self.costs.configure(body)
            return json_response(200, self.costs.as_dict())
        if action == "token" and method == "POST":
            audience = body.get("audience", self.issuer.resources[0])
            token = self.issuer.mint(
                audience=audience,
                client_id=body.get("client_id"),
                lifetime=body.get("lifetime"),
                foreign=bool(body.get("foreign", False)),
                extra_claims=body.get("claims"),
            )
            return json_response(200, {"access_token": token})
        if action == "auth" and method in ("PATCH", "POST"):
            if "token_lifetime" in body:
                self.issuer.token_lifetime = float(body["token_lifetime"])
            return json_response(200, {"token_lifetime": self.issuer.token_lifetime})
        return self.api.admin(action, request)


def _drop_connection(environ: dict[str, Any]) -> None:
    # Shut the socket down under werkzeug, then raise a ConnectionError: werkzeug treats that as
    # "client went away" and writes nothing, so the client sees the connection close unanswered.
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already gone: the client sees the same thing
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("emulator: response dropped after commit (injected fault)")


def print_start_line(info: dict[str, Any]) -> None:
    """Print the one JSON start line (the readiness signal ``emulators._launch`` waits for)."""
    sys.stdout.write(json.dumps(info, sort_keys=True) + "\n")
    sys.stdout.flush()
