"""What the connection test asks Dataverse: who the connector is, and which table privileges it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from shared.adapters.dataverse.client import DataverseWebApi
from shared.domain.connection import TablePrivilege
from shared.errors import PermanentError
from shared.odata import guid_literal, string_literal

__all__ = ["DataverseDiagnostics"]

_SETS_PER_REQUEST = 20  # keeps the EntityDefinitions filter URL short
_PARALLEL = 4


class DataverseDiagnostics:
    """``shared.usecases.connection_test.DataverseChecks`` on the Web API."""

    def __init__(self, api: DataverseWebApi) -> None:
        self._api = api

    def who_am_i(self) -> str:
        """The connector's user id (``WhoAmI``): proves the token and that an application user exists."""
        body = self._api.get_json("WhoAmI", doing="asking who the connector is (WhoAmI)")
        return str(guid_literal(str(body.get("UserId", ""))))

    def missing_privileges(self, user_id: str, needed: Sequence[TablePrivilege]) -> list[str]:
        """The names of the ``needed`` privileges the user holds through none of its roles.

        A privilege is ``prv<Action><SchemaName>``; the schema names come from ``EntityDefinitions``.
        A table this environment does not have is reported as missing with its entity set name.
        """
        schema = self._schema_names(sorted({p.entity_set for p in needed}))
        names: list[str] = []
        absent: list[str] = []
        for privilege in needed:
            if privilege.entity_set in schema:
                names.append(f"prv{privilege.action}{schema[privilege.entity_set]}")
            else:
                absent.append(f"{privilege.entity_set} (no such table)")

        def lacks(name: str) -> bool:
            body = self._api.get_json(
                f"systemusers({guid_literal(user_id)})/Microsoft.Dynamics.CRM."
                f"RetrieveUserPrivilegeByPrivilegeName(PrivilegeName={string_literal(name)})",
                doing=f"checking the {name} privilege",
            )
            return not body.get("RolePrivileges")

        with ThreadPoolExecutor(max_workers=_PARALLEL, thread_name_prefix="privileges") as pool:
            lacking = [name for name, missing in zip(names, pool.map(lacks, names), strict=True) if missing]
        return sorted(set(lacking)) + sorted(set(absent))

    def _schema_names(self, entity_sets: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(entity_sets), _SETS_PER_REQUEST):
            chunk = entity_sets[start : start + _SETS_PER_REQUEST]
            body = self._api.get_json(
                "EntityDefinitions",
                params={
                    "$select": "EntitySetName,SchemaName",
                    "$filter": " or ".join(f"EntitySetName eq {string_literal(s)}" for s in chunk),
                },
                doing="reading the tables' schema names",
            )
            for entity in body.get("value") or []:
                if not isinstance(entity, dict) or not entity.get("SchemaName"):
                    raise PermanentError("Dataverse: EntityDefinitions answered without SchemaName", code="BadMetadata")
                found[str(entity["EntitySetName"])] = str(entity["SchemaName"])
        return found
