"""The Dataverse Web API v9.2 emulator: one dispatch point, one executor per operation.

``DataverseApi.handle`` authenticates the caller (bearer for the org URL + an enabled application
user), applies service protection, and hands an :class:`ApiRequest` to :meth:`dispatch`. Batch
parts and bulk messages go through the same :meth:`dispatch` / write primitives, so every
operation sees the same validation, business rules, versioning and events. Anything the emulator
does not implement raises ``NotImplementedError`` (a loud 501), never a plausible answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from emulators import _odata as odata
from emulators._http import BearerError, EmulatorApi, EmulatorServer, json_response

from . import _batch as batch
from . import _errors as err
from . import _options
from . import _sales as sales
from ._entities import BY_ENTITY_SET, BY_LOGICAL_NAME, DEFINITIONS
from ._limits import ServiceProtection
from ._metadata import (
    ATTRIBUTE_NAVIGATIONS,
    CASTS,
    ENTITY_METADATA,
    NAVIGATIONS,
    OPTION_CASTS,
    with_option_set,
)
from ._model import LOOKUP_TYPES, EntityDefinition
from ._privileges import Privileges
from ._records import (
    GUID_RE,
    AnnotationFilter,
    Key,
    new_id,
    parse_body,
    parse_key,
    parse_reference,
    to_wire,
    utc_now_iso,
)
from ._store import Row, Store

API_PREFIX = "/api/data/v9.2/"
MAX_PAGE = 5000
MAX_EXPANDS = 15
MAX_BATCH = 1000
COLLECTION_OPTIONS = frozenset(
    {"$filter", "$select", "$orderby", "$top", "$count", "$expand", "$skiptoken", "$deltatoken"}
)
SINGLE_OPTIONS = frozenset({"$select", "$expand"})
NESTED_OPTIONS = frozenset({"$select", "$filter", "$orderby", "$top", "$expand"})
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
_USER_PRIVILEGE_FUNCTION = "Microsoft.Dynamics.CRM.RetrieveUserPrivilegeByPrivilegeName"
_SEGMENT_RE = re.compile(r"^([A-Za-z_$][\w.$]*)(?:\((.*)\))?$", re.DOTALL)
_DELTA_RE = re.compile(r"^(\d+)!(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})$")
_COOKIE_RE = re.compile(r'pagenumber="(\d+)"\s+pagingcookie="([^"]*)"\s+istracking="(True|False)"')


@dataclass
class Event:
    """A committed write, for outbound push (service endpoints / webhooks)."""

    message: str
    entity: str
    id: str
    user: str
    changed: tuple[str, ...]
    pre: Row | None
    post: Row | None


@dataclass
class ApiRequest:
    method: str
    path: str  # relative to the service root, no leading slash
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    user: str  # systemuserid of the caller
    content_ids: dict[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise err.bad_request("The request body is not valid JSON.", err.PAYLOAD) from exc

    def prefer(self) -> dict[str, str]:
        preferences: dict[str, str] = {}
        for item in odata.split_top_level(self.header("Prefer") or "", ","):
            name, _, value = item.strip().partition("=")
            if name:
                preferences[name.strip().lower()] = value.strip().strip('"')
        return preferences


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # dict → JSON, bytes → as is, None → empty
    content_type: str | None = None

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def _primary_key_seek(expr: odata.Expr, primary_id: str) -> tuple[set[str], list[odata.Expr]] | None:
    """``(ids, other terms)`` when one of a filter's and-ed terms is ``pk eq <guid>`` or-ed together."""
    conjuncts, pending = [], [expr]
    while pending:
        term = pending.pop()
        if isinstance(term, odata.BoolOp) and term.op == "and":
            pending += [term.left, term.right]
        else:
            conjuncts.append(term)
    for conjunct in conjuncts:
        ids: set[str] = set()
        pending = [conjunct]
        while pending:
            term = pending.pop()
            if isinstance(term, odata.BoolOp) and term.op == "or":
                pending += [term.left, term.right]
            elif (
                isinstance(term, odata.Compare)
                and term.op == "eq"
                and isinstance(term.left, odata.Property)
                and term.left.name == primary_id
                and isinstance(term.right, odata.Literal)
                and term.right.type == "guid"
            ):
                ids.add(str(term.right.value).lower())
            else:
                break
        else:
            return ids, [c for c in conjuncts if c is not conjunct]
    return None


def _error_response(exc: err.DataverseError) -> ApiResponse:
    return ApiResponse(exc.status, dict(exc.headers), exc.body())


@dataclass
class _Context:
    """Per-request state that executors share: who calls, the cost spent, events to publish."""

    user: str
    cost: float = 0.0
    events: list[Event] = field(default_factory=list)


