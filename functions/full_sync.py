"""Full synchronization with review, and match-based coupling jobs: HTTP to start and watch,
queues to do the work in the background."""

from __future__ import annotations

import json

import azure.functions as func

from functions._http import http_errors, json_response
from functions._views import job_view
from shared import composition
from shared.domain.full_sync import LineStatus
from shared.domain.state import JobType, SyncDirection
from shared.errors import PermanentError
from shared.resources import QUEUE_COUPLING, QUEUE_FULL_SYNC
from shared.usecases._jobs import start_job
from shared.usecases.full_sync import advance_full_sync, parse_full_sync_message, run_full_sync_line, start_full_sync
from shared.usecases.match_coupling import run_match_coupling_job
from shared.usecases.queue_work import settle_message

bp = func.Blueprint()


@bp.route(route="fullsync", methods=["POST"])
@http_errors
def http_start_full_sync(req: func.HttpRequest) -> func.HttpResponse:
    """Review every mapping and start a full synchronization in the background (202 with the run id)."""
    run = start_full_sync(
        composition.all_mappings(),
        bc=composition.business_central_port(),
        dataverse=composition.dataverse_port(),
        engine=composition.sync_engine(),
        runs=composition.full_sync_store(),
        queue=composition.message_queue(),
        clock=composition.clock(),
    )
    return json_response({"runId": run.run_id}, 202)


@bp.route(route="fullsync/{runId}", methods=["GET"])
@http_errors
def http_get_full_sync(req: func.HttpRequest) -> func.HttpResponse:
    """The run's review lines: recommendation, direction, status and per-pass counters."""
    found = composition.full_sync_store().get_run(req.route_params["runId"])
    if found is None:
        raise PermanentError(f"There is no full synchronization run {req.route_params['runId']}.", code="NotFound")
    run, lines = found
    jobs = composition.sync_job_store()

    def job(mapping: str, job_id: str | None) -> object:
        found_job = jobs.get(mapping, job_id) if job_id else None
        return job_view(found_job) if found_job else None

    return json_response(
        {
            "runId": run.run_id,
            "status": run.status.value,
            "startedAt": run.started_at,
            "finishedAt": run.finished_at,
            "lines": [
                {
                    "mapping": line.mapping,
                    "recommendation": line.recommendation.value,
                    "direction": line.direction,
                    "dependencies": list(line.dependencies),
                    "status": line.status.value,
                    "message": line.message,
                    # Queue messages the line has taken so far beyond its first (a long pass goes
                    # on in a new message from where the last one stopped).
                    "steps": line.step + 1 if line.status is not LineStatus.WAITING else 0,
                    "couplingJob": job(line.mapping, line.coupling_job_id),
                    "toDataverseJob": job(line.mapping, line.to_dataverse_job_id),
                    "fromDataverseJob": job(line.mapping, line.from_dataverse_job_id),
                }
                for line in lines
            ],
        }
    )


@bp.route(route="couplings/{mapping}/match", methods=["POST"])
@http_errors
def http_match_coupling(req: func.HttpRequest) -> func.HttpResponse:
    """Start a match-based coupling job for the mapping's uncoupled BC records (202 with the job id)."""
    mapping = composition.mapping(req.route_params["mapping"])
    job = start_job(
        mapping.name,
        SyncDirection.TO_DATAVERSE,
        jobs=composition.sync_job_store(),
        clock=composition.clock(),
        job_type=JobType.COUPLING,
    )
    composition.message_queue().send(
        QUEUE_COUPLING, {"type": "match", "mapping": mapping.name, "jobId": job.job_id}, message_id=job.job_id
    )
    return json_response({"jobId": job.job_id}, 202)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE_FULL_SYNC, connection="ServiceBusConnection")
def queue_full_sync(msg: func.ServiceBusMessage) -> None:
    """Full-sync steps: advance the run, or run one claimed review line."""

    def handle(body: bytes) -> None:
        kind, run_id, mapping_name, step = parse_full_sync_message(body)
        if kind == "advance":
            advance_full_sync(
                run_id, runs=composition.full_sync_store(), queue=composition.message_queue(), clock=composition.clock()
            )
        else:
            assert mapping_name is not None
            run_full_sync_line(run_id, composition.mapping(mapping_name), step=step, **composition.full_sync_ports())

    settle_message(
        QUEUE_FULL_SYNC,
        msg.message_id,
        msg.get_body(),
        handle,
        errors=composition.sync_error_store(),
        clock=composition.clock(),
    )


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE_COUPLING, connection="ServiceBusConnection")
def queue_coupling(msg: func.ServiceBusMessage) -> None:
    """Coupling work: match-based coupling jobs."""

    def handle(body: bytes) -> None:
        try:
            document = json.loads(body)
            mapping_name, job_id = document["mapping"], document["jobId"]
            assert document["type"] == "match" and isinstance(job_id, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise PermanentError(
                "malformed coupling message: expected type match, mapping, jobId", code="MalformedMessage"
            ) from None
        run_match_coupling_job(composition.mapping(mapping_name), job_id, **composition.coupling_ports())

    settle_message(
        QUEUE_COUPLING,
        msg.message_id,
        msg.get_body(),
        handle,
        errors=composition.sync_error_store(),
        clock=composition.clock(),
    )
