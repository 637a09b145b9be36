"""Full synchronization runs and their review lines in Table Storage (one partition per run)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.tables._errors import table_errors
from shared.adapters.tables._keys import encode_key
from shared.domain.full_sync import FullSyncRun, LineStatus, Recommendation, ReviewLine, RunStatus
from shared.errors import PermanentError, RetriableError

_RUN = "run"
_LINE = "line:"


def _line_entity(run_id: str, order: int, line: ReviewLine) -> dict[str, Any]:
    return {
        "PartitionKey": run_id,
        "RowKey": _LINE + encode_key(line.mapping),
        "Order": order,
        "Mapping": line.mapping,
        "Recommendation": line.recommendation.value,
        "Direction": line.direction,
        "Dependencies": "|".join(line.dependencies),
        "Status": line.status.value,
        "Message": line.message[:1000],
        "ToDataverseJobId": line.to_dataverse_job_id,
        "FromDataverseJobId": line.from_dataverse_job_id,
        "CouplingJobId": line.coupling_job_id,
        "Step": line.step,
        "Phase": line.phase,
        "ResumeLink": line.resume_link,
        "PassesStartedAt": line.passes_started_at,
    }


def _line(entity: Any) -> ReviewLine:
    return ReviewLine(
        mapping=entity["Mapping"],
        recommendation=Recommendation(entity["Recommendation"]),
        direction=entity["Direction"],
        dependencies=tuple(d for d in (entity.get("Dependencies") or "").split("|") if d),
        status=LineStatus(entity["Status"]),
        message=entity.get("Message") or "",
        to_dataverse_job_id=entity.get("ToDataverseJobId"),
        from_dataverse_job_id=entity.get("FromDataverseJobId"),
        coupling_job_id=entity.get("CouplingJobId"),
        step=int(entity.get("Step") or 0),
        phase=entity.get("Phase"),
        resume_link=entity.get("ResumeLink"),
        passes_started_at=entity.get("PassesStartedAt")
        if isinstance(entity.get("PassesStartedAt"), datetime)
        else None,
        etag=entity.metadata["etag"],
    )


class TableFullSyncStore:
    """``FullSyncStore`` on Azure Table Storage."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def create_run(self, run: FullSyncRun, lines: list[ReviewLine]) -> None:
        """Store a run and its lines in one transaction (all or nothing)."""
        header = {"PartitionKey": run.run_id, "RowKey": _RUN, "Status": run.status.value, "StartedAt": run.started_at}
        operations: list[Any] = [("create", header)]
        operations += [("create", _line_entity(run.run_id, i, line)) for i, line in enumerate(lines)]
        with table_errors(f"storing full sync run {run.run_id}"):
            self._table.submit_transaction(operations)

    def get_run(self, run_id: str) -> tuple[FullSyncRun, list[ReviewLine]] | None:
        """The run and its lines in review order, or ``None``."""
        with table_errors(f"reading full sync run {run_id}"):
            entities = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": run_id}))
        header = next((e for e in entities if e["RowKey"] == _RUN), None)
        if header is None:
            return None
        finished = header.get("FinishedAt")
        run = FullSyncRun(
            run_id=run_id,
            status=RunStatus(header["Status"]),
            started_at=header["StartedAt"],
            finished_at=finished if isinstance(finished, datetime) else None,
        )
        lines = sorted((e for e in entities if e["RowKey"].startswith(_LINE)), key=lambda e: int(e["Order"]))
        return run, [_line(e) for e in lines]

    def running_runs(self) -> list[FullSyncRun]:
        """Runs still in progress."""
        with table_errors("listing full sync runs"):
            entities = list(self._table.query_entities(f"RowKey eq '{_RUN}' and Status eq '{RunStatus.RUNNING.value}'"))
        return [FullSyncRun(e["PartitionKey"], RunStatus.RUNNING, e["StartedAt"]) for e in entities]

    def update_line(self, run_id: str, line: ReviewLine, *, order: int) -> ReviewLine | None:
        """Write a line conditionally on the etag it was read with; ``None`` if someone else changed it first."""
        if line.etag is None:
            raise PermanentError("a review line must be read before it is updated", code="LineNotRead")
        try:
            with table_errors(f"updating review line {line.mapping}"):
                result = self._table.update_entity(
                    _line_entity(run_id, order, line),
                    mode=UpdateMode.REPLACE,
                    etag=line.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except RetriableError as error:
            if isinstance(error.__cause__, ResourceModifiedError):
                return None
            raise
        return replace(line, etag=result["etag"])

    def finish_run(self, run_id: str, finished_at: datetime) -> None:
        """Mark the run finished."""
        with table_errors(f"finishing full sync run {run_id}"):
            self._table.update_entity(
                {"PartitionKey": run_id, "RowKey": _RUN, "Status": RunStatus.FINISHED.value, "FinishedAt": finished_at},
                mode=UpdateMode.MERGE,
            )
