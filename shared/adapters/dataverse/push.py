"""Registration of Dataverse push through the Web API: service endpoints and processing steps.

What the Plug-in Registration Tool does by hand (wire-protocols §C.1), as plain Web API calls:
``serviceendpoints`` rows, and ``sdkmessageprocessingsteps`` bound to an ``sdkmessage`` (Create,
Update), the ``sdkmessagefilter`` of that message for one table, and the endpoint as event handler
(``eventhandler_serviceendpoint``). Rows are found by name, so registering twice changes nothing.
New rows get their primary key from us: a create resent after a lost answer meets the first
one (duplicate key) and counts as done.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from shared.adapters.dataverse.client import DataverseWebApi
from shared.adapters.dataverse.errors import DUPLICATE_RECORD
from shared.domain.notifications import ProcessingStep, ServiceEndpoint
from shared.errors import PermanentError
from shared.odata import guid_literal, string_literal

__all__ = ["DataversePushRegistry", "RegisteredStep"]

_STEP_COLUMNS = "sdkmessageprocessingstepid,name,stage,mode,rank,filteringattributes,statecode,_eventhandler_value"


class RegisteredStep:
    """A step as stored: its id, whether it is enabled, and whether it differs from the wanted one."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.step_id = str(row["sdkmessageprocessingstepid"])
        self.enabled = row.get("statecode") in (0, None)
        self._row = row

    def differs_from(self, step: ProcessingStep, endpoint_id: str) -> bool:
        """Whether the stored step would post differently from ``step`` through ``endpoint_id``."""
        stored_attributes = {a.strip() for a in str(self._row.get("filteringattributes") or "").split(",") if a}
        return (
            self._row.get("stage") != step.stage
            or self._row.get("mode") != step.mode
            or stored_attributes != set(step.filtering_attributes)
            or str(self._row.get("_eventhandler_value") or "").lower() != endpoint_id.lower()
        )


