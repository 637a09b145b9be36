"""What the HTTPS emulator fixtures share (a plain module, not a plugin, so tests may import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from emulators._http.client import BackDoor, https_session
from emulators._launch import StackProcess


@dataclass(frozen=True)
class RunningEmulator:
    """A started HTTPS emulator: its start line and its back door."""

    start_line: dict[str, Any]
    back_door: BackDoor
    process: StackProcess

    def session(self) -> requests.Session:
        """A requests session that verifies TLS against the emulator's CA."""
        return https_session(str(self.start_line["ca_bundle"]))
