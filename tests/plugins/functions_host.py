"""pytest fixtures for the functions_host piece of the local stack.

``start_functions_host(app_dir, settings)`` starts ``python -m emulators.functions_host`` for an app
folder as a real subprocess on a free port and stops it on exit. ``settings`` are passed as
environment variables, which win over the app's ``local.settings.json`` exactly as they do with
Core Tools, so a test can point the app at its emulators without touching any file. Host.json
values can be overridden the Azure way, with ``AzureFunctionsJobHost__<path>`` settings.

Use the ``functions_host_factory`` fixture to get hosts that are stopped at the end of the test.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
import requests

from emulators._launch import StackProcess, free_port, start_json_line_process

__all__ = ["FunctionsHostFactory", "FunctionsHostHandle", "functions_host_factory", "start_functions_host"]


@dataclass
class FunctionsHostHandle:
    """A running local Functions host: its start line plus helpers to call it."""

    process: StackProcess
    output_readers: list[threading.Thread] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api`` (the route prefix from host.json)."""
        return str(self.process.start_line["base_url"])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>``, where ``/admin/...`` lives."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def function_key(self) -> str:
        """The key FUNCTION/ADMIN routes and admin endpoints accept."""
        return str(self.process.start_line["function_key"])

    @property
    def functions(self) -> list[str]:
        """Names of the functions the host loaded."""
        return list(self.process.start_line["functions"])

    @property
    def key_headers(self) -> dict[str, str]:
        """``{"x-functions-key": <key>}`` for requests to protected routes."""
        return {"x-functions-key": self.function_key}

    def url(self, route: str) -> str:
        """The URL of an HTTP route below the route prefix."""
        return f"{self.base_url}/{route.lstrip('/')}"

    def run_function(self, name: str, input: str | None = None, *, timeout: float = 60) -> dict[str, Any]:
        """Run a non-HTTP function now (``POST /admin/functions/{name}``) and return its outcome.

        The host answers 202 after the run with ``{"id", "status": "Succeeded"|"Failed", "duration_ms"}``.
        """
        response = requests.post(
            f"{self.root_url}/admin/functions/{name}",
            json={"input": input} if input is not None else {},
            headers=self.key_headers,
            timeout=timeout,
        )
        assert response.status_code == 202, f"{response.status_code} {response.text}"
        body: dict[str, Any] = response.json()
        return body

    def log(self) -> str:
        """The host's recent output (start line, invocation logs, tracebacks)."""
        return "\n".join(self.process.output_tail)

    def stop(self) -> None:
        """SIGTERM the host, wait for it to exit and close its output pipe."""
        self.process.stop()
        # StackProcess.stop() leaves the stdout pipe open, which filterwarnings=error turns into
        # a ResourceWarning failure at teardown; close it once the reader thread has hit EOF.
        for reader in self.output_readers:
            reader.join(timeout=5)
        stdout = self.process.process.stdout
        if stdout is not None and not any(reader.is_alive() for reader in self.output_readers):
            stdout.close()


@contextmanager
def start_functions_host(
    app_dir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    function_key: str | None = None,
    timeout: float = 60.0,
    echo: bool = False,
    extra_args: Sequence[str] = (),
) -> Iterator[FunctionsHostHandle]:
    """Start the local Functions host for ``app_dir``; stop it when the block exits.

    ``settings`` become environment variables of the host (they win over local.settings.json);
    ``extra_args`` go to the command line (e.g. ``["--settings", path]``).

    Raises:
        RuntimeError: the host did not print its start line (its output is in the message).
    """
    argv = [sys.executable, "-m", "emulators.functions_host", "--port", str(port or free_port())]
    argv += ["--app-dir", str(Path(app_dir).resolve())]
    if function_key is not None:
        argv += ["--function-key", function_key]
    argv += list(extra_args)
    before = set(threading.enumerate())
    process = start_json_line_process("functions_host", argv, timeout=timeout, env=dict(settings or {}), echo=echo)
    readers = [t for t in threading.enumerate() if t not in before and t.name == "functions_host-output"]
    handle = FunctionsHostHandle(process, readers)
    try:
        yield handle
    finally:
        handle.stop()


class FunctionsHostFactory(Protocol):
    """Signature of the ``functions_host_factory`` fixture's value."""

    def __call__(
        self, app_dir: Path, settings: Mapping[str, str] | None = None, **options: Any
    ) -> FunctionsHostHandle: ...


@pytest.fixture
def functions_host_factory() -> Iterator[FunctionsHostFactory]:
    """Start hosts with ``factory(app_dir, settings, **options)``; all stop when the test ends."""
    with ExitStack() as stack:

        def factory(app_dir: Path, settings: Mapping[str, str] | None = None, **options: Any) -> FunctionsHostHandle:
            return stack.enter_context(start_functions_host(app_dir, settings, **options))

        yield factory
