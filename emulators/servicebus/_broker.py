"""Queue semantics, independent of the wire: enqueue, dispatch, locks, settlement, dead-lettering.

Every method runs on the broker's event-loop thread (the AMQP connections and the admin endpoint
live on that loop too), so the state needs no locks: confinement to one thread is what makes it
thread-safe. Timers (lock expiry, scheduled enqueue) are ``loop.call_at`` handles, never polling.
"""

from __future__ import annotations

import asyncio
import heapq
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._codec import Symbol
from ._message import StoredMessage, now_ms

__all__ = ["DEAD_LETTER_SUFFIX", "Broker", "Consumer", "Queue", "QueueSettings"]

DEAD_LETTER_SUFFIX = "/$deadletterqueue"

# Broker-owned annotations: a sender (e.g. one forwarding a received message) must not set them.
_BROKER_ANNOTATIONS = (
    "x-opt-sequence-number",
    "x-opt-enqueued-time",
    "x-opt-locked-until",
    "x-opt-lock-token",
    "x-opt-deadletter-source",
)


class Consumer(Protocol):
    """A receive link as the broker sees it."""

    @property
    def peek_lock(self) -> bool: ...

    @property
    def credit(self) -> int: ...

    def deliver(self, queue: Queue, message: StoredMessage) -> None: ...


@dataclass(frozen=True)
class QueueSettings:
    """What a queue is configured with (the subset of Service Bus queue properties we honour)."""

    max_delivery_count: int = 10
    lock_duration_seconds: float = 30.0


@dataclass
class Queue:
    """A queue or a dead-letter sub-queue and every message it holds."""

    name: str
    settings: QueueSettings
    is_dead_letter: bool = False
    dead_letter: Queue | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    available: list[int] = field(default_factory=list)  # heap of sequence numbers
    locks: dict[uuid.UUID, StoredMessage] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)
    next_consumer: int = 0

    def depth(self) -> dict[str, int]:
        at = now_ms()
        scheduled = sum(1 for m in self.messages.values() if m.scheduled_ms)
        # Expired messages are dropped lazily at dispatch; they are already gone for a receiver.
        expired = sum(1 for m in self.messages.values() if m.lock_token is None and m.expired(at))
        return {
            "active": len(self.messages) - len(self.locks) - scheduled - expired,
            "locked": len(self.locks),
            "scheduled": scheduled,
        }


