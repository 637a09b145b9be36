"""The Service Bus emulator, driven only through the real ``azure-servicebus`` SDK."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import (
    MessageLockLostError,
    ServiceBusAuthenticationError,
    ServiceBusError,
)

from tests.plugins.servicebus import ServiceBusEmulator

pytestmark = pytest.mark.stack

QueueFactory = Callable[..., str]


@pytest.fixture
def client(servicebus_emulator: ServiceBusEmulator) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(servicebus_emulator.connection_string) as sb:
        yield sb


@pytest.fixture
def new_queue(servicebus_emulator: ServiceBusEmulator) -> QueueFactory:
    """Create a queue with a unique name (the broker is shared by the whole session)."""

    def create(*, max_delivery_count: int = 10, lock_duration_seconds: float = 30) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        servicebus_emulator.create_queue(
            name, max_delivery_count=max_delivery_count, lock_duration_seconds=lock_duration_seconds
        )
        return name

    return create


def _send(client: ServiceBusClient, queue: str, *bodies: str) -> None:
    with client.get_queue_sender(queue) as sender:
        sender.send_messages([ServiceBusMessage(body) for body in bodies])


def test_token_signed_with_the_wrong_key_is_rejected(servicebus_emulator: ServiceBusEmulator) -> None:
    wrong = servicebus_emulator.connection_string.replace("SAS_KEY_VALUE", "not-the-key")
    with (
        ServiceBusClient.from_connection_string(wrong, retry_total=0) as sb,
        pytest.raises(ServiceBusAuthenticationError) as raised,
        sb.get_queue_sender("sales-orders") as sender,
    ):
        sender.send_messages(ServiceBusMessage("never"))
    assert "invalid signature" in str(raised.value.inner_exception)


def test_single_message_keeps_its_properties(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    with client.get_queue_sender(queue) as sender:
        sender.send_messages(
            ServiceBusMessage(
                '{"order": "SO-1"}',
                message_id="msg-1",
                content_type="application/json",
                correlation_id="corr-1",
                subject="convert",
                application_properties={"attempt": 3, "source": "dataverse", "flag": True},
                time_to_live=dt.timedelta(minutes=5),
            )
        )
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert str(message) == '{"order": "SO-1"}'
        assert message.message_id == "msg-1"
        assert message.content_type == "application/json"
        assert message.correlation_id == "corr-1"
        assert message.subject == "convert"
        assert message.application_properties == {b"attempt": 3, b"source": b"dataverse", b"flag": True}
        assert message.time_to_live == dt.timedelta(minutes=5)
        # The wire (and so the Python SDK) counts previous attempts: 0 on the first delivery.
        assert message.delivery_count == 0
        assert message.sequence_number is not None
        assert message.enqueued_time_utc is not None
        assert message.locked_until_utc is not None
        assert message.locked_until_utc > dt.datetime.now(dt.UTC)
        receiver.complete_message(message)
    assert servicebus_emulator.queue_depth(queue)["active"] == 0


def test_batch_send_and_receiver_iteration(client: ServiceBusClient, new_queue: QueueFactory) -> None:
    queue = new_queue()
    with client.get_queue_sender(queue) as sender:
        batch = sender.create_message_batch()
        for index in range(5):
            batch.add_message(ServiceBusMessage(f"m{index}", application_properties={"index": index}))
        sender.send_messages(batch)
    seen = []
    with client.get_queue_receiver(queue, max_wait_time=0.5) as receiver:
        for message in receiver:
            seen.append((str(message), message.application_properties[b"index"]))
            receiver.complete_message(message)
    assert seen == [(f"m{i}", i) for i in range(5)]


def test_expired_lock_redelivers_and_settling_it_fails(client: ServiceBusClient, new_queue: QueueFactory) -> None:
    queue = new_queue(lock_duration_seconds=1)
    _send(client, queue, "slow handler")
    with client.get_queue_receiver(queue) as receiver:
        (first,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        (again,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert again.delivery_count == 1
        assert again.sequence_number == first.sequence_number
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(first)
        receiver.complete_message(again)


def test_broker_reports_lock_lost_for_a_message_it_no_longer_holds(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    # The SDK checks lock expiry itself first; purging behind its back makes the broker answer.
    queue = new_queue()
    _send(client, queue, "gone")
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        servicebus_emulator.purge(queue)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(message)


def test_renew_lock_extends_locked_until(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue(lock_duration_seconds=1)
    _send(client, queue, "long job")
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        before = message.locked_until_utc
        assert before is not None
        time.sleep(0.6)
        after = receiver.renew_message_lock(message)
        assert after > before
        assert message.locked_until_utc == after
        time.sleep(0.6)  # past the original lock, within the renewed one
        assert servicebus_emulator.queue_depth(queue)["locked"] == 1
        receiver.complete_message(message)


def test_dead_letter_with_reason_is_readable_on_the_sub_queue(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    with client.get_queue_sender(queue) as sender:
        sender.send_messages(ServiceBusMessage("poison", message_id="bad-1", application_properties={"k": "v"}))
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        receiver.dead_letter_message(message, reason="InvalidPayload", error_description="order id missing")
    depth = servicebus_emulator.queue_depth(queue)
    assert (depth["active"], depth["locked"], depth["dead_lettered"]) == (0, 0, 1)
    with client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dead:
        (letter,) = dead.receive_messages(max_message_count=1, max_wait_time=5)
        assert str(letter) == "poison"
        assert letter.message_id == "bad-1"
        assert letter.dead_letter_reason == "InvalidPayload"
        assert letter.dead_letter_error_description == "order id missing"
        assert letter.application_properties[b"k"] == b"v"
        dead.complete_message(letter)


def test_abandon_redelivers_until_max_delivery_count_then_dead_letters(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue(max_delivery_count=2)
    _send(client, queue, "always fails")
    sequence_numbers = set()
    with client.get_queue_receiver(queue) as receiver:
        for attempt in (1, 2):
            (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
            assert message.delivery_count == attempt - 1  # abandon puts it back with the count raised
            sequence_numbers.add(message.sequence_number)
            receiver.abandon_message(message)
    assert len(sequence_numbers) == 1
    assert servicebus_emulator.queue_depth(queue)["dead_lettered"] == 1
    with client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dead:
        (letter,) = dead.receive_messages(max_message_count=1, max_wait_time=5)
        assert letter.dead_letter_reason == "MaxDeliveryCountExceeded"
        assert letter.dead_letter_error_description
        dead.complete_message(letter)


def test_lock_expiry_counts_towards_max_delivery_count(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue(max_delivery_count=1, lock_duration_seconds=0.5)
    _send(client, queue, "crashing host")
    with client.get_queue_receiver(queue) as receiver:
        assert len(receiver.receive_messages(max_message_count=1, max_wait_time=5)) == 1
    deadline = time.monotonic() + 5
    while servicebus_emulator.queue_depth(queue)["dead_lettered"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servicebus_emulator.queue_depth(queue)["dead_lettered"] == 1


def test_receive_and_delete(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    _send(client, queue, "a", "b")
    with client.get_queue_receiver(queue, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE) as receiver:
        got = []
        while len(got) < 2:
            batch = receiver.receive_messages(max_message_count=2, max_wait_time=5)
            assert batch
            got += [str(m) for m in batch]
        assert sorted(got) == ["a", "b"]
        depth = servicebus_emulator.queue_depth(queue)
        assert (depth["active"], depth["locked"]) == (0, 0)


def test_peek_does_not_lock_or_consume(client: ServiceBusClient, new_queue: QueueFactory) -> None:
    queue = new_queue()
    _send(client, queue, "p1", "p2", "p3")
    with client.get_queue_receiver(queue) as receiver:
        peeked = receiver.peek_messages(max_message_count=10)
        assert [str(m) for m in peeked] == ["p1", "p2", "p3"]
        assert receiver.peek_messages(max_message_count=10) == []  # the SDK continues after the last
        again = receiver.peek_messages(max_message_count=2, sequence_number=peeked[1].sequence_number)
        assert [str(m) for m in again] == ["p2", "p3"]
        received = receiver.receive_messages(max_message_count=3, max_wait_time=5)
        while len(received) < 3:
            received += receiver.receive_messages(max_message_count=3, max_wait_time=5)
        assert sorted(str(m) for m in received) == ["p1", "p2", "p3"]
        for message in received:
            receiver.complete_message(message)


def test_scheduled_message_appears_at_its_time(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    with client.get_queue_sender(queue) as sender:
        (number,) = sender.schedule_messages(ServiceBusMessage("later"), when)
        assert number > 0
        assert servicebus_emulator.queue_depth(queue)["scheduled"] == 1
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert dt.datetime.now(dt.UTC) >= when
        assert str(message) == "later"
        receiver.complete_message(message)


def test_unknown_queue_is_refused_like_the_real_service(servicebus_emulator: ServiceBusEmulator) -> None:
    # Service Bus refuses the CBS token for an entity that does not exist (put-token 404 "could
    # not be found"); the SDK surfaces that as ServiceBusAuthenticationError, for senders and
    # receivers alike. retry_total=0: the SDK would otherwise retry it with back-off.
    with ServiceBusClient.from_connection_string(servicebus_emulator.connection_string, retry_total=0) as sb:
        with pytest.raises(ServiceBusAuthenticationError) as raised, sb.get_queue_sender("no-such-queue") as sender:
            sender.send_messages(ServiceBusMessage("lost"))
        assert "404" in str(raised.value.inner_exception)
        assert "could not be found" in str(raised.value.inner_exception)
        with pytest.raises(ServiceBusAuthenticationError) as raised, sb.get_queue_receiver("no-such-queue") as receiver:
            receiver.receive_messages(max_message_count=1, max_wait_time=1)
        assert "could not be found" in str(raised.value.inner_exception)


def test_sessions_fail_loudly(client: ServiceBusClient, new_queue: QueueFactory) -> None:
    queue = new_queue()
    with (
        pytest.raises(ServiceBusError, match="does not support sessions"),
        client.get_queue_receiver(queue, session_id="s1", max_wait_time=2) as receiver,
    ):
        receiver.receive_messages(max_message_count=1, max_wait_time=1)


def test_a_thousand_messages_with_concurrent_receivers(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    total = 1000
    started = time.monotonic()
    with client.get_queue_sender(queue) as sender:
        for start in range(0, total, 100):
            batch = sender.create_message_batch()
            for index in range(start, start + 100):
                batch.add_message(ServiceBusMessage(str(index), message_id=str(index)))
            sender.send_messages(batch)

    received: list[list[str]] = [[], [], []]
    errors: list[BaseException] = []

    def drain(bucket: list[str]) -> None:
        try:
            # One client per thread: a client's connection is not meant to be shared by threads.
            with (
                ServiceBusClient.from_connection_string(servicebus_emulator.connection_string) as own,
                own.get_queue_receiver(queue, prefetch_count=20) as receiver,
            ):
                while True:
                    batch = receiver.receive_messages(max_message_count=50, max_wait_time=1)
                    if not batch:
                        return
                    for message in batch:
                        bucket.append(str(message))
                        receiver.complete_message(message)
        except BaseException as error:  # surfaced below, in the test thread
            errors.append(error)

    threads = [threading.Thread(target=drain, args=(bucket,)) for bucket in received]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    everything = [body for bucket in received for body in bucket]
    assert len(everything) == total
    assert sorted(everything, key=int) == [str(i) for i in range(total)]
    assert sum(1 for bucket in received if bucket) >= 2, "work was not shared between receivers"
    assert time.monotonic() - started < 20
    assert servicebus_emulator.queue_depth(queue) == {
        **servicebus_emulator.queue_depth(queue),
        "active": 0,
        "locked": 0,
        "dead_lettered": 0,
    }


def test_closing_a_receiver_releases_its_prefetched_messages(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    _send(client, queue, *[f"p{i}" for i in range(5)])
    with client.get_queue_receiver(queue, prefetch_count=10) as receiver:
        held = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert len(held) == 1
    depth = servicebus_emulator.queue_depth(queue)
    # The one the application holds stays locked (it can still settle it); the rest go back.
    assert (depth["active"], depth["locked"]) == (4, 1)
    with client.get_queue_receiver(queue) as receiver:
        again = receiver.receive_messages(max_message_count=4, max_wait_time=5)
        assert all(message.delivery_count == 0 for message in again)


def test_deferral_fails_loudly(
    client: ServiceBusClient, new_queue: QueueFactory, servicebus_emulator: ServiceBusEmulator
) -> None:
    queue = new_queue()
    _send(client, queue, "later please")
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        with pytest.raises(ServiceBusError, match="not-implemented"):
            receiver.defer_message(message)
    # The SDK shuts the receiver down after that error; the message stays locked until expiry.
    assert servicebus_emulator.queue_depth(queue)["locked"] == 1


def test_topics_and_subscriptions_fail_loudly(servicebus_emulator: ServiceBusEmulator) -> None:
    with (
        ServiceBusClient.from_connection_string(servicebus_emulator.connection_string, retry_total=0) as sb,
        pytest.raises(ServiceBusAuthenticationError) as raised,
        sb.get_subscription_receiver("orders", "audit") as receiver,
    ):
        receiver.receive_messages(max_message_count=1, max_wait_time=1)
    assert "queues only" in str(raised.value.inner_exception)


def test_expired_messages_are_not_delivered(client: ServiceBusClient, new_queue: QueueFactory) -> None:
    queue = new_queue()
    with client.get_queue_sender(queue) as sender:
        sender.send_messages(
            [
                # The SDK sends time-to-live in whole seconds.
                ServiceBusMessage("stale", time_to_live=dt.timedelta(seconds=1)),
                ServiceBusMessage("fresh"),
            ]
        )
    time.sleep(1.05)
    with client.get_queue_receiver(queue) as receiver:
        (message,) = receiver.receive_messages(max_message_count=2, max_wait_time=1)
        assert str(message) == "fresh"
        receiver.complete_message(message)
