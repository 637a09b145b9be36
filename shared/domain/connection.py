"""The connection test's vocabulary: what each API must allow the connector, and the report.

The Dataverse application user needs table privileges (``prv<Action><SchemaName>``) on every
table a mapping or a document flow reads or writes; the BC app needs its permission sets to
cover every API page the connector uses. Which ones follows from the configured mappings and
the document flows; the check itself is in ``shared.usecases.connection_test``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shared.domain.mapping import TableMapping
from shared.domain.state import SyncDirection

__all__ = [
    "DOCUMENT_BC_PAGES",
    "DOCUMENT_PRIVILEGES",
    "CheckResult",
    "ConnectionReport",
    "TablePrivilege",
    "needed_bc_pages",
    "needed_privileges",
]


@dataclass(frozen=True, order=True)
class TablePrivilege:
    """One table privilege the application user must hold: Create, Read or Write on an entity set."""

    entity_set: str
    action: str  # Create | Read | Write


# Orders and quotes read (and their state written back), invoices and statistics created and
# updated, timeline posts created.
DOCUMENT_PRIVILEGES: Final = tuple(
    TablePrivilege(entity_set, action)
    for entity_set, actions in (
        ("salesorders", ("Read", "Write")),
        ("quotes", ("Read", "Write")),
        ("invoices", ("Create", "Read", "Write")),
        ("posts", ("Create", "Read")),
        ("nav_accountstatisticses", ("Create", "Read", "Write")),
        ("accounts", ("Read", "Write")),
    )
    for action in actions
)
# Documents created from Sales, and what BC → Sales reads.
DOCUMENT_BC_PAGES: Final = (
    "salesOrders",
    "salesQuotes",
    "salesInvoices",
    "salesShipments",
    "customerFinancialDetails",
)


def needed_privileges(mappings: Iterable[TableMapping]) -> list[TablePrivilege]:
    """Every table privilege the configured mappings and the document flows use, sorted, once each.

    Option mappings (an option set on a table, e.g. ``account.paymenttermscode``) change metadata,
    not rows; their privileges are not table privileges and are left out.
    """
    needed = set(DOCUMENT_PRIVILEGES)
    for mapping in mappings:
        entity_set = mapping.dataverse_entity_set
        if "." in entity_set:
            continue
        needed.add(TablePrivilege(entity_set, "Read"))
        if mapping.allows(SyncDirection.TO_DATAVERSE) and mapping.fields_for(SyncDirection.TO_DATAVERSE):
            needed.update({TablePrivilege(entity_set, "Create"), TablePrivilege(entity_set, "Write")})
    return sorted(needed)


def needed_bc_pages(mappings: Iterable[TableMapping]) -> list[str]:
    """Every BC API page the connector reads, sorted, once each."""
    return sorted({m.bc_entity_set for m in mappings} | set(DOCUMENT_BC_PAGES))


@dataclass(frozen=True)
class CheckResult:
    """One step of the test: passed, or what is wrong and how to fix it."""

    system: str  # dataverse | businessCentral
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        """As the HTTP answer shows it."""
        return {"system": self.system, "check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class ConnectionReport:
    """Every check that ran, in order; a failed step stops the checks after it on that system."""

    checks: Sequence[CheckResult] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """As the HTTP answer shows it."""
        return {"status": "ok" if self.ok else "failed", "checks": [c.to_json() for c in self.checks]}
