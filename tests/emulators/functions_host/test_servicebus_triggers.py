"""Service Bus queue triggers of the local Functions host against the Service Bus emulator.

Settlement as the real host does it: complete on return, abandon on exception (so the broker
redelivers, then dead-letters after the queue's max delivery count), at most
``maxConcurrentCalls`` invocations at once, locks renewed while a function runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue

from tests.plugins.functions_host import FunctionsHostHandle, start_functions_host

from ._support import copy_sample_app, read_records, wait_for

pytestmark = pytest.mark.stack

FLAKY_MAX_DELIVERY = 3
SLOW_LOCK_SECONDS = 3


@pytest.fixture(scope="module")
def queues(servicebus_emulator: Any) -> dict[str, str]:
    # Fresh names: the broker lives for the whole session.
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"fh-{kind}-{suffix}" for kind in ("ok", "flaky", "slow", "batch")}
    servicebus_emulator.create_queue(names["ok"])
    servicebus_emulator.create_queue(names["flaky"], max_delivery_count=FLAKY_MAX_DELIVERY)
    servicebus_emulator.create_queue(names["slow"], lock_duration_seconds=SLOW_LOCK_SECONDS)
    servicebus_emulator.create_queue(names["batch"])
    return names


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sb-records") / "invocations.jsonl"


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, servicebus_emulator: Any, queues: dict[str, str], record_file: Path
) -> Iterator[FunctionsHostHandle]:
    app_dir = copy_sample_app(tmp_path_factory.mktemp("sb-app") / "sample_app", {"TICK_SCHEDULE": "0 0 0 1 1 *"})
    settings = {
        "SB_CONNECTION": servicebus_emulator.connection_string,
        "OK_QUEUE": queues["ok"],
        "FLAKY_QUEUE": queues["flaky"],
        "SLOW_QUEUE": queues["slow"],
        "BATCH_QUEUE": queues["batch"],
        "SAMPLE_RECORD_FILE": str(record_file),
        "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls": "2",
    }
    with start_functions_host(app_dir, settings) as handle:
        yield handle


def _send(connection_string: str, queue: str, *messages: ServiceBusMessage) -> None:
    with ServiceBusClient.from_connection_string(connection_string) as client, client.get_queue_sender(queue) as sender:
        sender.send_messages(list(messages))


def _settled(servicebus_emulator: Any, queue: str, **expected: int) -> bool:
    depth = servicebus_emulator.queue_depth(queue)
    return all(depth[key] == value for key, value in expected.items())


def test_message_reaches_function_and_is_completed(
    host: FunctionsHostHandle, servicebus_emulator: Any, queues: dict[str, str], record_file: Path
) -> None:
    message = ServiceBusMessage(
        '{"order": 1}',
        message_id="msg-ok-1",
        content_type="application/json",
        correlation_id="corr-1",
        application_properties={"kind": "order", "n": 3},
    )
    _send(servicebus_emulator.connection_string, queues["ok"], message)
    records = wait_for(lambda: read_records(record_file, "queue_ok"), timeout=10, what="queue_ok", log=host.log)
    (got,) = records
    assert got["body"] == '{"order": 1}'
    assert got["message_id"] == "msg-ok-1"
    assert got["content_type"] == "application/json"
    assert got["correlation_id"] == "corr-1"
    assert got["user_properties"] == got["application_properties"] == {"kind": "order", "n": 3}
    assert got["enqueued"] is True
    wait_for(
        lambda: _settled(servicebus_emulator, queues["ok"], active=0, locked=0, dead_lettered=0),
        timeout=10,
        what="the message to be completed",
        log=host.log,
    )
    # The admin endpoint runs a queue function directly with the input as body (nothing to settle).
    assert host.run_function("queue_ok", "by-admin")["status"] == "Succeeded"
    assert read_records(record_file, "queue_ok")[-1]["body"] == "by-admin"


def test_failure_abandons_until_dead_lettered(
    host: FunctionsHostHandle, servicebus_emulator: Any, queues: dict[str, str], record_file: Path
) -> None:
    _send(servicebus_emulator.connection_string, queues["flaky"], ServiceBusMessage("poison", message_id="msg-bad"))
    wait_for(
        lambda: _settled(servicebus_emulator, queues["flaky"], active=0, locked=0, dead_lettered=1),
        timeout=15,
        what="the failing message to be dead-lettered",
        log=host.log,
    )
    attempts = read_records(record_file, "queue_flaky")
    assert len(attempts) == FLAKY_MAX_DELIVERY
    counts = [row["delivery_count"] for row in attempts]
    # Each abandon is one more delivery; the Functions host reports the first delivery as 1.
    assert counts == list(range(1, FLAKY_MAX_DELIVERY + 1))
    with ServiceBusClient.from_connection_string(servicebus_emulator.connection_string) as client:
        dead = client.get_queue_receiver(queues["flaky"], sub_queue=ServiceBusSubQueue.DEAD_LETTER)
        with dead:
            (dead_lettered,) = dead.receive_messages(max_message_count=1, max_wait_time=5)
            assert str(dead_lettered) == "poison"
            assert dead_lettered.dead_letter_reason
            dead.complete_message(dead_lettered)
    assert "Executed 'Functions.queue_flaky' (Failed" in host.log()


def test_concurrency_is_capped_and_locks_are_renewed(
    host: FunctionsHostHandle, servicebus_emulator: Any, queues: dict[str, str], record_file: Path
) -> None:
    slow = [ServiceBusMessage(f"m{i}") for i in range(5)]
    # Outlives the queue's lock; only renewal while it runs keeps it from a second delivery.
    slow.append(ServiceBusMessage(f"sleep:{SLOW_LOCK_SECONDS + 2}"))
    _send(servicebus_emulator.connection_string, queues["slow"], *slow)
    runs = wait_for(
        lambda: len(rows := read_records(record_file, "queue_slow")) >= 6 and rows,
        timeout=20,
        what="six slow invocations",
        log=host.log,
    )
    wait_for(
        lambda: _settled(servicebus_emulator, queues["slow"], active=0, locked=0, dead_lettered=0),
        timeout=10,
        what="all slow messages to be completed",
        log=host.log,
    )
    assert sorted(row["body"] for row in runs) == sorted(str(m) for m in slow)  # each exactly once
    events = sorted([(row["start"], 1) for row in runs] + [(row["end"], -1) for row in runs])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2  # maxConcurrentCalls=2: parallel, but never more


def test_cardinality_many_gets_a_list_and_completes_it(
    host: FunctionsHostHandle, servicebus_emulator: Any, queues: dict[str, str], record_file: Path
) -> None:
    bodies = [f"b{i}" for i in range(4)]
    _send(servicebus_emulator.connection_string, queues["batch"], *(ServiceBusMessage(b) for b in bodies))
    wait_for(
        lambda: sum(len(r["bodies"]) for r in read_records(record_file, "queue_batch")) >= len(bodies),
        timeout=10,
        what="the batch",
        log=host.log,
    )
    got = [body for row in read_records(record_file, "queue_batch") for body in row["bodies"]]
    assert sorted(got) == bodies
    wait_for(
        lambda: _settled(servicebus_emulator, queues["batch"], active=0, locked=0, dead_lettered=0),
        timeout=10,
        what="the batch to be completed",
        log=host.log,
    )
