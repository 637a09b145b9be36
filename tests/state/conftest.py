"""The state layer's tests share one opened Table Storage (the session's Azurite) per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.azurite import Azurite
from shared.adapters.tables import TableState, open_table_state
from shared.config import TableStorageSettings


@pytest.fixture(scope="module")
def state(azurite: Azurite) -> Iterator[TableState]:
    opened = open_table_state(TableStorageSettings(connection_string=azurite.connection_string))
    yield opened
    opened.close()
