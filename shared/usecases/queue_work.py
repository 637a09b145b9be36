"""Work that arrives on the connector's own queues, and how a bad message is settled.

A message that can never succeed (malformed, unknown mapping) is recorded as a sync error with
its reason and body, and then settled, so it is not redelivered ten times; anything retriable
is raised so Service Bus redelivers it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from shared.adapters.tables._keys import newest_first_key
from shared.domain.state import SyncErrorRecord
from shared.errors import PermanentError, SkippableError
from shared.ports import Clock, SyncErrorStore

__all__ = ["settle_message"]

_log = logging.getLogger(__name__)
_MAX_BODY_IN_ERROR = 4000


def settle_message(
    queue: str,
    message_id: str | None,
    body: bytes,
    handle: Callable[[bytes], None],
    *,
    errors: SyncErrorStore,
    clock: Clock,
) -> None:
    """Run ``handle`` on a message body; store permanent failures instead of raising them.

    Raises:
        RetriableError, ConfigurationError: left for Service Bus to redeliver.
    """
    try:
        handle(body)
    except (PermanentError, SkippableError) as error:
        now = clock.now()
        _log.warning("message %s on %s can never succeed: %s", message_id, queue, error.message)
        errors.add(
            SyncErrorRecord(
                error_id=newest_first_key(now, uuid.uuid4().hex[:12]),
                mapping=f"QUEUE {queue}",
                job_id=message_id or "",
                source=f"servicebus:{queue}({message_id or 'no id'})",
                destination="",
                message=error.message,
                detail=body[:_MAX_BODY_IN_ERROR].decode("utf-8", errors="replace"),
                created_at=now,
            )
        )
