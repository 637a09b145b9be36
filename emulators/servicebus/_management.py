"""The ``<queue>/$management`` request/response node: one executor per operation.

Responses follow the real service: ``statusCode``/``statusDescription``/``errorCondition``
application properties, the request's message-id as correlation-id, the result as an amqp-value
map. Operations the emulator does not implement answer 501 ``amqp:not-implemented``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._broker import Broker, Queue
from ._codec import Array, Symbol
from ._message import parse_message

if TYPE_CHECKING:
    from ._amqp import _Request

__all__ = ["Management"]

_VENDOR = "com.microsoft:"
_LOCK_LOST = "com.microsoft:message-lock-lost"
_LOCK_LOST_TEXT = (
    "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue."
)


class _Failure(Exception):
    def __init__(self, status: int, condition: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.condition = condition
        self.description = description


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes) and len(value) == 16:
        return uuid.UUID(bytes=value)
    return uuid.UUID(str(value))


class Management:
    """Executes $management operations against the broker."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._executors: dict[str, Callable[[Queue, dict[str, Any]], tuple[int, Any]]] = {
            "renew-lock": self._renew_lock,
            "peek-message": self._peek,
            "update-disposition": self._update_disposition,
            "schedule-message": self._schedule,
            "cancel-scheduled-message": self._cancel_scheduled,
        }

    def handle(self, queue: Queue, request: _Request) -> bytes:
        from ._amqp import _response

        operation = str(request.application_properties.get("operation", ""))
        name = operation[len(_VENDOR) :] if operation.startswith(_VENDOR) else operation
        body = request.body if isinstance(request.body, dict) else {}
        body = {str(k): v for k, v in body.items()}
        executor = self._executors.get(name)
        try:
            if executor is None:
                raise _Failure(
                    501, "amqp:not-implemented", f"The emulator does not support the operation '{operation}'."
                )
            status, value = executor(queue, body)
            properties: dict[str, Any] = {"statusCode": status, "statusDescription": "OK"}
            if status == 204:
                properties["statusDescription"] = "No messages found."
        except _Failure as failure:
            properties = {
                "statusCode": failure.status,
                "statusDescription": failure.description,
                "errorCondition": Symbol(failure.condition),
            }
            value = None
        return _response(request, properties, value)

    def _tokens(self, body: dict[str, Any]) -> list[uuid.UUID]:
        tokens = body.get("lock-tokens")
        if not isinstance(tokens, list) or not tokens:
            raise _Failure(400, "com.microsoft:argument-error", "'lock-tokens' must be a non-empty array.")
        return [_uuid(t) for t in tokens]

    def _renew_lock(self, queue: Queue, body: dict[str, Any]) -> tuple[int, Any]:
        expirations = []
        for token in self._tokens(body):
            until = self._broker.renew(queue, token)
            if until is None:
                raise _Failure(410, _LOCK_LOST, _LOCK_LOST_TEXT)
            expirations.append(until)
        return 200, {"expirations": Array(0x83, expirations)}

    def _peek(self, queue: Queue, body: dict[str, Any]) -> tuple[int, Any]:
        start = int(body.get("from-sequence-number") or 0)
        count = int(body.get("message-count") or 1)
        found = self._broker.peek(queue, start, count)
        if not found:
            return 204, None
        return 200, {"messages": [{"message": m.encode(with_lock=False)} for m in found]}

    def _update_disposition(self, queue: Queue, body: dict[str, Any]) -> tuple[int, Any]:
        status = str(body.get("disposition-status", ""))
        tokens = self._tokens(body)
        if status == "defered":
            raise _Failure(501, "amqp:not-implemented", "The emulator does not support deferral.")
        for token in tokens:
            if status == "completed":
                ok = self._broker.complete(queue, token)
            elif status == "abandoned":
                ok = self._broker.abandon(queue, token, body.get("properties-to-modify") or None)
            elif status == "suspended":
                ok = self._broker.dead_letter(
                    queue,
                    token,
                    body.get("deadletter-reason"),
                    body.get("deadletter-description"),
                )
            else:
                raise _Failure(400, "com.microsoft:argument-error", f"Unknown disposition-status {status!r}.")
            if not ok:
                raise _Failure(410, _LOCK_LOST, _LOCK_LOST_TEXT)
        return 200, {}

    def _schedule(self, queue: Queue, body: dict[str, Any]) -> tuple[int, Any]:
        if queue.is_dead_letter:
            raise _Failure(400, "amqp:not-allowed", "Messages cannot be scheduled on a dead-letter queue.")
        entries = body.get("messages")
        if not isinstance(entries, list):
            raise _Failure(400, "com.microsoft:argument-error", "'messages' must be a list.")
        numbers = []
        for entry in entries:
            raw = entry.get("message") if isinstance(entry, dict) else None
            if not isinstance(raw, bytes):
                raise _Failure(400, "com.microsoft:argument-error", "each entry needs a binary 'message'.")
            numbers.append(self._broker.enqueue(queue, parse_message(raw)))
        return 200, {"sequence-numbers": Array(0x81, numbers)}

    def _cancel_scheduled(self, queue: Queue, body: dict[str, Any]) -> tuple[int, Any]:
        numbers = body.get("sequence-numbers")
        if not isinstance(numbers, list):
            raise _Failure(400, "com.microsoft:argument-error", "'sequence-numbers' must be an array.")
        self._broker.cancel_scheduled(queue, [int(n) for n in numbers])
        return 200, {}