class Broker:
    """All queues of one emulator instance."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[str, Queue] = {}
        self._next_sequence = 1

    # -- entities ---------------------------------------------------------------------------

    def put_queue(self, name: str, settings: QueueSettings) -> Queue:
        """Create the queue, or change its settings while keeping its messages."""
        key = name.lower()
        queue = self._queues.get(key)
        if queue is None:
            queue = Queue(name=name, settings=settings)
            queue.dead_letter = Queue(name=name + "/$DeadLetterQueue", settings=settings, is_dead_letter=True)
            self._queues[key] = queue
        else:
            queue.settings = settings
            assert queue.dead_letter is not None
            queue.dead_letter.settings = settings
        return queue

    def find(self, path: str) -> Queue | None:
        """Resolve ``queue`` or ``queue/$DeadLetterQueue`` (case-insensitive, like Service Bus)."""
        key = path.lower()
        if key.endswith(DEAD_LETTER_SUFFIX):
            parent = self._queues.get(key[: -len(DEAD_LETTER_SUFFIX)])
            return parent.dead_letter if parent else None
        return self._queues.get(key)

    def queues(self) -> list[Queue]:
        return list(self._queues.values())

    def purge(self, queue: Queue) -> int:
        removed = 0
        for target in (queue, queue.dead_letter):
            if target is None:
                continue
            for message in target.messages.values():
                self._cancel_timer(message)
            removed += len(target.messages)
            target.messages.clear()
            target.available.clear()
            target.locks.clear()
        return removed

    # -- consumers --------------------------------------------------------------------------

    def add_consumer(self, queue: Queue, consumer: Consumer) -> None:
        queue.consumers.append(consumer)

    def remove_consumer(self, queue: Queue, consumer: Consumer) -> None:
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(self, queue: Queue, message: StoredMessage) -> int:
        """Store a newly sent message; returns its sequence number."""
        for key in _BROKER_ANNOTATIONS:
            message.annotations.remove(Symbol(key))
        message.sequence_number = self._next_sequence
        self._next_sequence += 1
        message.enqueued_ms = now_ms()
        message.delivery_count = 0
        ttl = message.ttl_ms
        if ttl:
            message.expires_ms = message.enqueued_ms + ttl
        scheduled = message.annotations.get(Symbol("x-opt-scheduled-enqueue-time"))
        queue.messages[message.sequence_number] = message
        if isinstance(scheduled, int) and scheduled > message.enqueued_ms:
            message.scheduled_ms = scheduled
            delay = (scheduled - message.enqueued_ms) / 1000
            message.extra["timer"] = self._loop.call_later(delay, self._make_visible, queue, message)
        else:
            self._make_available(queue, message)
        return message.sequence_number

    def cancel_scheduled(self, queue: Queue, sequence_numbers: list[int]) -> None:
        for number in sequence_numbers:
            message = queue.messages.get(number)
            if message is not None and message.scheduled_ms:
                self._cancel_timer(message)
                del queue.messages[number]

    def _make_visible(self, queue: Queue, message: StoredMessage) -> None:
        message.extra.pop("timer", None)
        if queue.messages.get(message.sequence_number) is message:
            message.scheduled_ms = 0
            message.enqueued_ms = now_ms()
            self._make_available(queue, message)

    def _make_available(self, queue: Queue, message: StoredMessage) -> None:
        heapq.heappush(queue.available, message.sequence_number)
        self.dispatch(queue)

    # -- dispatch ---------------------------------------------------------------------------

    def dispatch(self, queue: Queue) -> None:
        """Hand available messages to consumers with credit, round-robin, in sequence order."""
        while queue.available and queue.consumers:
            consumer = self._next_consumer(queue)
            if consumer is None:
                return
            number = heapq.heappop(queue.available)
            message = queue.messages.get(number)
            if message is None or message.lock_token is not None:
                continue
            if message.expired(now_ms()):
                del queue.messages[number]  # Service Bus drops expired messages (no DLQ by default)
                continue
            message.delivery_count += 1
            if consumer.peek_lock:
                self._lock(queue, message)
            else:
                del queue.messages[number]
            consumer.deliver(queue, message)

    def _next_consumer(self, queue: Queue) -> Consumer | None:
        count = len(queue.consumers)
        for offset in range(count):
            index = (queue.next_consumer + offset) % count
            consumer = queue.consumers[index]
            if consumer.credit > 0:
                queue.next_consumer = (index + 1) % count
                return consumer
        return None

    # -- locks ------------------------------------------------------------------------------

    def _lock(self, queue: Queue, message: StoredMessage) -> None:
        token = uuid.uuid4()
        message.lock_token = token
        queue.locks[token] = message
        self._arm_lock(queue, message)

    def _arm_lock(self, queue: Queue, message: StoredMessage) -> None:
        self._cancel_timer(message)
        duration = queue.settings.lock_duration_seconds
        message.locked_until_ms = now_ms() + int(duration * 1000)
        token = message.lock_token
        assert token is not None
        message.extra["timer"] = self._loop.call_later(duration, self._lock_expired, queue, token)

    def _lock_expired(self, queue: Queue, token: uuid.UUID) -> None:
        message = queue.locks.get(token)
        if message is not None:
            message.extra.pop("timer", None)
            self._return_or_dead_letter(queue, message)

    @staticmethod
    def _cancel_timer(message: StoredMessage) -> None:
        timer = message.extra.pop("timer", None)
        if timer is not None:
            timer.cancel()

    def _unlock(self, queue: Queue, token: uuid.UUID) -> StoredMessage | None:
        message = queue.locks.pop(token, None)
        if message is not None:
            self._cancel_timer(message)
            message.lock_token = None
            message.locked_until_ms = 0
        return message

    def is_locked(self, queue: Queue, token: uuid.UUID) -> bool:
        return token in queue.locks

    # -- settlement (each returns False when the lock is gone: the caller reports lock-lost) ----

    def complete(self, queue: Queue, token: uuid.UUID) -> bool:
        message = self._unlock(queue, token)
        if message is None:
            return False
        queue.messages.pop(message.sequence_number, None)
        return True

    def abandon(self, queue: Queue, token: uuid.UUID, annotations: dict[Any, Any] | None = None) -> bool:
        message = queue.locks.get(token)
        if message is None:
            return False
        for key, value in (annotations or {}).items():
            message.annotations.set(key, value)
        self._return_or_dead_letter(queue, message)
        return True

    def release(self, queue: Queue, token: uuid.UUID) -> bool:
        """Give back a delivery the application never saw (prefetch released on close)."""
        message = self._unlock(queue, token)
        if message is None:
            return False
        message.delivery_count = max(0, message.delivery_count - 1)
        self._make_available(queue, message)
        return True

    def dead_letter(self, queue: Queue, token: uuid.UUID, reason: str | None, description: str | None) -> bool:
        message = self._unlock(queue, token)
        if message is None:
            return False
        self._move_to_dead_letter(queue, message, reason, description)
        return True

    def renew(self, queue: Queue, token: uuid.UUID) -> int | None:
        """Extend the lock by the queue's lock duration; returns the new locked-until (ms)."""
        message = queue.locks.get(token)
        if message is None:
            return None
        self._arm_lock(queue, message)
        return message.locked_until_ms

    def _return_or_dead_letter(self, queue: Queue, message: StoredMessage) -> None:
        assert message.lock_token is not None
        self._unlock(queue, message.lock_token)
        limit = queue.settings.max_delivery_count
        if not queue.is_dead_letter and message.delivery_count >= limit:
            self._move_to_dead_letter(
                queue,
                message,
                "MaxDeliveryCountExceeded",
                f"Message could not be consumed after {limit} delivery attempts.",
            )
        else:
            self._make_available(queue, message)

    def _move_to_dead_letter(
        self, queue: Queue, message: StoredMessage, reason: str | None, description: str | None
    ) -> None:
        queue.messages.pop(message.sequence_number, None)
        target = queue if queue.is_dead_letter else queue.dead_letter
        assert target is not None
        copy = message.copy_for_dead_letter()
        if reason is not None:
            copy.application_properties.set("DeadLetterReason", reason)
        if description is not None:
            copy.application_properties.set("DeadLetterErrorDescription", description)
        target.messages[copy.sequence_number] = copy
        self._make_available(target, copy)

    # -- browse -----------------------------------------------------------------------------

    def peek(self, queue: Queue, from_sequence: int, count: int) -> list[StoredMessage]:
        at = now_ms()
        found = [m for number, m in sorted(queue.messages.items()) if number >= from_sequence and not m.expired(at)]
        return found[:count]
