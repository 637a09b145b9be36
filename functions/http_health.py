"""``GET /api/health``: liveness plus a real round trip to every dependency (anonymous)."""

from __future__ import annotations

import azure.functions as func

from functions._http import json_response, sync_error_response
from shared import composition
from shared.errors import SyncError
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
