"""Which privileges and API pages the connection test checks, from the configured mappings."""

from __future__ import annotations

from shared.domain.connection import TablePrivilege, needed_bc_pages, needed_privileges
from shared.mappings.registry import configured_mappings


def test_privileges_follow_each_mappings_direction_and_the_document_flows() -> None:
    needed = set(needed_privileges(configured_mappings(None)))
    # Accounts are written both ways; users are only read (SALESPEOPLE goes Sales → BC).
    assert {TablePrivilege("accounts", a) for a in ("Create", "Read", "Write")} <= needed
    assert TablePrivilege("systemusers", "Read") in needed
    assert not {TablePrivilege("systemusers", "Create"), TablePrivilege("systemusers", "Write")} & needed
    # Documents: posts and statistics are created; orders are read and their state written back.
    assert {TablePrivilege("posts", "Create"), TablePrivilege("nav_accountstatisticses", "Write")} <= needed
    assert TablePrivilege("salesorders", "Write") in needed
    # Option mappings change option sets (metadata), not rows.
    assert not [p for p in needed if "." in p.entity_set]


def test_every_privilege_and_page_is_listed_once_in_order() -> None:
    privileges = needed_privileges(configured_mappings(None))
    assert privileges == sorted(set(privileges))
    pages = needed_bc_pages(configured_mappings(None))
    assert pages == sorted(set(pages)) and {"customers", "items", "salesOrders", "salesInvoices"} <= set(pages)
