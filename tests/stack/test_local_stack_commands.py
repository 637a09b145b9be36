"""``make run`` and ``make demo`` as a user runs them: processes started, reachable, and all gone after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from emulators._launch import PROJECT_ROOT, free_port

pytestmark = pytest.mark.stack


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_serves_the_stack_writes_stack_json_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    run = subprocess.Popen(
        [sys.executable, "-m", "emulators.stack", "run", "--port", str(port), "--workdir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stack_json = tmp_path / "stack.json"
        deadline = time.monotonic() + 120
        while not stack_json.exists() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
        assert stack_json.exists(), "make run did not write stack.json"
        info = json.loads(stack_json.read_text())
        assert set(info) == {"host", "dataverse", "business_central", "servicebus", "tables"}
        assert info["host"]["base_url"] == f"http://127.0.0.1:{port}/api"
        assert info["business_central"]["company_id"] and info["dataverse"]["base_url"].endswith("/api/data/v9.2")

        health = requests.get(f"{info['host']['base_url']}/health", timeout=60)
        assert health.status_code == 200, health.text
        started = _descendants(run.pid)
        assert len(started) >= 5  # azurite, service bus, dataverse, BC, host (and their children)
    finally:
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert "GET /api/health → 200" in output
    time.sleep(0.5)
    assert [pid for pid in started if _alive(pid)] == []
    assert not (tmp_path / "stack.json").exists()


def test_demo_runs_on_a_fresh_stack_and_exits_zero() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "emulators.stack", "demo"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Demo report" in demo.stdout
