"""``GET /api/health`` (anonymous liveness plus a round trip to every dependency) and
``GET /api/connection/test`` (both APIs checked step by step, with a diagnosis)."""

from __future__ import annotations

import azure.functions as func

from functions._http import json_response, sync_error_response
from shared import composition
from shared.errors import SyncError
from shared.usecases.connection_test import run_connection_test
from shared.usecases.health import check_health

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def http_health(req: func.HttpRequest) -> func.HttpResponse:
    """200 when every dependency answers, 503 otherwise, with each dependency's status."""
    try:
        report = check_health(composition.health_probes())
    except SyncError as error:  # settings invalid: nothing can be probed
        return sync_error_response(error)
    body = {
        "status": "ok" if report.healthy else "unhealthy",
        "dependencies": {
            d.name: {"ok": d.ok, "latencyMs": d.latency_ms}
            | ({"error": {"code": d.error_code, "message": d.error_message}} if not d.ok else {})
            for d in report.dependencies
        },
    }
    return json_response(body, 200 if report.healthy else 503)


@bp.route(route="connection/test", methods=["GET"])
def http_connection_test(req: func.HttpRequest) -> func.HttpResponse:
    """200 when every check passes, 503 otherwise; each check names what is wrong and the fix."""
    try:
        report = run_connection_test(**composition.connection_test_ports())
    except SyncError as error:  # settings invalid: nothing can be tested
        return sync_error_response(error)
    return json_response(report.to_json(), 200 if report.ok else 503)
