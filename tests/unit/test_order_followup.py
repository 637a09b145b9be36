"""Order follow-up planning (behaviour reference §4.6, §4.8), without I/O."""

from __future__ import annotations

from shared.domain.order_followup import (
    TEXT_INVOICE,
    TEXT_RELEASED,
    TEXT_SHIPMENT,
    BcOrderState,
    PostedDocument,
    PostTarget,
    SalesOrderState,
    missing_posts,
    plan_follow_up,
    post_id,
)

ORDER = "6f1c5b7e-0000-4000-8000-000000000001"
ACCOUNT = "6f1c5b7e-0000-4000-8000-0000000000aa"
SALES = SalesOrderState(ORDER, "ORD-01001-ABCDEF", statecode=1, account_id=ACCOUNT)


def _bc(**values: object) -> BcOrderState:
    return BcOrderState(bc_order_id="b1", **{"exists": True, "number": "S-ORD101001", **values})  # type: ignore[arg-type]


def test_an_open_order_in_bc_gives_nothing_to_do() -> None:
    plan = plan_follow_up(_bc(status="Open", requested_delivery_date="2026-12-01"), SALES)
    assert plan.posts == () and not plan.changes_order and not plan.uncouple


def test_release_posts_once_and_brings_the_requested_delivery_date() -> None:
    plan = plan_follow_up(_bc(status="Released", requested_delivery_date="2026-12-01"), SALES)
    assert [(p.target, p.text) for p in plan.posts] == [(PostTarget.ORDER, TEXT_RELEASED)]
    assert dict(plan.header) == {"requestdeliveryby": "2026-12-01"}
    # Same ids on every run: the second run finds them and creates nothing.
    again = plan_follow_up(_bc(status="Released", requested_delivery_date="2026-12-01"), SALES)
    assert missing_posts(again, [p.post_id for p in plan.posts]) == ()


def test_unchanged_header_values_are_not_written_again() -> None:
    sales = SalesOrderState(ORDER, "ORD-1", 1, ACCOUNT, requestdeliveryby="2026-12-01T00:00:00Z")
    plan = plan_follow_up(_bc(status="Released", requested_delivery_date="2026-12-01"), sales)
    assert dict(plan.header) == {}


def test_each_shipment_and_invoice_posts_once_and_the_last_shipment_date_is_fulfilled() -> None:
    bc = _bc(
        status="Open",  # a partly posted order is reopened in BC; it was released to be posted
        shipments=(PostedDocument("102001", "2026-11-20"), PostedDocument("102002", "2026-11-23")),
        invoices=(PostedDocument("103001", "2026-11-20"),),
    )
    plan = plan_follow_up(bc, SALES)
    texts = [(p.target, p.text) for p in plan.posts]
    assert texts == [
        (PostTarget.ORDER, TEXT_RELEASED),
        (PostTarget.ORDER, TEXT_SHIPMENT),
        (PostTarget.ORDER, TEXT_SHIPMENT),
        (PostTarget.ORDER, TEXT_INVOICE),
        (PostTarget.ACCOUNT, "Invoice '103001' for order 'ORD-01001-ABCDEF' has been posted in Business Central."),
    ]
    assert len({p.post_id for p in plan.posts}) == 5
    assert plan.header["datefulfilled"] == "2026-11-23"
    assert plan.set_state is None and not plan.uncouple


def test_a_completely_posted_order_is_invoiced_in_sales_and_uncoupled_once_its_invoices_are_there() -> None:
    shipped = (PostedDocument("102001", "2026-11-24"),)
    invoiced = (PostedDocument("103001", "2026-11-24", bc_id="i1"),)
    plan = plan_follow_up(BcOrderState("b1", exists=False, shipments=shipped, invoices=invoiced), SALES)
    assert plan.set_state == (4, 100003)
    # The posted-invoice job links the Sales invoice to its order through this coupling: keep it.
    assert not plan.uncouple
    assert plan.posts[-1].text == "Order 'ORD-01001-ABCDEF' has been posted in Business Central."
    assert plan.posts[-1].target is PostTarget.ACCOUNT and plan.posts[-1].regarding_id == ACCOUNT
    # The next run, with the order Invoiced in Sales: nothing until the invoice is in Sales, then uncoupled.
    invoiced_sales = SalesOrderState(ORDER, "ORD-01001-ABCDEF", 4, ACCOUNT)
    waiting = plan_follow_up(BcOrderState("b1", exists=False, invoices=invoiced), invoiced_sales)
    assert not waiting.uncouple and not waiting.changes_order and waiting.posts == ()
    done = plan_follow_up(BcOrderState("b1", exists=False, invoices=invoiced, invoices_in_sales=True), invoiced_sales)
    assert done.uncouple and not done.changes_order


def test_an_order_deleted_in_bc_without_posting_goes_back_to_sales_to_be_submitted_again() -> None:
    plan = plan_follow_up(BcOrderState("b1", exists=False), SALES)
    assert plan.set_state == (0, 2) and plan.clear_last_submit and plan.uncouple and plan.posts == ()


def test_a_sales_order_canceled_in_sales_is_only_uncoupled() -> None:
    sales = SalesOrderState(ORDER, "ORD-1", 2, ACCOUNT)
    plan = plan_follow_up(_bc(status="Released"), sales)
    assert plan.uncouple and not plan.changes_order and plan.posts == ()


def test_post_ids_differ_per_order_and_event_and_ignore_case() -> None:
    assert post_id(ORDER, "released") == post_id(ORDER.upper(), "released")
    assert post_id(ORDER, "released") != post_id(ORDER, "shipment|1")
    assert post_id(ORDER, "released") != post_id(ACCOUNT, "released")


def test_a_post_row_binds_its_regarding_record() -> None:
    plan = plan_follow_up(_bc(status="Released"), SALES)
    row = plan.posts[0].row()
    assert row["regardingobjectid_salesorder@odata.bind"] == f"/salesorders({ORDER})"
    assert row["postid"] == plan.posts[0].post_id and row["source"] == 1 and row["type"] == 7
