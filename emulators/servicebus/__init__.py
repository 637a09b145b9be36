"""Service Bus emulator: an AMQP 1.0 broker on loopback that the real ``azure-servicebus`` SDK uses.

Start it with ``python -m emulators.servicebus --port N``; drive its back door with
:mod:`emulators.servicebus.admin`.
"""

from __future__ import annotations

from .admin import AdminError, create_queue, health, list_queues, purge, queue_depth

__all__ = ["AdminError", "create_queue", "health", "list_queues", "purge", "queue_depth"]
