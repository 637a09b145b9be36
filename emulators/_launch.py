"""Starting local-stack processes and reading the one JSON line each prints when it is ready.

Shared by the test fixtures, ``make run`` and the benchmarks so that every caller starts a
piece of the stack the same way and sees the same start line a user would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on ``host:port``.

    Raises:
        TimeoutError: nothing listened within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f} s")


@dataclass
class StackProcess:
    """A started local-stack process, its start line and the tail of its output."""

    name: str
    process: subprocess.Popen[str]
    start_line: dict[str, Any]
    output_tail: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL), wait for it to go and close its output pipe."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        # The reader sees EOF once the process is gone; closing the pipe after that keeps
        # ResourceWarnings (errors under filterwarnings=error) out of test teardown.
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stdout is not None and (self.reader is None or not self.reader.is_alive()):
            self.process.stdout.close()


def _drain(stream: IO[str], tail: list[str], echo: bool) -> None:
    # Keep reading so the child never blocks on a full pipe; remember the last lines for errors.
    for line in stream:
        tail.append(line.rstrip("\n"))
        del tail[:-200]
        if echo:
            sys.stderr.write(line)


def start_json_line_process(
    name: str,
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path = PROJECT_ROOT,
    echo: bool = False,
) -> StackProcess:
    """Start ``argv`` and wait for the first stdout line that parses as a JSON object.

    Everything the process prints before and after goes to a bounded tail (and to stderr when
    ``echo``), so a failure to start is reported with what the process said.

    Raises:
        RuntimeError: the process exited or printed no JSON line within ``timeout`` seconds.
    """
    process = subprocess.Popen(  # noqa: S603 - argv is built by our own callers
        list(argv),
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    tail: list[str] = []
    found: dict[str, Any] = {}
    ready = threading.Event()

    def reader() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip("\n"))
            del tail[:-200]
            if echo:
                sys.stderr.write(line)
            text = line.strip()
            if text.startswith("{"):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    continue
                if isinstance(parsed, dict):
                    found.update(parsed)
                    ready.set()
                    _drain(process.stdout, tail, echo)
                    return
        ready.set()

    thread = threading.Thread(target=reader, name=f"{name}-output", daemon=True)
    thread.start()
    if not ready.wait(timeout) or not found:
        process.kill()
        process.wait(timeout=10)
        thread.join(timeout=5)
        process.stdout.close()
        said = "\n".join(tail[-40:]) or "(nothing)"
        raise RuntimeError(f"{name} did not report ready within {timeout:.0f} s; it said:\n{said}")
    return StackProcess(name=name, process=process, start_line=found, output_tail=tail, reader=thread)
