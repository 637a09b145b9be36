"""Service protection limits (wire-protocols §A.7) on the shared cost model's scaled clock.

Per user, over a sliding window of 300 *server* seconds: 6,000 requests and 1,200 s of combined
execution time; and at most 52 requests in flight. The concurrency limit fails at once; the
other two are checked when a request arrives and charged after it ran, so they may be exceeded a
little before they bite, as the service documents. A user who keeps sending while throttled gets
longer ``Retry-After`` values. ``time_scale`` on the cost model speeds the whole thing up.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from emulators._http import CostModel, SlidingWindow

from . import _errors as err


@dataclass
class LimitSettings:
    enabled: bool = True
    requests: int = 6000
    execution_seconds: float = 1200.0
    concurrency: int = 52
    window_seconds: float = 300.0
    dop_hint: int = 4


class ServiceProtection:
    def __init__(self, costs: CostModel, settings: LimitSettings | None = None) -> None:
        self.costs = costs
        self.settings = settings or LimitSettings()
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = defaultdict(int)
        self._violations: dict[str, int] = defaultdict(int)
        self._build_windows()

    def _build_windows(self) -> None:
        s = self.settings
        self.request_window: SlidingWindow = self.costs.window(limit=s.requests, window=s.window_seconds)
        self.time_window: SlidingWindow = self.costs.window(limit=s.execution_seconds, window=s.window_seconds)

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for name, value in spec.items():
                if not hasattr(self.settings, name):
                    raise ValueError(f"unknown limit setting {name!r}")
                current = getattr(self.settings, name)
                setattr(self.settings, name, type(current)(value))
            self._build_windows()
            self._violations.clear()
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return dict(self.settings.__dict__)

    def _throttled(self, user: str, code: str, message: str, server_wait: float) -> err.DataverseError:
        with self._lock:
            self._violations[user] += 1
            strikes = self._violations[user]
        # Clients that keep sending while throttled are told to wait longer each time.
        real_wait = self.costs.to_real(server_wait) * min(strikes, 8)
        retry_after = max(1, math.ceil(real_wait))
        return err.DataverseError(429, code, message, {"Retry-After": str(retry_after)})

    def enter(self, user: str) -> None:
        """Admit a request or raise the 429; pair every successful call with :meth:`leave`."""
        s = self.settings
        if not s.enabled:
            return
        with self._lock:
            if self._in_flight[user] >= s.concurrency:
                concurrent = True
            else:
                concurrent = False
                self._in_flight[user] += 1
        if concurrent:
            raise self._throttled(
                user,
                err.TOO_MANY_CONCURRENT,
                f"Number of concurrent requests exceeded the limit of {s.concurrency}.",
                1.0,
            )
        try:
            used = self.time_window.total(user)
            if used >= s.execution_seconds:
                raise self._throttled(
                    user,
                    err.TOO_MUCH_TIME,
                    "Combined execution time of incoming requests exceeded limit of "
                    f"{int(s.execution_seconds * 1000):,} milliseconds over time window of "
                    f"{int(s.window_seconds)} seconds. Decrease number of concurrent requests or reduce the "
                    "duration of requests and try again later.",
                    s.window_seconds / 10,
                )
            wait = self.request_window.try_add(user, 1)
            if wait is not None:
                raise self._throttled(
                    user,
                    err.TOO_MANY_REQUESTS,
                    f"Number of requests exceeded the limit of {s.requests} over time window of "
                    f"{int(s.window_seconds)} seconds.",
                    wait,
                )
        except err.DataverseError:
            self.leave(user, 0.0)
            raise
        with self._lock:
            self._violations[user] = 0

    def leave(self, user: str, server_seconds: float) -> None:
        if not self.settings.enabled:
            return
        with self._lock:
            self._in_flight[user] = max(0, self._in_flight[user] - 1)
        if server_seconds > 0:
            self.time_window.add(user, server_seconds)

    def headers(self, user: str) -> dict[str, str]:
        s = self.settings
        requests_left = max(0, s.requests - int(self.request_window.total(user)))
        time_left_ms = max(0, int((s.execution_seconds - self.time_window.total(user)) * 1000))
        return {
            "x-ms-ratelimit-burst-remaining-xrm-requests": str(requests_left),
            "x-ms-ratelimit-time-remaining-xrm-requests": f"{time_left_ms:,}.00",
        }

    def reset(self) -> None:
        self.request_window.reset()
        self.time_window.reset()
        with self._lock:
            self._violations.clear()
