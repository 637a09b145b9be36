"""Fault injection and the server-time cost model, shared by the HTTPS emulators.

Faults are armed through the back door and consumed by matching API requests:

- ``fail``: answer ``status`` with ``body`` (or the API's own error shape) instead of executing;
- ``throttle``: a ``fail`` with 429 and ``Retry-After``;
- ``delay``: sleep ``delay`` seconds, then execute normally;
- ``drop``: execute (the write is committed), then close the connection without answering,
  which is what "response lost after commit" looks like to a client.

The cost model gives each operation a cost in *server seconds* and runs sliding windows on a
time-scale knob, so a benchmark reaches a 300-second service-protection window in seconds.
"""

from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CostModel", "Fault", "FaultPlan", "SlidingWindow"]

FAULT_KINDS = frozenset({"fail", "throttle", "delay", "drop"})


@dataclass
class Fault:
    """One armed fault. ``path`` is a regular expression searched in the request path."""

    kind: str
    method: str = "*"
    path: str = ""
    count: int = 1
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    delay: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.kind == "throttle" and self.status == 500:
            self.status = 429
        re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is one this fault is armed for."""
        return self.method in ("*", method.upper()) and re.search(self.path, path) is not None

    def as_dict(self) -> dict[str, Any]:
        """The fault as the back door lists it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "count": self.count,
            "status": self.status,
            "body": self.body,
            "headers": self.headers,
            "retry_after": self.retry_after,
            "delay": self.delay,
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Fault:
        """Build a fault from a back-door request body."""
        allowed = {"kind", "method", "path", "count", "status", "body", "headers", "retry_after", "delay"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        spec = dict(spec)
        spec["method"] = str(spec.get("method", "*")).upper()
        return cls(**spec)


class FaultPlan:
    """The armed faults, consumed first-armed-first by matching requests."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: collections.Counter[str] = collections.Counter()

    def arm(self, fault: Fault) -> Fault:
        """Arm ``fault``."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one shot of the first fault matching the request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    self.fired[fault.kind] += 1
                    return fault
        return None

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """The armed faults and their remaining counts."""
        with self._lock:
            return [f.as_dict() for f in self._faults]


class SlidingWindow:
    """Amounts per key over a sliding window of ``window`` *server* seconds.

    Real time is multiplied by the cost model's ``time_scale`` to get server time, so with
    ``time_scale=100`` a 300-second window passes in 3 real seconds.
    """

    def __init__(self, *, limit: float, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, collections.deque[tuple[float, float]]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> collections.deque[tuple[float, float]]:
        events = self._events[key]
        while events and events[0][0] <= now - self.window:
            events.popleft()
        return events

    def total(self, key: str) -> float:
        """The amount used by ``key`` in the current window."""
        with self._lock:
            return sum(amount for _, amount in self._trim(key, self._clock()))

    def try_add(self, key: str, amount: float) -> float | None:
        """Record ``amount`` if it fits under the limit; otherwise return server seconds until it would."""
        with self._lock:
            now = self._clock()
            events = self._trim(key, now)
            used = sum(a for _, a in events)
            if used + amount <= self.limit or not events:
                events.append((now, amount))
                return None
            # Wait until enough of the oldest events have left the window.
            freed, wait = used + amount - self.limit, 0.0
            for stamp, a in events:
                freed -= a
                wait = stamp + self.window - now
                if freed <= 0:
                    break
            return max(wait, 0.0)

    def add(self, key: str, amount: float) -> None:
        """Record ``amount`` unconditionally (costs known only after the operation ran)."""
        with self._lock:
            now = self._clock()
            self._trim(key, now).append((now, amount))

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._events.clear()


class CostModel:
    """Per-operation server-time costs and the scaled server clock the limits run on.

    Args:
        costs: server seconds per operation name (the emulator chooses names, e.g. ``"read"``,
            ``"create"``, ``"batch"``).
        default: cost of an operation not in ``costs``.
        time_scale: server seconds per real second; ``1`` is real time.
        sleep: when true, an operation also sleeps ``cost / time_scale`` real seconds, so
            latency (and concurrency pressure) follows the model.
    """

    def __init__(
        self,
        costs: dict[str, float] | None = None,
        *,
        default: float = 0.005,
        time_scale: float = 1.0,
        sleep: bool = False,
    ) -> None:
        self.costs = dict(costs or {})
        self.default = default
        self.time_scale = time_scale
        self.sleep = sleep
        self._origin_real = time.monotonic()
        self._origin_server = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Server time in seconds (monotonic, scaled)."""
        with self._lock:
            return self._origin_server + (time.monotonic() - self._origin_real) * self.time_scale

    def cost(self, operation: str) -> float:
        """Server seconds one ``operation`` costs."""
        return self.costs.get(operation, self.default)

    def to_real(self, server_seconds: float) -> float:
        """Real seconds for a span of server seconds (e.g. a Retry-After the client will sleep)."""
        return server_seconds / self.time_scale if self.time_scale > 0 else server_seconds

    def charge(self, operation: str) -> float:
        """Return the cost of ``operation``, sleeping for it in real time when ``sleep`` is on."""
        cost = self.cost(operation)
        if self.sleep and cost > 0:
            time.sleep(self.to_real(cost))
        return cost

    def window(self, *, limit: float, window: float) -> SlidingWindow:
        """A sliding window that runs on this model's server clock."""
        return SlidingWindow(limit=limit, window=window, clock=self.now)

    def configure(self, spec: dict[str, Any]) -> None:
        """Apply a back-door update: any of ``costs`` (merged), ``default``, ``time_scale``, ``sleep``."""
        with self._lock:
            if "time_scale" in spec:
                scale = float(spec["time_scale"])
                if scale <= 0:
                    raise ValueError("time_scale must be positive")
                # Re-anchor so server time stays continuous across a scale change.
                now_real = time.monotonic()
                self._origin_server += (now_real - self._origin_real) * self.time_scale
                self._origin_real = now_real
                self.time_scale = scale
        if "costs" in spec:
            self.costs.update({str(k): float(v) for k, v in dict(spec["costs"]).items()})
        if "default" in spec:
            self.default = float(spec["default"])
        if "sleep" in spec:
            self.sleep = bool(spec["sleep"])

    def as_dict(self) -> dict[str, Any]:
        """The current settings."""
        return {
            "costs": dict(self.costs),
            "default": self.default,
            "time_scale": self.time_scale,
            "sleep": self.sleep,
            "server_time": self.now(),
        }
