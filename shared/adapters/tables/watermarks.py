"""Watermarks in Table Storage: one row per mapping and pass, moved forward conditionally."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.tables._errors import map_table_error, table_errors
from shared.adapters.tables._keys import encode_key
from shared.domain.state import Watermark
from shared.errors import RetriableError


def _entity(watermark: Watermark) -> dict[str, Any]:
    return {
        "PartitionKey": encode_key(watermark.mapping),
        "RowKey": encode_key(watermark.pass_name),
        "Mapping": watermark.mapping,
        "PassName": watermark.pass_name,
        "Value": watermark.value,
        "StateVersion": watermark.state_version,
    }


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


class TableWatermarkStore:
    """``WatermarkStore`` on Azure Table Storage."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, mapping: str, pass_name: str) -> Watermark | None:
        """The stored watermark, or ``None`` before the first run."""
        with table_errors(f"reading watermark {mapping}/{pass_name}"):
            try:
                entity = self._table.get_entity(encode_key(mapping), encode_key(pass_name))
            except ResourceNotFoundError:
                return None
        return Watermark(
            mapping=entity["Mapping"],
            pass_name=entity["PassName"],
            value=entity["Value"],
            state_version=int(entity.get("StateVersion") or 1),
            etag=entity.metadata["etag"],
        )

    def advance(self, watermark: Watermark) -> Watermark:
        """Store ``watermark`` if it is not behind what is stored.

        The write is conditional on the etag of the earlier read (or on no row existing when
        ``etag`` is ``None``), so a slower worker cannot move a watermark back over a faster one.
        Values are compared as instants, not as text: the two APIs write different numbers of
        fractional digits, which text order gets wrong.

        Raises:
            RetriableError: code ``ConcurrencyConflict`` if the row changed since it was read.
        """
        doing = f"advancing watermark {watermark.mapping}/{watermark.pass_name}"
        try:
            if watermark.etag is None:
                result = self._table.create_entity(_entity(watermark))
            else:
                stored = self.get(watermark.mapping, watermark.pass_name)
                if stored is not None and _instant(stored.value) > _instant(watermark.value):
                    return stored  # never move backwards
                result = self._table.update_entity(
                    _entity(watermark),
                    mode=UpdateMode.REPLACE,
                    etag=watermark.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError) as error:
            raise RetriableError(f"{doing}: it changed since it was read", code="ConcurrencyConflict") from error
        except RetriableError:
            raise
        except Exception as error:
            raise map_table_error(error, doing) from error
        return replace(watermark, etag=result["etag"])
