"""The BC API v2.0 front door: one ``handle`` that authenticates, routes and calls one executor per operation.

Route shapes (after ``/v2.0/[{tenant}/]{environment}/api/v2.0``):

- ``companies`` · ``companies({id})`` · ``companies({id})/{set}[({id})[/{nav}[({id})]]]``
- ``{set}...?company={id}`` (the query-parameter form of the company)
- ``{set}({id})/Microsoft.NAV.{action}`` and ``journals({id})/Microsoft.NAV.post``
- ``subscriptions`` · ``subscriptions('{id}')`` (not company-scoped) · ``$batch``
- ``customers({id})/contactsInformation[({contactId})]`` and ``contactsInformation?$filter=relatedId eq
  {id} and relatedType eq 'Customer'`` (read-only, computed: see ``_contacts``)
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cmp_to_key
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from emulators._http import BearerError, EmulatorApi, EmulatorServer, json_response
from emulators.business_central._contacts import (
    contacts_information,
    create_customer_contact,
    sync_customer_contact,
    unlink_customer,
)
from emulators.business_central._documents import (
    DOCUMENT_SETS,
    LINE_SETS,
    Company,
    deep_copy,
    order_line_quantities,
)
from emulators.business_central._errors import BcError, bc_error_body, dialog, not_found
from emulators.business_central._limits import RateLimiter
from emulators.business_central._permissions import Permissions
from emulators.business_central._query import (
    Filter,
    QueryError,
    comparable,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_select,
)
from emulators.business_central._schema import BLANK_GUID, EntityType, Field, entity_by_set
from emulators.business_central._store import Record, Store

__all__ = ["BcApi", "BcSettings"]

BC_RESOURCE = "https://api.businesscentral.dynamics.com"
MAX_PAGE_SIZE = 20000
MAX_BATCH = 100
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ROOT = re.compile(r"^/v2\.0/(?:(?P<tenant>[^/]+)/)?(?P<env>[^/]+)/api/v2\.0(?P<rest>/.*)?$")
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z$][A-Za-z0-9_.]*)(?:\((?P<key>[^()]*)\))?$")
_SYSTEM_OPTIONS = {"$filter", "$select", "$orderby", "$top", "$skip", "$expand", "$skiptoken", "$count"}
# Real v2.0 surface this emulator does not serve: answered 501 so nobody mistakes it for a 404.
_KNOWN_UNSERVED_SETS = {
    "accounts",
    "agedAccountsPayable",
    "agedAccountsReceivable",
    "attachments",
    "balanceSheet",
    "bankAccounts",
    "cashFlowStatement",
    "companyInformation",
    "countriesRegions",
    "customerReturnReasons",
    "customerSales",
    "dimensions",
    "dimensionValues",
    "disputeStatus",
    "employees",
    "generalLedgerEntries",
    "incomeStatement",
    "itemCategories",
    "itemVariants",
    "journalLines",
    "locations",
    "opportunities",
    "paymentMethods",
    "projects",
    "purchaseInvoices",
    "purchaseOrders",
    "purchaseReceipts",
    "retainedEarningsStatement",
    "salesCreditMemos",
    "salesCreditMemoLines",
    "taxAreas",
    "taxGroups",
    "timeRegistrationEntries",
    "trialBalance",
    "vendorPayments",
    "vendorPaymentJournals",
    "vendorPurchases",
    "vendors",
    "documentAttachments",
}
_KNOWN_UNSERVED_NAVS = {
    "picture",
    "defaultDimensions",
    "agedAccountsReceivable",
    "dimensionSetLines",
    "attachments",
    "pdfDocument",
    "paymentMethod",
    "countryRegion",
    "documentAttachments",
    "account",
    "itemVariant",
    "dimensionValue",
    "customerPaymentJournal",
    "salesOrder",
    "salesQuote",
    "salesInvoice",
}
# Bound actions per entity set (v2.0) → what we do; None = real but not emulated (501).
_ACTIONS: dict[str, dict[str, str | None]] = {
    "salesOrders": {"shipAndInvoice": "ship_and_invoice"},
    "salesQuotes": {"makeOrder": "make_order", "makeInvoice": "make_invoice", "send": "send_quote"},
    "salesInvoices": {
        "post": "post_invoice",
        "cancel": "cancel_invoice",
        "send": None,
        "postAndSend": None,
        "cancelAndSend": None,
        "makeCorrectiveCreditMemo": None,
    },
    "journals": {"post": "post_journal"},
}


@dataclass
class BcSettings:
    """Switches for behaviours a live tenant may show either way."""

    environment: str = "production"
    page_size: int = 100
    stale_etag_status: int = 409
    read_only_fields: str = "reject"  # or "ignore"
    delete_requires_if_match: bool = False


@dataclass
class _Call:
    """One API operation, from the wire or from inside a $batch."""

    method: str
    path: str  # after /api/v2.0, starting with "/"
    args: MultiDict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str  # .../api/v2.0
    user: str


def _bc_json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    response = json_response(status, body, headers)
    if body is not None:
        response.headers["Content-Type"] = "application/json; odata.metadata=minimal; odata.streaming=true"
    response.headers["OData-Version"] = "4.0"
    return response


class BcApi(EmulatorApi):
    """The emulated BC API v2.0 for one tenant and environment."""

    def __init__(self, server: EmulatorServer, store: Store, settings: BcSettings) -> None:
        self.server = server
        self.store = store
        self.settings = settings
        self.limiter = RateLimiter(server.costs)
        self.permissions = Permissions()
        self.webhooks: Any = None  # set by __main__ (emulators.business_central._webhooks.Webhooks)
        self._batch_lock = threading.RLock()
        # (company, set, field) → (store generation it was built at, value → records)
        self._indexes: dict[tuple[str, str, str], tuple[int, dict[Any, list[Record]]]] = {}

    # -- error shape -----------------------------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return _bc_json(status, bc_error_body(code, message), headers)

    def _error(self, exc: BcError) -> Response:
        return self.error_response(exc.status, exc.code, exc.message, exc.headers)

    # -- dispatch --------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        match = _ROOT.match(request.path)
        if match is None:
            return self.error_response(
                404, "BadRequest_NotFound", f"No HTTP resource was found that matches the request URI '{request.path}'."
            )
        try:
            claims = self.server.issuer.validate(request.headers.get("Authorization"), audiences=[BC_RESOURCE])
        except BearerError as exc:
            return self.error_response(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials.",
                {"WWW-Authenticate": exc.www_authenticate("https://login.microsoftonline.com/common")},
            )
        tenant = match["tenant"]
        if tenant is not None and tenant.lower() != self.server.issuer.tenant.lower():
            return self.error_response(404, "BadRequest_NotFound", f"The tenant '{tenant}' was not found.")
        if tenant is not None and claims.get("tid") != self.server.issuer.tenant:
            return self.error_response(401, "Authentication_InvalidCredentials", "The token is for another tenant.")
        if match["env"] != self.settings.environment:
            return self.error_response(404, "BadRequest_NotFound", f"The environment '{match['env']}' does not exist.")
        user = str(claims.get("oid", "anonymous"))
        base_url = request.host_url.rstrip("/") + request.path[: len(request.path) - len(match["rest"] or "")]
        call = _Call(
            method=request.method,
            path=match["rest"] or "/",
            args=request.args,
            headers=dict(request.headers.items()),
            body=request.get_data(),
            base_url=base_url.rstrip("/"),
            user=user,
        )
        with self.limiter.admit(user) as refusal:
            if refusal is not None:
                return self._error(refusal)
            timeout = self.limiter.charge(user, self._operation(call))
            if timeout is not None:
                # The session is canceled before the operation commits, so nothing is executed.
                return self._error(timeout)
            return self.execute(call)

    @staticmethod
    def _operation(call: _Call) -> str:
        if call.path.endswith("$batch"):
            return "batch"
        return {"GET": "read", "POST": "create", "PATCH": "update", "DELETE": "delete"}.get(call.method, "other")

    def execute(self, call: _Call) -> Response:
        """Run one call (also used for each request inside a $batch)."""
        try:
            if call.headers.get("Data-Access-Intent", "").lower() == "readonly" and call.method != "GET":
                raise BcError(400, "BadRequest", "Data-Access-Intent: ReadOnly cannot be used to modify data.")
            for key in call.args:
                if key.startswith("$") and key not in _SYSTEM_OPTIONS:
                    raise BcError(400, "BadRequest_NotSupported", f"The query option '{key}' is not supported.")
            return self._route(call)
        except BcError as exc:
            return self._error(exc)
        except QueryError as exc:
            return self.error_response(400, exc.code, str(exc))

    def _route(self, call: _Call) -> Response:
        segments = [s for s in call.path.split("/") if s]
        if not segments:
            raise NotImplementedError("the service document")
        if segments[0] == "$metadata":
            raise NotImplementedError("$metadata")
        if segments == ["$batch"]:
            if call.method != "POST":
                raise BcError(405, "BadRequest_MethodNotAllowed", "$batch only accepts POST.")
            return self._batch(call)
        parsed = []
        for segment in segments:
            match = _SEGMENT.match(segment)
            if match is None:
                raise BcError(400, "BadRequest", f"Bad Request - Error in query syntax at '{segment}'.")
            parsed.append((match["name"], match["key"]))
        if parsed[0][0] == "subscriptions":
            return self._subscriptions(call, parsed)
        if parsed[0][0] == "companies":
            if len(parsed) == 1 or parsed[0][1] is None:
                if len(parsed) > 1:
                    raise BcError(400, "BadRequest", "A company id is required before a navigation.")
                return self._companies(call, None)
            company_id = self._guid(parsed[0][1], "Company")
            if company_id not in self.store.companies:
                raise BcError(404, "Internal_CompanyNotFound", f"The company '{company_id}' does not exist.")
            if len(parsed) == 1:
                return self._companies(call, company_id)
            return self._company_route(call, Company(self.store, company_id), parsed[1:])
        company_arg = call.args.get("company")
        if company_arg is None:
            raise BcError(
                404,
                "Internal_CompanyNotFound",
                "Cannot process the request because the default company cannot be found. Add the company "
                "to the URL, e.g. companies({id})/customers, or use the query parameter company={id}.",
            )
        company_id = self._guid(company_arg, "Company")
        if company_id not in self.store.companies:
            raise BcError(404, "Internal_CompanyNotFound", f"The company '{company_id}' does not exist.")
        return self._company_route(call, Company(self.store, company_id), parsed)

    @staticmethod
    def _guid(key: str | None, caption: str) -> str:
        text = (key or "").strip()
        if text.startswith("'") and text.endswith("'"):
            text = text[1:-1]
        if not _GUID.match(text):
            raise BcError(400, "Application_InvalidGUID", f"The {caption} id '{key}' is not a valid GUID.")
        return text.lower()

    # -- companies -------------------------------------------------------------------------------------
    def _companies(self, call: _Call, company_id: str | None) -> Response:
        if call.method != "GET":
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on companies.")
        entity = entity_by_set("companies")
        assert entity is not None
        with self.store.lock:
            if company_id is not None:
                record = self.store.companies[company_id]
                return _bc_json(
                    200,
                    {
                        "@odata.context": f"{call.base_url}/$metadata#companies/$entity",
                        **self._present(None, entity, record, None, []),
                    },
                )
            rows = [copy.deepcopy(r) for r in self.store.companies.values()]
        return self._collection(call, None, entity, rows, f"{call.base_url}/$metadata#companies")

    # -- company-scoped routing ------------------------------------------------------------------------
    def _company_route(self, call: _Call, company: Company, parsed: list[tuple[str, str | None]]) -> Response:
        set_name, key = parsed[0]
        if set_name == "journals":
            return self._journal_action(call, company, parsed)
        entity = entity_by_set(set_name)
        if entity is None or not entity.company_scoped:
            if set_name in _KNOWN_UNSERVED_SETS:
                raise NotImplementedError(f"entity set {set_name}")
            raise BcError(
                404,
                "BadRequest_NotFound",
                f"No HTTP resource was found that matches the request URI '{call.base_url}{call.path}'.",
            )
        self._require_permissions(call, entity.set_name, parsed)
        if entity.set_name == "contactsInformation":
            with self.store.lock:
                return self._contacts_information(call, company, None, key, parsed[1:])
        with self.store.lock:
            if key is None:
                if len(parsed) > 1 and parsed[1][0] == "$count":
                    raise NotImplementedError(f"{set_name}/$count (use $count=true)")
                if len(parsed) > 1:
                    raise BcError(400, "BadRequest", "A key is required before a navigation.")
                return self._on_collection(call, company, entity, None)
            record_id = self._guid(key, entity.name)
            record = self._get_record(company, entity, record_id)
            if len(parsed) == 1:
                return self._on_single(call, company, entity, record)
            nav, nav_key = parsed[1]
            if nav.startswith("Microsoft.NAV."):
                if len(parsed) > 2:
                    raise BcError(400, "BadRequest", "Nothing may follow a bound action.")
                return self._action(call, company, entity, record, nav.removeprefix("Microsoft.NAV."))
            if nav in entity.computed:
                return self._contacts_information(call, company, (entity, record), nav_key, parsed[2:])
            if nav in entity.children:
                child = entity_by_set(entity.children[nav])
                assert child is not None and child.parent is not None
                if nav_key is None:
                    if len(parsed) > 2:
                        raise BcError(400, "BadRequest", "A key is required before a navigation.")
                    return self._on_collection(call, company, child, (child.parent[1], record["id"]))
                child_record = self._get_record(company, child, self._guid(nav_key, child.name))
                if child_record.get(child.parent[1]) != record["id"]:
                    raise not_found(child.name, nav_key)
                if len(parsed) > 2:
                    raise BcError(400, "BadRequest", "Navigation this deep is not supported by the API.")
                return self._on_single(call, company, child, child_record)
            if nav in entity.lookups and nav_key is None and len(parsed) == 2:
                if call.method != "GET":
                    raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on {nav}.")
                target_set, fk = entity.lookups[nav]
                target = entity_by_set(target_set)
                assert target is not None
                target_record = self._lookup(company, entity, record, nav)
                if target_record is None:
                    raise not_found(target.name, str(record.get(fk)))
                return self._single_response(call, company, target, target_record)
            if nav in _KNOWN_UNSERVED_NAVS:
                raise NotImplementedError(f"navigation {entity.set_name}/{nav}")
            raise BcError(
                400,
                "BadRequest",
                f"Could not find a property named '{nav}' on type 'Microsoft.NAV.{entity.name}'.",
            )

    def _contacts_information(
        self,
        call: _Call,
        company: Company,
        parent: tuple[EntityType, Record] | None,
        key: str | None,
        rest: list[tuple[str, str | None]],
    ) -> Response:
        """Page 30072: read-only; filled from the parent (SubPageLink) or from the relatedId and
        relatedType terms of ``$filter`` at company level, else AL's "id type not specified." error."""
        entity = entity_by_set("contactsInformation")
        assert entity is not None
        if call.method != "GET":
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on contactsInformation.")
        if parent is not None:
            related: tuple[str, str] | None = ("Customer", parent[1]["id"])
            context = f"companies({company.id})/{parent[0].set_name}({parent[1]['id']})/contactsInformation"
        else:
            related = None
            context = f"companies({company.id})/contactsInformation"
            if key is None and "$filter" in call.args:
                terms = parse_filter(call.args["$filter"], entity).equalities()
                if "relatedId" in terms and "relatedType" in terms:
                    related = (str(terms["relatedType"]), str(terms["relatedId"]))
        if related is None:
            raise dialog("id type not specified.")
        rows = contacts_information(company, *related)
        if key is None:
            if rest:
                raise BcError(400, "BadRequest", "A key is required before a navigation.")
            views = [self._view(company, entity, r) for r in rows]
            return self._collection(call, company, entity, views, f"{call.base_url}/$metadata#{context}")
        contact_id = self._guid(key, entity.name)
        row = next((r for r in rows if r["contactId"] == contact_id), None)
        if row is None:
            raise not_found(entity.name, contact_id)
        if rest:
            raise BcError(400, "BadRequest", "Navigation this deep is not supported by the API.")
        return self._single_response(call, company, entity, row)

    def _rows(self, company: Company, entity: EntityType) -> dict[str, Record]:
        """The records of a set as stored, or computed for customerFinancialDetails."""
        if entity.set_name == "customerFinancialDetails":
            return company.financial_details()
        if entity.set_name == "contactsInformation":
            return {}  # computed per parent (see _contacts_information); never stored
        return company.table(entity.set_name)

    def _get_record(self, company: Company, entity: EntityType, record_id: str) -> Record:
        record = self._rows(company, entity).get(record_id)
        if record is None:
            raise not_found(entity.name, record_id)
        return record

    def _lookup(self, company: Company, entity: EntityType, record: Record, nav: str) -> Record | None:
        target_set, fk = entity.lookups[nav]
        target = entity_by_set(target_set)
        assert target is not None
        value = record.get(fk)
        if value in (None, BLANK_GUID):
            return None
        return self._rows(company, target).get(str(value))

    # -- views (what a client sees) --------------------------------------------------------------------
    def _view(self, company: Company | None, entity: EntityType, record: Record, extra: Any = None) -> Record:
        view = {f.name: record.get(f.name, f.blank()) for f in entity.fields}
        if company is not None and entity.set_name == "customers":
            details = extra if isinstance(extra, dict) else company.financial_details()
            detail = details.get(record["id"])
            view["balanceDue"] = detail["balance"] if detail else 0
        if company is not None and entity.set_name == "salesQuotes":
            view["status"] = company.quote_status(record)
        if entity.set_name == "customerPayments" and company is not None:
            journal = company.table("customerPaymentJournals").get(record.get("journalId", ""))
            view["journalDisplayName"] = journal.get("displayName", "") if journal else ""
        view["_seq"], view["_version"], view["_id"] = record.get("_seq", 0), record.get("_version", 0), record.get("id")
        return view

    def _present(
        self,
        company: Company | None,
        entity: EntityType,
        view: Record,
        select: list[str] | None,
        expand: list[Any],
    ) -> Record:
        if "_seq" not in view:
            view = self._view(company, entity, view)
        identity = {"_version": view["_version"], "id": view.get("_id") or view.get("id")}
        out: Record = {"@odata.etag": Store.etag(identity)}
        for f in entity.fields:
            if select is None or f.name in select:
                out[f.name] = view.get(f.name)
        if company is None:
            return out
        record = self._rows(company, entity).get(str(view.get("_id")), view)
        for item in expand:
            out[item.name] = self._expanded(company, entity, record, item)
        return out

    def _expanded(self, company: Company, entity: EntityType, record: Record, item: Any) -> Any:
        if item.name in entity.computed:
            computed = entity_by_set(entity.computed[item.name])
            assert computed is not None
            rows = [self._view(company, computed, r) for r in contacts_information(company, "Customer", record["id"])]
            if "$filter" in item.options:
                matcher = parse_filter(item.options["$filter"], computed)
                rows = [r for r in rows if matcher(r)]
            select = parse_select(item.options["$select"], computed) if "$select" in item.options else None
            return [self._present(company, computed, r, select, []) for r in rows]
        if item.name in entity.children:
            child = entity_by_set(entity.children[item.name])
            assert child is not None and child.parent is not None
            rows = [
                self._view(company, child, r)
                for r in self._rows(company, child).values()
                if r.get(child.parent[1]) == record["id"]
            ]
            if "$filter" in item.options:
                matcher = parse_filter(item.options["$filter"], child)
                rows = [r for r in rows if matcher(r)]
            rows.sort(key=lambda r: (int(r.get("sequence") or 0), r["_seq"]))
            select = parse_select(item.options["$select"], child) if "$select" in item.options else None
            return [self._present(company, child, r, select, []) for r in rows]
        if "$filter" in item.options:
            raise QueryError("$filter is only allowed when expanding a collection.")
        target_set, _ = entity.lookups[item.name]
        target = entity_by_set(target_set)
        assert target is not None
        found = self._lookup(company, entity, record, item.name)
        if found is None:
            return None
        select = parse_select(item.options["$select"], target) if "$select" in item.options else None
        return self._present(company, target, self._view(company, target, found), select, [])

    # -- collection ------------------------------------------------------------------------------------
    def _on_collection(
        self, call: _Call, company: Company, entity: EntityType, parent: tuple[str, str] | None
    ) -> Response:
        if call.method == "GET":
            rows = self._rows(company, entity)
            # "f eq a or f eq b …" terms are index seeks on the service: only the matching records
            # are read (and shown), not the whole table; the full filter still runs on what is left.
            seek = parse_filter(call.args["$filter"], entity) if "$filter" in call.args else None
            # Records keyed by id: "id eq … or …" reads just those, as the primary key does; other
            # "f eq … or …" terms read through an index, as SQL's keys and indexes serve them.
            keys = seek.key_values("id") if seek is not None else None
            if keys is not None:
                scanned: Any = [rows[k] for k in keys if k in rows]
            else:
                scanned = self._seek_by_index(company, entity, seek) if seek is not None else None
                scanned = rows.values() if scanned is None else scanned
            candidates = [
                r
                for r in scanned
                if (parent is None or r.get(parent[0]) == parent[1]) and (seek is None or seek.seek(r, _DERIVED))
            ]
            only = {str(r["id"]) for r in candidates} if seek is not None else None
            extra = company.financial_details(only) if entity.set_name == "customers" else None
            views = [self._view(company, entity, r, extra) for r in candidates]
            context = f"{call.base_url}/$metadata#companies({company.id})/{entity.set_name}"
            return self._collection(call, company, entity, views, context)
        if call.method == "POST":
            if "POST" not in entity.methods:
                raise BcError(405, "BadRequest_MethodNotAllowed", f"'POST' is not allowed on {entity.set_name}.")
            record = self._create(company, entity, self._json_body(call), parent)
            return self._written(call, company, entity, record, 201)
        raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on a collection.")

    def _seek_by_index(self, company: Company, entity: EntityType, seek: Filter) -> list[Record] | None:
        """The stored records an ``f eq … or …`` term can match, from an index on ``f`` (built on
        first use, rebuilt after any write); ``None`` when no term can use one."""
        if entity.set_name in _COMPUTED_SETS:
            return None
        field = next((f for f in seek.member_fields() if f.name not in _DERIVED), None)
        if field is None:
            return None
        values = seek.key_values(field.name) or set()
        with self.store.lock:
            key = (company.id, entity.set_name, field.name)
            cached = self._indexes.get(key)
            if cached is None or cached[0] != self.store.generation:
                index: dict[Any, list[Record]] = {}
                for record in company.table(entity.set_name).values():
                    stored = record[field.name] if field.name in record else field.blank()
                    index.setdefault(comparable(field, stored), []).append(record)
                cached = (self.store.generation, index)
                self._indexes[key] = cached
            return [r for v in values for r in cached[1].get(v, ())]

    def _collection(
        self, call: _Call, company: Company | None, entity: EntityType, views: list[Record], context: str
    ) -> Response:
        args = call.args
        if "$filter" in args:
            matcher = parse_filter(args["$filter"], entity)
            views = [v for v in views if matcher(v)]
        order = parse_orderby(args["$orderby"], entity) if "$orderby" in args else []
        views = _sort(views, order)
        total = len(views)
        select = parse_select(args["$select"], entity) if "$select" in args else None
        expand = parse_expand(args["$expand"], entity) if "$expand" in args and company is not None else []
        if "$expand" in args and company is None:
            raise QueryError("$expand is not supported on companies.", "BadRequest_NotSupported")
        top = _non_negative(args, "$top")
        skip = _non_negative(args, "$skip") or 0
        page_size, applied = self._page_size(call)
        state = _decode_skiptoken(args["$skiptoken"]) if "$skiptoken" in args else None
        if state is not None:
            last_key = state["k"]
            views = [v for v in views if _compare(_sort_key(v, order), last_key, order) > 0]
            top = state.get("t")
        else:
            views = views[skip:]
        limit = page_size if top is None else min(page_size, top)
        page = views[:limit]
        body: Record = {"@odata.context": context}
        if args.get("$count") == "true":
            body["@odata.count"] = total
        body["value"] = [self._present(company, entity, v, select, expand) for v in page]
        remaining_top = None if top is None else top - len(page)
        if len(views) > len(page) and (remaining_top is None or remaining_top > 0) and page:
            token = _encode_skiptoken({"k": _sort_key(page[-1], order), "t": remaining_top})
            keep = [(k, v) for k, v in args.items(multi=True) if k not in ("$skiptoken", "$skip", "$top")]
            keep.append(("$skiptoken", token))
            body["@odata.nextLink"] = f"{call.base_url}{quote(call.path)}?{urlencode(keep)}"
        headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if applied else None
        return _bc_json(200, body, headers)

    def _page_size(self, call: _Call) -> tuple[int, bool]:
        prefer = call.headers.get("Prefer", "")
        match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer)
        if match is None:
            return self.settings.page_size, False
        size = int(match.group(1))
        if size > MAX_PAGE_SIZE:
            raise BcError(413, "BadRequest", f"The page size {size} exceeds the maximum of {MAX_PAGE_SIZE}.")
        return max(size, 1), True

    # -- single ----------------------------------------------------------------------------------------
    def _single_response(self, call: _Call, company: Company, entity: EntityType, record: Record) -> Response:
        args = call.args
        for option in ("$filter", "$orderby", "$top", "$skip", "$skiptoken"):
            if option in args:
                raise QueryError(f"The query option '{option}' is not allowed on a single entity.")
        select = parse_select(args["$select"], entity) if "$select" in args else None
        expand = parse_expand(args["$expand"], entity) if "$expand" in args else []
        body = {
            "@odata.context": f"{call.base_url}/$metadata#companies({company.id})/{entity.set_name}/$entity",
            **self._present(company, entity, self._view(company, entity, record), select, expand),
        }
        return _bc_json(200, body)

    def _on_single(self, call: _Call, company: Company, entity: EntityType, record: Record) -> Response:
        if call.method == "GET":
            return self._single_response(call, company, entity, record)
        if call.method not in entity.methods:
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on {entity.set_name}.")
        if call.method == "PATCH":
            self._check_if_match(call, record, required=True)
            self._update(company, entity, record, self._json_body(call))
            return self._written(call, company, entity, record, 200)
        if call.method == "DELETE":
            self._check_if_match(call, record, required=self.settings.delete_requires_if_match)
            self._delete(company, entity, record)
            return _bc_json(204, None)
        raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed.")

    def _written(self, call: _Call, company: Company, entity: EntityType, record: Record, status: int) -> Response:
        if "return-no-content" in call.headers.get("Prefer", "") or "return=minimal" in call.headers.get("Prefer", ""):
            return _bc_json(204, None, {"ETag": Store.etag(record)})
        response = self._single_response(call, company, entity, record)
        response.status_code = status
        response.headers["ETag"] = Store.etag(record)
        if status == 201:
            response.headers["Location"] = f"{call.base_url}/companies({company.id})/{entity.set_name}({record['id']})"
        return response

    def _check_if_match(self, call: _Call, record: Record, *, required: bool) -> None:
        supplied = call.headers.get("If-Match")
        if supplied is None:
            if not required:
                return
            raise BcError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a "
                "valid token in the client request.",
            )
        supplied = supplied.strip()
        if supplied == "*":
            return
        if not (supplied.startswith('W/"') and supplied.endswith('"')):
            raise BcError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a "
                "valid token in the client request.",
            )
        if supplied != Store.etag(record):
            status = self.settings.stale_etag_status
            raise BcError(status, "Request_EntityChanged", "Another user has already changed the record.")

    # -- bodies ----------------------------------------------------------------------------------------
    @staticmethod
    def _json_body(call: _Call) -> dict[str, Any]:
        try:
            body = json.loads(call.body or b"{}")
        except ValueError as exc:
            raise BcError(400, "BadRequest", "Invalid Request Body. The body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise BcError(400, "BadRequest", "Invalid Request Body. A JSON object was expected.")
        return body

    def _coerce(
        self, entity: EntityType, body: dict[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], set[str], dict[str, list[Any]]]:
        values: dict[str, Any] = {}
        children: dict[str, list[Any]] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name in entity.children:
                if not creating:
                    raise BcError(
                        400,
                        "BadRequest_NotSupported",
                        f"Deep update is not supported: '{name}' cannot be changed through "
                        f"{entity.set_name}. Update the lines through their own endpoint.",
                    )
                if not isinstance(value, list):
                    raise BcError(400, "BadRequest", f"'{name}' must be an array.")
                children[name] = value
                continue
            if name in entity.lookups or name in entity.computed or name in _KNOWN_UNSERVED_NAVS:
                raise BcError(400, "BadRequest_NotSupported", f"Deep insert of '{name}' is not supported.")
            field = entity.get_field(name)
            if field is None:
                raise BcError(
                    400,
                    "BadRequest",
                    f"The property '{name}' does not exist on type 'Microsoft.NAV.{entity.name}'. Make sure "
                    "to only use property names that are defined by the type.",
                )
            if field.read_only or (field.insert_only and not creating):
                if self.settings.read_only_fields == "ignore":
                    continue
                raise BcError(
                    400,
                    "BadRequest_InvalidOperation",
                    f"The property '{name}' is read-only and cannot be set on {entity.set_name}.",
                )
            values[name] = _coerce_value(field, value)
        return values, set(values), children

    # -- writes ----------------------------------------------------------------------------------------
    def _create(
        self, company: Company, entity: EntityType, body: dict[str, Any], parent: tuple[str, str] | None
    ) -> Record:
        values, provided, children = self._coerce(entity, body, creating=True)
        if parent is not None:
            fk, parent_id = parent
            if fk in provided and values[fk] != parent_id:
                raise dialog(f"The {fk} in the body does not match the parent in the URL.")
            values[fk] = parent_id
            provided.add(fk)
        record: Record = {f.name: f.blank() for f in entity.fields}
        record.update(values)
        record["id"] = self.store.new_id()
        self._defaults(company, entity, record, provided, creating=True)
        undo: list[tuple[str, str]] = []
        try:
            self.store.stamp(record, modified_field=entity.get_field("lastModifiedDateTime") is not None)
            self.store.insert(company.id, entity.set_name, record, notify=entity.set_name not in LINE_SETS)
            undo.append((entity.set_name, record["id"]))
            for nav, lines in children.items():
                child = entity_by_set(entity.children[nav])
                assert child is not None and child.parent is not None
                for line in lines:
                    if not isinstance(line, dict):
                        raise BcError(400, "BadRequest", f"Each entry of '{nav}' must be an object.")
                    created = self._create(company, child, line, (child.parent[1], record["id"]))
                    undo.append((child.set_name, created["id"]))
        except Exception:
            # A failing deep insert leaves nothing behind, like the single transaction BC runs it in.
            for set_name, record_id in undo:
                self.store.delete(company.id, set_name, record_id, notify=False)
            raise
        if entity.set_name in DOCUMENT_SETS:
            company.recalc(entity.set_name, record)
        elif entity.set_name in LINE_SETS:
            self._touch_header(company, LINE_SETS[entity.set_name], record["documentId"])
        elif entity.set_name == "customers":
            # Customer.OnInsert → CustCont-Update.InsertNewContact: a contact with relation "Customer".
            create_customer_contact(company, record)
        return record

    def _defaults(
        self, company: Company, entity: EntityType, record: Record, provided: set[str], *, creating: bool
    ) -> None:
        """The server-side initializer: numbers, dates, customer-derived fields, line checks."""
        set_name = entity.set_name
        if set_name in DOCUMENT_SETS:
            if creating or {"customerId", "customerNumber"} & provided:
                customer = company.resolve_customer(record)
                assert customer is not None
                company.apply_customer(record, customer, provided)
            company.apply_currency(record, provided)
            if creating:
                company.header_defaults(set_name, record, provided)
        elif set_name in LINE_SETS:
            header = company.table(LINE_SETS[set_name]).get(record["documentId"])
            if header is None:
                raise not_found(LINE_SETS[set_name][:-1], record["documentId"])
            self._require_editable(company, LINE_SETS[set_name], header)
            if creating and "sequence" not in provided:
                sequences = [int(r.get("sequence") or 0) for r in company.lines_of(LINE_SETS[set_name], header["id"])]
                record["sequence"] = max(sequences, default=0) + 10000
            company.prepare_line(record, provided, creating=creating)
            if set_name == "salesOrderLines":
                order_line_quantities(record, provided)
        elif set_name == "customers":
            if creating and not record.get("number"):
                record["number"] = company.free_number("customers", 10, "C{:05d}")
            if creating and "type" not in provided:
                record["type"] = "Company"
            self._unique(company, entity, record, "number", creating)
            company.apply_currency(record, provided)
            if (
                "salespersonCode" in provided
                and record["salespersonCode"]
                and company.find("salespeoplePurchasers", "code", record["salespersonCode"]) is None
            ):
                raise dialog(
                    "The Salesperson/Purchaser does not exist. Identification fields and values: "
                    f"Code='{record['salespersonCode']}'"
                )
            for fk, target in (("paymentTermsId", "paymentTerms"), ("shipmentMethodId", "shipmentMethods")):
                if fk in provided and record[fk] != BLANK_GUID and record[fk] not in company.table(target):
                    raise dialog(f"The {target[:-1]} '{record[fk]}' does not exist.")
        elif set_name == "items":
            if creating and not record.get("number"):
                record["number"] = company.free_number("items", 1000, "{}")
            if creating and "type" not in provided:
                record["type"] = "Inventory"
            self._unique(company, entity, record, "number", creating)
            if "baseUnitOfMeasureCode" in provided and record["baseUnitOfMeasureCode"]:
                uom = company.find("unitsOfMeasure", "code", record["baseUnitOfMeasureCode"])
                if uom is None:
                    raise dialog(
                        f"The Unit of Measure does not exist. Identification fields and values: "
                        f"Code='{record['baseUnitOfMeasureCode']}'"
                    )
                record["baseUnitOfMeasureId"] = uom["id"]
        elif set_name == "contacts":
            if creating and not record.get("number"):
                record["number"] = company.free_number("contacts", 100, "CT{:06d}")
            if creating and "type" not in provided:
                record["type"] = "Person"
            if record.get("companyNumber"):
                parent_contact = company.find("contacts", "number", record["companyNumber"])
                if parent_contact is None or parent_contact.get("type") != "Company":
                    raise dialog(
                        f"The Contact does not exist. Identification fields and values: No.='{record['companyNumber']}'"
                    )
                record["companyName"] = parent_contact["displayName"]
            record["searchName"] = record.get("searchName") or str(record.get("displayName", "")).upper()
            if creating:
                record["contactBusinessRelation"] = record.get("contactBusinessRelation") or "None"
        elif set_name == "customerPayments":
            journal = company.table("customerPaymentJournals").get(record["journalId"])
            if journal is None:
                raise not_found("customerPaymentJournal", record["journalId"])
            if creating and "lineNumber" not in provided:
                numbers = [
                    int(r.get("lineNumber") or 0)
                    for r in company.table("customerPayments").values()
                    if r.get("journalId") == journal["id"]
                ]
                record["lineNumber"] = max(numbers, default=0) + 10000
            if {"customerId", "customerNumber"} & provided:
                customer = company.resolve_customer(record)
                assert customer is not None
                record["customerId"], record["customerNumber"] = customer["id"], customer["number"]
            if "postingDate" not in provided and creating:
                record["postingDate"] = self.store.today()
            if creating and not record.get("documentNumber"):
                record["documentNumber"] = self.store.next_number(company.id, "payments", 1, "G{:05d}")
            if "appliesToInvoiceId" in provided and record["appliesToInvoiceId"] != BLANK_GUID:
                invoice = company.table("salesInvoices").get(record["appliesToInvoiceId"])
                if invoice is None:
                    raise dialog(f"The sales invoice '{record['appliesToInvoiceId']}' does not exist.")
                record["appliesToInvoiceNumber"] = invoice["number"]
        elif set_name in (
            "currencies",
            "unitsOfMeasure",
            "paymentTerms",
            "shipmentMethods",
            "salespeoplePurchasers",
            "customerPaymentJournals",
        ):
            if creating and not record.get("code"):
                raise BcError(400, "BadRequest_RequiredParamNotProvided", "The property 'code' is required.")
            self._unique(company, entity, record, "code", creating)

    def _unique(self, company: Company, entity: EntityType, record: Record, key: str, creating: bool) -> None:
        existing = company.find(entity.set_name, key, record.get(key))
        if existing is not None and existing["id"] != record["id"]:
            raise BcError(
                409 if creating else 400,
                "Internal_EntityWithSameKeyExists",
                f"The record in table {entity.name} already exists. Identification fields and values: "
                f"{key}='{record.get(key)}'",
            )

    def _require_editable(self, company: Company, header_set: str, header: Record) -> None:
        if header_set == "salesInvoices" and header.get("status") != "Draft":
            raise dialog(f"You cannot change the posted sales invoice {header['number']}.")
        if header_set == "salesOrders" and header.get("status") == "Open":
            raise BcError(
                400,
                "Application_FieldValidationException",
                f"Status must be equal to 'Open'  in Sales Header: Document Type=Order, No.={header['number']}. "
                "Current value is 'Released'.",
            )

    def _update(self, company: Company, entity: EntityType, record: Record, body: dict[str, Any]) -> None:
        values, provided, _ = self._coerce(entity, body, creating=False)
        if entity.set_name in DOCUMENT_SETS:
            self._require_editable(company, entity.set_name, record)
        candidate = copy.deepcopy(record)
        candidate.update(values)
        self._defaults(company, entity, candidate, provided, creating=False)
        record.clear()
        record.update(candidate)
        self.store.stamp(record, modified_field=entity.get_field("lastModifiedDateTime") is not None)
        if entity.set_name in LINE_SETS:
            self._touch_header(company, LINE_SETS[entity.set_name], record["documentId"])
        else:
            if entity.set_name in DOCUMENT_SETS:
                company.recalc(entity.set_name, record)
            elif entity.set_name == "customers":
                sync_customer_contact(company, record)  # Customer.OnModify → CustCont-Update.OnModify
            self.store.touched(company.id, entity.set_name, record["id"])

    def _touch_header(self, company: Company, header_set: str, header_id: str) -> None:
        # A line change is a header change: new totals, new etag, new lastModifiedDateTime, and a
        # webhook notification on the header resource.
        header = company.table(header_set).get(header_id)
        if header is None:
            return
        company.recalc(header_set, header)
        self.store.stamp(header)
        self.store.touched(company.id, header_set, header_id)

    def _delete(self, company: Company, entity: EntityType, record: Record) -> None:
        if entity.set_name in DOCUMENT_SETS:
            if entity.set_name == "salesInvoices" and record.get("status") != "Draft":
                raise dialog(f"You cannot delete the posted sales invoice {record['number']}.")
            for line in company.lines_of(entity.set_name, record["id"]):
                self.store.delete(company.id, DOCUMENT_SETS[entity.set_name][0], line["id"], notify=False)
            self.store.delete(company.id, entity.set_name, record["id"])
            return
        if entity.set_name in LINE_SETS:
            header = company.table(LINE_SETS[entity.set_name]).get(record["documentId"])
            if header is not None:
                self._require_editable(company, LINE_SETS[entity.set_name], header)
            self.store.delete(company.id, entity.set_name, record["id"], notify=False)
            self._touch_header(company, LINE_SETS[entity.set_name], record["documentId"])
            return
        if entity.set_name == "customers" and any(
            r.get("customerId") == record["id"]
            for s in DOCUMENT_SETS
            for r in company.table(s).values()
            if not (s == "salesInvoices" and r.get("status") in ("Paid", "Canceled"))
        ):
            raise dialog(
                f"You cannot delete Customer {record['number']} because there is at least one outstanding "
                "Sales document for this customer."
            )
        if entity.set_name == "customers":
            unlink_customer(company, record["id"])  # Customer.OnDelete deletes the business relation
        if entity.set_name == "customerPaymentJournals":
            for payment in list(company.table("customerPayments").values()):
                if payment.get("journalId") == record["id"]:
                    self.store.delete(company.id, "customerPayments", payment["id"], notify=False)
        self.store.delete(company.id, entity.set_name, record["id"])

    # -- actions ---------------------------------------------------------------------------------------
    def _action(self, call: _Call, company: Company, entity: EntityType, record: Record, name: str) -> Response:
        actions = _ACTIONS.get(entity.set_name, {})
        if name not in actions:
            raise BcError(
                404,
                "BadRequest_NotFound",
                f"No HTTP resource was found that matches the request URI "
                f"'{call.base_url}{call.path}' (no bound action '{name}' on {entity.set_name}).",
            )
        if call.method != "POST":
            raise BcError(405, "BadRequest_MethodNotAllowed", "Bound actions are invoked with POST.")
        what = actions[name]
        if what is None:
            raise NotImplementedError(f"bound action {entity.set_name}/Microsoft.NAV.{name}")
        if what == "ship_and_invoice":
            company.ship_and_invoice(record)
        elif what == "post_invoice":
            company.post_invoice(record)
        elif what == "cancel_invoice":
            company.cancel_invoice(record)
        elif what == "make_order":
            company.make_from_quote(record, "salesOrders")
        elif what == "make_invoice":
            company.make_from_quote(record, "salesInvoices")
        elif what == "send_quote":
            company.send_quote(record)
        return _bc_json(204, None)

    def _journal_action(self, call: _Call, company: Company, parsed: list[tuple[str, str | None]]) -> Response:
        # Only the posting action is served on `journals`: customer payment journals have no bound
        # post action of their own, and BC's journals(...)/post looks the batch up by SystemId.
        if len(parsed) != 2 or parsed[0][1] is None or parsed[1][0] != "Microsoft.NAV.post":
            raise NotImplementedError("journals other than journals({id})/Microsoft.NAV.post")
        if call.method != "POST":
            raise BcError(405, "BadRequest_MethodNotAllowed", "Bound actions are invoked with POST.")
        with self.store.lock:
            journal_id = self._guid(parsed[0][1], "journal")
            journal = company.table("customerPaymentJournals").get(journal_id)
            if journal is None:
                raise not_found("journal", journal_id)
            company.post_payment_journal(journal)
        return _bc_json(204, None)

    # -- subscriptions ---------------------------------------------------------------------------------
    def _subscriptions(self, call: _Call, parsed: list[tuple[str, str | None]]) -> Response:
        if self.webhooks is None:
            raise NotImplementedError("subscriptions")
        response: Response = self.webhooks.handle(call, parsed)
        return response

    # -- $batch ------------------------------------------------------------------------------------------
    def _batch(self, call: _Call) -> Response:
        body = self._json_body(call)
        requests = body.get("requests")
        if not isinstance(requests, list):
            raise BcError(400, "BadRequest", "The batch body must have a 'requests' array.")
        if len(requests) > MAX_BATCH:
            raise BcError(
                400, "BadRequest", f"The batch contains {len(requests)} requests; the maximum is {MAX_BATCH}."
            )
        atomic = call.headers.get("Isolation", "").lower() == "snapshot"
        # The batch runs under the store lock: with Isolation: snapshot it must see and leave one
        # consistent state; without it, holding the lock is still how BC's single session behaves.
        with self._batch_lock, self.store.lock:
            before = self.store.snapshot() if atomic else None
            if atomic:
                self.store.listeners_paused = True
            responses = []
            failed = False
            try:
                for index, item in enumerate(requests):
                    inner = self._batch_call(call, item, index)
                    result = self.execute(inner)
                    failed = failed or result.status_code >= 400
                    responses.append(_batch_response(item, index, result))
                if atomic and failed and before is not None:
                    self.store.restore(before)
            finally:
                if atomic:
                    self.store.listeners_paused = False
            if atomic and not failed:
                self.store.flush_paused()
            elif atomic:
                self.store.drop_paused()
        return _bc_json(200, {"responses": responses})

    def _batch_call(self, outer: _Call, item: Any, index: int) -> _Call:
        if not isinstance(item, dict) or "method" not in item or "url" not in item:
            raise BcError(400, "BadRequest", f"Batch request {index} needs 'method' and 'url'.")
        url = str(item["url"])
        path, _, query = url.partition("?")
        root = outer.base_url
        if path.startswith("http"):
            if not path.startswith(root):
                raise BcError(400, "BadRequest", f"Batch request {index} targets another service root.")
            path = path[len(root) :]
        path = "/" + path.lstrip("/")
        if path.rstrip("/").endswith("$batch"):
            raise BcError(400, "BadRequest", "A batch cannot contain another batch.")
        headers = {str(k): str(v) for k, v in dict(item.get("headers") or {}).items()}
        raw_body = item.get("body")
        return _Call(
            method=str(item["method"]).upper(),
            path=path,
            args=MultiDict(parse_qsl(query, keep_blank_values=True)),
            headers=headers,
            body=json.dumps(raw_body).encode() if raw_body is not None else b"",
            base_url=outer.base_url,
            user=outer.user,
        )

    def _require_permissions(self, call: _Call, set_name: str, parsed: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in parsed[1:]]
        if any(n.startswith("Microsoft.NAV.") for n in names):
            self.permissions.require(set_name, "PATCH")  # a bound action (post, shipAndInvoice) changes it
            return
        child = next((n for n in names if entity_by_set(n) is not None), None)
        self.permissions.require(set_name, call.method if child is None else "GET")
        if child is not None:
            self.permissions.require(child, call.method)

    # -- back door ---------------------------------------------------------------------------------------
    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        from emulators.business_central._seed import seed

        with self.store.lock:
            return seed(self.store, str(spec.get("name", "demo")), spec)

    def snapshot(self) -> dict[str, Any]:
        return self.store.snapshot()

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.store.restore(snapshot)

    def reset(self) -> None:
        self.store.clear()

    def admin(self, action: str, request: Request) -> Response:
        if action == "patch" and request.method == "POST":
            # Change fields as a BC user would in the client (no API validation), e.g. order status.
            body = request.get_json(force=True)
            with self.store.lock:
                company = Company(self.store, str(body["company"]).lower())
                record = company.table(str(body["entity"])).get(str(body["id"]).lower())
                if record is None:
                    return json_response(404, {"error": "no such record"})
                record.update(body.get("fields", {}))
                self.store.stamp(record)
                if body["entity"] in DOCUMENT_SETS:
                    company.recalc(str(body["entity"]), record)
                self.store.touched(company.id, str(body["entity"]), record["id"])
                return json_response(200, deep_copy({k: v for k, v in record.items() if not k.startswith("_")}))
        if action == "settings":
            if request.method in ("PATCH", "POST"):
                for key, value in dict(request.get_json(force=True)).items():
                    if not hasattr(self.settings, key):
                        return json_response(400, {"error": f"unknown setting {key}"})
                    setattr(self.settings, key, type(getattr(self.settings, key))(value))
                self.limiter.configure(dict(request.get_json(force=True)))
            return json_response(200, {**self.settings.__dict__, **self.limiter.as_dict()})
        if action == "permissions":
            if request.method in ("PATCH", "POST"):
                try:
                    withhold = list(request.get_json(force=True)["withhold"])
                    return json_response(200, self.permissions.configure(withhold))
                except (KeyError, TypeError, ValueError) as exc:
                    return json_response(400, {"error": str(exc)})
            return json_response(200, self.permissions.as_dict())
        if action == "limits" and request.method in ("PATCH", "POST"):
            self.limiter.configure(dict(request.get_json(force=True)))
            return json_response(200, self.limiter.as_dict())
        if action.startswith("webhooks") and self.webhooks is not None:
            response: Response = self.webhooks.admin(action, request)
            return response
        raise NotImplementedError(f"admin action {action!r}")


# -- helpers ---------------------------------------------------------------------------------------------
def _type_error(name: str, value: Any, edm: str) -> BcError:
    return BcError(400, "BadRequest", f"Cannot convert the value '{value}' of '{name}' to the expected type '{edm}'.")


def _coerce_value(field: Field, value: Any) -> Any:
    """Check a JSON value against the field's type and length; return the stored form."""
    name = field.name
    if value is None:
        return field.blank()
    if field.type == "string":
        if not isinstance(value, str):
            raise _type_error(name, value, "Edm.String")
        if field.max_length is not None and len(value) > field.max_length:
            raise BcError(
                400,
                "Application_StringExceededLength",
                f"The length of the string is {len(value)}, but it must be less than or equal to "
                f"{field.max_length} characters. Value: {value}",
            )
        return value
    if field.type in ("decimal", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _type_error(name, value, "Edm.Decimal")
        try:
            number = Decimal(str(value))
        except ArithmeticError as exc:
            raise _type_error(name, value, "Edm.Decimal") from exc
        if field.type == "int":
            if number != number.to_integral_value():
                raise _type_error(name, value, "Edm.Int32")
            return int(number)
        return int(number) if number == number.to_integral_value() else float(number)
    if field.type == "bool":
        if not isinstance(value, bool):
            raise _type_error(name, value, "Edm.Boolean")
        return value
    if field.type == "guid":
        if not isinstance(value, str) or not _GUID.match(value):
            raise BcError(400, "Application_InvalidGUID", f"The value '{value}' of '{name}' is not a valid GUID.")
        return value.lower()
    if field.type == "date":
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError as exc:
            raise _type_error(name, value, "Edm.Date") from exc
    if field.type == "datetime":
        try:
            dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise _type_error(name, value, "Edm.DateTimeOffset") from exc
        return str(value)
    if field.type == "enum" and field.enum and value not in field.enum:
        valid = ", ".join(repr(e) for e in field.enum)
        raise BcError(400, "BadRequest", f"The value '{value}' is not valid for '{name}'. Valid values: {valid}.")
    return value


def _non_negative(args: MultiDict[str, str], name: str) -> int | None:
    if name not in args:
        return None
    try:
        value = int(args[name])
    except ValueError as exc:
        raise QueryError(f"Invalid value '{args[name]}' for {name}.") from exc
    if value < 0:
        raise QueryError(f"Invalid value '{value}' for {name}: it must not be negative.")
    return value


def _sort_value(field: Field | None, value: Any) -> Any:
    if field is not None and field.type in ("decimal", "int"):
        return float(value or 0)
    if field is not None and field.type == "bool":
        return bool(value)
    return str(value if value is not None else "")


def _sort_key(view: Record, order: list[tuple[Field, bool]]) -> list[Any]:
    return [_sort_value(f, view.get(f.name)) for f, _ in order] + [int(view["_seq"])]


def _compare(a: list[Any], b: list[Any], order: list[tuple[Field, bool]]) -> int:
    directions = [desc for _, desc in order] + [False]
    for left, right, desc in zip(a, b, directions, strict=True):
        if left == right:
            continue
        result = -1 if left < right else 1
        return -result if desc else result
    return 0


def _sort(views: list[Record], order: list[tuple[Field, bool]]) -> list[Record]:
    keyed = [(_sort_key(v, order), v) for v in views]

    def by_key(x: tuple[list[Any], Record], y: tuple[list[Any], Record]) -> int:
        return _compare(x[0], y[0], order)

    keyed.sort(key=cmp_to_key(by_key))
    return [v for _, v in keyed]


def _encode_skiptoken(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode("ascii")


def _decode_skiptoken(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(state, dict) or not isinstance(state.get("k"), list):
            raise ValueError
        return state
    except ValueError as exc:
        raise QueryError("The $skiptoken is not valid.") from exc


# Fields the API computes for its answer (see _view) rather than reads from the stored record.
_DERIVED = frozenset({"balanceDue", "status", "journalDisplayName"})
# Sets computed per request, never stored: nothing to index.
_COMPUTED_SETS = frozenset({"customerFinancialDetails", "contactsInformation"})


def _batch_response(item: dict[str, Any], index: int, result: Response) -> dict[str, Any]:
    text = result.get_data(as_text=True)
    kept = ("etag", "location", "content-type", "retry-after")
    headers = {k.lower(): v for k, v in result.headers.items() if k.lower() in kept}
    out: dict[str, Any] = {"id": str(item.get("id", index)), "status": result.status_code, "headers": headers}
    if text:
        out["body"] = json.loads(text)
    return out


def new_correlation_id() -> str:
    """A correlation id as BC puts in error messages and response headers."""
    return str(uuid.uuid4())
