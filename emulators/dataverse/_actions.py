"""Unbound sales actions (wire-protocols §A.8): close a quote or an order with its close activity.

``WinQuote`` / ``CloseQuote`` take ``{"QuoteClose": {..., "quoteid@odata.bind": "/quotes(id)"},
"Status": n}``; ``FulfillSalesOrder`` / ``CancelSalesOrder`` take ``{"OrderClose": {...,
"salesorderid@odata.bind": "/salesorders(id)"}, "Status": n}``. ``Status: -1`` means the target
state's default status. The close activity itself is recorded only as the state change (the
emulator has no quoteclose/orderclose tables). ``ReviseQuote`` takes ``{"QuoteId": "<guid>"}``
and answers the new Draft revision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _errors as err
from ._entities import BY_LOGICAL_NAME
from ._model import EntityDefinition
from ._records import GUID_RE, Key, parse_reference, utc_now_iso
from ._store import Row

if TYPE_CHECKING:
    from ._service import ApiRequest, ApiResponse, DataverseApi


def _close(
    api: DataverseApi,
    request: ApiRequest,
    *,
    activity: str,
    entity: str,
    allowed_from: frozenset[int],
    target_state: int,
    stamp: str | None,
) -> ApiResponse:
    from ._service import ApiResponse, Event

    body = request.json()
    close = body.get(activity) if isinstance(body, dict) else None
    if not isinstance(close, dict):
        raise err.bad_request(f"The parameter '{activity}' is required.")
    definition = BY_LOGICAL_NAME[entity]
    bind = close.get(f"{definition.primary_id}@odata.bind")
    reference = parse_reference(str(bind)) if isinstance(bind, str) else None
    if reference is None or reference.definition.logical_name != entity:
        raise err.bad_request(f"'{activity}' must bind '{definition.primary_id}@odata.bind' to a {entity}.")
    state = definition.state(target_state)
    assert state is not None
    status = body.get("Status", -1)
    if not isinstance(status, int) or isinstance(status, bool):
        raise err.bad_request("The parameter 'Status' must be an integer.")
    if status == -1:
        status = state.default_status
    with api.store.transaction():  # read, check and write as one against concurrent requests
        row = api._require(definition, reference.key)
        if status not in state.statuses:
            raise err.bad_request(
                f"{status} is not a valid status code for state code {state.label} on {entity} with Id "
                f"{row[definition.primary_id]}."
            )
        if int(row.get("statecode") or 0) not in allowed_from:
            current = definition.state(int(row.get("statecode") or 0))
            raise err.bad_request(
                f"The {entity} cannot be closed from the state {current.label if current else row.get('statecode')}."
            )
        record_id = str(row[definition.primary_id])
        updated = dict(row)
        updated.update(statecode=target_state, statuscode=status, modifiedon=utc_now_iso())
        updated["modifiedby"] = {"id": request.user, "entity": "systemuser"}
        if stamp is not None:
            updated[stamp] = utc_now_iso()
        updated["versionnumber"] = api.store.next_version()
        api.store.put(entity, record_id, updated)
    api.context.events.append(
        Event("SetStateDynamicEntity", entity, record_id, request.user, ("statecode", "statuscode"), row, updated)
    )
    return ApiResponse(204)


def win_quote(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    return _close(
        api,
        request,
        activity="QuoteClose",
        entity="quote",
        allowed_from=frozenset({1}),
        target_state=2,
        stamp="closedon",
    )


def close_quote(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    return _close(
        api,
        request,
        activity="QuoteClose",
        entity="quote",
        allowed_from=frozenset({0, 1}),
        target_state=3,
        stamp="closedon",
    )


def fulfill_sales_order(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    return _close(
        api,
        request,
        activity="OrderClose",
        entity="salesorder",
        allowed_from=frozenset({0, 1}),
        target_state=3,
        stamp="datefulfilled",
    )


def cancel_sales_order(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    return _close(
        api,
        request,
        activity="OrderClose",
        entity="salesorder",
        allowed_from=frozenset({0, 1}),
        target_state=2,
        stamp=None,
    )


def revise_quote(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    """Close an Active (or Closed) quote as Revised and open a Draft copy with revisionnumber + 1.

    Body ``{"QuoteId": "<guid>", "ColumnSet": {...}}``; answers the new quote. The copy keeps the
    quote number and the lines, as the service does.
    """
    from ._service import ApiResponse, Event

    body = request.json()
    quote_id = str(body.get("QuoteId", "")) if isinstance(body, dict) else ""
    if not GUID_RE.fullmatch(quote_id):
        raise err.bad_request("The parameter 'QuoteId' must be the GUID of a quote.")
    quotes, lines = BY_LOGICAL_NAME["quote"], BY_LOGICAL_NAME["quotedetail"]
    with api.store.transaction():
        old = api._require(quotes, Key(id=quote_id.lower()))
        if int(old.get("statecode") or 0) not in (1, 3):
            raise err.bad_request("Only an Active or Closed quote can be revised.")
        closed = dict(old)
        closed.update(statecode=3, statuscode=7, closedon=utc_now_iso(), versionnumber=api.store.next_version())
        api.store.put("quote", quote_id, closed)
        new = api.create_row(quotes, _as_body(quotes, old), request)
        new_id = str(new["quoteid"])
        for line in api.store.rows("quotedetail"):
            ref = line.get("quoteid")
            if isinstance(ref, dict) and ref["id"] == quote_id:
                preset = {"quoteid": {"id": new_id, "entity": "quote"}}
                api.create_row(lines, _as_body(lines, line, skip=("quoteid",)), request, preset=preset)
        revised = api.store.get("quote", new_id)
        assert revised is not None
        revised.update(quotenumber=old.get("quotenumber"), revisionnumber=int(old.get("revisionnumber") or 0) + 1)
        revised["versionnumber"] = api.store.next_version()
        api.store.put("quote", new_id, revised)
    api.context.events.append(
        Event("SetStateDynamicEntity", "quote", quote_id, request.user, ("statecode", "statuscode"), old, closed)
    )
    body_out = {"@odata.context": f"{api.base_url}/$metadata#quotes/$entity"}
    body_out.update(api._wire(quotes, revised))
    return ApiResponse(200, {}, body_out)


def _as_body(definition: EntityDefinition, row: Row, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A create body (values and binds) that copies ``row``'s creatable columns."""
    body: dict[str, Any] = {}
    for name, value in row.items():
        attribute = definition.attributes.get(name)
        if value is None or attribute is None or not attribute.create or name in _NOT_COPIED or name in skip:
            continue
        if isinstance(value, dict):
            target = BY_LOGICAL_NAME[value["entity"]]
            body[f"{attribute.navigation_for(target.logical_name)}@odata.bind"] = f"/{target.entity_set}({value['id']})"
        else:
            body[name] = value
    return body


# Columns a revision does not inherit: identity, audit, state and the numbers the service assigns.
_NOT_COPIED = frozenset(
    {"quoteid", "quotedetailid", "createdon", "modifiedon", "createdby", "modifiedby", "versionnumber",
     "statecode", "statuscode", "quotenumber", "revisionnumber", "closedon", "overriddencreatedon"}
)  # fmt: skip


ACTIONS: Mapping[str, Callable[[DataverseApi, ApiRequest], ApiResponse]] = {
    "WinQuote": win_quote,
    "CloseQuote": close_quote,
    "FulfillSalesOrder": fulfill_sales_order,
    "CancelSalesOrder": cancel_sales_order,
    "ReviseQuote": revise_quote,
}
