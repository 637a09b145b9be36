"""Dataverse's error shapes: ``{"error": {"code": "0x...", "message": ...}}`` with the HTTP status.

Every failure an executor can produce is built here, so the codes and messages that clients and
tests pin live in one table. Codes marked (Doc) come from wire-protocols §A; the others are the
platform codes as best known and are listed as unverified in the emulator's README notes.
"""

from __future__ import annotations

from collections.abc import Mapping


class DataverseError(Exception):
    """A failure answered in Dataverse's error shape."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


# Codes (Doc: wire-protocols §A.6/§A.7; the rest best known, unverified).
QUERY_NOT_SUPPORTED = "0x80060888"  # also used for unknown properties / segments and /$ref
VALIDATION = "0x80044331"  # (Doc) string length, value out of range
PAYLOAD = "0x80048d19"  # malformed payload (wrong type, direct _x_value write)
DOES_NOT_EXIST = "0x80040217"
INVALID_ARGUMENT = "0x80040203"
CONCURRENCY = "0x80060882"
DUPLICATE = "0x80040237"
NOT_SUPPORTED = "0x80040800"
READ_ONLY = "0x80040227"
EXPIRED_VERSION = "0x80044352"
NOT_MEMBER = "0x80072560"
TOO_MANY_REQUESTS = "0x80072322"  # (Doc)
TOO_MUCH_TIME = "0x80072321"  # (Doc)
TOO_MANY_CONCURRENT = "0x80072326"  # (Doc)


def bad_request(message: str, code: str = INVALID_ARGUMENT) -> DataverseError:
    return DataverseError(400, code, message)


def query_not_supported(message: str) -> DataverseError:
    return DataverseError(400, QUERY_NOT_SUPPORTED, message)


def not_found(logical_name: str, record_id: str, *, code: str = DOES_NOT_EXIST) -> DataverseError:
    return DataverseError(404, code, f"{logical_name} With Id = {record_id} Does Not Exist")


def segment_not_found(segment: str) -> DataverseError:
    return DataverseError(404, QUERY_NOT_SUPPORTED, f"Resource not found for the segment '{segment}'.")


def unknown_property(name: str, logical_name: str) -> DataverseError:
    return DataverseError(
        400,
        QUERY_NOT_SUPPORTED,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{logical_name}'.",
    )


def undeclared_property(name: str, logical_name: str) -> DataverseError:
    return DataverseError(
        400,
        PAYLOAD,
        f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{logical_name}'. Make sure "
        "to only use property names that are defined by the type.",
    )


def too_long(attribute: str, logical_name: str, max_length: int) -> DataverseError:
    return DataverseError(
        400,
        VALIDATION,
        f"A validation error occurred. The length of the '{attribute}' attribute of the '{logical_name}' "
        f"entity exceeded the maximum allowed length of '{max_length}'.",
    )


def out_of_range(attribute: str, logical_name: str, value: object, accepted: str) -> DataverseError:
    return DataverseError(
        400,
        VALIDATION,
        f"A validation error occurred. The value {value} of '{attribute}' on record of type "
        f"'{logical_name}' is outside the valid range. Accepted Values: {accepted}",
    )


def payload_error(logical_name: str, detail: str) -> DataverseError:
    return DataverseError(
        400,
        PAYLOAD,
        f"Error identified in Payload provided by the user for Entity :'{logical_name}', For more "
        f"information on this error please follow this help link "
        f"https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : "
        f"Microsoft.OData.ODataException: {detail}",
    )


def invalid_key(logical_name: str) -> DataverseError:
    return DataverseError(
        400,
        QUERY_NOT_SUPPORTED,
        f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{logical_name}'. "
        "Ensure that the names and number of key properties match the declared or alternate key "
        f"properties for the resource 'Microsoft.Dynamics.CRM.{logical_name}'.",
    )


def version_mismatch() -> DataverseError:
    return DataverseError(
        412, CONCURRENCY, "The version of the existing record doesn't match the RowVersion property provided."
    )


def already_exists() -> DataverseError:
    return DataverseError(412, DUPLICATE, "A record with matching key values already exists.")


def message_not_supported(message: str, logical_name: str) -> DataverseError:
    return DataverseError(
        405,
        NOT_SUPPORTED,
        f"The '{message}' method does not support entities of type '{logical_name}'. "
        "MessageProcessorCache returned MessageProcessor.Empty.",
    )
