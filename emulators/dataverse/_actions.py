"""Unbound sales actions (wire-protocols §A.8): close a quote or an order with its close activity.

``WinQuote`` / ``CloseQuote`` take ``{"QuoteClose": {..., "quoteid@odata.bind": "/quotes(id)"},
"Status": n}``; ``FulfillSalesOrder`` / ``CancelSalesOrder`` take ``{"OrderClose": {...,
"salesorderid@odata.bind": "/salesorders(id)"}, "Status": n}``. ``Status: -1`` means the target
state's default status. The close activity itself is recorded only as the state change (the
emulator has no quoteclose/orderclose tables). ``ReviseQuote`` takes ``{"QuoteId": "<guid>"}``
and answers the new Draft revision. ``InsertOptionValue`` / ``UpdateOptionValue`` change a local
option set (metadata, so they are not row events).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _errors as err
from . import _options
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


# -- local option sets ----------------------------------------------------------------------------


def _option_target(body: Any) -> tuple[str, str, dict[int, str]]:
    """``EntityLogicalName`` / ``AttributeLogicalName`` → the live options of a local picklist."""
    if not isinstance(body, dict):
        raise err.bad_request("The request body must be a JSON object.", err.PAYLOAD)
    if body.get("OptionSetName"):
        raise NotImplementedError("global option sets (OptionSetName)")
    entity, attribute = body.get("EntityLogicalName"), body.get("AttributeLogicalName")
    if not isinstance(entity, str) or not isinstance(attribute, str):
        raise err.bad_request("The parameters 'EntityLogicalName' and 'AttributeLogicalName' are required.")
    definition = BY_LOGICAL_NAME.get(entity)
    if definition is None:
        raise err.DataverseError(404, err.DOES_NOT_EXIST, f"Could not find an entity with name {entity}.")
    if attribute not in definition.attributes:
        raise err.DataverseError(
            404, err.DOES_NOT_EXIST, f"Could not find an attribute with name {attribute} on entity {entity}."
        )
    options = _options.options_of(entity, attribute)
    if options is None:
        raise err.bad_request(f"The attribute {entity}.{attribute} is not a picklist with a local option set.")
    return entity, attribute, options


def _label_text(body: dict[str, Any], *, required: bool) -> str | None:
    label = body.get("Label")
    localized = label.get("LocalizedLabels") if isinstance(label, dict) else None
    texts = [item.get("Label") for item in localized or [] if isinstance(item, dict)]
    # The emulated organisation has one language (1033); its label is the one clients read.
    text = next((t for t in texts if isinstance(t, str) and t.strip()), None)
    if text is None and required:
        raise err.bad_request("The parameter 'Label' must have a LocalizedLabels entry with a non-empty Label.")
    return text


def _option_value(body: dict[str, Any]) -> int | None:
    value = body.get("Value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise err.bad_request("The parameter 'Value' must be an integer.", err.PAYLOAD)
    return value


def _check_label_free(options: Mapping[int, str], text: str, name: str, keep: int | None = None) -> None:
    clash = next((v for v, label in options.items() if label.casefold() == text.casefold() and v != keep), None)
    if clash is not None:
        raise err.bad_request(f"The option set {name} already has an option with the label '{text}' (value {clash}).")


def insert_option_value(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    """Append an option to a local option set; answers ``{"NewOptionValue": n}``.

    Without ``Value`` the platform picks the next value in the default publisher's range
    (100000000, 100000001, ...). A value or label already in the set is refused.
    """
    from ._service import ApiResponse

    body = request.json()
    with api.store.lock:  # check and insert as one against concurrent inserts
        entity, attribute, options = _option_target(body)
        text = _label_text(body, required=True)
        assert text is not None
        name = f"{entity}_{attribute}"
        value = _option_value(body)
        if value is not None and value in options:
            raise err.bad_request(f"The option set {name} already has an option with the value {value}.")
        _check_label_free(options, text, name)
        if value is None:
            value = _options.next_value(entity, attribute)
        options[value] = text
    api._charge("metadata")
    return ApiResponse(
        200,
        body={
            "@odata.context": f"{api.base_url}/$metadata#Microsoft.Dynamics.CRM.InsertOptionValueResponse",
            "NewOptionValue": value,
        },
    )


def update_option_value(api: DataverseApi, request: ApiRequest) -> ApiResponse:
    """Relabel an existing option (``Value`` + ``Label``); answers 204 like the service."""
    from ._service import ApiResponse

    body = request.json()
    with api.store.lock:
        entity, attribute, options = _option_target(body)
        value = _option_value(body)
        if value is None:
            raise err.bad_request("The parameter 'Value' is required.")
        if value not in options:
            raise err.bad_request(f"The option set {entity}_{attribute} has no option with the value {value}.")
        text = _label_text(body, required=True)
        assert text is not None
        _check_label_free(options, text, f"{entity}_{attribute}", keep=value)
        options[value] = text
    api._charge("metadata")
    return ApiResponse(204)


ACTIONS: Mapping[str, Callable[[DataverseApi, ApiRequest], ApiResponse]] = {
    "WinQuote": win_quote,
    "CloseQuote": close_quote,
    "FulfillSalesOrder": fulfill_sales_order,
    "CancelSalesOrder": cancel_sales_order,
    "ReviseQuote": revise_quote,
    "InsertOptionValue": insert_option_value,
    "UpdateOptionValue": update_option_value,
}
