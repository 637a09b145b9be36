"""The BC API v2.0 as the sync engine's ``BusinessCentralPort``, plus webhook subscriptions.

Reads page with ``Prefer: odata.maxpagesize`` and follow ``@odata.nextLink``; reads by id ask for
many ids per request; writes go as JSON ``$batch`` requests of at most 100 operations, a few
batches at a time (BC runs 5 requests per user at once and queues the rest), with per-operation
outcomes. Every value entering a ``$filter`` or a key goes through ``shared.odata``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import requests
import stamina

from shared.adapters._api_client import collection_page
from shared.adapters.business_central.client import BusinessCentralApi
from shared.adapters.business_central.errors import batch_item_error, business_central_error
from shared.errors import PermanentError, RetriableError, SyncError
from shared.odata import any_of, field_name, guid_literal, literal, string_literal, window_params
from shared.pages import JsonPage, Page, Record
from shared.ports import RecordChange, WindowQuery, WriteOutcome

__all__ = ["BusinessCentralAdapter", "Subscription"]

MAX_BATCH_REQUESTS = 100  # BC's operational limit per $batch
MAX_PAGE_SIZE = 20_000  # BC online's fixed maximum; more is answered 413
# 50 GUID clauses make a URL of about 2.5 KB: far below the 8-16 KB where gateways start refusing.
ID_CHUNK_SIZE = 50
# From this many id queries on, a read by id sends them as GETs inside one $batch.
_BATCHED_READS_FROM = 3
# Above this many ids, a read by id first checks whether paging through the whole set is cheaper.
_SCAN_ABOVE = 1_000
# BC processes 5 requests per user at once; 4 batches leave a slot for reads of the same worker.
DEFAULT_PARALLEL_BATCHES = 4
_MAX_CLIENT_STATE = 2048  # BC's limit on a subscription's clientState

# In-process retries stay short; longer outages go back to Service Bus redelivery (house rule 4).
_RETRY_ATTEMPTS = 4
_RETRY_TIMEOUT_SECONDS = 45.0
# Rounds of re-sending the operations a batch answered 429/503 for, and the wait cap between them.
_ITEM_RETRY_ROUNDS = 3
_ITEM_RETRY_MAX_WAIT_SECONDS = 10.0
# Statuses where BC did not run the request at all, so even a create may be resent.
_NOT_RUN = frozenset({429, 503})


class _NotRun(RetriableError):
    """A 429/503: BC refused before running the request, so resending cannot duplicate anything."""


def _should_retry(idempotent: bool) -> Callable[[Exception], bool | float]:
    def decide(error: Exception) -> bool | float:
        if isinstance(error, _NotRun) or (idempotent and isinstance(error, RetriableError)):
            # Honour Retry-After when BC gave one; otherwise stamina's jittered backoff.
            return error.retry_after if error.retry_after is not None else True
        return False

    return decide


def _jsonable(value: Any) -> Any:
    # Mappings may carry Python values; BC wants JSON numbers, ISO dates and GUID strings.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return literal(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _guid_or_none(value: str) -> str | None:
    try:
        return guid_literal(value)
    except PermanentError:
        return None


@dataclass(frozen=True)
class Subscription:
    """A BC webhook subscription (``/api/v2.0/subscriptions``)."""

    subscription_id: str
    notification_url: str
    resource: str
    expiration: dt.datetime | None
    etag: str
    client_state: str = field(default="", repr=False)  # the webhook's shared secret


@dataclass
class _Op:
    """One operation of a bulk write, before and after its round trip."""

    method: str
    url: str  # the entity set; _prepare adds the key of an update or delete
    record_id: str | None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, Any]
    body: Any


class BusinessCentralAdapter:
    """``BusinessCentralPort`` over the BC API v2.0 for one company, plus webhook subscriptions.

    Thread-safe: it holds no per-call state; bulk writes run their batches on a short-lived
    thread pool of ``parallel_batches`` threads.
    """

    def __init__(
        self, api: BusinessCentralApi, company_id: str, *, parallel_batches: int = DEFAULT_PARALLEL_BATCHES
    ) -> None:
        self._api = api
        self._company_id = guid_literal(company_id)
        self._company = f"companies({self._company_id})"
        self._parallel_batches = max(1, parallel_batches)

    # -- reads ---------------------------------------------------------------------------------------
    def list_records(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        modified_after: dt.datetime | None = None,
        modified_until: dt.datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        resume_from: str | None = None,
    ) -> Iterator[Sequence[Record]]:
        """Pages of records, oldest change first, lazily (one page in memory at a time).

        Each page is a ``JsonPage`` (records parsed as they are read) carrying the API's
        nextLink; ``resume_from`` (such a link, as a
        full synchronization stores it between steps) reads on from there, the other arguments
        being in the link already.

        Args:
            entity_set: the API page, e.g. ``customers``.
            filter: an OData filter built with ``shared.odata``; and-ed with the window.
            select: properties to return; ``id`` and ``lastModifiedDateTime`` are always added.
            modified_after: exclusive lower bound on ``lastModifiedDateTime`` (ms precision).
            modified_until: inclusive upper bound on ``lastModifiedDateTime`` (ms precision).
            page_size: records per page, 1 to 20,000.

        Raises:
            PermanentError: a bad argument (entity set, property name, page size) or a query BC
                rejects; raised when called, or while iterating for what the API answers.
            RetriableError: BC is unreachable, throttling past the in-process retries, or failing.
            ConfigurationError: the credentials, permissions or company are wrong.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise PermanentError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}", code="InvalidPageSize")
        if resume_from is not None:
            return self._pages(resume_from, None, page_size, f"reading {entity_set}")
        params = self._window_params(WindowQuery(entity_set, filter, modified_after, modified_until))
        if select:
            params["$select"] = self._select(select, "lastModifiedDateTime")
        return self._pages(self._set_path(entity_set), params, page_size, f"reading {entity_set}")

    def list_records_many(self, queries: Sequence[WindowQuery]) -> list[Iterator[Sequence[Record]]]:
        """Several ``list_records`` (at the maximum page size) for the price of one request.

        The first page of every query comes from one ``$batch`` of GETs (up to 100 per batch);
        a query with more pages reads the rest from its nextLink when its iterator gets there.
        A scheduled run reads every mapping's window this way.

        Raises:
            PermanentError, RetriableError, ConfigurationError: as ``list_records``, for any query.
        """
        if any(q.exclude_modified_by for q in queries):
            raise PermanentError("Business Central records carry no modifying user to exclude", code="NotSupported")
        if len(queries) <= 1:
            return [
                self.list_records(
                    q.entity_set, filter=q.filter, modified_after=q.modified_after, modified_until=q.modified_until
                )
                for q in queries
            ]
        doing = "reading the changed records of " + ", ".join(dict.fromkeys(q.entity_set for q in queries))
        results: list[Iterator[Sequence[Record]]] = []
        for start in range(0, len(queries), MAX_BATCH_REQUESTS):
            chunk = queries[start : start + MAX_BATCH_REQUESTS]
            urls = [
                f"{self._set_path(q.entity_set)}?{urlencode(self._window_params(q), quote_via=quote)}" for q in chunk
            ]
            results += [
                self._continued(body, MAX_PAGE_SIZE, doing) for body in self._batch_get(urls, MAX_PAGE_SIZE, doing)
            ]
        return results

    def _batch_get(self, urls: list[str], page_size: int, doing: str) -> list[dict[str, Any]]:
        """The first-page answers of up to 100 GETs, in order, from one ``$batch``."""
        prefer = {"Prefer": f"odata.maxpagesize={page_size}"}
        requests_ = [{"id": str(i), "method": "GET", "url": url, "headers": prefer} for i, url in enumerate(urls)]
        response = self._request("POST", "$batch", doing=doing, json={"requests": requests_})
        answers = self._json(response, doing).get("responses")
        if not isinstance(answers, list) or len(answers) != len(urls):
            raise RetriableError(f"Business Central: {doing}: the $batch answer was incomplete", code="BadResponse")
        bodies: list[dict[str, Any]] = []
        for answer in sorted(answers, key=lambda a: int(a.get("id", 0)) if isinstance(a, dict) else 0):
            status = int(answer.get("status", 0)) if isinstance(answer, dict) else 0
            body = answer.get("body") if isinstance(answer, dict) else None
            if status >= 400 or not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise batch_item_error(status, body, (answer or {}).get("headers") or {}, doing)
            bodies.append(body)
        return bodies

    def _continued(self, first: dict[str, Any], page_size: int, doing: str) -> Iterator[Sequence[Record]]:
        """A query's pages: the first as already answered, the rest from its nextLink."""
        link = first.get("@odata.nextLink")
        link = link if isinstance(link, str) and link else None
        if first["value"]:
            yield Page(first["value"], link)
        if link is not None:
            yield from self._pages(link, None, page_size, doing)

    @staticmethod
    def _window_params(query: WindowQuery) -> dict[str, str]:
        return window_params(
            query.filter,
            "lastModifiedDateTime",
            query.modified_after,
            query.modified_until,
            order="lastModifiedDateTime",
        )

    def get_records(
        self, entity_set: str, ids: Iterable[str], *, select: Sequence[str] | None = None
    ) -> dict[str, Record]:
        """Records by id, 50 ids per query and up to 100 queries per ``$batch``; missing ids (and ids
        that are not GUIDs) are absent.

        Raises:
            PermanentError: a bad entity set or property name, or a query BC rejects.
            RetriableError: BC is unreachable, throttling past the in-process retries, or failing.
            ConfigurationError: the credentials, permissions or company are wrong.
        """
        path = self._set_path(entity_set)
        # BC answers ids in lower case; key the result the way the caller spelled each id.
        spelled = {guid: given for given in ids if (guid := _guid_or_none(given)) is not None}
        wanted = list(spelled)
        found: dict[str, Record] = {}
        if len(wanted) > _SCAN_ABOVE and self._scan_is_cheaper(entity_set, len(wanted)):
            # Most of the table is wanted (a full sync's second pass): its pages cost fewer requests.
            for page in self.list_records(entity_set, select=select):
                for record in page:
                    guid = _guid_or_none(str(record.get("id", "")))
                    if guid in spelled:
                        found[spelled[guid]] = record
            return found
        queries = []
        for start in range(0, len(wanted), ID_CHUNK_SIZE):
            chunk = wanted[start : start + ID_CHUNK_SIZE]
            params = {"$filter": " or ".join(f"id eq {guid}" for guid in chunk)}
            if select:
                params["$select"] = self._select(select)
            queries.append(params)
        for page in self._query_pages(path, queries, ID_CHUNK_SIZE, f"reading {entity_set} by id"):
            for record in page:
                guid = _guid_or_none(str(record.get("id", "")))
                if guid in spelled:
                    found[spelled[guid]] = record
        return found

    def find_records(
        self,
        entity_set: str,
        name: str,
        values: Iterable[str],
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
    ) -> Iterator[Sequence[Record]]:
        """Pages of the records whose ``name`` is one of ``values`` (and ``filter``, if given).

        50 values per query; many queries travel together in ``$batch`` requests.

        Raises:
            PermanentError, RetriableError, ConfigurationError: as for ``list_records``.
        """
        path = self._set_path(entity_set)
        ordered = sorted(set(values))
        queries = []
        for start in range(0, len(ordered), ID_CHUNK_SIZE):
            clause = any_of(name, ordered[start : start + ID_CHUNK_SIZE])
            params = {"$filter": f"({filter}) and {clause}" if filter else clause}
            if select:
                params["$select"] = self._select(select)
            queries.append(params)
        return self._query_pages(path, queries, MAX_PAGE_SIZE, f"reading {entity_set} by {name}")

    def _query_pages(
        self, path: str, queries: list[dict[str, str]], page_size: int, doing: str
    ) -> Iterator[Sequence[Record]]:
        # A few queries go alone; more go together, up to 100 GETs in one $batch (a sync slice of
        # 1,000 records is one request, not twenty).
        if len(queries) < _BATCHED_READS_FROM:
            for params in queries:
                yield from self._pages(path, params, page_size, doing)
            return
        for start in range(0, len(queries), MAX_BATCH_REQUESTS):
            yield from self._batched_pages(path, queries[start : start + MAX_BATCH_REQUESTS], page_size, doing)

    def _batched_pages(
        self, path: str, queries: list[dict[str, str]], page_size: int, doing: str
    ) -> Iterator[Sequence[Record]]:
        """The pages of several queries of one set, the first page of each from one ``$batch`` of GETs."""
        urls = [f"{path}?{urlencode(q, quote_via=quote)}" for q in queries]
        for body in self._batch_get(urls, page_size, doing):
            yield from self._continued(body, page_size, doing)

    def _scan_is_cheaper(self, entity_set: str, wanted: int) -> bool:
        """Whether reading the whole set (one count, then pages) costs fewer requests than by id."""
        pages = math.ceil(self.count_records(entity_set) / MAX_PAGE_SIZE)
        batches = math.ceil(math.ceil(wanted / ID_CHUNK_SIZE) / MAX_BATCH_REQUESTS)
        return 1 + pages < batches

    def list_related(self, entity_set: str, record_id: str, navigation: str) -> list[Record]:
        """A record's navigation collection, e.g. ``customers(<id>)/contactsInformation``.

        Raises:
            PermanentError: a bad name or id, or a navigation BC does not serve.
            RetriableError, ConfigurationError: as every read.
        """
        path = f"{self._set_path(entity_set)}({guid_literal(record_id)})/{field_name(navigation)}"
        doing = f"reading {navigation} of {entity_set} {record_id}"
        return [record for page in self._pages(path, None, None, doing) for record in page]

    def count_records(self, entity_set: str, *, filter: str | None = None) -> int:
        """How many records match ``filter`` (one request: ``$count=true&$top=0``).

        Raises:
            PermanentError: a bad entity set, a filter BC rejects, or no count in the answer.
            RetriableError: BC is unreachable, throttling past the in-process retries, or failing.
            ConfigurationError: the credentials, permissions or company are wrong.
        """
        doing = f"counting {entity_set}"
        params = {"$count": "true", "$top": "0", "$select": "id"}
        if filter:
            params["$filter"] = filter
        body = self._json(self._request("GET", self._set_path(entity_set), doing=doing, params=params), doing)
        count = body.get("@odata.count")
        if not isinstance(count, int):
            raise PermanentError(f"Business Central: {doing}: the answer carried no count", code="BadResponse")
        return count

    # -- bulk writes ---------------------------------------------------------------------------------
    def create_records(self, entity_set: str, records: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
        """Create many records with ``$batch`` (100 per batch, a few batches in parallel).

        Batches are not atomic: each record has its own outcome, in the order given, carrying
        the created record (with ``id`` and ``@odata.etag``) or a categorized error. A batch is
        resent only when BC refused it unrun (429/503); after an ambiguous failure (connection
        lost, 5xx) its records get a RetriableError with code ``OutcomeUnknown``: some may exist,
        so callers reconcile (e.g. by external number) before creating again.

        Raises:
            PermanentError: ``entity_set`` is not a valid name. Everything else is in the outcomes.
        """
        path = self._set_path(entity_set)
        ops = [_Op("POST", path, None, body=dict(record)) for record in records]
        return self._write(ops, idempotent=False, doing=f"creating {entity_set}")

    def update_records(self, entity_set: str, changes: Sequence[RecordChange]) -> list[WriteOutcome]:
        """Update many records with ``$batch``; ``If-Match`` is the change's etag, or ``*``.

        Outcomes are in the order given; a record changed since its etag was read gets a
        RetriableError (``Request_EntityChanged``), a missing one a PermanentError.

        Raises:
            PermanentError: ``entity_set`` is not a valid name. Everything else is in the outcomes.
        """
        path = self._set_path(entity_set)
        ops = [
            _Op(
                "PATCH",
                path,
                change.record_id,
                body=dict(change.values),
                headers={"If-Match": change.etag or "*"},
            )
            for change in changes
        ]
        return self._write(ops, idempotent=True, doing=f"updating {entity_set}")

    def delete_records(self, entity_set: str, ids: Sequence[str]) -> list[WriteOutcome]:
        """Delete many records with ``$batch``; a record already gone counts as deleted.

        Raises:
            PermanentError: ``entity_set`` is not a valid name. Everything else is in the outcomes.
        """
        path = self._set_path(entity_set)
        ops = [_Op("DELETE", path, record_id, headers={"If-Match": "*"}) for record_id in ids]
        return self._write(ops, idempotent=True, doing=f"deleting {entity_set}")

    # -- webhook subscriptions -----------------------------------------------------------------------
    def list_subscriptions(self) -> list[Subscription]:
        """Every live subscription of the environment (all companies; at most 200 exist).

        Raises:
            RetriableError, ConfigurationError, PermanentError: as for ``list_records``.
        """
        pages = self._pages("subscriptions", None, None, "listing webhook subscriptions")
        return [self._subscription(item, "listing webhook subscriptions") for page in pages for item in page]

    def create_subscription(self, notification_url: str, resource: str, client_state: str) -> Subscription:
        """Subscribe ``notification_url`` to changes of ``resource``.

        BC answers only after calling ``notification_url?validationToken=…`` and getting the
        token back, so the receiver must be up. Sent again only when BC refused it unrun.

        Args:
            notification_url: where BC posts notifications.
            resource: an entity set of this company (``customers``), or a full resource path
                (``/api/v2.0/companies(<id>)/customers``).
            client_state: the shared secret BC echoes in each notification (≤ 2,048 characters).

        Raises:
            PermanentError: the handshake failed, the resource does not support webhooks, the
                200-subscription limit is reached, or ``client_state`` is too long.
            RetriableError: BC is unreachable or throttling; the subscription may exist, so list
                before creating again.
            ConfigurationError: the credentials or permissions are wrong.
        """
        if len(client_state) > _MAX_CLIENT_STATE:
            raise PermanentError(
                f"a webhook clientState may have at most {_MAX_CLIENT_STATE} characters", code="ClientStateTooLong"
            )
        if "/" not in resource:
            resource = f"/api/v2.0/{self._set_path(resource)}"
        doing = "creating a webhook subscription"
        body = {"notificationUrl": notification_url, "resource": resource, "clientState": client_state}
        response = self._request("POST", "subscriptions", doing=doing, idempotent=False, json=body)
        return self._subscription(self._json(response, doing), doing, response.headers.get("ETag"))

    def renew_subscription(self, subscription_id: str, etag: str) -> Subscription:
        """Extend a subscription by BC's 3 days (BC repeats the validation handshake).

        Raises:
            RetriableError: the subscription changed since ``etag`` was read (re-list and
                renew again), or BC is unreachable or throttling.
            PermanentError: the subscription does not exist (any more) or the handshake failed.
            ConfigurationError: the credentials or permissions are wrong.
        """
        doing = "renewing a webhook subscription"
        path = f"subscriptions({string_literal(subscription_id)})"
        response = self._request("PATCH", path, doing=doing, headers={"If-Match": etag}, json={})
        return self._subscription(self._json(response, doing), doing, response.headers.get("ETag"))

    def delete_subscription(self, subscription_id: str, etag: str | None = None) -> None:
        """Delete a subscription; one already gone counts as deleted.

        Raises:
            RetriableError: BC is unreachable or throttling, or ``etag`` is stale.
            ConfigurationError: the credentials or permissions are wrong.
        """
        path = f"subscriptions({string_literal(subscription_id)})"
        self._request(
            "DELETE",
            path,
            doing="deleting a webhook subscription",
            headers={"If-Match": etag or "*"},
            accept=frozenset({404}),
        )

    # -- plumbing ------------------------------------------------------------------------------------
    def _set_path(self, entity_set: str) -> str:
        if "/" in entity_set:
            raise PermanentError(f"{entity_set!r} is not an entity set name", code="InvalidPropertyName")
        return f"{self._company}/{field_name(entity_set)}"

    @staticmethod
    def _select(select: Sequence[str], *always: str) -> str:
        names = dict.fromkeys(field_name(name) for name in ("id", *always, *select))
        return ",".join(names)

    def _request(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        idempotent: bool = True,
        accept: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """One request, retried briefly in process: always on 429/503, on other transient
        failures only if ``idempotent``; statuses in ``accept`` are returned, not raised."""
        for attempt in stamina.retry_context(
            on=_should_retry(idempotent), attempts=_RETRY_ATTEMPTS, timeout=_RETRY_TIMEOUT_SECONDS
        ):
            with attempt:
                response = self._api.send_once(method, path, doing=doing, **kwargs)
                if response.status_code < 400 or response.status_code in accept:
                    return response
                error = business_central_error(response, doing)
                if response.status_code in _NOT_RUN and isinstance(error, RetriableError):
                    raise _NotRun(error.message, code=error.code, retry_after=error.retry_after)
                raise error
        raise AssertionError("unreachable: stamina re-raises the last error")

    @staticmethod
    def _json(response: requests.Response, doing: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # A gateway's HTML error page or a truncated body: worth another try later.
            raise RetriableError(f"Business Central: {doing}: the answer was not a JSON object", code="BadResponse")
        return body

    @staticmethod
    def _page(response: requests.Response, doing: str) -> JsonPage:
        try:
            return collection_page(response)
        except ValueError:
            # A gateway's HTML error page or a truncated body: worth another try later.
            raise RetriableError(
                f"Business Central: {doing}: the answer was no page of records", code="BadResponse"
            ) from None

    def _pages(
        self, path: str, params: dict[str, str] | None, page_size: int | None, doing: str
    ) -> Iterator[Sequence[Record]]:
        # BC does not carry the page size in its nextLink, so the Prefer header goes on every page.
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
        previous: str | None = None
        while True:
            page = self._page(self._request("GET", path, doing=doing, params=params, headers=headers), doing)
            link = page.next_link
            if len(page):
                yield page
            # Let go of this page before the next is read: two pages of 20,000 records at once
            # would double the memory a long read needs.
            del page
            if not link:
                return
            if link == previous:
                raise PermanentError(
                    f"Business Central: {doing}: the API's paging went round in a loop", code="PagingLoop"
                )
            path, params, previous = link, None, link

    def _subscription(self, body: Any, doing: str, etag: str | None = None) -> Subscription:
        try:
            expires = body.get("expirationDateTime")
            return Subscription(
                subscription_id=str(body["subscriptionId"]),
                notification_url=str(body.get("notificationUrl", "")),
                resource=str(body.get("resource", "")),
                expiration=dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None,
                etag=str(body.get("@odata.etag") or etag or ""),
                client_state=str(body.get("clientState", "")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise PermanentError(
                f"Business Central: {doing}: unexpected subscription shape ({type(error).__name__})", code="BadResponse"
            ) from None

    def _write(self, ops: list[_Op], *, idempotent: bool, doing: str) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome | None] = [None] * len(ops)
        pending: list[int] = []
        for index, op in enumerate(ops):
            problem = self._prepare(op)
            if problem is None:
                pending.append(index)
            else:
                outcomes[index] = WriteOutcome(ok=False, record_id=op.record_id, error=problem)
        for round_number in range(_ITEM_RETRY_ROUNDS + 1):
            if not pending:
                break
            chunks = [pending[i : i + MAX_BATCH_REQUESTS] for i in range(0, len(pending), MAX_BATCH_REQUESTS)]

            def run(chunk: list[int]) -> dict[int, _Answer | SyncError]:
                return self._send_batch(chunk, ops, idempotent=idempotent, doing=doing)

            with ThreadPoolExecutor(min(self._parallel_batches, len(chunks))) as pool:
                results = list(pool.map(run, chunks))
            pending, wait = [], 0.0
            last_round = round_number == _ITEM_RETRY_ROUNDS
            for result in results:
                for index, answer in result.items():
                    if isinstance(answer, _Answer) and answer.status in _NOT_RUN and not last_round:
                        # BC did not run this one operation (throttled inside the batch): resend it.
                        pending.append(index)
                        error = batch_item_error(answer.status, answer.body, answer.headers, doing)
                        asked = error.retry_after if isinstance(error, RetriableError) else None
                        wait = max(wait, asked if asked is not None else 2.0**round_number)
                    else:
                        outcomes[index] = self._outcome(ops[index], answer, doing)
            if pending:
                time.sleep(min(wait, _ITEM_RETRY_MAX_WAIT_SECONDS))
        # Every operation has an outcome by now (the last round settles whatever is left).
        return [
            o or WriteOutcome(ok=False, error=RetriableError(f"Business Central: {doing}: not sent")) for o in outcomes
        ]

    def _prepare(self, op: _Op) -> SyncError | None:
        """Check the id and make the body plain JSON; a problem fails this operation only."""
        if op.record_id is not None:
            guid = _guid_or_none(op.record_id)
            if guid is None:
                return PermanentError(f"{op.record_id!r} is not a valid GUID", code="InvalidGuid")
            op.url = f"{op.url}({guid})"
        if op.body is not None:
            try:
                op.body = json.loads(json.dumps(op.body, default=_jsonable))
            except (TypeError, ValueError) as error:
                return PermanentError(f"the values cannot be sent as JSON: {error}", code="NotJsonSerializable")
        return None

    def _send_batch(
        self, chunk: list[int], ops: list[_Op], *, idempotent: bool, doing: str
    ) -> dict[int, _Answer | SyncError]:
        """Send one ``$batch``; every operation of the chunk gets an answer or the batch's error."""
        requests_ = []
        for index in chunk:
            op = ops[index]
            item: dict[str, Any] = {"id": str(index), "method": op.method, "url": op.url, "headers": dict(op.headers)}
            if op.body is not None:
                item["headers"]["Content-Type"] = "application/json"
                item["body"] = op.body
            requests_.append(item)
        try:
            response = self._request("POST", "$batch", doing=doing, idempotent=idempotent, json={"requests": requests_})
            answers = self._json(response, doing).get("responses")
            if not isinstance(answers, list):
                raise RetriableError(
                    f"Business Central: {doing}: the $batch answer had no responses", code="BadResponse"
                )
        except SyncError as error:
            if not idempotent and isinstance(error, RetriableError) and not isinstance(error, _NotRun):
                error = RetriableError(
                    f"{error.message} (some records of the batch may have been created: reconcile before retrying)",
                    code="OutcomeUnknown",
                    retry_after=error.retry_after,
                )
            return dict.fromkeys(chunk, error)
        result: dict[int, _Answer | SyncError] = {}
        for answer in answers:
            if not isinstance(answer, dict):
                continue
            try:
                index = int(answer.get("id", ""))
                status = int(answer.get("status", 0))
            except (TypeError, ValueError):
                continue
            if index in chunk:
                result[index] = _Answer(status, answer.get("headers") or {}, answer.get("body"))
        missing = RetriableError(
            f"Business Central: {doing}: the $batch answer left this record out", code="BadResponse"
        )
        return {index: result.get(index, missing) for index in chunk}

    @staticmethod
    def _outcome(op: _Op, answer: _Answer | SyncError, doing: str) -> WriteOutcome:
        if isinstance(answer, SyncError):
            return WriteOutcome(ok=False, record_id=op.record_id, error=answer)
        if op.method == "DELETE" and answer.status == 404:
            return WriteOutcome(ok=True, record_id=op.record_id)  # already gone: the goal is met
        if answer.status >= 400:
            return WriteOutcome(
                ok=False,
                record_id=op.record_id,
                error=batch_item_error(answer.status, answer.body, answer.headers, doing),
            )
        record = answer.body if isinstance(answer.body, dict) else None
        if record is not None:
            record = {k: v for k, v in record.items() if k != "@odata.context"}
        record_id = op.record_id or (str(record["id"]) if record and "id" in record else None)
        return WriteOutcome(ok=True, record_id=record_id, record=record)
