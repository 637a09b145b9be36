"""pytest fixtures for the servicebus piece of the local stack (session-scoped: started once per test run).

``servicebus_emulator`` starts ``python -m emulators.servicebus`` on a free port with the
connector's queues (``shared.resources.QUEUES``) and yields a :class:`ServiceBusEmulator`:

- ``connection_string``: give it to ``ServiceBusClient.from_connection_string`` unchanged;
- ``start_line``: the JSON the emulator printed (also ``port`` and ``admin_url``);
- ``create_queue(name, *, max_delivery_count=10, lock_duration_seconds=30)``: create a queue
  (or change an existing one's settings) without restarting the broker; use a fresh name per
  test, since the broker lives for the whole session;
- ``queue_depth(name)`` / ``purge(name)``: the admin back door's counts and purge.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from emulators._launch import StackProcess, free_port, start_json_line_process
from emulators.servicebus import admin

__all__ = ["ServiceBusEmulator", "servicebus_emulator"]


@dataclass
class ServiceBusEmulator:
    """A running Service Bus emulator and its back door."""

    process: StackProcess

    @property
    def start_line(self) -> dict[str, Any]:
        return self.process.start_line

    @property
    def connection_string(self) -> str:
        return str(self.start_line["connection_string"])

    def create_queue(self, name: str, *, max_delivery_count: int = 10, lock_duration_seconds: float = 30) -> None:
        admin.create_queue(
            self.start_line,
            name,
            max_delivery_count=max_delivery_count,
            lock_duration_seconds=lock_duration_seconds,
        )

    def queue_depth(self, name: str) -> dict[str, Any]:
        return admin.queue_depth(self.start_line, name)

    def purge(self, name: str) -> int:
        return admin.purge(self.start_line, name)


@pytest.fixture(scope="session")
def servicebus_emulator() -> Iterator[ServiceBusEmulator]:
    process = start_json_line_process(
        "servicebus emulator",
        [sys.executable, "-m", "emulators.servicebus", "--port", str(free_port())],
        timeout=30,
    )
    try:
        yield ServiceBusEmulator(process)
    finally:
        process.stop()
        if process.process.returncode not in (0, None):
            tail = "\n".join(process.output_tail[-40:])
            print(f"servicebus emulator exited with {process.process.returncode}:\n{tail}", file=sys.stderr)
