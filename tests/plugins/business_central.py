"""pytest fixtures for the business_central piece of the local stack (session-scoped: started once per test run).

``business_central_emulator`` starts ``python -m emulators.business_central --seed demo`` on a free
port and yields a :class:`RunningEmulator`: ``start_line`` (the JSON start line, a dict) and
``back_door`` (an ``emulators._http.client.BackDoor``), plus ``session()`` for an HTTPS session
that trusts the emulator's CA.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from emulators._http.client import BackDoor, https_session
from emulators._launch import StackProcess, free_port, start_json_line_process


@dataclass(frozen=True)
class RunningEmulator:
    """A started HTTPS emulator: its start line and its back door."""

    start_line: dict[str, Any]
    back_door: BackDoor
    process: StackProcess

    def session(self) -> requests.Session:
        """A requests session that verifies TLS against the emulator's CA."""
        return https_session(str(self.start_line["ca_bundle"]))


def stop_stack_process(process: StackProcess) -> None:
    """Stop ``process`` and close its stdout pipe once the reader thread has drained it.

    ``StackProcess.stop`` leaves the pipe open, which ``filterwarnings = error`` turns into an
    unraisable ResourceWarning at session end.
    """
    process.stop()
    for thread in threading.enumerate():
        if thread.name == f"{process.name}-output":
            thread.join(timeout=5)
    if process.process.stdout is not None:
        process.process.stdout.close()


@pytest.fixture(scope="session")
def business_central_emulator() -> Iterator[RunningEmulator]:
    """The BC API v2.0 emulator on the demo data set, for the whole test session."""
    process = start_json_line_process(
        "business-central-emulator",
        [sys.executable, "-m", "emulators.business_central", "--port", str(free_port()), "--seed", "demo"],
    )
    try:
        yield RunningEmulator(
            start_line=process.start_line, back_door=BackDoor(process.start_line), process=process
        )
    finally:
        stop_stack_process(process)
