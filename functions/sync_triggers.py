"""The scheduled incremental sync (timer) and per-mapping / per-record sync requests (queue)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition
from shared.domain.messages import SyncMappingRequest, parse_record_sync_message
from shared.resources import QUEUE_RECORD_SYNC
from shared.usecases.queue_work import settle_message
from shared.usecases.synchronize import synchronize_all, synchronize_modified, synchronize_records

bp = func.Blueprint()
_log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%SCHEDULE_MAPPING_SYNC%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_sync_mappings(timer: func.TimerRequest) -> None:
    """Every mapping's modified records, both passes, on the schedule."""
    runs = synchronize_all(
        composition.all_mappings(), full_syncs=composition.full_sync_store(), **composition.synchronize_ports()
    )
    for run in runs:
        for job in run.jobs:
            _log.info("%s %s: %s %s", run.mapping, job.direction.value, job.status.value, job.counters)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE_RECORD_SYNC, connection="ServiceBusConnection")
def queue_record_sync(msg: func.ServiceBusMessage) -> None:
    """A mapping sync requested over HTTP, or records pushed by a webhook or Dataverse."""

    def handle(body: bytes) -> None:
        request = parse_record_sync_message(body)
        mapping = composition.mapping(request.mapping)
        if isinstance(request, SyncMappingRequest):
            synchronize_modified(mapping, job_ids=request.job_ids, **composition.synchronize_ports())
        else:
            synchronize_records(
                mapping,
                request.direction,
                request.ids,
                engine=composition.sync_engine(),
                jobs=composition.sync_job_store(),
                leases=composition.lease_store(),
                clock=composition.clock(),
            )

    settle_message(
        QUEUE_RECORD_SYNC,
        msg.message_id,
        msg.get_body(),
        handle,
        errors=composition.sync_error_store(),
        clock=composition.clock(),
    )
