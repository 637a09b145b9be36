"""Wiring: settings -> app -> HTTP server, timers and Service Bus listeners; start line; clean stop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import os
import secrets
import threading
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.functions.servicebus import ServiceBusMessage
from werkzeug.serving import BaseWSGIServer, make_server

from ._app import AppFunction, HttpFunction, ServiceBusFunction, TimerFunction, load_functions
from ._http import HttpFrontEnd
from ._invoke import HOST_LOG, InvocationResult, Invoker
from ._servicebus import ServiceBusDriver, to_trigger_value
from ._settings import HostConfig, apply_settings_to_environ, load_host_config, load_local_settings
from ._timers import MANUAL_REASON, TimerRunner, schedule_zone

__all__ = ["FUNCTION_KEY_SETTING", "FunctionsHost", "HostOptions"]

# An app setting / environment variable that fixes the function key (tests, `make run`).
FUNCTION_KEY_SETTING = "FUNCTIONS_HOST_FUNCTION_KEY"
DEFAULT_PORT = 7071
# How long a stop waits for Service Bus invocations in flight to finish and settle.
_DRAIN_SECONDS = 10.0


@dataclass(frozen=True)
class HostOptions:
    """Command-line options; ``None`` means "from local.settings.json / the default"."""

    app_dir: Path
    settings_file: Path | None = None
    port: int | None = None
    function_key: str | None = None
    host: str = "127.0.0.1"


@dataclass
class _Running:
    server: BaseWSGIServer
    server_thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    loop_thread: threading.Thread
    timers: list[TimerRunner] = field(default_factory=list)
    drivers: list[tuple[ServiceBusDriver, concurrent.futures.Future[None]]] = field(default_factory=list)


class FunctionsHost:
    """Hosts one function app in this process, like ``func start``."""

    def __init__(self, options: HostOptions, environ: MutableMapping[str, str] | None = None) -> None:
        self.options = options
        self._environ = os.environ if environ is None else environ
        self._running: _Running | None = None
        self.functions: list[AppFunction] = []
        self.config = HostConfig()
        self.function_key = ""
        self.base_url = ""
        self._port = DEFAULT_PORT
        self._zone: dt.tzinfo = dt.UTC
        self._timer_runners: dict[str, TimerRunner] = {}

    def load(self) -> None:
        """Apply settings and import the app; every unsupported feature fails here.

        Raises:
            HostConfigError: settings, host.json or a function cannot be hosted.
        """
        app_dir = self.options.app_dir.resolve()
        settings_file = (self.options.settings_file or app_dir / "local.settings.json").resolve()
        local = load_local_settings(settings_file)
        skipped = apply_settings_to_environ(local.values, self._environ)
        for name in skipped:
            HOST_LOG.info(
                "Skipping '%s' from local settings as it's already defined in current environment variables.", name
            )
        self.config = load_host_config(app_dir / "host.json", self._environ)
        self._port = self.options.port or local.local_http_port or DEFAULT_PORT
        self.function_key = (
            self.options.function_key or self._environ.get(FUNCTION_KEY_SETTING) or secrets.token_urlsafe(32)
        )
        # Core Tools runs the worker in the app directory; relative paths in the app rely on it.
        os.chdir(app_dir)
        self.functions = load_functions(app_dir, self._environ, self.config)
        self._zone = schedule_zone(self._environ)
        for function in self.functions:
            if isinstance(function, ServiceBusFunction) and not function.auto_complete:
                HOST_LOG.warning(
                    "autoCompleteMessages=false: function '%s' gets no settlement actions from this host, so "
                    "messages it does not fail stay locked until the lock expires and are redelivered",
                    function.name,
                )

    def start(self) -> dict[str, Any]:
        """Start serving; return the start line (``base_url``, ``function_key``, ``functions``)."""
        loop = asyncio.new_event_loop()
        loop_thread = threading.Thread(target=loop.run_forever, name="functions-host-loop", daemon=True)
        invoker = Invoker(loop, self.config.function_timeout)
        timers = [TimerRunner(f, invoker, self._zone) for f in self.functions if isinstance(f, TimerFunction)]
        self._timer_runners = {runner.function.name.lower(): runner for runner in timers}
        self._invoker = invoker
        front_end = HttpFrontEnd(
            (f for f in self.functions if isinstance(f, HttpFunction)),
            invoker=invoker,
            function_key=self.function_key,
            route_prefix=self.config.route_prefix,
            admin_runner=self._run_from_admin,
        )
        server = make_server(self.options.host, self._port, front_end, threaded=True)
        port = server.socket.getsockname()[1]
        server_thread = threading.Thread(target=server.serve_forever, name="functions-host-http", daemon=True)
        running = _Running(server, server_thread, loop, loop_thread, timers)
        self._running = running
        loop_thread.start()
        server_thread.start()
        for runner in timers:
            runner.start()
        for function in self.functions:
            if isinstance(function, ServiceBusFunction):
                driver = ServiceBusDriver(function, invoker, self.config)
                future = asyncio.run_coroutine_threadsafe(driver.run(_DRAIN_SECONDS), loop)
                running.drivers.append((driver, future))
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        self.base_url = f"http://{self.options.host}:{port}{prefix}"
        self._log_functions(f"http://{self.options.host}:{port}{prefix}")
        return {"base_url": self.base_url, "function_key": self.function_key, "functions": self.names}

    @property
    def names(self) -> list[str]:
        """The names of the hosted functions, in registration order."""
        return [f.name for f in self.functions]

    def _log_functions(self, base: str) -> None:
        lines = ["Functions:"]
        for function in self.functions:
            if isinstance(function, HttpFunction):
                methods = ",".join(function.methods)
                lines.append(f"        {function.name}: [{methods}] {base}/{function.route.template.strip('/')}")
            elif isinstance(function, TimerFunction):
                lines.append(f"        {function.name}: timerTrigger ({function.schedule})")
            else:
                lines.append(f"        {function.name}: serviceBusTrigger (queue '{function.queue_name}')")
        HOST_LOG.info("\n".join(lines))

    def _run_from_admin(self, name: str, text: str | None) -> InvocationResult | None:
        runner = self._timer_runners.get(name.lower())
        if runner is not None:
            return runner.fire(reason=MANUAL_REASON)
        for function in self.functions:
            if function.name.lower() != name.lower():
                continue
            if isinstance(function, HttpFunction):
                raise ValueError(f"function '{function.name}' is HTTP-triggered; call its route instead")
            if isinstance(function, ServiceBusFunction):
                # Like the portal's "Test/Run": the input becomes the body; there is nothing to settle.
                message = ServiceBusMessage(
                    body=(text or "").encode("utf-8"),
                    message_id=uuid.uuid4().hex,
                    delivery_count=1,
                    enqueued_time_utc=dt.datetime.now(dt.UTC),
                    application_properties={},
                    user_properties={},
                )
                value = to_trigger_value([message], function.call.trigger_annotation, many=function.many)
                return self._invoker.invoke(function.call, value, MANUAL_REASON)
        return None

    def stop(self) -> None:
        """Stop HTTP, timers and listeners; wait for Service Bus invocations to settle; stop the loop."""
        running, self._running = self._running, None
        if running is None:
            return
        HOST_LOG.info("Stopping the local Functions host")
        running.server.shutdown()
        running.server.server_close()
        for runner in running.timers:
            runner.stop(timeout=5.0)
        for driver, _ in running.drivers:
            running.loop.call_soon_threadsafe(driver.request_stop)
        for driver, future in running.drivers:
            try:
                future.result(timeout=_DRAIN_SECONDS + 10)
            except Exception:  # stopping anyway; say what went wrong
                HOST_LOG.exception("Service Bus listener for '%s' did not stop cleanly", driver.function.name)
        running.loop.call_soon_threadsafe(running.loop.stop)
        running.loop_thread.join(timeout=10)
        if not running.loop.is_running():
            running.loop.close()
        running.server_thread.join(timeout=5)
        HOST_LOG.info("Local Functions host stopped")
