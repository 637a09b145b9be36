"""The pure conversion plan of Sales orders and quotes, the ledger's claim rule, the queue messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import load_settings
from shared.domain.conversion_ledger import ClaimDecision, ConversionEntry, ConversionState, decide_claim
from shared.domain.notifications import ProcessingStep, ServiceEndpoint
from shared.domain.sales_documents import (
    DocumentKind,
    ProductInfo,
    Resolved,
    UnitInfo,
    comment_chunks,
    creation_marker,
    parse_document_message,
    plan_document,
)
from shared.errors import ConfigurationError, PermanentError
from shared.usecases.document_push import ensure_document_push

pytestmark = pytest.mark.unit

ORDER_ID = "6f2c9d3e-0000-4000-8000-000000000001"
BIKE, HELMET = "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"
PCS, BOX = "22222222-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002"
ITEM_BIKE, ITEM_HELMET = "33333333-0000-4000-8000-000000000001", "33333333-0000-4000-8000-000000000002"
CUSTOMER = "44444444-0000-4000-8000-000000000001"


def order(**changes: Any) -> dict[str, Any]:
    row = {
        "salesorderid": ORDER_ID,
        "ordernumber": "ORD-01001-ABCDEF",
        "name": "Bikes for the Adatum fleet, spring delivery to all regional offices",
        "requestdeliveryby": "2026-12-15T00:00:00Z",
        "statecode": 1,
    }
    row.update(changes)
    return row


def line(product: str | None = BIKE, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"productid": product, "uomid": PCS if product else None, "quantity": 4, "priceperunit": 450}
    row.update(changes)
    return row


def resolved(**changes: Any) -> Resolved:
    values: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "currency_id": "00000000-0000-0000-0000-000000000000",
        "products": {
            BIKE: ProductInfo(BIKE, "Bicycle", 1, 0, ITEM_BIKE),
            HELMET: ProductInfo(HELMET, "Helmet", 1, 0, ITEM_HELMET),
        },
        "units": {
            PCS: UnitInfo(PCS, "PCS", True, "NAV PCS", "PCS"),
            BOX: UnitInfo(BOX, "Box of 12", False, "NAV PCS", "PCS"),
        },
        "write_in_item": "WRITE-IN",
        "freight_account": "6100",
    }
    values.update(changes)
    return Resolved(**values)


def test_header_carries_customer_currency_date_and_a_marker_replaced_by_the_name_at_the_end() -> None:
    plan = plan_document(DocumentKind.ORDER, order(), [line()], resolved())
    assert plan.header == {
        "customerId": CUSTOMER,
        "externalDocumentNumber": creation_marker(DocumentKind.ORDER, ORDER_ID),
        "currencyId": "00000000-0000-0000-0000-000000000000",
        "requestedDeliveryDate": "2026-12-15",
    }
    assert plan.final_header == {"externalDocumentNumber": "Bikes for the Adatum fleet, spring "}  # 35 characters
    assert len(plan.final_header["externalDocumentNumber"]) == 35


def test_the_marker_is_deterministic_per_document_and_fits_external_document_no() -> None:
    marker = creation_marker(DocumentKind.ORDER, ORDER_ID)
    assert marker == creation_marker(DocumentKind.ORDER, ORDER_ID.upper())
    assert marker != creation_marker(DocumentKind.QUOTE, ORDER_ID)
    assert marker != creation_marker(DocumentKind.ORDER, BIKE)
    assert len(marker) <= 35 and marker.startswith("D365SO-")


def test_lines_follow_sequence_number_with_prices_discounts_and_units() -> None:
    lines = [
        line(HELMET, sequencenumber=2, quantity=4, priceperunit=39.95),
        line(BIKE, sequencenumber=1, manualdiscountamount=100, volumediscountamount=5),
    ]
    plan = plan_document(DocumentKind.ORDER, order(), lines, resolved(freight_account=None))
    assert plan.lines == (
        {
            "lineType": "Item",
            "itemId": ITEM_BIKE,
            "unitOfMeasureCode": "PCS",
            "quantity": 4,
            "unitPrice": 450,
            "discountAmount": 120,  # 4 x 5 volume + 100 manual
            "sequence": 10000,
        },
        {
            "lineType": "Item",
            "itemId": ITEM_HELMET,
            "unitOfMeasureCode": "PCS",
            "quantity": 4,
            "unitPrice": 39.95,
            "sequence": 20000,
        },
    )


def test_a_long_write_in_text_continues_on_comment_lines_of_at_most_100_characters() -> None:
    text = "Gift wrapping " * 20  # 280 characters
    plan = plan_document(
        DocumentKind.ORDER,
        order(),
        [line(None, isproductoverridden=True, productdescription=text.strip(), quantity=1, priceperunit=12.5)],
        resolved(),
    )
    first, *comments = plan.lines
    assert first["lineType"] == "Item" and first["lineObjectNumber"] == "WRITE-IN"
    assert first["description"] == text.strip()[:100]
    assert [c["lineType"] for c in comments] == ["Comment", "Comment"]
    assert all(len(c["description"]) <= 100 for c in comments)
    assert first["description"] + "".join(c["description"] for c in comments) == text.strip()
    assert [c["sequence"] for c in comments] == [20000, 30000]


def test_comment_chunks_keep_each_text_line_and_create_nothing_for_a_short_text() -> None:
    assert comment_chunks("Short") == ("Short", [])
    assert comment_chunks("") == ("", [])
    description, rest = comment_chunks("first line\nsecond line\n\n" + "x" * 150)
    assert description == "first line"
    assert rest == ["second line", "x" * 100, "x" * 50]


def test_freight_becomes_an_account_line_when_configured_and_is_left_out_otherwise() -> None:
    with_freight = plan_document(DocumentKind.ORDER, order(freightamount=25), [line()], resolved())
    assert with_freight.lines[-1] == {
        "lineType": "Account",
        "lineObjectNumber": "6100",
        "description": "Freight",
        "quantity": 1,
        "unitPrice": 25,
        "sequence": 20000,
    }
    without = plan_document(DocumentKind.ORDER, order(freightamount=25), [line()], resolved(freight_account=None))
    assert [entry["lineType"] for entry in without.lines] == ["Item"]


def test_an_order_discount_becomes_the_invoice_discount() -> None:
    header = order(discountpercentage=10, totallineitemamount=1800, totalamountlessfreight=1620)
    plan = plan_document(DocumentKind.ORDER, header, [line()], resolved())
    assert plan.final_header["discountAmount"] == 180


def test_addresses_are_copied_only_when_any_part_is_filled() -> None:
    plain = plan_document(DocumentKind.ORDER, order(), [line()], resolved())
    assert not any(key.startswith("shipTo") for key in plain.header)
    shipped = plan_document(DocumentKind.ORDER, order(shipto_city="Gent"), [line()], resolved())
    assert shipped.header["shipToCity"] == "Gent"
    assert shipped.header["shipToAddressLine1"] == ""


def test_a_quote_takes_valid_until_from_effective_to() -> None:
    quote = {"quoteid": ORDER_ID, "quotenumber": "QUO-1", "name": "Install", "effectiveto": "2027-01-31T00:00:00Z"}
    plan = plan_document(DocumentKind.QUOTE, quote, [line()], resolved())
    assert plan.header["validUntilDate"] == "2027-01-31"
    assert plan.header["externalDocumentNumber"].startswith("D365SQ-")


@pytest.mark.parametrize(
    ("products", "code", "words"),
    [
        ({}, "ProductNotFound", "does not exist"),
        ({BIKE: ProductInfo(BIKE, "Bicycle", 1, 1, ITEM_BIKE)}, "ProductNotActive", "is not active"),
        ({BIKE: ProductInfo(BIKE, "Bicycle", 1, 0, None)}, "ProductNotCoupled", "is not coupled to an item"),
        (
            {BIKE: ProductInfo(BIKE, "Install", 3, 0, None)},
            "ResourceProductUnavailable",
            "BC API v2.0 has no resources",
        ),
        ({BIKE: ProductInfo(BIKE, "Fee", 4, 0, None)}, "UnsupportedProductType", "Flat Fees"),
    ],
)
def test_product_preconditions_name_the_record_and_the_fix(
    products: dict[str, ProductInfo], code: str, words: str
) -> None:
    with pytest.raises(PermanentError) as raised:
        plan_document(DocumentKind.ORDER, order(), [line()], resolved(products=products))
    assert raised.value.code == code
    assert words in raised.value.message
    assert "line 1 of sales order ORD-01001-ABCDEF" in raised.value.message


def test_a_unit_not_coupled_or_not_the_base_unit_fails() -> None:
    uncoupled = {PCS: UnitInfo(PCS, "PCS", True, "NAV PCS", None)}
    with pytest.raises(PermanentError, match="not coupled to a unit of measure") as raised:
        plan_document(DocumentKind.ORDER, order(), [line()], resolved(units=uncoupled))
    assert raised.value.code == "UnitNotCoupled"
    with pytest.raises(PermanentError, match="not the base unit"):
        plan_document(DocumentKind.ORDER, order(), [line(uomid=BOX)], resolved())


def test_a_write_in_without_the_setting_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="WRITE_IN_PRODUCT_NO") as raised:
        plan_document(
            DocumentKind.ORDER, order(), [line(None, productdescription="Wrapping")], resolved(write_in_item=None)
        )
    assert raised.value.code == "WriteInProductNotConfigured"


def test_an_address_part_too_long_for_bc_is_refused_with_the_field_and_its_limit() -> None:
    with pytest.raises(PermanentError, match="shipToCity takes at most 30") as raised:
        plan_document(DocumentKind.ORDER, order(shipto_city="C" * 31), [line()], resolved())
    assert raised.value.code == "TextTooLong"


def test_the_claim_rule() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    entry = ConversionEntry("order", ORDER_ID, ConversionState.CONVERTING, holder="a", claimed_until=now + timedelta(1))
    assert decide_claim(None, "b", now) is ClaimDecision.TAKE
    assert decide_claim(entry, "b", now) is ClaimDecision.BUSY
    assert decide_claim(entry, "a", now) is ClaimDecision.TAKE
    assert decide_claim(entry.with_changes(claimed_until=now - timedelta(1)), "b", now) is ClaimDecision.TAKE
    assert decide_claim(entry.with_changes(state=ConversionState.FAILED), "b", now) is ClaimDecision.TAKE
    assert decide_claim(entry.with_changes(state=ConversionState.CONVERTED), "b", now) is ClaimDecision.DONE


def test_queue_messages_are_ours_or_dataverse_events_and_anything_else_is_malformed() -> None:
    ours = parse_document_message(
        json.dumps({"dataverseId": ORDER_ID.upper(), "source": "poll"}).encode(), DocumentKind.ORDER
    )
    assert (ours.dataverse_id, ours.source) == (ORDER_ID, "poll")
    event = {
        "MessageName": "Update",
        "PrimaryEntityName": "salesorder",
        "PrimaryEntityId": ORDER_ID,
        "InitiatingUserId": BIKE,
    }
    pushed = parse_document_message(json.dumps(event).encode(), DocumentKind.ORDER)
    assert (pushed.dataverse_id, pushed.source, pushed.initiator) == (ORDER_ID, "push", BIKE)
    for body in (b"not json", b"[]", b'{"dataverseId": "nope"}', json.dumps(event).encode()):
        kind = DocumentKind.QUOTE if body.startswith(b'{"Message') else DocumentKind.ORDER
        with pytest.raises(PermanentError) as raised:
            parse_document_message(body, kind)
        assert raised.value.code == "MalformedMessage"


class _Registry:
    """Dataverse's endpoints and steps, in memory (``PushRegistry``)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, str] = {}
        self.steps: dict[str, tuple[str, ProcessingStep, str]] = {}

    def logical_name(self, entity_set: str) -> str:
        return entity_set.removesuffix("s")

    def find_service_endpoint(self, name: str) -> str | None:
        return self.endpoints.get(name)

    def create_service_endpoint(self, endpoint: ServiceEndpoint) -> str:
        self.endpoints[endpoint.name] = f"ep-{len(self.endpoints)}"
        return self.endpoints[endpoint.name]

    def update_service_endpoint(self, endpoint_id: str, endpoint: ServiceEndpoint) -> None:
        pass

    def find_step(self, name: str) -> Any:
        if name not in self.steps:
            return None
        step_id, step, endpoint_id = self.steps[name]

        @dataclass
        class Found:
            step_id: str
            enabled: bool = True

            def differs_from(self, wanted: ProcessingStep, wanted_endpoint: str) -> bool:
                return wanted != step or wanted_endpoint != endpoint_id

        return Found(step_id)

    def create_step(self, step: ProcessingStep, endpoint_id: str) -> str:
        self.steps[step.name] = (f"st-{len(self.steps)}", step, endpoint_id)
        return self.steps[step.name][0]

    def update_step(self, step_id: str, step: ProcessingStep, endpoint_id: str) -> None:
        self.steps[step.name] = (step_id, step, endpoint_id)


