"""Health: ask every dependency whether it answers, in parallel, each within a time limit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from shared.errors import SyncError
from shared.ports import HealthProbe

__all__ = ["DependencyStatus", "HealthReport", "check_health"]


@dataclass(frozen=True)
class DependencyStatus:
    """Whether one dependency answered, how fast, and if not, why."""

    name: str
    ok: bool
    latency_ms: int
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """The status of every dependency."""

    dependencies: tuple[DependencyStatus, ...]

    @property
    def healthy(self) -> bool:
        """True only when every dependency answered."""
        return all(d.ok for d in self.dependencies)


def _run(probe: HealthProbe) -> DependencyStatus:
    started = time.monotonic()
    try:
        probe.check()
    except SyncError as error:
        return DependencyStatus(probe.name, False, _ms(started), error.code, error.message)
    except Exception as error:  # a probe bug must not break the health answer; report its type only
        return DependencyStatus(probe.name, False, _ms(started), "Unexpected", type(error).__name__)
    return DependencyStatus(probe.name, True, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def check_health(probes: Sequence[HealthProbe], *, timeout_seconds: float = 10.0) -> HealthReport:
    """Check every probe concurrently; one that does not answer in time counts as unreachable."""
    if not probes:
        return HealthReport(())
    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="health")
    try:
        futures = [(p, pool.submit(_run, p)) for p in probes]
        deadline = time.monotonic() + timeout_seconds
        statuses = []
        for probe, future in futures:
            try:
                statuses.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                statuses.append(
                    DependencyStatus(
                        probe.name,
                        False,
                        int(timeout_seconds * 1000),
                        "Timeout",
                        f"no answer within {timeout_seconds:.0f} s",
                    )
                )
    finally:
        # Do not wait for a hung probe; its thread ends when its own I/O times out.
        pool.shutdown(wait=False, cancel_futures=True)
    return HealthReport(tuple(statuses))