class DataverseApi(EmulatorApi):
    """The Web API front door (see module docstring)."""

    def __init__(self, server: EmulatorServer, *, org_url: str) -> None:
        self.server = server
        self.org_url = org_url.rstrip("/")
        self.base_url = f"{self.org_url}/api/data/v9.2"
        self.store = Store({d.logical_name: d.alternate_keys for d in DEFINITIONS if d.alternate_keys})
        self.limits = ServiceProtection(server.costs)
        self.privileges = Privileges()
        self.change_tracking_expiry_seconds = 7 * 86400.0
        self.organization_id = str(uuid.uuid4())
        self.business_unit_id = str(uuid.uuid4())
        self._local = threading.local()
        self.publisher: Callable[[list[Event]], None] | None = None
        self.client_id = str(server.start_info()["client_id"])
        from ._seed import ensure_application_user, ensure_organization

        ensure_application_user(self, self.client_id)
        ensure_organization(self)

    # -- the front door ----------------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        if status == 429 and not code.startswith("0x"):
            code = err.TOO_MANY_REQUESTS
        elif not code.startswith("0x"):
            code = ""  # Dataverse codes are hex or empty; the base's symbolic names are not
        return json_response(status, {"error": {"code": code, "message": message}}, headers)

    def handle(self, request: Request) -> Response:
        path = request.path
        if not path.startswith(API_PREFIX):
            return self._to_werkzeug(_error_response(err.segment_not_found(path.strip("/").split("/")[0])))
        try:
            claims = self.server.issuer.validate(request.headers.get("Authorization"), audiences=[self.org_url])
        except BearerError as exc:
            return self._to_werkzeug(
                ApiResponse(
                    401,
                    {"WWW-Authenticate": exc.www_authenticate(self.server.issuer.authority)},
                    {"error": {"code": "", "message": exc.description}},
                )
            )
        user = self._application_user(str(claims.get("appid") or claims.get("azp") or ""))
        if user is None:
            return self._to_werkzeug(
                _error_response(
                    err.DataverseError(403, err.NOT_MEMBER, "The user is not a member of the organization.")
                )
            )
        try:
            self.limits.enter(user)
        except err.DataverseError as exc:
            return self._to_werkzeug(_error_response(exc))
        context = _Context(user=user)
        self._local.context = context
        try:
            api_request = ApiRequest(
                method=request.method.upper(),
                path=unquote(path[len(API_PREFIX) :]),
                query=list(request.args.items(multi=True)),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.get_data(),
                user=user,
            )
            self._charge("request")
            response = self.dispatch(api_request)
            costs = self.server.costs
            if costs.sleep and context.cost > 0:
                # The request holds its server time here, outside the store lock, so parallel requests
                # overlap the way they do on the service (and count against the concurrency limit).
                time.sleep(costs.to_real(context.cost))
        finally:
            self.limits.leave(user, context.cost)
            self._local.context = None
        response.headers.setdefault("OData-Version", "4.0")
        response.headers["x-ms-dop-hint"] = str(self.limits.settings.dop_hint)
        response.headers.update(self.limits.headers(user))
        if context.events and self.publisher is not None:
            self.publisher(context.events)
        return self._to_werkzeug(response)

    def _to_werkzeug(self, response: ApiResponse) -> Response:
        content_type = response.content_type
        if content_type is None and response.body is not None and not isinstance(response.body, bytes):
            content_type = "application/json; odata.metadata=minimal; charset=utf-8"
        return Response(
            response.body_bytes(), status=response.status, headers=response.headers, content_type=content_type
        )

    def _application_user(self, app_id: str) -> str | None:
        with self.store.lock:
            for row in self.store.peek_rows("systemuser"):
                if (row.get("applicationid") or "").lower() == app_id.lower() and not row.get("isdisabled"):
                    return str(row["systemuserid"])
        return None

    @property
    def context(self) -> _Context:
        context = getattr(self._local, "context", None)
        if context is None:
            context = _Context(user="")
            self._local.context = context
        return context

    def _charge(self, operation: str) -> None:
        # Accumulate only; the front door sleeps the total once, outside any lock.
        self.context.cost += self.server.costs.cost(operation)

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, request: ApiRequest) -> ApiResponse:
        """Route one request (top-level or a batch part) to its executor."""
        # A failed request rolled its writes back; its events must not be published either.
        mark = len(self.context.events)
        try:
            return self._route(request)
        except (err.DataverseError, odata.ODataQueryError) as caught:
            del self.context.events[mark:]
            exc = caught if isinstance(caught, err.DataverseError) else err.query_not_supported(caught.message)
            response = _error_response(exc)
            if self._annotations(request):
                response.body["error"].update(_error_annotations(exc))
            return response

    def _route(self, request: ApiRequest) -> ApiResponse:
        segments = _split_path(request.path)
        if not segments or not segments[0]:
            raise NotImplementedError("the service document")
        first = segments[0]
        method = request.method
        if first.startswith("$") and first[1:].isdigit():
            return self._route(self._substitute_content_id(request, first))
        if first == "$batch" and method == "POST":
            return self.execute_batch(request)
        if first == "WhoAmI" and method == "GET":
            return ApiResponse(
                200,
                body={
                    "@odata.context": f"{self.base_url}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                    "BusinessUnitId": self.business_unit_id,
                    "UserId": request.user,
                    "OrganizationId": self.organization_id,
                },
            )
        if first.startswith("EntityDefinitions") and method == "GET":
            return self.execute_metadata(request, segments)
        if first in _ACTIONS and method == "POST" and len(segments) == 1:
            response: ApiResponse = _ACTIONS[first](self, request)
            return response
        match = _SEGMENT_RE.match(first)
        definition = BY_ENTITY_SET.get(match.group(1)) if match else None
        if match is None or definition is None:
            if first == "$metadata":
                raise NotImplementedError("$metadata (use EntityDefinitions)")
            raise err.segment_not_found(first.split("(")[0])
        key_text = match.group(2)
        self._require_privileges(request, definition, segments)
        if key_text is None:
            if len(segments) == 1:
                if method == "GET":
                    return self.execute_list(request, definition)
                if method == "POST":
                    return self.execute_create(request, definition)
                raise err.DataverseError(405, err.NOT_SUPPORTED, f"The HTTP method '{method}' is not allowed here.")
            action = segments[1].removeprefix("Microsoft.Dynamics.CRM.")
            if action in BULK_MESSAGES and method == "POST" and len(segments) == 2:
                return self.execute_bulk(request, definition, action)
            if segments[1] == "$count" and method == "GET":
                with self.store.lock:
                    count = len(self.store.peek_rows(definition.logical_name))
                return ApiResponse(200, body=str(min(count, MAX_PAGE)).encode(), content_type="text/plain")
            raise NotImplementedError(f"{method} {request.path}")
        key = parse_key(definition, key_text)
        if len(segments) == 2 and method == "GET" and segments[1].startswith(_USER_PRIVILEGE_FUNCTION):
            return self._retrieve_user_privilege(definition, key, segments[1])
        if len(segments) == 1:
            if method == "GET":
                return self.execute_retrieve(request, definition, key)
            if method == "PATCH":
                return self.execute_update(request, definition, key)
            if method == "DELETE":
                return self.execute_delete(request, definition, key)
            raise err.DataverseError(405, err.NOT_SUPPORTED, f"The HTTP method '{method}' is not allowed here.")
        if len(segments) == 2 and method in ("PUT", "DELETE", "GET"):
            return self.execute_property(request, definition, key, segments[1])
        raise NotImplementedError(f"{method} {request.path}")

    # -- helpers -----------------------------------------------------------------------------
    def _find(self, definition: EntityDefinition, key: Key) -> Row | None:
        if key.id is not None:
            return self.store.get(definition.logical_name, key.id)
        assert key.values is not None  # parse_key only admits declared alternate keys
        record_id = self.store.find_by_key(definition.logical_name, key.values)
        return self.store.get(definition.logical_name, record_id) if record_id is not None else None

    def _require(self, definition: EntityDefinition, key: Key, *, code: str = err.DOES_NOT_EXIST) -> Row:
        row = self._find(definition, key)
        if row is None:
            shown = key.id if key.id is not None else ",".join(f"{k}={v}" for k, v in (key.values or {}).items())
            raise err.not_found(definition.logical_name, shown, code=code)
        return row

    def entity_url(self, definition: EntityDefinition, record_id: str) -> str:
        return f"{self.base_url}/{definition.entity_set}({record_id})"

    def _resolver(self, request: ApiRequest) -> Callable[[str, EntityDefinition, str], str]:
        def resolve(text: str, target: EntityDefinition, nav: str) -> str:
            value = text.strip()
            if value.startswith("$") and request.content_ids is not None:
                if value not in request.content_ids:
                    raise err.bad_request(f"Content-ID Reference: '{value}' does not exist in the batch context.")
                value = request.content_ids[value]
            reference = parse_reference(value)
            if reference is None:
                raise err.bad_request(
                    f"The value '{text}' of '{nav}@odata.bind' is not a valid entity reference URL.",
                    err.QUERY_NOT_SUPPORTED,
                )
            if reference.definition.logical_name != target.logical_name:
                raise err.bad_request(
                    f"The entity set '{reference.definition.entity_set}' in '{nav}@odata.bind' does not match the "
                    f"navigation property's target type 'Microsoft.Dynamics.CRM.{target.logical_name}'.",
                    err.QUERY_NOT_SUPPORTED,
                )
            # Only existence matters here: no copy of the referenced row.
            key = reference.key
            if key.id is not None:
                found = key.id.lower() if self.store.exists(target.logical_name, key.id) else None
            else:
                assert key.values is not None
                found = self.store.find_by_key(target.logical_name, key.values)
            if found is None:
                shown = reference.key.id or ",".join(f"{k}={v}" for k, v in (reference.key.values or {}).items())
                raise err.DataverseError(
                    400, err.DOES_NOT_EXIST, f"{target.logical_name} With Id = {shown} Does Not Exist"
                )
            return found

        return resolve

    def _name_of(self, entity: str, record_id: str) -> str | None:
        definition = BY_LOGICAL_NAME.get(entity)
        row = self.store.get(entity, record_id) if definition else None
        if definition is None or row is None:
            return None
        value = row.get(definition.primary_name)
        return str(value) if value is not None else None

    def _currency_symbol(self, row: Row) -> str:
        ref = row.get("transactioncurrencyid")
        if isinstance(ref, dict):
            currency = self.store.get("transactioncurrency", ref["id"])
            if currency is not None:
                return str(currency.get("currencysymbol") or "")
        return ""

    def _wire(
        self,
        definition: EntityDefinition,
        row: Row,
        *,
        select: tuple[str, ...] = (),
        annotations: AnnotationFilter | None = None,
        expand: tuple[odata.ExpandItem, ...] = (),
    ) -> dict[str, Any]:
        out = to_wire(
            definition,
            row,
            select=select,
            annotations=annotations,
            name_of=self._name_of,
            currency_symbol=self._currency_symbol,
        )
        for item in expand:
            out[item.navigation] = self._expand(definition, row, item, annotations)
        return out

    def _expand(
        self, definition: EntityDefinition, row: Row, item: odata.ExpandItem, annotations: AnnotationFilter | None
    ) -> Any:
        single = definition.navigation(item.navigation)
        options = item.options
        if single is not None:
            attribute, target = single
            ref = row.get(attribute.name)
            if not isinstance(ref, dict) or ref["entity"] != target:
                return None
            target_definition = BY_LOGICAL_NAME[target]
            related = self.store.get(target, ref["id"])
            if related is None:
                return None
            return self._wire(
                target_definition, related, select=options.select, annotations=annotations, expand=options.expand
            )
        collection = definition.collection(item.navigation)
        assert collection is not None  # validated before
        child = BY_LOGICAL_NAME[collection.entity]
        record_id = row[definition.primary_id]
        with self.store.lock:
            rows = [
                r
                for r in self.store.peek_rows(child.logical_name)
                if isinstance(r.get(collection.attribute), dict) and r[collection.attribute]["id"] == record_id
            ]
            rows = self._filter_sort(child, rows, options)
            if options.top is not None:
                rows = rows[: options.top]
            return [
                self._wire(child, r, select=options.select, annotations=annotations, expand=options.expand)
                for r in rows
            ]

    def _getter(self, definition: EntityDefinition) -> Callable[[Row, str], Any]:
        def get(row: Row, name: str) -> Any:
            if "/" in name:
                nav, _, rest = name.partition("/")
                found = definition.navigation(nav)
                if found is None:
                    raise err.unknown_property(nav, definition.logical_name)
                ref = row.get(found[0].name)
                if not isinstance(ref, dict) or ref["entity"] != found[1]:
                    return None
                related = self.store.peek_rows(found[1])
                target_row = next((r for r in related if r[BY_LOGICAL_NAME[found[1]].primary_id] == ref["id"]), None)
                return self._getter(BY_LOGICAL_NAME[found[1]])(target_row, rest) if target_row else None
            attribute = definition.attribute_by_value_name(name)
            if attribute is None:
                raise err.unknown_property(name, definition.logical_name)
            value = row.get(attribute.name)
            return value["id"] if isinstance(value, dict) else value

        return get

    def _check_property(self, definition: EntityDefinition, name: str) -> None:
        if "/" in name:
            nav, _, rest = name.partition("/")
            found = definition.navigation(nav)
            if found is None:
                raise err.unknown_property(nav, definition.logical_name)
            self._check_property(BY_LOGICAL_NAME[found[1]], rest)
            return
        if definition.attribute_by_value_name(name) is None:
            raise err.unknown_property(name, definition.logical_name)

    def _validate_options(self, definition: EntityDefinition, options: odata.QueryOptions, depth: int = 0) -> int:
        """Check every property and navigation named in the options; return the number of expands."""
        for name in options.select:
            if definition.attribute_by_value_name(name) is None:
                raise err.unknown_property(name, definition.logical_name)
        if options.filter is not None:
            for name in odata.referenced_properties(options.filter):
                self._check_property(definition, name)
        for item in options.orderby:
            self._check_property(definition, item.property)
        expands = 0
        for expand in options.expand:
            expands += 1
            single = definition.navigation(expand.navigation)
            collection = definition.collection(expand.navigation)
            if single is not None:
                target = BY_LOGICAL_NAME[single[1]]
            elif collection is not None:
                target = BY_LOGICAL_NAME[collection.entity]
            else:
                raise err.unknown_property(expand.navigation, definition.logical_name)
            nested = expand.options
            if collection is not None and nested.expand and (nested.orderby or nested.top is not None):
                raise err.query_not_supported(
                    "$orderby and $top are not supported with a nested $expand of a collection-valued "
                    "navigation property."
                )
            if single is not None and (nested.filter is not None or nested.orderby or nested.top is not None):
                raise err.query_not_supported(
                    f"Only $select and $expand are supported when expanding the single-valued navigation "
                    f"property '{expand.navigation}'."
                )
            expands += self._validate_options(target, nested, depth + 1)
        if depth == 0 and expands > MAX_EXPANDS:
            raise err.query_not_supported(
                f"The number of $expand options ({expands}) exceeds the limit of {MAX_EXPANDS}."
            )
        return expands

    def _filter_sort(self, definition: EntityDefinition, rows: list[Row], options: odata.QueryOptions) -> list[Row]:
        get = self._getter(definition)
        if options.filter is not None:
            expr = options.filter
            seek = _primary_key_seek(expr, definition.primary_id)
            if seek is not None:
                # The service answers "pk eq … or …" from its clustered index, not a scan; keep the
                # scan's order, but test each row by one set lookup instead of the whole or-chain,
                # and only the other and-ed terms as written.
                wanted, others = seek
                rows = [r for r in rows if str(r.get(definition.primary_id) or "").lower() in wanted]
                for other in others:
                    rows = [r for r in rows if odata.evaluate(other, lambda name, r=r: get(r, name))]  # type: ignore[misc]
            else:
                rows = [r for r in rows if odata.evaluate(expr, lambda name, r=r: get(r, name))]  # type: ignore[misc]
        if options.orderby:
            rows = odata.sort_rows(rows, options.orderby, get)
        return rows

    def _annotations(self, request: ApiRequest) -> AnnotationFilter:
        value = request.prefer().get("odata.include-annotations")
        return AnnotationFilter(value.split(",") if value else ())

    def _context_url(self, definition: EntityDefinition, select: tuple[str, ...], suffix: str = "") -> str:
        columns = f"({','.join(select)})" if select else ""
        return f"{self.base_url}/$metadata#{definition.entity_set}{columns}{suffix}"

    # -- reads -------------------------------------------------------------------------------
    def execute_retrieve(self, request: ApiRequest, definition: EntityDefinition, key: Key) -> ApiResponse:
        options = odata.parse_query(request.params, supported=SINGLE_OPTIONS, nested_supported=NESTED_OPTIONS)
        self._validate_options(definition, options)
        self._charge("read")
        row = self._require(definition, key)
        annotations = self._annotations(request)
        etag = f'W/"{row["versionnumber"]}"'
        if request.header("If-None-Match") == etag and not options.expand and not annotations:
            return ApiResponse(304, {"ETag": etag})
        body = {"@odata.context": self._context_url(definition, options.select, "/$entity")}
        body.update(self._wire(definition, row, select=options.select, annotations=annotations, expand=options.expand))
        headers = {"ETag": etag}
        if annotations:
            headers["Preference-Applied"] = f'odata.include-annotations="{",".join(annotations.patterns)}"'
        return ApiResponse(200, headers, body)

    def execute_list(self, request: ApiRequest, definition: EntityDefinition) -> ApiResponse:
        options = odata.parse_query(request.params, supported=COLLECTION_OPTIONS, nested_supported=NESTED_OPTIONS)
        prefer = request.prefer()
        tracking = "odata.track-changes" in prefer or options.deltatoken is not None
        if tracking:
            if not definition.change_tracking:
                raise err.bad_request(
                    f"Change tracking is not enabled for the entity '{definition.logical_name}'.",
                    err.QUERY_NOT_SUPPORTED,
                )
            for name, present in (
                ("$filter", options.filter is not None),
                ("$orderby", bool(options.orderby)),
                ("$expand", bool(options.expand)),
                ("$top", options.top is not None),
            ):
                if present:
                    raise err.query_not_supported(
                        f"The query parameter {name} is not supported when Change Tracking is enabled."
                    )
        self._validate_options(definition, options)
        self._charge("query")
        annotations = self._annotations(request)
        applied: list[str] = []
        page_size = MAX_PAGE
        if "odata.maxpagesize" in prefer:
            try:
                page_size = max(1, min(int(prefer["odata.maxpagesize"]), MAX_PAGE))
            except ValueError as exc:
                raise err.bad_request("The odata.maxpagesize preference must be an integer.") from exc
            applied.append(f"odata.maxpagesize={page_size}")
        if annotations:
            applied.append(f'odata.include-annotations="{",".join(annotations.patterns)}"')
        if "odata.track-changes" in prefer:
            applied.append("odata.track-changes")
        if options.deltatoken is not None:
            return self._delta(request, definition, options, annotations, applied)
        page, offset, version = 1, 0, self.store.version
        if options.skiptoken is not None:
            page, offset, version = _parse_skiptoken(options.skiptoken)
        with self.store.lock:
            rows = self._filter_sort(definition, self.store.peek_rows(definition.logical_name), options)
            if tracking and options.skiptoken is None:
                version = self.store.version
            total = len(rows)
            if options.top is not None and "odata.maxpagesize" not in prefer:
                rows, more = rows[: options.top], False
            else:
                more = offset + page_size < total
                rows = rows[offset : offset + page_size]
            value = [
                self._wire(definition, r, select=options.select, annotations=annotations, expand=options.expand)
                for r in rows
            ]
        body: dict[str, Any] = {"@odata.context": self._context_url(definition, options.select)}
        if options.count:
            body["@odata.count"] = min(total, MAX_PAGE)
        if annotations and options.count:
            body["@Microsoft.Dynamics.CRM.totalrecordcount"] = min(total, MAX_PAGE)
            body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > MAX_PAGE
        body["value"] = value
        if more:
            token = _skiptoken(page + 1, offset + page_size, version, tracking)
            body["@odata.nextLink"] = self._link(definition, request, {"$skiptoken": token})
        elif tracking:
            body["@odata.deltaLink"] = self._link(
                definition, request, {"$deltatoken": _deltatoken(version)}, drop=("$skiptoken",)
            )
        headers = {"Preference-Applied": ",".join(applied)} if applied else {}
        return ApiResponse(200, headers, body)

    def _link(
        self, definition: EntityDefinition, request: ApiRequest, extra: dict[str, str], drop: tuple[str, ...] = ()
    ) -> str:
        pairs = [(k, v) for k, v in request.query if k not in extra and k not in drop]
        pairs += list(extra.items())
        return f"{self.base_url}/{definition.entity_set}?{urlencode(pairs, quote_via=quote, safe='$,()')}"

    def _delta(
        self,
        request: ApiRequest,
        definition: EntityDefinition,
        options: odata.QueryOptions,
        annotations: AnnotationFilter,
        applied: list[str],
    ) -> ApiResponse:
        assert options.deltatoken is not None
        match = _DELTA_RE.match(options.deltatoken)
        if match is None:
            raise err.bad_request(f"The delta token '{options.deltatoken}' is not valid.", err.EXPIRED_VERSION)
        since = int(match.group(1))
        month, day, year, hour, minute, second = (int(match.group(i)) for i in range(2, 8))
        issued = datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
        if time.time() - issued > self.change_tracking_expiry_seconds:
            raise err.bad_request(
                "Version stamp associated with the client has expired. Please perform a full sync.", err.EXPIRED_VERSION
            )
        with self.store.lock:
            version = self.store.version
            changed = [r for r in self.store.peek_rows(definition.logical_name) if int(r["versionnumber"]) > since]
            changed.sort(key=lambda r: int(r["versionnumber"]))
            value: list[dict[str, Any]] = [
                self._wire(definition, r, select=options.select, annotations=annotations) for r in changed
            ]
            for tombstone in self.store.tombstones_after(definition.logical_name, since):
                value.append(
                    {
                        "@odata.context": f"{self.base_url}/$metadata#{definition.entity_set}/$deletedEntity",
                        "id": tombstone.id,
                        "reason": "deleted",
                    }
                )
        body = {
            "@odata.context": self._context_url(definition, options.select, "/$delta"),
            "value": value,
            "@odata.deltaLink": self._link(definition, request, {"$deltatoken": _deltatoken(version)}),
        }
        return ApiResponse(200, {"Preference-Applied": ",".join(applied)} if applied else {}, body)

    # -- writes: primitives ------------------------------------------------------------------
    def create_row(
        self,
        definition: EntityDefinition,
        body: Any,
        request: ApiRequest,
        *,
        record_id: str | None = None,
        preset: dict[str, Any] | None = None,
    ) -> Row:
        """Validate, initialise, apply business rules and store one new row (inside a transaction)."""
        logical = definition.logical_name
        if definition.read_only_table:
            raise err.message_not_supported("Create", logical)
        parsed = parse_body(definition, body, creating=True, resolve=self._resolver(request))
        values = {**parsed.values, **(preset or {})}
        given_id = values.pop(definition.primary_id, None)
        record_id = (record_id or given_id or new_id()).lower()
        with self.store.transaction():
            if self.store.exists(logical, record_id):
                raise err.DataverseError(412, err.DUPLICATE, "A record with matching key values already exists.")
            self._check_alternate_keys(definition, values, record_id)
            row = self._initialise(definition, record_id, request.user)
            state_values: dict[str, Any] = {k: values.pop(k) for k in ("statecode", "statuscode") if k in values}
            row.update(values)
            if state_values:
                sales.resolve_state(definition, row, state_values, record_id)
                row.update(state_values)
            self._derive(definition, row, values, creating=True)
            row["versionnumber"] = self.store.next_version()
            self.store.put(logical, record_id, row)
            self._after_line_write(definition, row)
            self._charge("create")
            self.context.events.append(Event("Create", logical, record_id, request.user, tuple(values), None, row))
            for nav_name, children in parsed.deep.items():
                collection = definition.collection(nav_name)
                assert collection is not None
                child = BY_LOGICAL_NAME[collection.entity]
                for child_body in children:
                    self.create_row(
                        child, child_body, request, preset={collection.attribute: {"id": record_id, "entity": logical}}
                    )
        stored = self.store.get(logical, record_id)
        assert stored is not None
        return stored

    def _initialise(self, definition: EntityDefinition, record_id: str, user: str) -> Row:
        # Server defaults: every column present (null when unset), audit stamps, owner, state.
        now = utc_now_iso()
        row: Row = dict.fromkeys(definition.attributes)
        row[definition.primary_id] = record_id
        caller = {"id": user, "entity": "systemuser"} if user else None
        row.update(createdon=now, modifiedon=now, createdby=caller, modifiedby=caller)
        if "ownerid" in definition.attributes:
            row["ownerid"] = caller
        if definition.initial_state is not None:
            row["statecode"], row["statuscode"] = definition.initial_state
        return row

    def _derive(self, definition: EntityDefinition, row: Row, values: dict[str, Any], *, creating: bool) -> None:
        logical = definition.logical_name
        if creating and definition.number_attribute and not row.get(definition.number_attribute):
            row[definition.number_attribute] = sales.generate_number(self.store, definition)
        if creating and row.get("overriddencreatedon"):
            row["createdon"] = row["overriddencreatedon"]  # record migration keeps the source's date
        if logical == "quote" and creating and row.get("revisionnumber") is None:
            row["revisionnumber"] = 0
        if logical in ("contact", "systemuser"):
            row["fullname"] = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p) or None
        if logical == "post" and isinstance(row.get("regardingobjectid"), dict):
            row["regardingobjecttypecode"] = row["regardingobjectid"]["entity"]
        if logical == "productpricelevel" and isinstance(row.get("productid"), dict):
            row["productidname"] = self._name_of("product", row["productid"]["id"])
            product = self.store.get("product", row["productid"]["id"])
            row["productnumber"] = product.get("productnumber") if product else None
        currency = definition.attributes.get("transactioncurrencyid")
        if currency is not None and currency.type in LOOKUP_TYPES:
            self._default_currency(definition, row)
        if logical in sales.LINE_PARENT:
            sales.price_line(self.store, logical, row, values, creating)
        if logical in sales.HEADER_LINES:
            sales.roll_up(self.store, logical, row)

    def _default_currency(self, definition: EntityDefinition, row: Row) -> None:
        ref = row.get("transactioncurrencyid")
        if not isinstance(ref, dict):
            # Priced rows without a currency take the price list's, else the organisation's base.
            price_level = row.get("pricelevelid")
            if isinstance(price_level, dict):
                pl = self.store.get("pricelevel", price_level["id"])
                ref = pl.get("transactioncurrencyid") if pl else None
            if not isinstance(ref, dict):
                ref = self._base_currency()
            if not isinstance(ref, dict):
                base = next(iter(self.store.peek_rows("transactioncurrency")), None)
                ref = {"id": base["transactioncurrencyid"], "entity": "transactioncurrency"} if base else None
            row["transactioncurrencyid"] = ref
        if (
            isinstance(ref, dict)
            and definition.attributes.get("exchangerate")
            and definition.logical_name != "transactioncurrency"
        ):
            currency = self.store.peek("transactioncurrency", ref["id"])
            row["exchangerate"] = currency.get("exchangerate") if currency else None

    def _base_currency(self) -> dict[str, Any] | None:
        organization = self.store.peek("organization", self.organization_id)
        ref = organization.get("basecurrencyid") if organization else None
        return ref if isinstance(ref, dict) else None

    def _check_alternate_keys(self, definition: EntityDefinition, row: Row, record_id: str) -> None:
        """412 when another row already has ``row``'s values for one of the alternate keys."""
        for key in definition.alternate_keys:
            values = {name: row.get(name) for name in key}
            if any(v is None for v in values.values()):
                continue
            other = self.store.find_by_key(definition.logical_name, values)
            if other is not None and other != record_id:
                raise err.already_exists()

    def update_row(self, definition: EntityDefinition, current: Row, body: Any, request: ApiRequest) -> Row:
        logical = definition.logical_name
        if definition.create_only or definition.read_only_table:
            raise err.message_not_supported("Update", logical)
        parsed = parse_body(definition, body, creating=False, resolve=self._resolver(request))
        if parsed.deep:
            raise err.bad_request("Deep update of collection-valued navigation properties is not supported.")
        values = parsed.values
        values.pop(definition.primary_id, None)
        record_id = str(current[definition.primary_id])
        with self.store.transaction():
            sales.resolve_state(definition, current, values, record_id)
            sales.check_update_allowed(definition, current, values)
            row = dict(current)
            row.update(values)
            self._check_alternate_keys(definition, row, record_id)
            changed = tuple(k for k in values if current.get(k) != values[k])
            self._derive(definition, row, values, creating=False)
            row["modifiedon"] = utc_now_iso()
            row["modifiedby"] = {"id": request.user, "entity": "systemuser"}
            row["versionnumber"] = self.store.next_version()
            self.store.put(logical, record_id, row)
            self._after_line_write(definition, row)
            self._charge("update")
            self.context.events.append(Event("Update", logical, record_id, request.user, changed, current, row))
        stored = self.store.get(logical, record_id)
        assert stored is not None
        return stored

    def delete_row(self, definition: EntityDefinition, row: Row, request: ApiRequest) -> None:
        logical = definition.logical_name
        if definition.read_only_table:
            raise err.message_not_supported("Delete", logical)
        record_id = str(row[definition.primary_id])
        with self.store.transaction():
            if logical in sales.LINE_PARENT:
                sales.check_parent_editable(self.store, logical, row)
            self.store.delete(logical, record_id)
            if logical in sales.HEADER_LINES:
                line_logical, attr = sales.HEADER_LINES[logical]
                for line in self.store.rows(line_logical):  # cascade, as the service does for details
                    if isinstance(line.get(attr), dict) and line[attr]["id"] == record_id:
                        self.store.delete(line_logical, line[BY_LOGICAL_NAME[line_logical].primary_id])
            self._after_line_write(definition, row)
            self._charge("delete")
            self.context.events.append(Event("Delete", logical, record_id, request.user, (), row, None))

    def _after_line_write(self, definition: EntityDefinition, line: Row) -> None:
        # A line change rolls up into its header, which gets a new version (and etag) too.
        if definition.logical_name not in sales.LINE_PARENT:
            return
        parent_logical, attr = sales.LINE_PARENT[definition.logical_name]
        ref = line.get(attr)
        if not isinstance(ref, dict):
            return
        header = self.store.get(parent_logical, ref["id"])
        if header is None:
            return
        sales.roll_up(self.store, parent_logical, header)
        header["versionnumber"] = self.store.next_version()
        header["modifiedon"] = utc_now_iso()
        self.store.put(parent_logical, ref["id"], header)

    # -- writes: executors -------------------------------------------------------------------
    def _representation(self, request: ApiRequest, definition: EntityDefinition, row: Row, status: int) -> ApiResponse:
        options = odata.parse_query(request.params, supported=SINGLE_OPTIONS, nested_supported=NESTED_OPTIONS)
        self._validate_options(definition, options)
        body = {"@odata.context": self._context_url(definition, options.select, "/$entity")}
        body.update(
            self._wire(
                definition,
                row,
                select=options.select,
                annotations=self._annotations(request),
                expand=options.expand if request.method == "POST" else (),
            )
        )
        return ApiResponse(
            status, {"ETag": f'W/"{row["versionnumber"]}"', "Preference-Applied": "return=representation"}, body
        )

    def execute_create(self, request: ApiRequest, definition: EntityDefinition) -> ApiResponse:
        if request.params:
            odata.parse_query(request.params, supported=SINGLE_OPTIONS, nested_supported=NESTED_OPTIONS)
        row = self.create_row(definition, request.json(), request)
        if request.prefer().get("return") == "representation":
            return self._representation(request, definition, row, 201)
        url = self.entity_url(definition, row[definition.primary_id])
        return ApiResponse(204, {"OData-EntityId": url, "Location": url})

    def execute_update(self, request: ApiRequest, definition: EntityDefinition, key: Key) -> ApiResponse:
        if_match = request.header("If-Match")
        if_none_match = request.header("If-None-Match")
        body = request.json()
        with self.store.transaction():
            current = self._find(definition, key)
            if if_match is not None:
                if current is None:
                    shown = key.id or ",".join(f"{k}={v}" for k, v in (key.values or {}).items())
                    raise err.not_found(definition.logical_name, shown, code="")
                if if_match.strip() != "*" and if_match.strip() != f'W/"{current["versionnumber"]}"':
                    raise err.version_mismatch()
            if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
                raise err.already_exists()
            if current is not None:
                row = self.update_row(definition, current, body, request)
                status = 200
            else:
                if key.values is not None and isinstance(body, dict):
                    # Upsert by alternate key: the key values come from the URL when the body lacks them.
                    for name, value in key.values.items():
                        attribute = definition.attributes.get(name)
                        if attribute is not None and attribute.type in LOOKUP_TYPES:
                            target = BY_LOGICAL_NAME[attribute.targets[0]]
                            body.setdefault(
                                f"{attribute.navigation_for(target.logical_name)}@odata.bind",
                                f"/{target.entity_set}({value})",
                            )
                        else:
                            body.setdefault(name, value)
                row = self.create_row(definition, body, request, record_id=key.id)
                status = 201
        url = self.entity_url(definition, row[definition.primary_id])
        if request.prefer().get("return") == "representation":
            return self._representation(request, definition, row, status)
        return ApiResponse(204, {"OData-EntityId": url})

    def execute_delete(self, request: ApiRequest, definition: EntityDefinition, key: Key) -> ApiResponse:
        with self.store.transaction():
            row = self._require(definition, key)
            if_match = request.header("If-Match")
            if if_match is not None and if_match.strip() not in ("*", f'W/"{row["versionnumber"]}"'):
                raise err.version_mismatch()
            self.delete_row(definition, row, request)
        return ApiResponse(204)

    def execute_property(self, request: ApiRequest, definition: EntityDefinition, key: Key, name: str) -> ApiResponse:
        attribute = definition.attributes.get(name)
        if attribute is None or attribute.type in LOOKUP_TYPES:
            if definition.navigation(name) or definition.collection(name):
                raise NotImplementedError(f"{request.method} of navigation property {name}")
            raise err.segment_not_found(name)
        if request.method == "GET":
            row = self._require(definition, key)
            return ApiResponse(
                200,
                body={
                    "@odata.context": f"{self.entity_url(definition, row[definition.primary_id])}/{name}",
                    "value": row.get(name),
                },
            )
        value = request.json().get("value") if request.method == "PUT" else None
        with self.store.transaction():  # read and write as one, like any other update
            self.update_row(definition, self._require(definition, key), {name: value}, request)
        return ApiResponse(204)

    # -- bulk messages -----------------------------------------------------------------------
    def execute_bulk(self, request: ApiRequest, definition: EntityDefinition, message: str) -> ApiResponse:
        logical = definition.logical_name
        if not definition.bulk_messages:
            raise err.message_not_supported(message, logical)
        body = request.json()
        targets = body.get("Targets") if isinstance(body, dict) else None
        if not isinstance(targets, list) or not targets:
            raise err.bad_request(f"The {message} request needs a non-empty 'Targets' collection.")
        expected_type = f"Microsoft.Dynamics.CRM.{logical}"
        ids: list[str] = []
        results: list[dict[str, Any]] = []
        with self.store.transaction():  # all-or-nothing on standard tables (wire-protocols §A.7b)
            for index, target in enumerate(targets):
                if not isinstance(target, dict):
                    raise err.bad_request(f"Targets[{index}] is not an entity object.")
                odata_type = str(target.get("@odata.type", "")).lstrip("#")
                if odata_type != expected_type:
                    raise err.bad_request(
                        f'Targets[{index}] must have "@odata.type": "{expected_type}"; all targets of '
                        f"{message} must be of the table the message is bound to."
                    )
                record_id = target.get(definition.primary_id)
                if message == "CreateMultiple":
                    row = self.create_row(definition, target, request)
                    ids.append(row[definition.primary_id])
                    continue
                current = self._bulk_find(definition, target)
                if message == "UpdateMultiple":
                    if current is None:
                        shown = record_id or "(no key)"
                        raise err.not_found(logical, str(shown))
                    self.update_row(definition, current, target, request)
                    continue
                if current is None:
                    row = self.create_row(definition, target, request)
                    results.append({"RecordCreated": True, "Id": row[definition.primary_id]})
                else:
                    row = self.update_row(definition, current, target, request)
                    results.append({"RecordCreated": False, "Id": row[definition.primary_id]})
        context = f"{self.base_url}/$metadata#Microsoft.Dynamics.CRM.{message}Response"
        if message == "CreateMultiple":
            return ApiResponse(200, body={"@odata.context": context, "Ids": ids})
        if message == "UpsertMultiple":
            return ApiResponse(200, body={"@odata.context": context, "Results": results})
        return ApiResponse(204)

    def _bulk_find(self, definition: EntityDefinition, target: dict[str, Any]) -> Row | None:
        record_id = target.get(definition.primary_id)
        if isinstance(record_id, str) and GUID_RE.fullmatch(record_id):
            return self.store.get(definition.logical_name, record_id)
        for key in definition.alternate_keys:
            if all(target.get(name) is not None for name in key):
                return self._find(definition, Key(values={name: target[name] for name in key}))
        raise err.bad_request(
            f"Each target must carry its primary key '{definition.primary_id}' or the values of an alternate key."
        )

    # -- $batch ------------------------------------------------------------------------------
    def _substitute_content_id(self, request: ApiRequest, first: str) -> ApiRequest:
        ids = request.content_ids or {}
        if first not in ids:
            raise err.bad_request(f"Content-ID Reference: '{first}' does not exist in the batch context.")
        target = ids[first].removeprefix(self.base_url + "/")
        rest = request.path[len(first) :]
        return ApiRequest(
            request.method,
            target + rest,
            request.query,
            request.headers,
            request.body,
            request.user,
            request.content_ids,
        )

    def _part_request(
        self, operation: batch.BatchOperation, user: str, content_ids: dict[str, str] | None
    ) -> ApiRequest:
        url = operation.url
        if url.startswith(("http://", "https://")):
            parts = urlsplit(url)
            path, query_text = parts.path, parts.query
        else:
            path, _, query_text = url.partition("?")
        path = unquote(path)
        for prefix in ("/api/data/v9.2/", "api/data/v9.2/", "/"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        query: list[tuple[str, str]] = []
        for pair in query_text.split("&") if query_text else []:
            name, _, value = pair.partition("=")
            query.append((unquote(name.replace("+", " ")), unquote(value.replace("+", " "))))
        return ApiRequest(operation.method, path, query, operation.headers, operation.body, user, content_ids)

    def _part_response(self, response: ApiResponse, content_id: str | None) -> batch.PartResponse:
        headers = dict(response.headers)
        if response.body is not None and not isinstance(response.body, bytes):
            headers["Content-Type"] = "application/json; odata.metadata=minimal; odata.streaming=true"
        elif response.content_type:
            headers["Content-Type"] = response.content_type
        return batch.PartResponse(response.status, headers, response.body_bytes(), content_id)

    def execute_batch(self, request: ApiRequest) -> ApiResponse:
        items = batch.parse_batch(request.body, request.header("Content-Type"))
        total = sum(len(i.operations) if isinstance(i, batch.ChangeSet) else 1 for i in items)
        if total > MAX_BATCH:
            raise err.bad_request(f"The number of requests in the batch ({total}) exceeds the limit of {MAX_BATCH}.")
        continue_on_error = "odata.continue-on-error" in request.prefer()
        results: list[batch.PartResponse | list[batch.PartResponse]] = []
        for item in items:
            if isinstance(item, batch.ChangeSet):
                responses, failed = self._execute_change_set(item, request.user)
                results.append(responses)
                if failed is not None and not continue_on_error:
                    return self._batch_failure(failed)
                continue
            if item.method != "GET" and item.content_id is not None:
                pass
            response = self.dispatch(self._part_request(item, request.user, None))
            part = self._part_response(response, item.content_id)
            results.append(part)
            if response.status >= 400 and not continue_on_error:
                return self._batch_failure(part)
        content_type, body = batch.write_batch(results)
        headers = {"Preference-Applied": "odata.continue-on-error"} if continue_on_error else {}
        return ApiResponse(200, headers, body, content_type)

    def _batch_failure(self, part: batch.PartResponse) -> ApiResponse:
        content_type, body = batch.write_batch([part])
        return ApiResponse(400, {}, body, content_type)

    def _execute_change_set(
        self, change_set: batch.ChangeSet, user: str
    ) -> tuple[list[batch.PartResponse], batch.PartResponse | None]:
        content_ids: dict[str, str] = {}
        responses: list[batch.PartResponse] = []
        events_before = len(self.context.events)
        try:
            with self.store.transaction():
                for operation in change_set.operations:
                    if operation.method == "GET":
                        raise _ChangeSetFailed(
                            batch.PartResponse(
                                400,
                                {"Content-Type": "application/json; odata.metadata=minimal"},
                                json.dumps(
                                    err.bad_request("GET requests are not allowed inside a change set.").body()
                                ).encode(),
                                operation.content_id,
                            )
                        )
                    response = self.dispatch(self._part_request(operation, user, content_ids))
                    part = self._part_response(response, operation.content_id)
                    if response.status >= 400:
                        raise _ChangeSetFailed(part)
                    entity_id = response.headers.get("OData-EntityId")
                    if entity_id is None and isinstance(response.body, dict):
                        entity_id = _entity_url_of(response.body)
                    if operation.content_id is not None and entity_id is not None:
                        content_ids[f"${operation.content_id}"] = entity_id
                    responses.append(part)
        except _ChangeSetFailed as failed:
            del self.context.events[events_before:]
            return [failed.part], failed.part
        return responses, None

    # -- EntityDefinitions ---------------------------------------------------------------------
    def execute_metadata(self, request: ApiRequest, segments: list[str]) -> ApiResponse:
        self._charge("metadata")
        match = _SEGMENT_RE.match(segments[0])
        assert match is not None
        entities = list(ENTITY_METADATA)
        if match.group(2) is not None:
            entity = _metadata_single(entities, match.group(2), "EntityDefinitions")
            if len(segments) == 1:
                options = odata.parse_query(request.params, supported=SINGLE_OPTIONS, nested_supported=NESTED_OPTIONS)
                body = {"@odata.context": f"{self.base_url}/$metadata#EntityDefinitions/$entity"}
                body.update(_metadata_project(entity, options))
                return ApiResponse(200, body=body)
            nav_match = _SEGMENT_RE.match(segments[1])
            if nav_match is None or nav_match.group(1) not in NAVIGATIONS or len(segments) > 3:
                raise NotImplementedError(f"EntityDefinitions path {request.path}")
            children = list(entity[nav_match.group(1)])
            if len(segments) == 3:
                if nav_match.group(1) != "Attributes" or segments[2] not in CASTS:
                    raise NotImplementedError(f"EntityDefinitions path {request.path}")
                return self._metadata_cast(request, entity, children, nav_match.group(2), segments[2])
            if nav_match.group(2) is not None:
                child = _metadata_single(children, nav_match.group(2), nav_match.group(1))
                options = odata.parse_query(request.params, supported=SINGLE_OPTIONS, nested_supported=NESTED_OPTIONS)
                return ApiResponse(200, body=_metadata_project(child, options))
            options = odata.parse_query(request.params, supported={"$select", "$filter"})
            return ApiResponse(200, body={"value": _metadata_query(children, options)})
        options = odata.parse_query(
            request.params, supported={"$select", "$filter", "$expand"}, nested_supported=NESTED_OPTIONS
        )
        return ApiResponse(
            200,
            body={
                "@odata.context": f"{self.base_url}/$metadata#EntityDefinitions",
                "value": _metadata_query(entities, options),
            },
        )

    def _metadata_cast(
        self, request: ApiRequest, entity: dict[str, Any], children: list[dict[str, Any]], key: str | None, cast: str
    ) -> ApiResponse:
        """``Attributes[(key)]/Microsoft.Dynamics.CRM.<Type>AttributeMetadata``: the derived type, whose
        option types add the ``OptionSet`` / ``GlobalOptionSet`` navigations."""
        type_name = cast.removeprefix("Microsoft.Dynamics.CRM.")
        typed = [c for c in children if c["@odata.type"] == f"#{cast}"]
        if cast in OPTION_CASTS:
            typed = [with_option_set(entity["LogicalName"], c) for c in typed]
        context = f"{self.base_url}/$metadata#EntityDefinitions({entity['MetadataId']})/Attributes/{cast}"
        if key is not None:
            child = _metadata_single(children, key, "Attributes")
            found = next((c for c in typed if c["MetadataId"] == child["MetadataId"]), None)
            if found is None:
                raise err.segment_not_found(cast)  # the attribute is not of the cast's type
            options = odata.parse_query(request.params, supported=SINGLE_OPTIONS, nested_supported=NESTED_OPTIONS)
            body = {"@odata.context": f"{context}{_metadata_columns(options)}/$entity"}
            body.update(_metadata_project(found, options, type_name))
            return ApiResponse(200, body=body)
        options = odata.parse_query(
            request.params, supported={"$select", "$filter", "$expand"}, nested_supported=NESTED_OPTIONS
        )
        items = _metadata_query(typed, options, type_name)
        return ApiResponse(200, body={"@odata.context": f"{context}{_metadata_columns(options)}", "value": items})

    # -- back door ---------------------------------------------------------------------------
    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        from ._seed import seed_into

        return seed_into(self, spec)

    def snapshot(self) -> dict[str, Any]:
        return {**self.store.snapshot(), _options.SNAPSHOT_KEY: _options.snapshot()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.store.restore(snapshot)
        _options.restore(snapshot.get(_options.SNAPSHOT_KEY))

    def reset(self) -> None:
        from ._seed import ensure_application_user, ensure_organization

        self.store.reset()
        _options.restore(None)
        self.limits.reset()
        self.privileges.reset()
        ensure_application_user(self, self.client_id)  # the organisation keeps its app user
        ensure_organization(self)

    def admin(self, action: str, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if action == "limits":
            result = self.limits.configure(body) if request.method in ("PATCH", "POST") else self.limits.as_dict()
            return json_response(200, result)
        if action == "change_tracking":
            if "expiry_seconds" in body:
                self.change_tracking_expiry_seconds = float(body["expiry_seconds"])
            return json_response(200, {"expiry_seconds": self.change_tracking_expiry_seconds})
        if action == "rows" and request.method == "GET":
            entity = request.args.get("entity", "")
            if entity not in BY_LOGICAL_NAME:
                return json_response(400, {"error": f"unknown entity {entity!r}"})
            return json_response(200, {"value": self.store.rows(entity)})
        if action == "privileges":
            if request.method in ("PATCH", "POST"):
                user = str(body.get("userId") or self._application_user(str(body.get("applicationId") or "")) or "")
                if not user:
                    return json_response(400, {"error": "name an existing userId or applicationId"})
                return json_response(200, self.privileges.configure(user, list(body.get("withhold") or [])))
            return json_response(200, self.privileges.as_dict())
        if action == "pushes" and request.method == "GET" and hasattr(self, "push_log"):
            return json_response(200, {"value": list(self.push_log)})
        raise NotImplementedError(f"admin action {action!r}")

    def _require_privileges(self, request: ApiRequest, definition: EntityDefinition, segments: list[str]) -> None:
        """The table privilege each kind of request needs (403 0x80040220 when withheld)."""
        if not request.user:
            return  # back-door work (seeding) runs as nobody and is never refused
        method = request.method
        bulk = segments[1].removeprefix("Microsoft.Dynamics.CRM.") if len(segments) == 2 else ""
        if bulk in ("CreateMultiple", "UpsertMultiple") or (method == "POST" and len(segments) == 1):
            actions = ["Create", "Write"] if bulk == "UpsertMultiple" else ["Create"]
        elif bulk == "UpdateMultiple" or method in ("PATCH", "PUT"):
            actions = ["Write"]
        elif method == "DELETE" and len(segments) == 1:
            actions = ["Delete"]
        elif method == "DELETE":
            actions = ["Write"]  # clearing one property
        else:
            actions = ["Read"]
        for action in actions:
            self.privileges.require(request.user, action, definition.logical_name, definition.object_type_code)

    def _retrieve_user_privilege(self, definition: EntityDefinition, key: Key, segment: str) -> ApiResponse:
        """``systemusers(id)/Microsoft.Dynamics.CRM.RetrieveUserPrivilegeByPrivilegeName(PrivilegeName='…')``."""
        if definition.logical_name != "systemuser":
            raise err.bad_request(
                f"RetrieveUserPrivilegeByPrivilegeName is bound to systemuser, not {definition.logical_name}"
            )
        found = re.fullmatch(re.escape(_USER_PRIVILEGE_FUNCTION) + r"\(PrivilegeName='([^']*)'\)", segment)
        if found is None:
            raise err.bad_request("RetrieveUserPrivilegeByPrivilegeName needs PrivilegeName='<name>'")
        user = self._require(definition, key)
        user_id = str(user["systemuserid"])
        return ApiResponse(
            200,
            body={
                "@odata.context": f"{self.base_url}/$metadata#Microsoft.Dynamics.CRM."
                "RetrieveUserPrivilegeByPrivilegeNameResponse",
                "RolePrivileges": self.privileges.role_privileges(user_id, found.group(1), self.business_unit_id),
            },
        )

    @contextmanager
    def as_user(self, user: str) -> Iterator[_Context]:
        """Run back-door writes through the executors as ``user`` (seeding uses it)."""
        previous = getattr(self._local, "context", None)
        context = _Context(user=user)
        self._local.context = context
        try:
            yield context
        finally:
            self._local.context = previous


class _ChangeSetFailed(Exception):
    def __init__(self, part: batch.PartResponse) -> None:
        super().__init__(part.status)
        self.part = part


def _error_annotations(exc: err.DataverseError) -> dict[str, str]:
    # What Prefer: odata.include-annotations adds inside "error" (wire-protocols §A.6).
    prefix = "@Microsoft.PowerApps.CDS"
    return {
        f"{prefix}.ErrorDetails.OperationStatus": "0",
        f"{prefix}.ErrorDetails.SubErrorCode": "-2146233088",
        f"{prefix}.HelpLink": "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException%3a"
        f"{exc.code.removeprefix('0x')}&client=platform",
        f"{prefix}.TraceText": f"[Emulator] {exc.message}",
        f"{prefix}.InnerError.Message": exc.message,
    }


def _entity_url_of(body: dict[str, Any]) -> str | None:
    context = str(body.get("@odata.context", ""))
    match = re.search(r"\$metadata#(\w+)", context)
    if match is None:
        return None
    definition = BY_ENTITY_SET.get(match.group(1))
    if definition is None or definition.primary_id not in body:
        return None
    return f"{context.split('/$metadata#', maxsplit=1)[0]}/{definition.entity_set}({body[definition.primary_id]})"


def _split_path(path: str) -> list[str]:
    # Split on "/" outside parentheses and quotes: alternate-key values may contain slashes.
    segments: list[str] = []
    current: list[str] = []
    depth, in_string = 0, False
    for char in path.strip("/"):
        if char == "'":
            in_string = not in_string
        elif not in_string and char == "(":
            depth += 1
        elif not in_string and char == ")":
            depth -= 1
        elif char == "/" and depth == 0 and not in_string:
            segments.append("".join(current))
            current = []
            continue
        current.append(char)
    segments.append("".join(current))
    return segments


def _skiptoken(page: int, offset: int, version: int, tracking: bool) -> str:
    inner = f'<cookie page="{page - 1}" offset="{offset}" version="{version}" />'
    return (
        f'<cookie pagenumber="{page}" pagingcookie="{quote(quote(inner, safe=""), safe="")}" istracking="{tracking}" />'
    )


def _parse_skiptoken(token: str) -> tuple[int, int, int]:
    match = _COOKIE_RE.search(token)
    inner = unquote(unquote(match.group(2))) if match else ""
    offset = re.search(r'offset="(\d+)"', inner)
    version = re.search(r'version="(\d+)"', inner)
    if match is None or offset is None or version is None:
        raise err.bad_request("The $skiptoken is not valid; use @odata.nextLink unchanged.", err.QUERY_NOT_SUPPORTED)
    return int(match.group(1)), int(offset.group(1)), int(version.group(1))


def _deltatoken(version: int) -> str:
    return f"{version}!{datetime.now(UTC).strftime('%m/%d/%Y %H:%M:%S')}"


def _metadata_single(items: list[dict[str, Any]], key_text: str, kind: str) -> dict[str, Any]:
    key_text = key_text.strip()
    match = re.fullmatch(r"(?:MetadataId=)?([0-9a-fA-F-]{36})", key_text)
    if match is not None:
        found = next((i for i in items if i["MetadataId"] == match.group(1).lower()), None)
    else:
        named = re.fullmatch(r"LogicalName\s*=\s*'([^']*)'", key_text)
        if named is None:
            raise err.bad_request(f"The key '{key_text}' is not valid for {kind}.", err.QUERY_NOT_SUPPORTED)
        found = next((i for i in items if i["LogicalName"] == named.group(1)), None)
    if found is None:
        raise err.DataverseError(404, err.DOES_NOT_EXIST, f"Could not find {kind} with key '{key_text}'.")
    return found


_METADATA_NAVIGATIONS = NAVIGATIONS | ATTRIBUTE_NAVIGATIONS


def _metadata_columns(options: odata.QueryOptions) -> str:
    # The context URL's column list: selected names, expanded navigations and their nested selects.
    columns = list(options.select)
    for expand in options.expand:
        columns.append(expand.navigation)
        if expand.options.select:
            columns.append(f"{expand.navigation}({','.join(expand.options.select)})")
    return f"({','.join(columns)})" if columns else ""


def _metadata_project(
    item: dict[str, Any], options: odata.QueryOptions, kind: str = "EntityMetadata"
) -> dict[str, Any]:
    scalar = {k: v for k, v in item.items() if k not in _METADATA_NAVIGATIONS}
    for name in options.select:
        if name not in item:
            raise err.unknown_property(name, kind)
    out = {k: v for k, v in scalar.items() if not options.select or k in options.select or k == "MetadataId"}
    for expand in options.expand:
        if expand.navigation not in _METADATA_NAVIGATIONS or expand.navigation not in item:
            raise err.unknown_property(expand.navigation, kind)
        value = item[expand.navigation]
        if isinstance(value, dict):  # single-valued (OptionSet)
            out[expand.navigation] = _metadata_project(value, expand.options, "OptionSetMetadata")
        elif isinstance(value, list):
            out[expand.navigation] = _metadata_query(list(value), expand.options)
        else:
            out[expand.navigation] = None
    return out


def _metadata_query(
    items: list[dict[str, Any]], options: odata.QueryOptions, kind: str = "EntityMetadata"
) -> list[dict[str, Any]]:
    if options.filter is not None:
        expr = options.filter
        items = [i for i in items if odata.evaluate(expr, lambda name, i=i: _label_value(i, name))]  # type: ignore[misc]
    if options.orderby:
        items = odata.sort_rows(items, options.orderby, _label_value)
    return [_metadata_project(i, options, kind) for i in items]


def _label_value(item: dict[str, Any], name: str) -> Any:
    if name not in item:
        raise err.unknown_property(name, "EntityMetadata")
    return item[name]


# Unbound actions; defined in _actions to keep this module about the CRUD surface.
from ._actions import ACTIONS as _ACTIONS  # noqa: E402
