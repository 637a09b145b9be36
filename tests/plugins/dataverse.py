"""pytest fixtures for the dataverse piece of the local stack (session-scoped: started once per test run).

``dataverse_emulator`` starts ``python -m emulators.dataverse --seed demo`` on a free port and
yields a :class:`RunningEmulator` (the same shape as the BC fixture's): ``start_line`` (the JSON
start line, a dict: ``base_url``, ``org_url``, ``token_url``, ``authority``, ``client_id``,
``client_secret``, ``scope``, ``ca_bundle``, ``application_user_id``, ``admin``), ``back_door``
(an ``emulators._http.client.BackDoor``; Dataverse adds the actions ``limits``,
``change_tracking``, ``rows?entity=`` and ``pushes``) and ``session()``.

The emulator is shared by the whole session: a test that changes data should restore a
``back_door.snapshot()`` afterwards (``tests/emulators/dataverse`` does so for every test).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from emulators._http.client import BackDoor
from emulators._launch import free_port, start_json_line_process
from tests.plugins._emulators import RunningEmulator


@pytest.fixture(scope="session")
def dataverse_emulator() -> Iterator[RunningEmulator]:
    """The Dataverse Web API v9.2 emulator on the demo data set, for the whole test session."""
    process = start_json_line_process(
        "dataverse-emulator",
        [sys.executable, "-m", "emulators.dataverse", "--port", str(free_port()), "--seed", "demo"],
    )
    try:
        yield RunningEmulator(start_line=process.start_line, back_door=BackDoor(process.start_line), process=process)
    finally:
        process.stop()
