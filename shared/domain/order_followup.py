"""Order follow-up, BC → Sales (behaviour reference §4.6): what one run does for one coupled order.

For a Sales order that became a BC sales order (coupled under ``SALESORDER-ORDER``), the run
compares what BC shows now (the order, its posted shipments and invoices) with the Sales order
and plans:

- header fields back to the Sales order once the BC order is released: Requested Delivery Date →
  ``requestdeliveryby``, the newest shipment's date → ``datefulfilled`` (BC API v2.0 has no "Last
  Shipment Date" on the order; the posted shipments carry it);
- timeline posts on the Sales order (released, each shipment, each invoice) and on its account
  (each invoice, and the order once fully posted), with the built-in's texts;
- the Sales order set to Invoiced (statecode 4 / statuscode 100003) once BC has deleted the order
  after posting it completely, and the coupling removed once every invoice of the order is in Sales
  too (the posted-invoice job links each Sales invoice to its order through this coupling, and may
  run after the follow-up);
- a BC order deleted by hand (gone, nothing posted): the Sales order back to Active / Pending with
  ``lastbackofficesubmit`` cleared so it can be submitted again (§4.8), and the coupling removed.

Posts get ids derived from the order and the event (UUID v5), so a rerun, a crash after some
posts, or two runs at once can never post the same event twice: Dataverse refuses a second row
with the same id, and the run looks them up before creating.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "BC_PRODUCT_NAME",
    "BcOrderState",
    "FollowUpPlan",
    "PlannedPost",
    "PostedDocument",
    "SalesOrderState",
    "missing_posts",
    "plan_follow_up",
    "post_id",
]

BC_PRODUCT_NAME: Final = "Business Central"
_POST_NAMESPACE: Final = uuid.UUID("5d3c1f0e-8a4b-4f43-9c55-0d7e6f1a2b3c")

# Dataverse salesorder states (Appendix A)
ACTIVE, SUBMITTED, CANCELED, FULFILLED, INVOICED = 0, 1, 2, 3, 4
PENDING: Final = 2
INVOICED_STATUS: Final = 100003
POST_SOURCE_AUTO: Final = 1
POST_TYPE_STATUS: Final = 7

TEXT_RELEASED: Final = "The order status has changed to Released."
TEXT_SHIPMENT: Final = "A shipment has been created for the order."
TEXT_INVOICE: Final = "An invoice has been created for the order."


class PostTarget(enum.StrEnum):
    """Whose timeline a post goes on."""

    ORDER = "salesorder"
    ACCOUNT = "account"


@dataclass(frozen=True)
class PostedDocument:
    """A posted shipment or invoice of the BC order: its number and its date."""

    number: str
    posting_date: str  # YYYY-MM-DD
    bc_id: str = ""


@dataclass(frozen=True)
class BcOrderState:
    """What BC shows of one coupled order. ``exists`` is False once BC deleted it."""

    bc_order_id: str
    exists: bool
    number: str = ""
    status: str = ""  # Draft | In Review | Open | Released
    requested_delivery_date: str | None = None
    shipments: tuple[PostedDocument, ...] = ()
    invoices: tuple[PostedDocument, ...] = ()
    invoices_in_sales: bool = False  # every posted invoice of the order has its Sales invoice


@dataclass(frozen=True)
class SalesOrderState:
    """The Sales order as read: the fields follow-up may change."""

    salesorder_id: str
    ordernumber: str
    statecode: int
    account_id: str | None
    requestdeliveryby: str | None = None
    datefulfilled: str | None = None


@dataclass(frozen=True)
class PlannedPost:
    """One timeline post, with its deterministic id."""

    post_id: str
    target: PostTarget
    regarding_id: str
    text: str

    def row(self) -> dict[str, Any]:
        """The Dataverse ``post`` row (the id in the body: a second create of it is refused)."""
        entity_set = "salesorders" if self.target is PostTarget.ORDER else "accounts"
        return {
            "postid": self.post_id,
            f"regardingobjectid_{self.target.value}@odata.bind": f"/{entity_set}({self.regarding_id})",
            "source": POST_SOURCE_AUTO,
            "type": POST_TYPE_STATUS,
            "text": self.text,
        }


@dataclass(frozen=True)
class FollowUpPlan:
    """Everything one run should do for one order; empty when nothing changed."""

    salesorder_id: str
    header: Mapping[str, Any] = field(default_factory=dict)
    posts: tuple[PlannedPost, ...] = ()
    set_state: tuple[int, int] | None = None  # (statecode, statuscode) to end in
    clear_last_submit: bool = False
    uncouple: bool = False
    reason: str = ""

    @property
    def changes_order(self) -> bool:
        """Whether the Sales order row itself is written."""
        return bool(self.header) or self.set_state is not None or self.clear_last_submit


def post_id(salesorder_id: str, event: str) -> str:
    """The id of the post for ``event`` of a Sales order: the same on every run."""
    return str(uuid.uuid5(_POST_NAMESPACE, f"{salesorder_id.lower()}|{event}"))


def _date_part(value: Any) -> str | None:
    """``YYYY-MM-DD`` of a date or datetime text; ``None`` for empty / BC's blank date."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    return value[:10]


