"""The HTTP side of the host: function routes under the route prefix, keys, and admin endpoints."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from typing import Any

import azure.functions as func
from werkzeug.wrappers import Request, Response

from ._app import HttpFunction
from ._invoke import HOST_LOG, InvocationResult, Invoker

__all__ = ["AdminRunner", "HttpFrontEnd"]

HTTP_REASON = "This function was programmatically called via the host APIs."

# (function name, "input" from the request body) -> result, or None when the name is unknown;
# raises ValueError when the function cannot be run this way (an HTTP function).
AdminRunner = Callable[[str, str | None], InvocationResult | None]


def _json(status: int, payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


class HttpFrontEnd:
    """A WSGI app that routes requests to HTTP-triggered functions like the Functions host."""

    def __init__(
        self,
        functions: Iterable[HttpFunction],
        *,
        invoker: Invoker,
        function_key: str,
        route_prefix: str,
        admin_runner: AdminRunner,
    ) -> None:
        # Most specific route first, as ASP.NET routing orders templates.
        self._functions = sorted(functions, key=lambda f: f.route.precedence)
        self._invoker = invoker
        self._key = function_key
        self._prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
        self._admin_runner = admin_runner

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point."""
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception:
            HOST_LOG.exception("Unhandled error in the local Functions host for %s %s", request.method, request.path)
            response = _json(500, {"error": "internal error in the local Functions host"})
        return response(environ, start_response)

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("x-functions-key") or request.args.get("code") or ""
        return hmac.compare_digest(given.encode(), self._key.encode())

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.rstrip("/") == "":
            # Core Tools answers the root with a landing page; a 200 doubles as a liveness probe.
            return Response("Local Functions host is running.", mimetype="text/plain")
        if path.lower().startswith("/admin/"):
            return self._admin(request, path[len("/admin/") :].strip("/"))
        if self._prefix:
            if not (path.lower() == self._prefix.lower() or path.lower().startswith(self._prefix.lower() + "/")):
                return _json(404, {"error": "no such route"})
            path = path[len(self._prefix) :]
        path_matched = False
        for function in self._functions:
            params = function.route.match(path)
            if params is None:
                continue
            path_matched = True
            if request.method.upper() in function.methods:
                return self._invoke(function, request, params)
        if path_matched:
            # The Functions host answers a method no function accepts with 404, not 405.
            return _json(404, {"error": f"no function accepts {request.method} on this route"})
        return _json(404, {"error": "no such route"})

    def _invoke(self, function: HttpFunction, request: Request, params: dict[str, str]) -> Response:
        if function.auth_level != "anonymous" and not self._authorized(request):
            return Response(status=401)
        http_request = func.HttpRequest(
            method=request.method.upper(),
            url=request.url,
            # Repeated headers arrive joined with ", ", as ASP.NET presents them to the worker.
            headers={key: ", ".join(request.headers.getlist(key)) for key, _ in request.headers.items()},
            params={key: request.args[key] for key in request.args},
            route_params=params,
            body=request.get_data(),
        )
        result = self._invoker.invoke(function.call, http_request, HTTP_REASON)
        if not result.succeeded:
            return _json(
                500,
                {
                    "error": "function timed out" if result.timed_out else "function failed",
                    "function": function.name,
                    "invocation_id": result.invocation_id,
                },
            )
        return self._to_response(function, result)

    def _to_response(self, function: HttpFunction, result: InvocationResult) -> Response:
        value = result.value
        if isinstance(value, func.HttpResponse):
            response = Response(value.get_body(), status=value.status_code)
            # Werkzeug-style multi-valued headers: add() keeps repeated ones such as Set-Cookie.
            response.headers.clear()
            for key, header_value in value.headers.items():
                response.headers.add(key, header_value)
            if "content-type" not in {key.lower() for key, _ in value.headers.items()}:
                response.headers["Content-Type"] = f"{value.mimetype}; charset={value.charset}"
            return response
        if isinstance(value, str):
            return Response(value, mimetype="text/plain")
        if value is None:
            return Response(status=204)
        HOST_LOG.error(
            "Function '%s' (Id=%s) returned %s; an HTTP function must return func.HttpResponse or str",
            function.name,
            result.invocation_id,
            type(value).__name__,
        )
        return _json(
            500,
            {
                "error": "function returned an unsupported type",
                "function": function.name,
                "invocation_id": result.invocation_id,
            },
        )

    def _admin(self, request: Request, rest: str) -> Response:
        if rest.lower() == "host/status":
            return _json(200, {"state": "Running"})
        if not self._authorized(request):
            return Response(status=401)
        parts = rest.split("/")
        if len(parts) != 2 or parts[0].lower() != "functions":
            return _json(404, {"error": "no such admin endpoint"})
        if request.method.upper() != "POST":
            return _json(405, {"error": "use POST to run a function"})
        payload: Any = {}
        if request.get_data():
            try:
                payload = json.loads(request.get_data())
            except ValueError:
                return _json(400, {"error": 'body must be JSON like {"input": "..."}'})
        text = payload.get("input") if isinstance(payload, dict) else None
        try:
            result = self._admin_runner(parts[1], None if text is None else str(text))
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        if result is None:
            return _json(404, {"error": f"no function named {parts[1]!r}"})
        # Core Tools answers 202; this host waits for the run so scripts and tests see its outcome.
        return _json(
            202,
            {
                "id": result.invocation_id,
                "status": "Succeeded" if result.succeeded else "Failed",
                "duration_ms": result.duration_ms,
            },
        )
