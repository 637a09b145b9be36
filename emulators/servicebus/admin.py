"""Client of the emulator's admin back door, for tests, the health check and ``make run``.

Each helper takes the emulator's start line (the JSON it printed) and talks to its ``admin_url``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["AdminError", "create_queue", "health", "list_queues", "purge", "queue_depth"]

# Never route loopback admin calls through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class AdminError(RuntimeError):
    """The admin endpoint refused the request (unknown queue, bad settings) or is unreachable."""


def _call(start_line: Mapping[str, Any], method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the URL is the emulator's own http:// admin URL
        str(start_line["admin_url"]) + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise AdminError(f"{method} {path} -> {error.code}: {detail}") from error
    except OSError as error:
        raise AdminError(f"{method} {path} failed: {error}") from error


def create_queue(
    start_line: Mapping[str, Any],
    name: str,
    *,
    max_delivery_count: int = 10,
    lock_duration_seconds: float = 30,
) -> dict[str, Any]:
    """Create the queue (or update the settings of an existing one, keeping its messages).

    Raises:
        AdminError: bad settings or the emulator is unreachable.
    """
    result: dict[str, Any] = _call(
        start_line,
        "PUT",
        f"/queues/{quote(name, safe='')}",
        {"max_delivery_count": max_delivery_count, "lock_duration_seconds": lock_duration_seconds},
    )
    return result


def queue_depth(start_line: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Counts for one queue: ``active``, ``locked``, ``scheduled``, ``dead_lettered``.

    Raises:
        AdminError: unknown queue or the emulator is unreachable.
    """
    result: dict[str, Any] = _call(start_line, "GET", f"/queues/{quote(name, safe='')}")
    return result


def purge(start_line: Mapping[str, Any], name: str) -> int:
    """Drop every message of the queue and of its dead-letter sub-queue; returns how many.

    Raises:
        AdminError: unknown queue or the emulator is unreachable.
    """
    return int(_call(start_line, "DELETE", f"/queues/{quote(name, safe='')}/messages")["purged"])


def list_queues(start_line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every queue with its settings and depth.

    Raises:
        AdminError: the emulator is unreachable.
    """
    return list(_call(start_line, "GET", "/queues")["queues"])


def health(start_line: Mapping[str, Any]) -> bool:
    """True when the emulator answers its health check."""
    try:
        return bool(_call(start_line, "GET", "/health").get("status") == "ok")
    except AdminError:
        return False
