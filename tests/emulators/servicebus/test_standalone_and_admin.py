"""The emulator as a process (start line, queues from the CLI, clean exit, idle CPU) and its back door."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from emulators._launch import PROJECT_ROOT, free_port, start_json_line_process
from emulators.servicebus import admin
from tests.plugins.servicebus import ServiceBusEmulator

pytestmark = pytest.mark.stack


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_standalone_start_line_cli_queues_idle_cpu_and_clean_exit() -> None:
    port = free_port()
    process = start_json_line_process(
        "servicebus emulator (standalone)",
        [
            sys.executable,
            "-m",
            "emulators.servicebus",
            "--port",
            str(port),
            "--queue",
            "alpha:3:2.5",
            "--queue",
            "beta",
        ],
        timeout=30,
    )
    try:
        line = process.start_line
        assert line["port"] == port
        assert line["connection_string"] == (
            f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        )
        assert line["admin_url"].startswith("http://127.0.0.1:")
        queues = {q["name"]: q for q in admin.list_queues(line)}
        assert set(queues) == {"alpha", "beta"}
        assert (queues["alpha"]["max_delivery_count"], queues["alpha"]["lock_duration_seconds"]) == (3, 2.5)
        assert (queues["beta"]["max_delivery_count"], queues["beta"]["lock_duration_seconds"]) == (10, 30)
        assert admin.health(line)

        before = _cpu_seconds(process.process.pid)
        time.sleep(1.0)
        assert _cpu_seconds(process.process.pid) - before < 0.05, "the broker is busy while idle"

        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(timeout=10) == 0
        json_lines = [text for text in process.output_tail if text.lstrip().startswith("{")]
        assert len(json_lines) == 1
        assert json.loads(json_lines[0]) == line
    finally:
        process.stop()


def test_default_queues_come_from_shared_resources() -> None:
    from shared.resources import QUEUES

    process = start_json_line_process(
        "servicebus emulator (defaults)",
        [sys.executable, "-m", "emulators.servicebus", "--port", str(free_port())],
        timeout=30,
    )
    try:
        assert sorted(process.start_line["queues"]) == sorted(QUEUES)
        process.process.send_signal(signal.SIGINT)
        assert process.process.wait(timeout=10) == 0
    finally:
        process.stop()


def test_bad_queue_spec_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulators.servicebus", "--port", "0", "--queue", "q:zero"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "NAME[:maxDeliveryCount[:lockDurationSeconds]]" in result.stderr or "bad numbers" in result.stderr
    assert result.stdout == ""


def test_admin_create_update_depth_and_purge(servicebus_emulator: ServiceBusEmulator) -> None:
    name = f"admin-{uuid.uuid4().hex[:8]}"
    servicebus_emulator.create_queue(name, max_delivery_count=4, lock_duration_seconds=5)
    depth = servicebus_emulator.queue_depth(name)
    assert depth["max_delivery_count"] == 4
    assert (depth["active"], depth["locked"], depth["scheduled"], depth["dead_lettered"]) == (0, 0, 0, 0)

    with (
        ServiceBusClient.from_connection_string(servicebus_emulator.connection_string) as sb,
        sb.get_queue_sender(name) as sender,
    ):
        sender.send_messages([ServiceBusMessage("one"), ServiceBusMessage("two")])
    assert servicebus_emulator.queue_depth(name)["active"] == 2

    # Updating settings keeps the messages.
    servicebus_emulator.create_queue(name, max_delivery_count=7, lock_duration_seconds=1)
    depth = servicebus_emulator.queue_depth(name)
    assert (depth["max_delivery_count"], depth["lock_duration_seconds"], depth["active"]) == (7, 1, 2)

    assert servicebus_emulator.purge(name) == 2
    assert servicebus_emulator.queue_depth(name)["active"] == 0

    with pytest.raises(admin.AdminError, match="404"):
        servicebus_emulator.queue_depth("never-created")
    with pytest.raises(admin.AdminError, match="400"):
        servicebus_emulator.create_queue("bad", max_delivery_count=0)


def test_large_message_crosses_frame_boundaries(servicebus_emulator: ServiceBusEmulator) -> None:
    name = f"large-{uuid.uuid4().hex[:8]}"
    servicebus_emulator.create_queue(name)
    body = "x" * 200_000  # several 64 KiB frames on the way in
    with ServiceBusClient.from_connection_string(servicebus_emulator.connection_string) as sb:
        with sb.get_queue_sender(name) as sender:
            sender.send_messages(ServiceBusMessage(body))
        with sb.get_queue_receiver(name) as receiver:
            (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
            assert str(message) == body
            receiver.complete_message(message)
