"""Run the emulator: the AMQP listener and the admin HTTP back door on one event loop.

The admin endpoint is a deliberately tiny HTTP/1.1 server (JSON in and out, one request per
connection) written on asyncio streams, so it shares the loop, and therefore the state, with the
AMQP side without any cross-thread hand-off. Production clients never use it.

    PUT    /queues/{name}            {"max_delivery_count": 10, "lock_duration_seconds": 30}
    GET    /queues                   every queue with its depth
    GET    /queues/{name}            one queue with its depth (404 when unknown)
    DELETE /queues/{name}/messages   purge the queue and its dead-letter sub-queue
    GET    /health                   {"status": "ok"}
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ._amqp import AmqpServer, Credentials
from ._broker import Broker, Queue, QueueSettings

__all__ = ["DEFAULT_KEY", "DEFAULT_KEY_NAME", "QueueSpec", "connection_string", "serve"]

DEFAULT_KEY_NAME = "RootManageSharedAccessKey"
DEFAULT_KEY = "SAS_KEY_VALUE"
_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class QueueSpec:
    """A queue to create at start."""

    name: str
    settings: QueueSettings


def connection_string(host: str, port: int, key_name: str = DEFAULT_KEY_NAME, key: str = DEFAULT_KEY) -> str:
    """The connection string the SDK needs for this emulator (plain AMQP, port kept)."""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName={key_name};SharedAccessKey={key};UseDevelopmentEmulator=true;"
    )


def _describe(queue: Queue) -> dict[str, Any]:
    dead = queue.dead_letter.depth() if queue.dead_letter else {"active": 0, "locked": 0}
    return {
        "name": queue.name,
        "max_delivery_count": queue.settings.max_delivery_count,
        "lock_duration_seconds": queue.settings.lock_duration_seconds,
        **queue.depth(),
        "dead_lettered": dead["active"] + dead["locked"],
    }


class _Admin:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, payload = await self._respond(reader)
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as problem:
            status, payload = 400, {"error": f"bad request: {problem}"}
        body = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        finally:
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        request_line = (await reader.readline()).decode("latin-1").split()
        if len(request_line) < 2:
            raise ValueError("no request line")
        method, target = request_line[0], request_line[1]
        length = 0
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length > _MAX_BODY:
            raise ValueError("body too large")
        raw = await reader.readexactly(length) if length else b""
        body = json.loads(raw) if raw else {}
        parts = [unquote(p) for p in target.split("?")[0].strip("/").split("/") if p]
        return self._route(method, parts, body)

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        broker = self._broker
        if parts == ["health"] and method == "GET":
            return 200, {"status": "ok", "queues": len(broker.queues())}
        if parts == ["queues"] and method == "GET":
            return 200, {"queues": [_describe(q) for q in broker.queues()]}
        if len(parts) == 2 and parts[0] == "queues":
            name = parts[1]
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                settings = _settings(body)
                return 200, _describe(broker.put_queue(name, settings))
            queue = broker.find(name)
            if queue is None or queue.is_dead_letter:
                return 404, {"error": f"queue {name!r} not found"}
            if method == "GET":
                return 200, _describe(queue)
            return 405, {"error": f"{method} not allowed here"}
        if len(parts) == 3 and parts[0] == "queues" and parts[2] == "messages" and method == "DELETE":
            queue = broker.find(parts[1])
            if queue is None or queue.is_dead_letter:
                return 404, {"error": f"queue {parts[1]!r} not found"}
            return 200, {"purged": broker.purge(queue)}
        return 404, {"error": f"no admin route for {method} /{'/'.join(parts)}"}


def _settings(body: dict[str, Any]) -> QueueSettings:
    max_delivery_count = body.get("max_delivery_count", 10)
    lock_duration = body.get("lock_duration_seconds", 30)
    if not isinstance(max_delivery_count, int) or max_delivery_count < 1:
        raise ValueError("max_delivery_count must be an integer >= 1")
    if not isinstance(lock_duration, int | float) or lock_duration <= 0:
        raise ValueError("lock_duration_seconds must be a number > 0")
    return QueueSettings(max_delivery_count=max_delivery_count, lock_duration_seconds=float(lock_duration))


async def serve(
    *,
    host: str,
    port: int,
    admin_port: int,
    queues: list[QueueSpec],
    key_name: str = DEFAULT_KEY_NAME,
    key: str = DEFAULT_KEY,
    on_ready: Any = None,
) -> None:
    """Serve until SIGTERM or SIGINT; ``on_ready(start_line)`` is called once both ports listen."""
    loop = asyncio.get_running_loop()
    broker = Broker(loop)
    for spec in queues:
        broker.put_queue(spec.name, spec.settings)
    amqp = AmqpServer(broker, Credentials(key_name, key), f"{host}:{port}")
    admin = _Admin(broker)
    amqp_listener = await asyncio.start_server(amqp.handle, host, port)
    admin_listener = await asyncio.start_server(admin.handle, host, admin_port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    actual_port = amqp_listener.sockets[0].getsockname()[1]
    actual_admin = admin_listener.sockets[0].getsockname()[1]
    if on_ready is not None:
        on_ready(
            {
                "connection_string": connection_string(host, actual_port, key_name, key),
                "port": actual_port,
                "admin_url": f"http://{host}:{actual_admin}",
                "queues": [q.name for q in broker.queues()],
            }
        )
    try:
        await stop.wait()
    finally:
        amqp_listener.close()
        admin_listener.close()
        amqp.close_all()
        await amqp_listener.wait_closed()
        await admin_listener.wait_closed()
