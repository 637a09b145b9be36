"""Dataverse Web API v9.2 client: one environment, with service protection handled in process.

Dataverse asks clients to send requests in parallel up to the ``x-ms-dop-hint`` response
header and to back off when a 429 says so (wire-protocols §A.7, §A.7b). Every request goes
through one gate per client: it admits at most the hinted number of requests at a time, halves
that after a 429 and pauses everyone for the ``Retry-After``, then grows back one step at a
time while requests succeed. A throttled request is sent again until a time budget runs out,
so a burst over the limits makes a sync slower, not failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from requests.auth import AuthBase

from shared.adapters._api_client import ApiClient, collection_page
from shared.adapters.auth import TokenProvider
from shared.adapters.dataverse.errors import SERVICE_PROTECTION_CODES, dataverse_error
from shared.errors import RetriableError
from shared.pages import JsonPage, Record

__all__ = ["DataverseWebApi", "json_body"]

_MAX_PARALLEL = 16  # our own ceiling whatever the hint says: the session pool holds 32 connections
_THROTTLED_BUDGET_SECONDS = 180.0  # well below the 10-minute function timeout
_DEFAULT_PAUSE_SECONDS = 1.0


class _ExtraHeaders(AuthBase):
    """Adds per-request headers when each attempt is prepared.

    ``ApiClient.send`` takes ``headers`` out of its arguments on the first attempt, so an
    in-process retry would go out without them (a ``$batch`` without its multipart type). A
    requests auth hook runs again for every attempt, so the headers survive retries.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request


class _Gate:
    """Admits requests up to a limit that follows the server's hint and its 429s."""

    def __init__(self, ceiling: int) -> None:
        self._ceiling = ceiling
        self._hint = 1  # until the first response says otherwise
        self._hint_seen = False
        self._limit = 1
        self._in_flight = 0
        self._successes = 0
        self._resume_at = 0.0
        self._condition = threading.Condition()

    @property
    def hint(self) -> int:
        with self._condition:
            return self._hint

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._condition:
            while True:
                pause = self._resume_at - time.monotonic()
                if pause <= 0 and self._in_flight < self._limit:
                    break
                self._condition.wait(timeout=pause if pause > 0 else None)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._condition:
                self._in_flight -= 1
                self._condition.notify_all()

    def observe(self, response: requests.Response) -> None:
        with self._condition:
            hint = _int_header(response, "x-ms-dop-hint")
            if hint is not None:
                self._hint = max(1, min(hint, self._ceiling))
                if not self._hint_seen:
                    self._hint_seen, self._limit = True, self._hint
                self._limit = min(self._limit, self._hint)
            if response.status_code == 429:
                retry_after = _float_header(response, "Retry-After")
                pause = retry_after if retry_after is not None else _DEFAULT_PAUSE_SECONDS
                self._resume_at = max(self._resume_at, time.monotonic() + pause)
                self._limit = max(1, self._limit // 2)
                self._successes = 0
            elif response.status_code < 400 and self._limit < self._hint:
                self._successes += 1
                if self._successes >= self._limit:  # additive increase: one step per round
                    self._limit, self._successes = self._limit + 1, 0
            self._condition.notify_all()


def _float_header(response: requests.Response, name: str) -> float | None:
    try:
        return max(0.0, float(response.headers.get(name, "")))
    except ValueError:
        return None


def _int_header(response: requests.Response, name: str) -> int | None:
    value = _float_header(response, name)
    return int(value) if value is not None else None


def json_body(response: requests.Response, doing: str) -> dict[str, Any]:
    """The JSON object of a successful response.

    Raises:
        RetriableError: the body is not a JSON object (``UnreadableResponse``): a cut-off
            response is the likely cause, and the same request may well succeed again.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RetriableError(f"Dataverse: {doing}: the response is not a JSON object", code="UnreadableResponse")
    return body


class DataverseWebApi(ApiClient):
    """Requests to one Dataverse environment's Web API."""

    def __init__(
        self, api_url: str, tokens: TokenProvider, session: requests.Session, *, max_parallel: int = _MAX_PARALLEL
    ) -> None:
        super().__init__(
            "Dataverse",
            api_url,
            tokens,
            session,
            map_error=dataverse_error,
            headers={"OData-MaxVersion": "4.0", "OData-Version": "4.0"},
        )
        self._gate = _Gate(max(1, max_parallel))
        # A request's hooks replace the session's (requests' merge rule), so keep the session's too.
        session_hooks = session.hooks.get("response", [])
        self._hooks = {"response": [*session_hooks, self._observe]}

    @property
    def dop_hint(self) -> int:
        """The degree of parallelism the service last recommended (``x-ms-dop-hint``), capped."""
        return self._gate.hint

    def send(self, method: str, path: str, *, doing: str, **kwargs: Any) -> requests.Response:
        """Send one request through the service-protection gate; see the module docstring.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table;
                RetriableError with a service-protection code once the throttling budget is spent.
        """
        extra = _ExtraHeaders(kwargs.pop("headers", None) or {})
        deadline = time.monotonic() + _THROTTLED_BUDGET_SECONDS
        while True:
            with self._gate.slot():
                try:
                    return super().send(method, path, doing=doing, auth=extra, hooks=self._hooks, **kwargs)
                except RetriableError as error:
                    if error.code not in SERVICE_PROTECTION_CODES or time.monotonic() >= deadline:
                        raise
            # The gate has seen the 429 and pauses every caller for its Retry-After before this one.

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        doing: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """GET ``path`` (relative to the API root) and return the JSON object it answers.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table;
                RetriableError (``UnreadableResponse``) when the body is not a JSON object.
        """
        doing = doing or f"reading {path}"
        return json_body(self.send("GET", path, params=params, headers=headers, doing=doing), doing)

    def get_page(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        doing: str = "",
        headers: Mapping[str, str] | None = None,
        convert: Callable[[Record], Record] | None = None,
    ) -> JsonPage:
        """GET one page of a collection, its rows parsed (through ``convert``) only when read.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table;
                RetriableError (``UnreadableResponse``) when the body is no collection page.
        """
        doing = doing or f"reading {path}"
        response = self.send("GET", path, params=params, headers=headers, doing=doing)
        try:
            return collection_page(response, convert)
        except ValueError:
            raise RetriableError(
                f"Dataverse: {doing}: the response is not a page of rows", code="UnreadableResponse"
            ) from None

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._gate.observe(response)

    def ping(self) -> None:
        """Prove the API answers for this identity, as cheaply as the API allows."""
        self.get_json(
            "transactioncurrencies", params={"$select": "isocurrencycode", "$top": "1"}, doing="checking the connection"
        )
