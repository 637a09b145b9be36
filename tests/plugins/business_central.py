"""pytest fixtures for the business_central piece of the local stack (session-scoped: started once per test run).

``business_central_emulator`` starts ``python -m emulators.business_central --seed demo`` on a free
port and yields a :class:`RunningEmulator`: ``start_line`` (the JSON start line, a dict) and
``back_door`` (an ``emulators._http.client.BackDoor``), plus ``session()`` for an HTTPS session
that trusts the emulator's CA.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from emulators._http.client import BackDoor
from emulators._launch import free_port, start_json_line_process
from tests.plugins._emulators import RunningEmulator


@pytest.fixture(scope="session")
def business_central_emulator() -> Iterator[RunningEmulator]:
    """The BC API v2.0 emulator on the demo data set, for the whole test session."""
    process = start_json_line_process(
        "business-central-emulator",
        [sys.executable, "-m", "emulators.business_central", "--port", str(free_port()), "--seed", "demo"],
    )
    try:
        yield RunningEmulator(start_line=process.start_line, back_door=BackDoor(process.start_line), process=process)
    finally:
        process.stop()
