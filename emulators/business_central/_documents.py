"""Sales-document rules: defaults from the customer, line validation, totals, posting actions, payments.

Simplifications (each one visible to a client, so named here): one VAT rate per company applied
to Item and Account lines; ``shipAndInvoice`` ships and invoices everything that is left;
a payment with no applies-to invoice becomes customer credit.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from emulators.business_central._errors import BcError, dialog
from emulators.business_central._schema import BLANK_DATE, BLANK_DATETIME, BLANK_GUID, ENTITIES, EntityType
from emulators.business_central._store import Record, Store

__all__ = ["DOCUMENT_SETS", "LINE_SETS", "Company"]

CENT = Decimal("0.01")
# Header entity set → (line entity set, number series start, number template).
DOCUMENT_SETS: dict[str, tuple[str, int, str]] = {
    "salesOrders": ("salesOrderLines", 101001, "S-ORD{}"),
    "salesQuotes": ("salesQuoteLines", 1001, "S-QUO{}"),
    "salesInvoices": ("salesInvoiceLines", 102001, "S-INV{}"),
}
LINE_SETS = {lines: header for header, (lines, _, _) in DOCUMENT_SETS.items()}
POSTED_INVOICE_SERIES = (103001, "PS-INV{}")
SHIPMENT_SERIES = (102001, "S-SHPT{}")
_ENTITY = {e.set_name: e for e in ENTITIES}


def money(value: Any) -> Decimal:
    """A decimal rounded to cents."""
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


def as_number(value: Decimal) -> float | int:
    """JSON number for a decimal (integers stay integers, as BC prints them)."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Company:
    """One company's data, with the rules that need more than one table."""

    store: Store
    id: str

    @property
    def record(self) -> Record:
        """The company row (with settings in ``_lcy`` and ``_vat``)."""
        return self.store.companies[self.id]

    def table(self, set_name: str) -> dict[str, Record]:
        """A live table of this company."""
        return self.store.table(self.id, set_name)

    def find(self, set_name: str, field: str, value: Any) -> Record | None:
        """The first record whose ``field`` equals ``value`` (case-insensitive for codes)."""
        wanted = str(value).lower()
        for record in self.table(set_name).values():
            if str(record.get(field, "")).lower() == wanted:
                return record
        return None

    def free_number(self, set_name: str, start: int, template: str) -> str:
        """The next number of a series that no record of ``set_name`` uses yet (seeds use numbers too)."""
        while True:
            number = self.store.next_number(self.id, set_name, start, template)
            if self.find(set_name, "number", number) is None:
                return number

    # -- customers and headers ------------------------------------------------------------------------
    def resolve_customer(self, body: dict[str, Any], *, required: bool = True) -> Record | None:
        """The customer named by ``customerId`` / ``customerNumber`` (both must agree)."""
        by_id = body.get("customerId")
        by_number = body.get("customerNumber")
        if by_id in (None, BLANK_GUID) and not by_number:
            if required:
                raise dialog("You must specify a customer id or a customer number.")
            return None
        customer = None
        if by_id not in (None, BLANK_GUID):
            customer = self.table("customers").get(str(by_id).lower())
            if customer is None:
                raise dialog(f"The Customer does not exist. Identification fields and values: Id='{by_id}'")
        if by_number:
            numbered = self.find("customers", "number", by_number)
            if numbered is None:
                raise dialog(f"The Customer does not exist. Identification fields and values: No.='{by_number}'")
            if customer is not None and numbered["id"] != customer["id"]:
                raise dialog("The customer number and the customer id do not refer to the same customer.")
            customer = numbered
        assert customer is not None
        return customer

    def apply_customer(self, header: Record, customer: Record, provided: set[str]) -> None:
        """Copy the customer's name, addresses and terms onto a document header (what BC validates in)."""
        if customer.get("blocked") == "All":
            raise BcError(
                400,
                "Application_FieldValidationException",
                f"You cannot create this type of document when Customer {customer['number']} is blocked with type All",
            )
        header["customerId"] = customer["id"]
        header["customerNumber"] = customer["number"]
        header["customerName"] = customer["displayName"]
        defaults = {
            "billToCustomerId": customer["id"],
            "billToCustomerNumber": customer["number"],
            "billToName": customer["displayName"],
            "shipToName": customer["displayName"],
            "phoneNumber": customer.get("phoneNumber", ""),
            "email": customer.get("email", ""),
            "paymentTermsId": customer.get("paymentTermsId", BLANK_GUID),
            "shipmentMethodId": customer.get("shipmentMethodId", BLANK_GUID),
            "salesperson": customer.get("salespersonCode", ""),
        }
        for prefix in ("sellTo", "billTo", "shipTo"):
            defaults.update(
                {
                    f"{prefix}AddressLine1": customer.get("addressLine1", ""),
                    f"{prefix}AddressLine2": customer.get("addressLine2", ""),
                    f"{prefix}City": customer.get("city", ""),
                    f"{prefix}Country": customer.get("country", ""),
                    f"{prefix}State": customer.get("state", ""),
                    f"{prefix}PostCode": customer.get("postalCode", ""),
                }
            )
        for key, value in defaults.items():
            if key not in provided:
                header[key] = value
        if "currencyId" not in provided and "currencyCode" not in provided:
            header["currencyId"] = customer.get("currencyId", BLANK_GUID)
            header["currencyCode"] = customer.get("currencyCode") or self.record["_lcy"]

    def apply_currency(self, record: Record, provided: set[str]) -> None:
        """Resolve ``currencyId`` / ``currencyCode``; the local currency has the blank id."""
        lcy = self.record["_lcy"]
        if "currencyId" in provided and record["currencyId"] != BLANK_GUID:
            currency = self.table("currencies").get(record["currencyId"])
            if currency is None:
                raise dialog(
                    f"The Currency does not exist. Identification fields and values: Id='{record['currencyId']}'"
                )
            record["currencyCode"] = currency["code"]
        elif "currencyCode" in provided:
            code = record["currencyCode"]
            if code in ("", lcy):
                record["currencyId"], record["currencyCode"] = BLANK_GUID, lcy
            else:
                currency = self.find("currencies", "code", code)
                if currency is None:
                    raise dialog(f"The Currency does not exist. Identification fields and values: Code='{code}'")
                record["currencyId"], record["currencyCode"] = currency["id"], currency["code"]
        elif "currencyId" in provided:
            record["currencyCode"] = lcy

    def due_date(self, start: str, payment_terms_id: str) -> str:
        """``start`` plus the payment terms' due-date formula (``<n>D``, ``<n>W``, ``<n>M``, ``CM``)."""
        terms = self.table("paymentTerms").get(payment_terms_id or "")
        formula = (terms or {}).get("dueDateCalculation", "")
        day = dt.date.fromisoformat(start)
        for amount, unit in re.findall(r"([+-]?\d*)\s*(CM|D|W|M|Y)", formula.upper()):
            n = int(amount) if amount not in ("", "+", "-") else (0 if unit == "CM" else 1)
            if unit == "D":
                day += dt.timedelta(days=n)
            elif unit == "W":
                day += dt.timedelta(weeks=n)
            elif unit in ("M", "Y"):
                months = n * (12 if unit == "Y" else 1)
                year, month = divmod(day.month - 1 + months, 12)
                year += day.year
                day = day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))
            elif unit == "CM":
                day = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        return day.isoformat()

    def header_defaults(self, set_name: str, header: Record, provided: set[str]) -> None:
        """Server-filled fields of a new document header."""
        today = self.store.today()
        header["status"] = "Draft"
        header.setdefault("discountAmount", 0)
        for key in ("orderDate", "documentDate", "invoiceDate", "postingDate"):
            if key in header and (key not in provided or header[key] == BLANK_DATE):
                header[key] = today
        if set_name == "salesOrders":
            header["partialShipping"] = header.get("partialShipping", True) if "partialShipping" in provided else True
            header["fullyShipped"] = False
        if set_name == "salesInvoices":
            header["remainingAmount"] = 0
            if "dueDate" not in provided or header["dueDate"] == BLANK_DATE:
                header["dueDate"] = self.due_date(header["invoiceDate"], header["paymentTermsId"])
        if set_name == "salesQuotes":
            header["sentDate"], header["acceptedDate"] = BLANK_DATETIME, BLANK_DATE
            if "dueDate" not in provided or header["dueDate"] == BLANK_DATE:
                header["dueDate"] = self.due_date(header["documentDate"], header["paymentTermsId"])
        start, template = DOCUMENT_SETS[set_name][1:]
        header["number"] = self.free_number(set_name, start, template)

    # -- lines -----------------------------------------------------------------------------------------
    def prepare_line(self, line: Record, provided: set[str], *, creating: bool) -> None:
        """Validate a line's type and object, and default description, price and unit from the item."""
        line_type = line.get("lineType")
        if "lineType" not in provided and creating:
            line_type = "Item" if ("itemId" in provided or "lineObjectNumber" in provided) else "Comment"
            if "accountId" in provided:
                line_type = "Account"
            line["lineType"] = line_type
        if line_type in ("Resource", "Fixed Asset", "Charge"):
            raise NotImplementedError(f"document lines of type {line_type}")
        if line_type == "Item" and ({"itemId", "lineObjectNumber", "lineType"} & provided):
            item = self._line_item(line, provided)
            line["itemId"], line["lineObjectNumber"] = item["id"], item["number"]
            if item.get("blocked"):
                raise BcError(
                    400,
                    "Application_FieldValidationException",
                    f"Blocked must be equal to 'No'  in Item: No.={item['number']}. Current value is 'Yes'.",
                )
            if "description" not in provided:
                line["description"] = item["displayName"]
            if "unitPrice" not in provided:
                line["unitPrice"] = item.get("unitPrice", 0)
            if "unitOfMeasureId" not in provided and "unitOfMeasureCode" not in provided:
                line["unitOfMeasureId"] = item.get("baseUnitOfMeasureId", BLANK_GUID)
                line["unitOfMeasureCode"] = item.get("baseUnitOfMeasureCode", "")
        elif line_type == "Account":
            if not line.get("lineObjectNumber") and line.get("accountId") in (None, BLANK_GUID):
                raise dialog("You must specify an account id or an account number.")
            line["itemId"] = BLANK_GUID
        elif line_type == "Comment":
            if any(float(line.get(k) or 0) for k in ("quantity", "unitPrice")):
                raise dialog("Comment lines cannot have a quantity or a unit price.")
            line["itemId"], line["lineObjectNumber"] = BLANK_GUID, ""
        if "unitOfMeasureCode" in provided and line.get("unitOfMeasureCode"):
            uom = self.find("unitsOfMeasure", "code", line["unitOfMeasureCode"])
            if uom is None:
                raise dialog(
                    f"The Unit of Measure does not exist. Identification fields and values: "
                    f"Code='{line['unitOfMeasureCode']}'"
                )
            line["unitOfMeasureId"] = uom["id"]
        if float(line.get("quantity") or 0) < 0:
            raise dialog("Quantity must be positive.")

    def _line_item(self, line: Record, provided: set[str]) -> Record:
        item = None
        if "itemId" in provided and line.get("itemId") not in (None, BLANK_GUID):
            item = self.table("items").get(str(line["itemId"]).lower())
            if item is None:
                raise dialog(f"The Item does not exist. Identification fields and values: Id='{line['itemId']}'")
        if "lineObjectNumber" in provided and line.get("lineObjectNumber"):
            numbered = self.find("items", "number", line["lineObjectNumber"])
            if numbered is None:
                raise dialog(
                    f"The Item does not exist. Identification fields and values: No.='{line['lineObjectNumber']}'"
                )
            if item is not None and item["id"] != numbered["id"]:
                raise dialog("The itemId and the lineObjectNumber do not refer to the same item.")
            item = numbered
        if item is None:
            raise dialog("You must specify an item id or an item number (lineObjectNumber) on an Item line.")
        return item

    def lines_of(self, header_set: str, header_id: str) -> list[Record]:
        """A document's lines in sequence order (live records)."""
        line_set = DOCUMENT_SETS[header_set][0] if header_set in DOCUMENT_SETS else "salesShipmentLines"
        lines = [r for r in self.table(line_set).values() if r.get("documentId") == header_id]
        return sorted(lines, key=lambda r: (int(r.get("sequence") or 0), r["_seq"]))

    def recalc(self, header_set: str, header: Record) -> None:
        """Line amounts, the header's invoice discount allocation and the header totals."""
        vat = Decimal(str(self.record["_vat"]))
        lines = self.lines_of(header_set, header["id"])
        gross: list[Decimal] = []
        for line in lines:
            quantity, price = Decimal(str(line.get("quantity") or 0)), Decimal(str(line.get("unitPrice") or 0))
            base = money(quantity * price)
            percent = Decimal(str(line.get("discountPercent") or 0))
            discount = money(base * percent / 100) if percent else money(line.get("discountAmount"))
            line["discountAmount"] = as_number(discount)
            amount = base - discount
            line["amountExcludingTax"] = as_number(amount)
            line["taxPercent"] = as_number(vat) if line.get("lineType") in ("Item", "Account") else 0
            gross.append(amount)
        header_discount = money(header.get("discountAmount"))
        total_gross = sum(gross, Decimal(0))
        if header_discount > total_gross:
            raise dialog(f"The invoice discount cannot exceed the document amount ({total_gross}).")
        allocated_sum = Decimal(0)
        total_excl = total_tax = Decimal(0)
        for index, (line, amount) in enumerate(zip(lines, gross, strict=True)):
            if index == len(lines) - 1:
                allocation = header_discount - allocated_sum
            else:
                allocation = money(header_discount * amount / total_gross) if total_gross else Decimal(0)
            allocated_sum += allocation
            net = amount - allocation
            tax = money(net * Decimal(str(line["taxPercent"])) / 100)
            line_tax = money(amount * Decimal(str(line["taxPercent"])) / 100)
            line.update(
                {
                    "invoiceDiscountAllocation": as_number(allocation),
                    "netAmount": as_number(net),
                    "netTaxAmount": as_number(tax),
                    "netAmountIncludingTax": as_number(net + tax),
                    "totalTaxAmount": as_number(line_tax),
                    "amountIncludingTax": as_number(amount + line_tax),
                    "discountAppliedBeforeTax": True,
                }
            )
            total_excl += net
            total_tax += tax
        header["totalAmountExcludingTax"] = as_number(total_excl)
        header["totalTaxAmount"] = as_number(total_tax)
        header["totalAmountIncludingTax"] = as_number(total_excl + total_tax)
        if header_set == "salesOrders":
            header["discountAppliedBeforeTax"] = True
            header["fullyShipped"] = bool(lines) and all(
                Decimal(str(r.get("shippedQuantity") or 0)) >= Decimal(str(r.get("quantity") or 0))
                for r in lines
                if r.get("lineType") != "Comment"
            )

    # -- computed views --------------------------------------------------------------------------------
    def financial_details(self, only: set[str] | None = None) -> dict[str, Record]:
        """customerFinancialDetail per customer id (of ``only``, if given): balance, sales and overdue amount."""
        today = self.store.today()
        sums: dict[str, list[Decimal]] = {}
        for invoice in self.table("salesInvoices").values():
            if invoice.get("status") in ("Draft", "Canceled"):
                continue
            remaining = money(invoice.get("remainingAmount"))
            entry = sums.setdefault(invoice.get("customerId", ""), [Decimal(0), Decimal(0), Decimal(0)])
            entry[0] += remaining
            entry[1] += money(invoice.get("totalAmountExcludingTax"))
            if remaining and invoice.get("dueDate", BLANK_DATE) < today:
                entry[2] += remaining
        details = {}
        for customer in self.table("customers").values():
            if only is not None and customer["id"] not in only:
                continue
            balance, sales, overdue = sums.get(customer["id"], [Decimal(0), Decimal(0), Decimal(0)])
            balance -= money(self.store.credits.get(customer["id"], 0))
            details[customer["id"]] = {
                "id": customer["id"],
                "number": customer["number"],
                "balance": as_number(balance),
                "totalSalesExcludingTax": as_number(sales),
                "overdueAmount": as_number(overdue),
                "_version": customer.get("_version", 0),
                "_seq": customer.get("_seq", 0),
            }
        return details

    def quote_status(self, quote: Record) -> str:
        """A Draft or Sent quote past its validUntilDate reads as Expired."""
        status = str(quote.get("status", "Draft"))
        valid = quote.get("validUntilDate", BLANK_DATE)
        if status in ("Draft", "Sent") and valid != BLANK_DATE and valid < self.store.today():
            return "Expired"
        return status

    # -- actions ---------------------------------------------------------------------------------------
    def _copy_document(
        self,
        source_set: str,
        source: Record,
        target_set: str,
        *,
        quantities: dict[str, Decimal] | None = None,
        **overrides: Any,
    ) -> Record:
        target_entity = _ENTITY[target_set]
        line_entity = (
            _ENTITY[DOCUMENT_SETS[target_set][0]] if target_set in DOCUMENT_SETS else _ENTITY["salesShipmentLines"]
        )
        header = {f.name: source.get(f.name, f.blank()) for f in target_entity.fields}
        header.update(id=self.store.new_id(), **overrides)
        self.store.stamp(header)
        for line in self.lines_of(source_set, source["id"]):
            if quantities is not None and line.get("lineType") != "Comment" and line["id"] not in quantities:
                continue
            copied = {f.name: line.get(f.name, f.blank()) for f in line_entity.fields}
            if quantities is not None and line["id"] in quantities:
                copied["quantity"] = as_number(quantities[line["id"]])
            if target_set == "salesOrders":
                order_line_quantities(copied, set())
            copied.update(id=self.store.new_id(), documentId=header["id"])
            if target_set == "salesShipments":
                copied["documentNo"] = header["number"]
                copied["shipmentDate"] = header["postingDate"]
            self.store.stamp(copied, modified_field=False)
            self.store.insert(self.id, line_entity.set_name, copied, notify=False)
        if target_set in DOCUMENT_SETS:
            self.recalc(target_set, header)
        self.store.insert(self.id, target_set, header)
        return header

    def _delete_document(self, header_set: str, header_id: str) -> None:
        line_set = DOCUMENT_SETS[header_set][0]
        for line in self.lines_of(header_set, header_id):
            self.store.delete(self.id, line_set, line["id"], notify=False)
        self.store.delete(self.id, header_set, header_id)

    def _require_lines(self, header_set: str, header: Record) -> None:
        if not any(
            r.get("lineType") != "Comment" and float(r.get("quantity") or 0) > 0
            for r in self.lines_of(header_set, header["id"])
        ):
            raise dialog("There is nothing to post.")

    def ship_and_invoice(self, order: Record) -> None:
        """salesOrders/Microsoft.NAV.shipAndInvoice: ship and invoice each line's ``shipQuantity``.

        A shipment and a posted invoice are created for what was posted; the order stays with the
        outstanding quantities, and is deleted once everything is shipped and invoiced.
        """
        lines = self.lines_of("salesOrders", order["id"])
        quantities = {
            line["id"]: Decimal(str(line.get("shipQuantity") or 0))
            for line in lines
            if line.get("lineType") != "Comment" and float(line.get("shipQuantity") or 0) > 0
        }
        if not quantities:
            raise dialog("There is nothing to post.")
        today = self.store.today()
        posting = str(order.get("postingDate") or BLANK_DATE)
        if posting == BLANK_DATE:
            posting = today
        partial = any(
            quantities.get(line["id"], Decimal(0)) < _outstanding(line)
            for line in lines
            if line.get("lineType") != "Comment"
        )
        shipment_terms = self.table("paymentTerms").get(order.get("paymentTermsId", ""), {})
        shipment_method = self.table("shipmentMethods").get(order.get("shipmentMethodId", ""), {})
        self._copy_document(
            "salesOrders",
            order,
            "salesShipments",
            quantities=quantities,
            number=self.store.next_number(self.id, "salesShipments", *SHIPMENT_SERIES),
            postingDate=posting,
            invoiceDate=posting,
            orderNumber=order["number"],
            paymentTermsCode=shipment_terms.get("code", ""),
            shipmentMethodCode=shipment_method.get("code", ""),
            dueDate=self.due_date(posting, order.get("paymentTermsId", "")),
            customerPurchaseOrderReference=order.get("externalDocumentNumber", ""),
        )
        invoice = self._copy_document(
            "salesOrders",
            order,
            "salesInvoices",
            quantities=quantities,
            number=self.store.next_number(self.id, "postedSalesInvoices", *POSTED_INVOICE_SERIES),
            invoiceDate=posting,
            postingDate=posting,
            orderId=order["id"],
            orderNumber=order["number"],
            dueDate=self.due_date(posting, order.get("paymentTermsId", "")),
            status="Open",
            customerPurchaseOrderReference=order.get("externalDocumentNumber", ""),
            # The header's invoice discount goes with the last (completing) posting only.
            discountAmount=0 if partial else order.get("discountAmount", 0),
        )
        self.recalc("salesInvoices", invoice)
        invoice["remainingAmount"] = invoice["totalAmountIncludingTax"]
        if not partial:
            self._delete_document("salesOrders", order["id"])
            return
        for line in lines:
            posted = quantities.get(line["id"], Decimal(0))
            if posted:
                line["shippedQuantity"] = as_number(Decimal(str(line.get("shippedQuantity") or 0)) + posted)
                line["invoicedQuantity"] = as_number(Decimal(str(line.get("invoicedQuantity") or 0)) + posted)
            line["shipQuantity"] = line["invoiceQuantity"] = as_number(_outstanding(line))
            self.store.stamp(line, modified_field=False)
        self.recalc("salesOrders", order)
        self.store.stamp(order)
        self.store.touched(self.id, "salesOrders", order["id"])

    def post_invoice(self, invoice: Record) -> None:
        """salesInvoices/Microsoft.NAV.post: the posted invoice keeps the draft's id."""
        if invoice.get("status") != "Draft":
            raise dialog(f"The sales invoice {invoice['number']} is already posted.")
        self._require_lines("salesInvoices", invoice)
        today = self.store.today()
        if invoice.get("postingDate") in (None, BLANK_DATE):
            invoice["postingDate"] = today
        invoice["number"] = self.store.next_number(self.id, "postedSalesInvoices", *POSTED_INVOICE_SERIES)
        invoice["status"] = "Open"
        self.recalc("salesInvoices", invoice)
        invoice["remainingAmount"] = invoice["totalAmountIncludingTax"]
        self.store.stamp(invoice)
        self.store.touched(self.id, "salesInvoices", invoice["id"])

    def cancel_invoice(self, invoice: Record) -> None:
        """salesInvoices/Microsoft.NAV.cancel: an open, unpaid posted invoice becomes Canceled."""
        if invoice.get("status") != "Open" or money(invoice["remainingAmount"]) != money(
            invoice["totalAmountIncludingTax"]
        ):
            raise dialog("You can only cancel a posted invoice that is open and not paid.")
        invoice["status"], invoice["remainingAmount"] = "Canceled", 0
        self.store.stamp(invoice)
        self.store.touched(self.id, "salesInvoices", invoice["id"])

    def make_from_quote(self, quote: Record, target_set: str) -> Record:
        """salesQuotes/Microsoft.NAV.makeOrder and makeInvoice: the quote becomes the target and goes."""
        if self.quote_status(quote) == "Expired":
            raise dialog(f"The sales quote {quote['number']} has expired.")
        start, template = DOCUMENT_SETS[target_set][1:]
        today = self.store.today()
        overrides: dict[str, Any] = {
            "number": self.store.next_number(self.id, target_set, start, template),
            "status": "Draft",
            "postingDate": today,
        }
        if target_set == "salesOrders":
            overrides["orderDate"] = today
        else:
            overrides.update(
                invoiceDate=today, dueDate=self.due_date(today, quote.get("paymentTermsId", "")), remainingAmount=0
            )
        target = self._copy_document("salesQuotes", quote, target_set, **overrides)
        self._delete_document("salesQuotes", quote["id"])
        return target

    def send_quote(self, quote: Record) -> None:
        """salesQuotes/Microsoft.NAV.send: status Sent and the sent time."""
        quote["status"] = "Sent"
        quote["sentDate"] = self._now_text()
        self.store.stamp(quote)
        self.store.touched(self.id, "salesQuotes", quote["id"])

    def _now_text(self) -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def post_payment_journal(self, journal: Record) -> None:
        """journals(<customerPaymentJournal id>)/Microsoft.NAV.post: apply and clear the lines."""
        payments = sorted(
            (r for r in self.table("customerPayments").values() if r.get("journalId") == journal["id"]),
            key=lambda r: (int(r.get("lineNumber") or 0), r["_seq"]),
        )
        if not payments:
            raise dialog("There is nothing to post.")
        for payment in payments:
            customer = self.resolve_customer(payment)
            assert customer is not None
            amount = money(payment.get("amount"))
            if amount <= 0:
                raise dialog(f"The amount on payment line {payment.get('lineNumber')} must be positive.")
        for payment in payments:
            customer = self.resolve_customer(payment)
            assert customer is not None
            amount = money(payment.get("amount"))
            invoice = self._applies_to(payment, customer)
            if invoice is not None:
                remaining = money(invoice["remainingAmount"])
                applied = min(amount, remaining)
                invoice["remainingAmount"] = as_number(remaining - applied)
                if remaining - applied == 0:
                    invoice["status"] = "Paid"
                self.store.stamp(invoice)
                self.store.touched(self.id, "salesInvoices", invoice["id"])
                amount -= applied
            if amount:
                self.store.credits[customer["id"]] = float(money(self.store.credits.get(customer["id"], 0)) + amount)
            self.store.delete(self.id, "customerPayments", payment["id"], notify=False)
        # The customer row itself is not written: its balance is computed (a FlowField in BC), so
        # its etag and lastModifiedDateTime stay put, as on a live tenant.

    def _applies_to(self, payment: Record, customer: Record) -> Record | None:
        invoice = None
        if payment.get("appliesToInvoiceId") not in (None, BLANK_GUID):
            invoice = self.table("salesInvoices").get(payment["appliesToInvoiceId"])
        elif payment.get("appliesToInvoiceNumber"):
            invoice = self.find("salesInvoices", "number", payment["appliesToInvoiceNumber"])
        else:
            return None
        if invoice is None or invoice.get("status") not in ("Open", "Paid"):
            raise dialog("The invoice the payment applies to does not exist or is not posted.")
        if invoice["customerId"] != customer["id"]:
            raise dialog("The invoice the payment applies to belongs to another customer.")
        return invoice if invoice["status"] == "Open" else None


def _outstanding(line: Record) -> Decimal:
    return Decimal(str(line.get("quantity") or 0)) - Decimal(str(line.get("shippedQuantity") or 0))


def order_line_quantities(line: Record, provided: set[str]) -> None:
    """Default and check an order line's ``shipQuantity`` / ``invoiceQuantity`` (BC: Qty. to Ship)."""
    outstanding = _outstanding(line)
    if outstanding < 0:
        raise dialog(f"Quantity cannot be less than the shipped quantity {line.get('shippedQuantity')}.")
    for key in ("shipQuantity", "invoiceQuantity"):
        if key not in provided:
            line[key] = as_number(outstanding)
        elif Decimal(str(line.get(key) or 0)) > outstanding:
            raise dialog(f"You cannot post more than {outstanding} units; {key} is {line.get(key)}.")


def deep_copy(record: Record) -> Record:
    """A copy a caller may keep."""
    return copy.deepcopy(record)


def entity(set_name: str) -> EntityType:
    """The entity type of a set known to exist."""
    return _ENTITY[set_name]
