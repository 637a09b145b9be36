"""Calling user functions the way the Python worker does, with Core-Tools-style invocation logs.

Sync functions each run on their own daemon thread and async ones on the host's single event
loop (the worker also runs every ``async def`` on one loop). Either way the caller waits at most
``functionTimeout``; a function that overruns is reported as failed and left to finish on its
own, because Python cannot kill a thread (the real host restarts the worker instead). Daemon
threads mean an overrunning function cannot keep the host process alive at shutdown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from ._app import UserCall

__all__ = ["HOST_LOG", "InvocationResult", "Invoker", "configure_logging"]

HOST_LOG = logging.getLogger("functions_host")


class _CoreToolsFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def configure_logging(stream: Any) -> None:
    """Send host and user logs to ``stream`` as ``[timestamp] message`` lines, like Core Tools."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_CoreToolsFormatter("[%(asctime)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The SDKs log every AMQP frame at INFO; only their warnings help someone running the app.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


class _TraceContext(func._abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RpcException(func._abc.RpcException):
    @property
    def source(self) -> str:
        return ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return ""


class _RetryContext(func._abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> func._abc.RpcException:
        return _RpcException()


class _Context(func.Context):
    def __init__(self, invocation_id: str, function_name: str, directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._directory = directory
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        # The worker hands out a threading.local instance despite the library's annotation.
        return self._local  # type: ignore[return-value]

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> func._abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> func._abc.RetryContext:
        return _RetryContext()


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation came to; ``error`` is set when it raised or timed out."""

    invocation_id: str
    value: Any
    error: BaseException | None
    timed_out: bool
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        """Whether the function returned normally within the timeout."""
        return self.error is None


def _run_on_daemon_thread(call: UserCall, kwargs: dict[str, Any]) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def runner() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = call.target(**kwargs)
        except BaseException as exc:  # the caller reports any failure, even SystemExit
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=runner, name=f"invoke-{call.function_name}", daemon=True).start()
    return future


class FunctionTimeoutError(TimeoutError):
    """The function ran past host.json ``functionTimeout``."""


class Invoker:
    """Runs user functions with logging and ``functionTimeout``, from threads or from the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: dt.timedelta | None) -> None:
        self._loop = loop
        self._timeout = timeout.total_seconds() if timeout is not None else None
        self._timeout_text = str(timeout) if timeout is not None else "unlimited"

    def _begin(self, call: UserCall, value: Any, reason: str) -> tuple[str, dict[str, Any]]:
        invocation_id = str(uuid.uuid4())
        HOST_LOG.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", call.function_name, reason, invocation_id)
        kwargs = {call.trigger_param: value}
        if call.pass_context:
            kwargs["context"] = _Context(invocation_id, call.function_name, call.directory)
        return invocation_id, kwargs

    def _finish(
        self, call: UserCall, invocation_id: str, started: float, value: Any, error: BaseException | None
    ) -> InvocationResult:
        duration_ms = round((time.monotonic() - started) * 1000)
        timed_out = isinstance(error, FunctionTimeoutError)
        if timed_out:
            HOST_LOG.error(
                "Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
                self._timeout_text,
                call.function_name,
                invocation_id,
            )
        elif error is not None:
            # The traceback goes to the log only; callers never send it to clients.
            details = "".join(traceback.format_exception(error)).rstrip()
            HOST_LOG.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n"
                "Exception while executing function: Functions.%s. Result: Failure\n%s",
                call.function_name,
                invocation_id,
                duration_ms,
                call.function_name,
                details,
            )
        if error is None or timed_out:
            outcome = "Succeeded" if error is None else "Failed"
            HOST_LOG.info(
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
                call.function_name,
                outcome,
                invocation_id,
                duration_ms,
            )
        return InvocationResult(invocation_id, value, error, timed_out, duration_ms)

    def invoke(self, call: UserCall, value: Any, reason: str) -> InvocationResult:
        """Call the function from a plain thread (HTTP server, timers) and wait for it."""
        invocation_id, kwargs = self._begin(call, value, reason)
        started = time.monotonic()
        future: concurrent.futures.Future[Any]
        try:
            if call.is_async:
                future = asyncio.run_coroutine_threadsafe(call.target(**kwargs), self._loop)
            else:
                future = _run_on_daemon_thread(call, kwargs)
        except Exception as exc:  # e.g. the loop has already stopped
            return self._finish(call, invocation_id, started, None, exc)
        done, _ = concurrent.futures.wait([future], timeout=self._timeout)
        if not done:
            future.cancel()
            return self._finish(call, invocation_id, started, None, FunctionTimeoutError())
        error = future.exception()
        return self._finish(call, invocation_id, started, None if error else future.result(), error)

    async def ainvoke(self, call: UserCall, value: Any, reason: str) -> InvocationResult:
        """Call the function from the host's event loop (Service Bus driver) and await it."""
        invocation_id, kwargs = self._begin(call, value, reason)
        started = time.monotonic()
        awaitable: asyncio.Future[Any]
        try:
            if call.is_async:
                awaitable = asyncio.ensure_future(call.target(**kwargs))
            else:
                awaitable = asyncio.wrap_future(_run_on_daemon_thread(call, kwargs))
        except Exception as exc:  # a sync wrapper that raises while making the coroutine
            return self._finish(call, invocation_id, started, None, exc)
        done, _ = await asyncio.wait([awaitable], timeout=self._timeout)
        if not done:
            awaitable.cancel()
            return self._finish(call, invocation_id, started, None, FunctionTimeoutError())
        error = awaitable.exception()
        return self._finish(call, invocation_id, started, None if error else awaitable.result(), error)