class DataversePushRegistry:
    """Finds, creates and updates the connector's service endpoint and steps; caches logical names."""

    def __init__(self, api: DataverseWebApi) -> None:
        self._api = api
        self._logical_names: dict[str, str] = {}
        self._lock = threading.Lock()

    def logical_name(self, entity_set: str) -> str:
        """The logical name of the table behind ``entity_set`` (``accounts`` → ``account``), read once.

        Raises:
            PermanentError: no table has this entity set (``UnknownEntitySet``).
            ConfigurationError, RetriableError: the metadata could not be read.
        """
        with self._lock:
            if entity_set not in self._logical_names:
                found = self._api.get_json(
                    "EntityDefinitions",
                    params={
                        "$select": "LogicalName,EntitySetName",
                        "$filter": f"EntitySetName eq {string_literal(entity_set)}",
                    },
                    doing=f"reading the logical name of {entity_set}",
                )
                values = found.get("value") or []
                if not values:
                    raise PermanentError(
                        f"Dataverse: no table has the entity set name {entity_set!r}", code="UnknownEntitySet"
                    )
                self._logical_names[entity_set] = str(values[0]["LogicalName"])
            return self._logical_names[entity_set]

    # -- service endpoint ---------------------------------------------------------------------------
    def find_service_endpoint(self, name: str) -> str | None:
        """The id of the service endpoint called ``name``, or ``None``.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table.
        """
        row = self._first("serviceendpoints", f"name eq {string_literal(name)}", "serviceendpointid", "finding")
        return str(row["serviceendpointid"]) if row else None

    def create_service_endpoint(self, endpoint: ServiceEndpoint) -> str:
        """Create the endpoint; returns its id.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table
                (a missing privilege on serviceendpoint is a ConfigurationError).
        """
        endpoint_id = str(uuid.uuid4())
        body = {"serviceendpointid": endpoint_id, **self._endpoint_body(endpoint)}
        self._create("serviceendpoints", body, doing=f"registering the service endpoint {endpoint.name!r}")
        return endpoint_id

    def update_service_endpoint(self, endpoint_id: str, endpoint: ServiceEndpoint) -> None:
        """Write every column of ``endpoint`` (the key cannot be read back, so it is always written).

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table.
        """
        self._api.send(
            "PATCH",
            f"serviceendpoints({guid_literal(endpoint_id)})",
            json=self._endpoint_body(endpoint),
            headers={"If-Match": "*"},
            doing=f"updating the service endpoint {endpoint.name!r}",
        )

    @staticmethod
    def _endpoint_body(endpoint: ServiceEndpoint) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": endpoint.name,
            "description": endpoint.description,
            "contract": endpoint.contract,
            "messageformat": endpoint.message_format,
            "userclaim": endpoint.user_claim,
            "authtype": endpoint.auth_type,
            "namespaceaddress": endpoint.namespace_address,
            "path": endpoint.path,
        }
        if endpoint.auth_type == 2:
            body |= {"saskeyname": endpoint.sas_key_name, "saskey": endpoint.sas_key}
        else:
            body["authvalue"] = endpoint.auth_value
        return body

    # -- steps --------------------------------------------------------------------------------------
    def find_step(self, name: str) -> RegisteredStep | None:
        """The step called ``name``, or ``None``.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table.
        """
        row = self._first("sdkmessageprocessingsteps", f"name eq {string_literal(name)}", _STEP_COLUMNS, "finding")
        return RegisteredStep(row) if row else None

    def create_step(self, step: ProcessingStep, endpoint_id: str) -> str:
        """Register ``step`` with ``endpoint_id`` as its handler; returns its id.

        Raises:
            PermanentError: ``NoMessageFilter`` when the environment has no filter of the message
                for the table (the table does not support the message), ``NoMessage`` likewise.
            ConfigurationError, RetriableError: per the Dataverse error table.
        """
        doing = f"registering the step {step.name!r}"
        message = self._first("sdkmessages", f"name eq {string_literal(step.message)}", "sdkmessageid", doing)
        if message is None:
            raise PermanentError(f"Dataverse has no message {step.message!r}", code="NoMessage")
        message_id = str(message["sdkmessageid"])
        by_message_and_table = (
            f"_sdkmessageid_value eq {guid_literal(message_id)} "
            f"and primaryobjecttypecode eq {string_literal(step.entity)}"
        )
        message_filter = self._first("sdkmessagefilters", by_message_and_table, "sdkmessagefilterid", doing)
        if message_filter is None:
            raise PermanentError(
                f"Dataverse has no {step.message} message filter for {step.entity}: the step cannot be registered",
                code="NoMessageFilter",
            )
        step_id = str(uuid.uuid4())
        filter_id = guid_literal(str(message_filter["sdkmessagefilterid"]))
        body = {
            "sdkmessageprocessingstepid": step_id,
            "name": step.name,
            "description": step.description,
            "sdkmessageid@odata.bind": f"/sdkmessages({guid_literal(message_id)})",
            "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({filter_id})",
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({guid_literal(endpoint_id)})",
            "supporteddeployment": 0,  # server only
            "asyncautodelete": True,  # successful system jobs are removed, as the tool's default
            **self._step_columns(step),
        }
        self._create("sdkmessageprocessingsteps", body, doing=doing)
        return step_id

    def update_step(self, step_id: str, step: ProcessingStep, endpoint_id: str) -> None:
        """Bring a stored step's stage, mode, filter columns and handler in line with ``step``.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table.
        """
        self._api.send(
            "PATCH",
            f"sdkmessageprocessingsteps({guid_literal(step_id)})",
            json={
                "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({guid_literal(endpoint_id)})",
                **self._step_columns(step),
            },
            headers={"If-Match": "*"},
            doing=f"updating the step {step.name!r}",
        )

    @staticmethod
    def _step_columns(step: ProcessingStep) -> dict[str, Any]:
        return {
            "stage": step.stage,
            "mode": step.mode,
            "rank": step.rank,
            # An empty value means "every column" to Dataverse; Create steps have no filter.
            "filteringattributes": ",".join(step.filtering_attributes) or None,
        }

    # -- plumbing -----------------------------------------------------------------------------------
    def _first(self, entity_set: str, filter_: str, select: str, doing: str) -> dict[str, Any] | None:
        found = self._api.get_json(
            entity_set,
            params={"$filter": filter_, "$select": select, "$top": "1"},
            doing=f"{doing}: reading {entity_set}",
        )
        values = found.get("value") or []
        return dict(values[0]) if values else None

    def _create(self, entity_set: str, body: dict[str, Any], *, doing: str) -> None:
        try:
            self._api.send("POST", entity_set, json=body, doing=doing)
        except PermanentError as error:
            # Our own key met an earlier attempt's row: that attempt's answer was lost, the row is there.
            if error.code != DUPLICATE_RECORD:
                raise
