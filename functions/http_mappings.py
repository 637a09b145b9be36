"""The integration table mappings: view them, and synchronize a mapping's modified records now."""

from __future__ import annotations

import azure.functions as func

from functions._http import http_errors, json_response
from shared import composition
from shared.usecases.synchronize import request_mapping_sync

bp = func.Blueprint()


@bp.route(route="mappings", methods=["GET"])
@http_errors
def http_list_mappings(req: func.HttpRequest) -> func.HttpResponse:
    """Every mapping in the order a full synchronization runs them."""
    return json_response({"value": [composition.mapping_json(m) for m in composition.all_mappings()]})


@bp.route(route="mappings/{name}", methods=["GET"])
@http_errors
def http_get_mapping(req: func.HttpRequest) -> func.HttpResponse:
    """One mapping with its field mappings."""
    return json_response(composition.mapping_json(composition.mapping(req.route_params["name"])))


@bp.route(route="mappings/{name}/sync", methods=["POST"])
@http_errors
def http_sync_mapping(req: func.HttpRequest) -> func.HttpResponse:
    """Synchronize modified records now, in the background (202 with the job ids)."""
    job_ids = request_mapping_sync(
        composition.mapping(req.route_params["name"]),
        jobs=composition.sync_job_store(),
        queue=composition.message_queue(),
        clock=composition.clock(),
    )
    return json_response({"jobIds": {d.value: j for d, j in job_ids.items()}}, 202)
