"""pytest fixtures for Azurite (Table Storage): started once per test session on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from emulators._launch import free_port
from emulators.azurite import Azurite, start_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A running Azurite table service for the whole session."""
    service = start_azurite(free_port())
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def unique_mapping() -> str:
    """A mapping name no other test uses, so tests sharing Azurite never see each other's rows."""
    return f"TEST-{uuid.uuid4().hex[:10].upper()}"
