"""What ``make run`` and ``make demo`` do with a started local stack, through the connector's own
HTTP surface (and the emulators' back doors only where a person would act in Sales or BC).

``initial_sync``: the connector's main job once, so the running stack starts coupled: a full
synchronization, then push registration (BC webhooks, Dataverse service endpoint), with a summary
of what was synced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from emulators.stack import LocalStack

__all__ = ["Connector", "initial_sync"]

_COUNTERS = ("inserted", "modified", "coupled", "unchanged", "failed")


@dataclass
class Connector:
    """The connector's HTTP surface on a local stack."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, stack: LocalStack) -> Connector:
        """The connector of ``stack``, with its function key."""
        line = stack.host.start_line
        return cls(str(line["base_url"]), {"x-functions-key": str(line["function_key"])})

    def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        """Status and JSON answer of one route."""
        response = requests.request(
            method, f"{self.base}/{path}", headers=self.headers, json=body, params=params or None, timeout=180
        )
        return response.status_code, (response.json() if response.content else None)

    def run_timer(self, name: str) -> dict[str, Any]:
        """Run a timer function now (the host's admin endpoint), waiting for it to finish."""
        root = self.base.removesuffix("/api")
        response = requests.post(f"{root}/admin/functions/{name}", headers=self.headers, json={}, timeout=300)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def wait_for(check: Callable[[], Any], timeout: float, pause: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; ``None`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result or None
        time.sleep(pause)


def _line_summary(line: dict[str, Any]) -> str:
    totals = dict.fromkeys(_COUNTERS, 0)
    for job in (line.get("couplingJob"), line.get("toDataverseJob"), line.get("fromDataverseJob")):
        for counter in _COUNTERS:
            totals[counter] += int((job or {}).get(counter) or 0)
    counts = ", ".join(f"{n} {c}" for c, n in totals.items() if n) or "nothing to do"
    message = f" ({line['message']})" if line.get("message") else ""
    return f"  {line['mapping']:<18} {line['status']:<13} {counts}{message}"


def initial_sync(stack: LocalStack, *, timeout: float = 300) -> tuple[bool, list[str]]:
    """Full synchronization, then push registration; (everything worked, summary lines)."""
    connector = Connector.of(stack)
    lines = ["", "Full synchronization (POST /api/fullsync):"]
    status, started = connector.call("POST", "fullsync")
    if status != 202:
        return False, [*lines, f"  refused: {status} {started}"]
    run_id = started["runId"]
    began = time.monotonic()

    def finished() -> dict[str, Any] | None:
        _, run = connector.call("GET", f"fullsync/{run_id}")
        return run if run and run.get("status") == "Finished" else None

    run = wait_for(finished, timeout)
    if run is None:
        return False, [*lines, f"  not finished after {timeout:.0f} s; see GET /api/fullsync/{run_id}"]
    lines += [_line_summary(line) for line in run["lines"]]
    ok = all(line["status"] in ("Finished", "Nothing To Do") for line in run["lines"])
    lines.append(
        f"  {'finished' if ok else 'finished with errors (GET /api/errors)'} in {time.monotonic() - began:.1f} s"
    )
    status, setup = connector.call("POST", "setup/push")
    items = (setup or {}).get("items", [])
    failed = [i for i in items if i.get("action") == "failed"]
    lines += [
        "",
        f"Push registration (POST /api/setup/push): {len(items) - len(failed)} of {len(items)} in place"
        + (f"; not available here: {', '.join(sorted({i['name'] for i in failed}))}" if failed else ""),
    ]
    return ok and status in (200, 207), lines
