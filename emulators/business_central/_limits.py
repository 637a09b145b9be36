"""BC online's per-user limits: 6,000 requests per 5 minutes, 5 running at once, 95 queued.

Windows and the queue timeout run on the cost model's server clock, so ``time_scale`` lets a test
or benchmark hit them in seconds. Retry-After on 429 is optional in BC (documented only for 502
and 503), so it is a switch, off by default; on 503 it is always sent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from emulators._http import CostModel, SlidingWindow
from emulators.business_central._errors import BcError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Admission control per user (the token's object id)."""

    def __init__(self, costs: CostModel) -> None:
        self.costs = costs
        self.requests_per_window = 6000
        self.window_seconds = 300.0
        self.max_concurrent = 5
        self.max_queued = 95
        self.queue_timeout = 480.0  # server seconds a request may wait before 503
        self.retry_after_on_429 = False
        self.operation_timeout = 480.0  # server seconds → 408
        self.gateway_timeout = 600.0  # server seconds → 504
        self._window: SlidingWindow = costs.window(limit=self.requests_per_window, window=self.window_seconds)
        self._running: dict[str, int] = {}
        self._queued: dict[str, int] = {}
        self._condition = threading.Condition()

    def configure(self, spec: dict[str, Any]) -> None:
        """Back-door changes (unknown keys are ignored: they belong to other settings)."""
        for key in ("requests_per_window", "max_concurrent", "max_queued"):
            if key in spec:
                setattr(self, key, int(spec[key]))
        for key in ("window_seconds", "queue_timeout", "operation_timeout", "gateway_timeout"):
            if key in spec:
                setattr(self, key, float(spec[key]))
        if "retry_after_on_429" in spec:
            self.retry_after_on_429 = bool(spec["retry_after_on_429"])
        self._window = self.costs.window(limit=self.requests_per_window, window=self.window_seconds)

    def as_dict(self) -> dict[str, Any]:
        """Current limits."""
        return {
            "requests_per_window": self.requests_per_window,
            "window_seconds": self.window_seconds,
            "max_concurrent": self.max_concurrent,
            "max_queued": self.max_queued,
            "queue_timeout": self.queue_timeout,
            "retry_after_on_429": self.retry_after_on_429,
            "operation_timeout": self.operation_timeout,
            "gateway_timeout": self.gateway_timeout,
        }

    def _too_many(self, message: str, wait: float) -> BcError:
        headers = {"Retry-After": str(max(1, round(self.costs.to_real(wait))))} if self.retry_after_on_429 else {}
        return BcError(429, "TooManyRequests", message, headers)

    def _enter(self, user: str) -> BcError | None:
        wait = self._window.try_add(user, 1)
        if wait is not None:
            return self._too_many(
                f"Too many requests: the limit is {self.requests_per_window} requests per "
                f"{self.window_seconds:g} seconds per user.",
                wait,
            )
        with self._condition:
            if self._running.get(user, 0) < self.max_concurrent:
                self._running[user] = self._running.get(user, 0) + 1
                return None
            if self._queued.get(user, 0) >= self.max_queued:
                return self._too_many("Too many requests: the request queue is full.", 1.0)
            self._queued[user] = self._queued.get(user, 0) + 1
            try:
                admitted = self._condition.wait_for(
                    lambda: self._running.get(user, 0) < self.max_concurrent,
                    timeout=self.costs.to_real(self.queue_timeout),
                )
            finally:
                self._queued[user] -= 1
            if not admitted:
                return BcError(
                    503,
                    "ServiceUnavailable",
                    "The request waited too long in the queue and was not processed.",
                    {"Retry-After": "1"},
                )
            self._running[user] = self._running.get(user, 0) + 1
            return None

    def _leave(self, user: str) -> None:
        with self._condition:
            self._running[user] -= 1
            self._condition.notify_all()

    @contextlib.contextmanager
    def admit(self, user: str) -> Iterator[BcError | None]:
        """Hold a running slot for the body of the ``with``; yields the refusal instead, if any."""
        refusal = self._enter(user)
        try:
            yield refusal
        finally:
            if refusal is None:
                self._leave(user)

    def charge(self, user: str, operation: str) -> BcError | None:
        """Spend one operation's server time (sleeping when the cost model says so).

        An operation costing more than the 8-minute operation timeout is answered 408; more than
        the 10-minute gateway timeout, 504. Costs come from the back door's cost model, so a
        benchmark can provoke either on a scaled clock.
        """
        cost = self.costs.charge(operation)
        if cost >= self.gateway_timeout:
            return BcError(504, "GatewayTimeout", "The request did not complete within the gateway timeout.")
        if cost >= self.operation_timeout:
            return BcError(408, "RequestTimeout", "The operation timed out and the session was canceled.")
        return None