def _header_changes(bc: BcOrderState, sales: SalesOrderState) -> dict[str, Any]:
    wanted: dict[str, str | None] = {}
    if (requested := _date_part(bc.requested_delivery_date)) is not None:
        wanted["requestdeliveryby"] = requested
    if bc.shipments:
        wanted["datefulfilled"] = max(s.posting_date for s in bc.shipments)[:10]
    current = {"requestdeliveryby": sales.requestdeliveryby, "datefulfilled": sales.datefulfilled}
    return {k: v for k, v in wanted.items() if _date_part(current[k]) != v}


def _posts(bc: BcOrderState, sales: SalesOrderState) -> list[PlannedPost]:
    order = sales.salesorder_id
    posts: list[PlannedPost] = []
    if bc.status == "Released" or bc.shipments or bc.invoices:
        # A posted order was released first, whether or not a run saw it in that state.
        posts.append(PlannedPost(post_id(order, "released"), PostTarget.ORDER, order, TEXT_RELEASED))
    for shipment in sorted(bc.shipments, key=lambda s: s.number):
        posts.append(PlannedPost(post_id(order, f"shipment|{shipment.number}"), PostTarget.ORDER, order, TEXT_SHIPMENT))
    for invoice in sorted(bc.invoices, key=lambda i: i.number):
        posts.append(PlannedPost(post_id(order, f"invoice|{invoice.number}"), PostTarget.ORDER, order, TEXT_INVOICE))
        if sales.account_id:
            text = f"Invoice '{invoice.number}' for order '{sales.ordernumber}' has been posted in {BC_PRODUCT_NAME}."
            posts.append(
                PlannedPost(
                    post_id(order, f"account-invoice|{invoice.number}"), PostTarget.ACCOUNT, sales.account_id, text
                )
            )
    return posts


def plan_follow_up(bc: BcOrderState, sales: SalesOrderState) -> FollowUpPlan:
    """What to write to Sales for one coupled order."""
    order = sales.salesorder_id
    if sales.statecode == CANCELED:
        return FollowUpPlan(order, uncouple=True, reason="the Sales order was canceled in Sales")
    if sales.statecode == INVOICED:
        # A previous run finished it; the coupling stays until its invoices have reached Sales.
        if bc.invoices_in_sales or not bc.invoices:
            return FollowUpPlan(order, uncouple=True, reason="the order and its invoices are in Sales")
        return FollowUpPlan(order)
    if not bc.exists and not bc.invoices:
        # Deleted in BC by hand: give the order back to Sales so it can be submitted again.
        return FollowUpPlan(
            order,
            set_state=(ACTIVE, PENDING),
            clear_last_submit=True,
            uncouple=True,
            reason="the BC order was deleted without being posted",
        )
    posts = _posts(bc, sales)
    if not bc.exists:
        # BC deletes an order once it is completely shipped and invoiced.
        if sales.account_id:
            text = f"Order '{sales.ordernumber}' has been posted in {BC_PRODUCT_NAME}."
            posts.append(PlannedPost(post_id(order, "account-posted"), PostTarget.ACCOUNT, sales.account_id, text))
        return FollowUpPlan(
            order,
            header=_header_changes(bc, sales),
            posts=tuple(posts),
            set_state=(INVOICED, INVOICED_STATUS),
            uncouple=bc.invoices_in_sales,
            reason="the BC order is completely invoiced",
        )
    header = _header_changes(bc, sales) if bc.status == "Released" or bc.shipments else {}
    return FollowUpPlan(order, header=header, posts=tuple(posts))


def missing_posts(plan: FollowUpPlan, existing_ids: Sequence[str]) -> tuple[PlannedPost, ...]:
    """The planned posts not yet in Dataverse."""
    have = {i.lower() for i in existing_ids}
    return tuple(p for p in plan.posts if p.post_id not in have)