def test_document_push_registers_one_endpoint_and_step_per_switched_on_queue_idempotently() -> None:
    registry = _Registry()
    connection = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=k"
    connections = {"sales-orders": connection, "quotes": f"{connection};EntityPath=quotes"}
    first = ensure_document_push(registry=registry, connections=connections, orders=True, quotes=True)
    assert [(i.kind, i.name, i.action) for i in first] == [
        ("serviceEndpoint", "BC connector: sales-orders", "created"),
        ("step", "BC connector: Update of salesorder to sales-orders", "created"),
        ("serviceEndpoint", "BC connector: quotes", "created"),
        ("step", "BC connector: Update of quote to quotes", "created"),
    ]
    step = registry.steps["BC connector: Update of salesorder to sales-orders"][1]
    assert (step.message, step.entity, step.filtering_attributes) == ("Update", "salesorder", ("statecode",))
    again = ensure_document_push(registry=registry, connections=connections, orders=True, quotes=True)
    assert [i.action for i in again if i.kind == "step"] == ["kept", "kept"]
    assert ensure_document_push(registry=registry, connections=connections, orders=False, quotes=False) == []
    wrong = ensure_document_push(
        registry=registry,
        connections={"sales-orders": f"{connection};EntityPath=dataverse-events"},
        orders=True,
        quotes=False,
    )
    assert [(i.action, "dataverse-events" in i.detail) for i in wrong] == [("failed", True)]


def test_document_settings_default_off_and_refuse_a_resource_write_in_or_a_bad_flag() -> None:
    from tests.unit.test_config import VALID

    documents = load_settings(VALID).documents
    assert (documents.auto_create_orders, documents.auto_process_quotes, documents.write_in_item) == (
        False,
        False,
        None,
    )
    on = load_settings({**VALID, "AUTO_CREATE_SALES_ORDERS": "true", "WRITE_IN_PRODUCT_NO": "WRITE-IN"}).documents
    assert on.auto_create_orders and on.write_in_item == "WRITE-IN"
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**VALID, "WRITE_IN_PRODUCT_TYPE": "Resource", "AUTO_PROCESS_SALES_QUOTES": "maybe"})
    assert "WRITE_IN_PRODUCT_TYPE must be Item" in raised.value.message
    assert "AUTO_PROCESS_SALES_QUOTES must be true or false" in raised.value.message
