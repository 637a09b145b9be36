"""A minimal echo API on the shared base, for testing the base itself.

``python -m emulators._http --port N`` serves ``/echo`` (GET: the caller's token claims) and
``/items`` (POST: store a JSON body; GET: list) behind bearer auth for the resource
``https://echo.emulator.invalid``, plus the full back door.
"""

from __future__ import annotations

import argparse
import copy
import threading
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators._http import BearerError, EmulatorApi, EmulatorServer, json_response, print_start_line

RESOURCE = "https://echo.emulator.invalid"


class EchoApi(EmulatorApi):
    """Just enough API to exercise auth, dispatch, faults and the back door."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return json_response(status, {"error": {"code": code, "message": message}}, headers)

    def handle(self, request: Request) -> Response:
        try:
            claims = self.server.issuer.validate(request.headers.get("Authorization"), audiences=[RESOURCE])
        except BearerError as exc:
            return self.error_response(
                401,
                f"Unauthorized_{exc.reason}",
                exc.description,
                {"WWW-Authenticate": exc.www_authenticate(self.server.issuer.authority)},
            )
        if request.path == "/echo" and request.method == "GET":
            return json_response(200, {"claims": claims})
        if request.path == "/items" and request.method == "POST":
            item = dict(request.get_json(force=True))
            item["id"] = str(uuid.uuid4())
            with self._lock:
                self.items[item["id"]] = copy.deepcopy(item)
            return json_response(201, item)
        if request.path == "/items" and request.method == "GET":
            with self._lock:
                return json_response(200, {"value": copy.deepcopy(list(self.items.values()))})
        raise NotImplementedError(f"{request.method} {request.path}")

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for item in spec.get("items", []):
                self.items[str(item["id"])] = copy.deepcopy(item)
            return {"items": len(self.items)}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"items": copy.deepcopy(list(self.items.values()))}

    def restore(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self.items = {str(i["id"]): copy.deepcopy(i) for i in snapshot["items"]}

    def reset(self) -> None:
        with self._lock:
            self.items.clear()


def main(argv: list[str] | None = None) -> None:
    """Start the echo emulator and serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m emulators._http")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-lifetime", type=float, default=3599.0)
    args = parser.parse_args(argv)
    server = EmulatorServer(port=args.port, resources=[RESOURCE], token_lifetime=args.token_lifetime, name="echo")
    server.mount(EchoApi(server))
    print_start_line({**server.start_info(), "base_url": server.origin, "scope": f"{RESOURCE}/.default"})
    server.serve_forever()


if __name__ == "__main__":
    main()
