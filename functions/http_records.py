"""Couplings and single records by hand: couple, uncouple, Synchronize Now, create on the other side."""

from __future__ import annotations

import azure.functions as func

from functions._http import http_errors, json_body, json_response
from functions._views import coupling_view, job_view
from shared import composition
from shared.errors import PermanentError
from shared.usecases import records

bp = func.Blueprint()


@bp.route(route="couplings/{mapping}", methods=["GET"])
@http_errors
def http_get_coupling(req: func.HttpRequest) -> func.HttpResponse:
    """``?bcId=`` or ``?dataverseId=``: the coupling, or 404."""
    found = records.find_coupling(
        composition.log_name(req.route_params["mapping"]),
        bc_id=req.params.get("bcId"),
        dataverse_id=req.params.get("dataverseId"),
        couplings=composition.coupling_store(),
    )
    return json_response(coupling_view(found))


@bp.route(route="couplings/{mapping}", methods=["POST"])
@http_errors
def http_couple(req: func.HttpRequest) -> func.HttpResponse:
    """``{"bcId", "dataverseId"}``: couple two existing records (201)."""
    body = json_body(req)
    coupling = records.couple_records(
        composition.mapping(req.route_params["mapping"]),
        _required(body, "bcId"),
        _required(body, "dataverseId"),
        bc=composition.business_central_port(),
        dataverse=composition.dataverse_port(),
        couplings=composition.coupling_store(),
    )
    return json_response(coupling_view(coupling), 201)


@bp.route(route="couplings/{mapping}/{bcId}", methods=["DELETE"])
@http_errors
def http_uncouple(req: func.HttpRequest) -> func.HttpResponse:
    """Remove a coupling; answers with the coupling that was removed."""
    removed = records.uncouple_record(
        composition.mapping(req.route_params["mapping"]),
        req.route_params["bcId"],
        couplings=composition.coupling_store(),
    )
    return json_response(coupling_view(removed))


@bp.route(route="records/{mapping}/{bcId}/sync", methods=["POST"])
@http_errors
def http_synchronize_record(req: func.HttpRequest) -> func.HttpResponse:
    """Synchronize Now: ``{"direction": "toDataverse" | "fromDataverse" | "merge"}`` (default: by what changed)."""
    direction = json_body(req).get("direction")
    try:
        choice = records.SyncNowChoice(direction) if direction else None
    except ValueError:
        raise PermanentError(
            f"direction must be toDataverse, fromDataverse or merge, got {direction!r}", code="InvalidDirection"
        ) from None
    jobs = records.synchronize_record(
        composition.mapping(req.route_params["mapping"]), req.route_params["bcId"], choice, **composition.record_ports()
    )
    return json_response({"jobs": [job_view(j) for j in jobs]})


@bp.route(route="records/{mapping}/{bcId}/create-in-dataverse", methods=["POST"])
@http_errors
def http_create_in_dataverse(req: func.HttpRequest) -> func.HttpResponse:
    """Create the Dataverse row for an uncoupled BC record and couple it (201)."""
    job, coupling = records.create_in_dataverse(
        composition.mapping(req.route_params["mapping"]), req.route_params["bcId"], **composition.create_ports()
    )
    return json_response({"job": job_view(job), "coupling": coupling_view(coupling)}, 201)


@bp.route(route="records/{mapping}/create-in-bc", methods=["POST"])
@http_errors
def http_create_in_business_central(req: func.HttpRequest) -> func.HttpResponse:
    """``{"dataverseId"}``: create the BC record for an uncoupled Dataverse row and couple it (201)."""
    job, coupling = records.create_in_business_central(
        composition.mapping(req.route_params["mapping"]),
        _required(json_body(req), "dataverseId"),
        **composition.create_ports(),
    )
    return json_response({"job": job_view(job), "coupling": coupling_view(coupling)}, 201)


def _required(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise PermanentError(f"{name} is required (a GUID string)", code="MissingField")
    return value
