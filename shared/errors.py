"""The one error taxonomy: every failure is classified by what the connector does about it.

Adapters translate whatever their SDK or API raises into one of these (one error-mapping table
per external system); use-cases and trigger handlers only ever see these four categories.

- ``RetriableError``: try again later. Raised out of a queue trigger so that Service Bus
  redelivers the message; retried in-process with backoff where that is cheap.
- ``PermanentError``: retrying cannot help (bad input, a state the record can never leave).
  Stored as a sync error; a queue message is dead-lettered at once with the reason.
- ``SkippableError``: this one record cannot be processed now; it is logged and the batch goes on.
- ``ConfigurationError``: the deployment is wrong (a setting, a credential, a privilege). Fails
  fast at start, or is reported by the health and connection checks.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "PermanentError",
    "RetriableError",
    "SkippableError",
    "SyncError",
]


class SyncError(Exception):
    """Base of every error the connector raises on purpose.

    Attributes:
        code: a short, stable, machine-readable code (e.g. ``"CouplingConflict"``) that HTTP
            responses and stored errors carry.
        message: the human-readable message, which never contains a secret or a token.
    """

    default_code = "SyncError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class RetriableError(SyncError):
    """A transient failure: the same work may succeed later.

    Attributes:
        retry_after: seconds the other side asked us to wait (429/503 ``Retry-After``), if any.
    """

    default_code = "Retriable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentError(SyncError):
    """A failure no retry can fix; record it where an administrator sees it and move on."""

    default_code = "Permanent"


class SkippableError(SyncError):
    """One record cannot be processed now; the surrounding batch continues."""

    default_code = "Skippable"


class ConfigurationError(SyncError):
    """The deployment is misconfigured; names the setting or privilege that is wrong."""

    default_code = "Configuration"
