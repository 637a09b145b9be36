"""``python -m emulators.servicebus --port N [--queue NAME[:maxDeliveryCount[:lockDurationSeconds]]]``.

Prints exactly one JSON line on stdout when ready (connection string, port, admin URL), then
serves until SIGTERM or SIGINT. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from ._broker import QueueSettings
from ._server import DEFAULT_KEY, DEFAULT_KEY_NAME, QueueSpec, serve


def _queue_spec(text: str) -> QueueSpec:
    name, *rest = text.split(":")
    if not name or len(rest) > 2:
        raise argparse.ArgumentTypeError(f"expected NAME[:maxDeliveryCount[:lockDurationSeconds]], got {text!r}")
    try:
        max_delivery = int(rest[0]) if rest and rest[0] else 10
        lock = float(rest[1]) if len(rest) > 1 and rest[1] else 30.0
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"bad numbers in {text!r}: {error}") from error
    if max_delivery < 1 or lock <= 0:
        raise argparse.ArgumentTypeError(f"maxDeliveryCount must be >= 1 and lock duration > 0 in {text!r}")
    return QueueSpec(name, QueueSettings(max_delivery_count=max_delivery, lock_duration_seconds=lock))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.servicebus", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672, help="AMQP port (0: any free port)")
    parser.add_argument("--admin-port", type=int, default=0, help="admin HTTP port (default: any free port)")
    parser.add_argument(
        "--queue",
        action="append",
        type=_queue_spec,
        default=None,
        metavar="NAME[:MAXDELIVERY[:LOCKSECONDS]]",
        help="a queue to create (repeatable); default: the connector's queues from shared.resources",
    )
    parser.add_argument("--key-name", default=DEFAULT_KEY_NAME)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(message)s")

    queues: list[QueueSpec] = args.queue
    if queues is None:
        from shared.resources import QUEUES

        queues = [QueueSpec(name, QueueSettings()) for name in QUEUES]

    def ready(start_line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(start_line) + "\n")
        sys.stdout.flush()

    asyncio.run(
        serve(
            host=args.host,
            port=args.port,
            admin_port=args.admin_port,
            queues=queues,
            key_name=args.key_name,
            key=args.key,
            on_ready=ready,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
