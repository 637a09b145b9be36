"""The job log, the error log and skipped records (behaviour reference §2.6, §3.6)."""

from __future__ import annotations

import azure.functions as func

from functions._http import http_errors, json_body, json_response
from functions._views import coupling_view, error_view, job_view
from shared import composition
from shared.errors import PermanentError
from shared.usecases import records

bp = func.Blueprint()


def _limit(req: func.HttpRequest) -> int:
    raw = req.params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise PermanentError("limit must be a whole number from 1 to 1000", code="InvalidLimit")
    return int(raw)


@bp.route(route="jobs", methods=["GET"])
@http_errors
def http_list_jobs(req: func.HttpRequest) -> func.HttpResponse:
    """Newest sync jobs first, with counters; ``?mapping=`` narrows to one mapping."""
    name = req.params.get("mapping")
    mapping = composition.log_name(name) if name else None
    jobs = composition.sync_job_store().list_jobs(mapping, limit=_limit(req))
    return json_response({"value": [job_view(j) for j in jobs]})


@bp.route(route="errors", methods=["GET"])
@http_errors
def http_list_errors(req: func.HttpRequest) -> func.HttpResponse:
    """Newest sync errors first, and the skipped records; ``?mapping=`` narrows to one mapping."""
    name = req.params.get("mapping")
    log = composition.log_name(name) if name else None
    mappings = [m for m in composition.all_mappings() if log is None or m.name == log]
    errors = composition.sync_error_store().list_errors(log, limit=_limit(req))
    couplings = composition.coupling_store()
    skipped = [coupling_view(c) for m in mappings for c in couplings.list_couplings(m.name, skipped_only=True)]
    return json_response({"value": [error_view(e) for e in errors], "skipped": skipped})


@bp.route(route="skipped/{mapping}/restore", methods=["POST"])
@http_errors
def http_restore_skipped(req: func.HttpRequest) -> func.HttpResponse:
    """``{"bcIds": [...]}`` or ``{"all": true}``: restore skipped records for synchronization."""
    body = json_body(req)
    bc_ids = body.get("bcIds")
    if body.get("all") is True:
        bc_ids = None
    elif not isinstance(bc_ids, list) or not all(isinstance(i, str) for i in bc_ids):
        raise PermanentError('give {"bcIds": [...]} or {"all": true}', code="MissingField")
    restored = records.restore_skipped(
        composition.mapping(req.route_params["mapping"]), bc_ids, couplings=composition.coupling_store()
    )
    noun = "record has" if len(restored) == 1 else "records have"
    return json_response(
        {"restored": restored, "message": f"{len(restored)} {noun} been restored for synchronization."}
    )
