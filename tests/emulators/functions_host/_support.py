"""Shared helpers for the local Functions host tests: a private copy of the sample app, records."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE_APP = Path(__file__).parent / "sample_app"

# SB triggers need a connection; tests without the Service Bus emulator switch them off the Azure way.
QUEUE_FUNCTIONS = ("queue_ok", "queue_flaky", "queue_slow", "queue_batch")
QUEUES_DISABLED = {f"AzureWebJobs.{name}.Disabled": "true" for name in QUEUE_FUNCTIONS}


def copy_sample_app(target: Path, local_values: dict[str, str]) -> Path:
    """Copy the sample app to ``target`` with a fresh local.settings.json.

    local.settings.json is git-ignored, so tests write their own instead of relying on the
    checked-out one.
    """
    shutil.copytree(SAMPLE_APP, target, ignore=shutil.ignore_patterns("__pycache__", "local.settings.json"))
    settings = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python", **local_values}}
    (target / "local.settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return target


def read_records(path: Path, function: str | None = None) -> list[dict[str, Any]]:
    """The invocations the sample app recorded, optionally for one function."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if function is None or row["function"] == function]


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, log: Callable[[], str]) -> Any:
    """Poll ``predicate`` until it is truthy; fail with the host log if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; host said:\n{log()}")
