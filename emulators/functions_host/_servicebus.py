"""Service Bus queue triggers driven by the real ``azure-servicebus`` SDK (async, peek-lock).

Settlement follows the Functions host: complete when the function returns, abandon when it
raises or times out, so the broker redelivers and dead-letters after the queue's max delivery
count. Locks are renewed while the function runs, up to ``maxAutoLockRenewalDuration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
from azure.functions.meta import Datum
from azure.functions.servicebus import ServiceBusMessage
from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient, ServiceBusReceiver
from azure.servicebus.amqp import AmqpMessageBodyType

from ._app import ServiceBusFunction
from ._invoke import HOST_LOG, Invoker
from ._settings import HostConfig

__all__ = ["ServiceBusDriver", "to_function_message", "to_trigger_value"]

# How long one receive call may block; bounds how quickly a stop request is noticed.
_RECEIVE_WAIT_SECONDS = 1.0
# After a connection failure, wait this long before trying again (the real host backs off too).
_RECONNECT_DELAY_SECONDS = 2.0


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _body_bytes(message: ServiceBusReceivedMessage) -> bytes:
    if message.body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    body = message.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    # An AMQP value/sequence body (sent by a non-.NET producer): the host hands it over as JSON.
    return json.dumps(body, default=str).encode("utf-8")


def to_function_message(message: ServiceBusReceivedMessage) -> ServiceBusMessage:
    """Build the ``func.ServiceBusMessage`` the Python worker would pass for ``message``."""
    properties = {str(_text(k)): _text(v) for k, v in (message.application_properties or {}).items()}
    # The SDK reports the AMQP header count (prior failed attempts, 0 at first delivery); the
    # Functions host, like the .NET SDK, reports Service Bus' DeliveryCount, which starts at 1.
    delivery_count = (message.delivery_count or 0) + 1
    enqueued = message.enqueued_time_utc
    metadata: dict[str, Datum] = {
        "MessageId": Datum(message.message_id, "string"),
        "DeliveryCount": Datum(delivery_count, "int"),
        "SequenceNumber": Datum(message.sequence_number, "int"),
        "ContentType": Datum(message.content_type, "string"),
        "CorrelationId": Datum(message.correlation_id, "string"),
        "LockToken": Datum(str(message.lock_token), "string"),
        "EnqueuedTimeUtc": Datum(enqueued.isoformat() if enqueued else None, "string"),
        "UserProperties": Datum(json.dumps(properties, default=str), "json"),
        "ApplicationProperties": Datum(json.dumps(properties, default=str), "json"),
    }
    state = message.state
    return ServiceBusMessage(
        body=_body_bytes(message),
        trigger_metadata=metadata,
        application_properties=properties,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        dead_letter_error_description=message.dead_letter_error_description,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_source=message.dead_letter_source,
        delivery_count=delivery_count,
        enqueued_sequence_number=message.enqueued_sequence_number,
        enqueued_time_utc=enqueued,
        expires_at_utc=message.expires_at_utc,
        label=message.subject,
        locked_until=message.locked_until_utc,
        lock_token=str(message.lock_token) if message.lock_token else None,
        message_id=str(message.message_id or ""),
        partition_key=message.partition_key,
        reply_to=message.reply_to,
        reply_to_session_id=message.reply_to_session_id,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time_utc,
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        state=int(state.value) if state is not None else None,
        subject=message.subject,
        time_to_live=message.time_to_live,
        to=message.to,
        transaction_partition_key=None,
        user_properties=dict(properties),
    )


def _convert_one(message: func.ServiceBusMessage, annotation: Any) -> Any:
    # The worker converts to the annotated type: str and bytes get the body, anything else the message.
    if annotation is str:
        return message.get_body().decode("utf-8")
    if annotation is bytes:
        return message.get_body()
    return message


def to_trigger_value(messages: list[ServiceBusMessage], annotation: Any, *, many: bool) -> Any:
    """The argument for the user function: one message, or a list for ``cardinality=many``."""
    if not many:
        return _convert_one(messages[0], annotation)
    item = next(iter(getattr(annotation, "__args__", ()) or ()), None)
    return [_convert_one(message, item) for message in messages]


class ServiceBusDriver:
    """Receives from one queue and invokes one function, at most ``maxConcurrentCalls`` at a time."""

    def __init__(self, function: ServiceBusFunction, invoker: Invoker, config: HostConfig) -> None:
        self.function = function
        self._invoker = invoker
        self._config = config
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._renewal = config.sb_max_auto_lock_renewal
        self._reason = f"New ServiceBus message detected on '{function.queue_name}'."

    def request_stop(self) -> None:
        """Stop receiving; :meth:`run` then drains the invocations in flight and returns."""
        self._stopping.set()

    async def run(self, drain_seconds: float) -> None:
        """Receive and dispatch until stopped, reconnecting after broker or network failures."""
        while not self._stopping.is_set():
            try:
                await self._session(drain_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                HOST_LOG.exception(
                    "Service Bus listener for function '%s' (queue '%s') failed; retrying in %.0f s",
                    self.function.name,
                    self.function.queue_name,
                    _RECONNECT_DELAY_SECONDS,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _RECONNECT_DELAY_SECONDS)

    async def _session(self, drain_seconds: float) -> None:
        client = ServiceBusClient.from_connection_string(self.function.connection_string)
        renewer = AutoLockRenewer(on_lock_renew_failure=self._on_renew_failure)
        async with client:
            receiver = client.get_queue_receiver(
                self.function.queue_name,
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
                prefetch_count=self._config.sb_prefetch_count,
            )
            async with receiver:
                try:
                    await self._receive_loop(receiver, renewer)
                finally:
                    await self._drain(drain_seconds)
                    await renewer.close()

    async def _receive_loop(self, receiver: ServiceBusReceiver, renewer: AutoLockRenewer) -> None:
        # The extension's batch loop awaits each batch before receiving the next; maxConcurrentCalls
        # only applies to one-message dispatch.
        limit = 1 if self.function.many else self._config.sb_max_concurrent_calls
        while not self._stopping.is_set():
            if len(self._in_flight) >= limit:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            wanted = self._config.sb_max_message_batch_size if self.function.many else limit - len(self._in_flight)
            received = await receiver.receive_messages(max_message_count=wanted, max_wait_time=_RECEIVE_WAIT_SECONDS)
            if not received:
                continue
            for message in received:
                if self._renewal is not None and self._renewal > dt.timedelta(0):
                    renewer.register(receiver, message, max_lock_renewal_duration=self._renewal.total_seconds())
            batches = [received] if self.function.many else [[message] for message in received]
            for batch in batches:
                task = asyncio.create_task(self._process(receiver, batch))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _drain(self, timeout: float | None) -> None:
        # Let invocations in flight finish (and settle) before the receiver closes; whatever is
        # still running after ``timeout`` loses its lock and is redelivered by the broker.
        if not self._in_flight:
            return
        pending = set(self._in_flight)
        _, still_running = await asyncio.wait(pending, timeout=timeout)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=5)

    async def _process(self, receiver: ServiceBusReceiver, batch: list[ServiceBusReceivedMessage]) -> None:
        try:
            converted = [to_function_message(message) for message in batch]
            value = to_trigger_value(converted, self.function.call.trigger_annotation, many=self.function.many)
        except Exception:
            # e.g. a str-annotated parameter and a body that is not UTF-8: the host fails the invocation.
            HOST_LOG.exception("Could not bind a message to function '%s'", self.function.name)
            await self._settle("abandon", receiver.abandon_message, batch)
            return
        result = await self._invoker.ainvoke(self.function.call, value, self._reason)
        if result.succeeded:
            if self.function.auto_complete:
                await self._settle("complete", receiver.complete_message, batch)
        else:
            await self._settle("abandon", receiver.abandon_message, batch)

    async def _settle(
        self,
        verb: str,
        settle: Callable[[ServiceBusReceivedMessage], Awaitable[None]],
        batch: list[ServiceBusReceivedMessage],
    ) -> None:
        for message in batch:
            try:
                await settle(message)
            except Exception as exc:  # a lost lock means the broker redelivers anyway
                HOST_LOG.warning(
                    "Could not %s message %s for function '%s': %s",
                    verb,
                    message.message_id,
                    self.function.name,
                    exc,
                )

    async def _on_renew_failure(self, renewable: Any, error: Exception | None) -> None:
        HOST_LOG.warning(
            "Lock renewal for a message of function '%s' stopped: %s", self.function.name, error or "expired"
        )
