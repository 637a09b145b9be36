"""Data sets: ``demo`` (a small Belgian company in the style of CRONUS, plus a second company for
scoping) and ``large`` (N customers). Seeds go through the same defaults and totals as API writes.
"""

from __future__ import annotations

import uuid
from typing import Any

from emulators.business_central._contacts import link_customer
from emulators.business_central._documents import DOCUMENT_SETS, Company, entity, order_line_quantities
from emulators.business_central._schema import BLANK_GUID
from emulators.business_central._store import Record, Store

__all__ = ["DEMO_COMPANY_ID", "seed"]

# Fixed ids so that a test, a demo script and a second run all address the same company.
DEMO_COMPANY_ID = "3f5b0e3c-6a1d-4e0a-9a51-0c2b7d2f1a01"
OTHER_COMPANY_ID = "8c1e2d4a-1b7f-4c33-a0e2-5d9f6b3c2e02"


def _row(store: Store, company: str, set_name: str, **values: Any) -> Record:
    kind = entity(set_name)
    record: Record = {f.name: f.blank() for f in kind.fields}
    record.update(values)
    record["id"] = values.get("id") or str(uuid.uuid4())
    store.stamp(record, modified_field=kind.get_field("lastModifiedDateTime") is not None)
    store.insert(company, set_name, record, notify=False)
    return record


def _company(store: Store, company_id: str, name: str, *, lcy: str = "EUR", vat: float = 21) -> Company:
    stamp = "2026-01-05T08:00:00Z"
    store.add_company(
        {
            "id": company_id,
            "systemVersion": "27.0.38460.0",
            "name": name,
            "displayName": name,
            "businessProfileId": "",
            "systemCreatedAt": stamp,
            "systemCreatedBy": BLANK_GUID,
            "systemModifiedAt": stamp,
            "systemModifiedBy": BLANK_GUID,
            "_lcy": lcy,
            "_vat": vat,
            "_version": 1,
            "_seq": len(store.companies) + 1,
        }
    )
    return Company(store, company_id)


def _document(company: Company, set_name: str, header: dict[str, Any], lines: list[dict[str, Any]]) -> Record:
    line_set = DOCUMENT_SETS[set_name][0]
    record: Record = {f.name: f.blank() for f in entity(set_name).fields}
    record.update(header)
    record["id"] = str(uuid.uuid4())
    customer = company.resolve_customer(record)
    assert customer is not None
    company.apply_customer(record, customer, set(header))
    company.header_defaults(set_name, record, set(header))
    company.store.stamp(record)
    company.store.insert(company.id, set_name, record, notify=False)
    for index, spec in enumerate(lines, start=1):
        line: Record = {f.name: f.blank() for f in entity(line_set).fields}
        line.update(spec, id=str(uuid.uuid4()), documentId=record["id"], sequence=index * 10000)
        company.prepare_line(line, set(spec) | {"documentId"}, creating=True)
        if line_set == "salesOrderLines":
            order_line_quantities(line, set(spec))
        company.store.stamp(line, modified_field=False)
        company.store.insert(company.id, line_set, line, notify=False)
    company.recalc(set_name, record)
    return record


def _demo(store: Store) -> dict[str, Any]:
    company = _company(store, DEMO_COMPANY_ID, "CRONUS BE NV")
    cid = company.id
    eur = _row(
        store,
        cid,
        "currencies",
        code="EUR",
        displayName="Euro",
        symbol="€",
        amountDecimalPlaces="2:2",
        amountRoundingPrecision=0.01,
    )
    usd = _row(
        store,
        cid,
        "currencies",
        code="USD",
        displayName="US dollar",
        symbol="$",
        amountDecimalPlaces="2:2",
        amountRoundingPrecision=0.01,
    )
    del eur  # EUR is the local currency: documents in EUR carry the blank currency id
    pcs = _row(
        store, cid, "unitsOfMeasure", code="PCS", displayName="Piece", internationalStandardCode="H87", symbol="pcs"
    )
    hour = _row(
        store, cid, "unitsOfMeasure", code="HOUR", displayName="Hour", internationalStandardCode="HUR", symbol="h"
    )
    _row(store, cid, "unitsOfMeasure", code="BOX", displayName="Box", internationalStandardCode="BX", symbol="box")
    net30 = _row(store, cid, "paymentTerms", code="30 DAYS", displayName="Net 30 days", dueDateCalculation="30D")
    _row(
        store,
        cid,
        "paymentTerms",
        code="14 DAYS",
        displayName="Net 14 days",
        dueDateCalculation="14D",
        discountDateCalculation="8D",
        discountPercent=2,
    )
    cm = _row(store, cid, "paymentTerms", code="CM", displayName="Current month", dueDateCalculation="CM")
    exw = _row(store, cid, "shipmentMethods", code="EXW", displayName="Ex Works")
    dap = _row(store, cid, "shipmentMethods", code="DAP", displayName="Delivered at Place")
    for code, name, email, commission in (
        ("JO", "Jim Olive", "jim.olive@cronus.example", 2.5),
        ("PS", "Peter Saddow", "peter.saddow@cronus.example", 3),
        ("LÉA", "Léa Dubois-Ñúñez", "lea.dubois@cronus.example", 0),
    ):
        _row(
            store,
            cid,
            "salespeoplePurchasers",
            code=code,
            displayName=name,
            email=email,
            commisionPercent=commission,
            jobTitle="Sales Manager" if code == "JO" else "Account Manager",
        )
    customers = [
        _row(
            store,
            cid,
            "customers",
            number="C00010",
            displayName="Adatum Corporation",
            type="Company",
            addressLine1="Grote Markt 1",
            city="Antwerpen",
            postalCode="2000",
            country="BE",
            phoneNumber="+32 3 123 45 67",
            email="ap@adatum.example",
            website="adatum.example",
            salespersonCode="JO",
            creditLimit=50000,
            taxLiable=True,
            currencyCode="EUR",
            paymentTermsId=net30["id"],
            shipmentMethodId=exw["id"],
            blocked=" ",
            taxRegistrationNumber="BE0123456789",
        ),
        _row(
            store,
            cid,
            "customers",
            number="C00020",
            displayName="Trey Research",
            type="Company",
            addressLine1="Rue de la Loi 200",
            addressLine2="Bte 5",
            city="Bruxelles",
            postalCode="1040",
            country="BE",
            phoneNumber="+32 2 555 01 02",
            email="finance@treyresearch.example",
            salespersonCode="PS",
            creditLimit=0,
            taxLiable=True,
            currencyCode="EUR",
            paymentTermsId=cm["id"],
            shipmentMethodId=dap["id"],
            blocked=" ",
        ),
        _row(
            store,
            cid,
            "customers",
            number="C00030",
            displayName="School of Fine Art",
            type="Company",
            addressLine1="10 Main Street",
            city="Miami",
            state="FL",
            postalCode="37125",
            country="US",
            email="accounts@fineart.example",
            salespersonCode="JO",
            currencyId=usd["id"],
            currencyCode="USD",
            paymentTermsId=net30["id"],
            shipmentMethodId=exw["id"],
            blocked=" ",
            taxLiable=False,
        ),
        _row(
            store,
            cid,
            "customers",
            number="C00040",
            displayName="Ügo Müller & Söhne — Ŝpecial",
            type="Company",
            addressLine1="Königsallee 12",
            city="Düsseldorf",
            postalCode="40212",
            country="DE",
            salespersonCode="LÉA",
            currencyCode="EUR",
            paymentTermsId=net30["id"],
            blocked=" ",
        ),
        _row(
            store,
            cid,
            "customers",
            number="C00050",
            displayName="Blocked Ltd",
            type="Company",
            city="Gent",
            country="BE",
            currencyCode="EUR",
            blocked="All",
        ),
    ]
    contacts = [
        ("Adatum Corporation", None, "Company", "ap@adatum.example"),
        ("Robert Townes", "Adatum Corporation", "Person", "robert.townes@adatum.example"),
        ("Trey Research", None, "Company", "finance@treyresearch.example"),
        ("Kim Akers", "Trey Research", "Person", "kim.akers@treyresearch.example"),
        ("Zoë Ŝmith", "Trey Research", "Person", ""),
    ]
    numbers: dict[str, str] = {}
    for index, (name, parent, kind, email) in enumerate(contacts, start=1):
        number = f"CT{index * 10:06d}"
        numbers[name] = number
        _row(
            store,
            cid,
            "contacts",
            number=number,
            type=kind,
            displayName=name,
            email=email,
            companyNumber=numbers.get(parent or name, number),
            companyName=parent or name,
            contactBusinessRelation="Customer" if kind == "Company" else "None",
            searchName=name.upper(),
            city="Antwerpen" if "Adatum" in (parent or name) else "Bruxelles",
            country="BE",
        )
    # The business relation "Customer": each customer with a company contact of its name is linked
    # to it (what BC's contactsInformation reads). C00030-C00050 have no contact, as customers
    # created before Marketing Setup had a business relation code.
    for customer in customers:
        contact = next(
            (
                c
                for c in company.table("contacts").values()
                if c["type"] == "Company" and c["displayName"] == customer["displayName"]
            ),
            None,
        )
        if contact is not None:
            link_customer(contact, customer)
    items = [
        _row(
            store,
            cid,
            "items",
            number="1896-S",
            displayName="ATHENS Desk",
            type="Inventory",
            unitPrice=1000.8,
            unitCost=780.7,
            inventory=12,
            baseUnitOfMeasureId=pcs["id"],
            baseUnitOfMeasureCode="PCS",
            gtin="5412345000013",
            generalProductPostingGroupCode="RETAIL",
            inventoryPostingGroupCode="RESALE",
        ),
        _row(
            store,
            cid,
            "items",
            number="1900-S",
            displayName="PARIS Guest Chair, black",
            type="Inventory",
            unitPrice=192.8,
            unitCost=150.3,
            inventory=80,
            baseUnitOfMeasureId=pcs["id"],
            baseUnitOfMeasureCode="PCS",
            generalProductPostingGroupCode="RETAIL",
        ),
        _row(
            store,
            cid,
            "items",
            number="1920-S",
            displayName="ANTWERP Conference Table",
            type="Inventory",
            unitPrice=420.4,
            unitCost=328.0,
            inventory=3,
            baseUnitOfMeasureId=pcs["id"],
            baseUnitOfMeasureCode="PCS",
            generalProductPostingGroupCode="RETAIL",
        ),
        _row(
            store,
            cid,
            "items",
            number="SVC-INSTALL",
            displayName="Installation service",
            type="Service",
            unitPrice=85,
            unitCost=0,
            baseUnitOfMeasureId=hour["id"],
            baseUnitOfMeasureCode="HOUR",
            generalProductPostingGroupCode="SERVICES",
        ),
        _row(
            store,
            cid,
            "items",
            number="1999-OLD",
            displayName="Discontinued lamp",
            type="Inventory",
            unitPrice=12.5,
            blocked=True,
            baseUnitOfMeasureId=pcs["id"],
            baseUnitOfMeasureCode="PCS",
        ),
    ]
    _row(store, cid, "customerPaymentJournals", code="GENERAL", displayName="Customer receipts")
    adatum, trey = customers[0], customers[1]
    # Two posted invoices (one paid), an open order and a draft quote, so syncs have history to find.
    first = _document(
        company,
        "salesInvoices",
        {"customerId": adatum["id"], "externalDocumentNumber": "PO-4711"},
        [
            {"lineType": "Item", "itemId": items[0]["id"], "quantity": 2},
            {"lineType": "Item", "itemId": items[3]["id"], "quantity": 3},
        ],
    )
    company.post_invoice(first)
    second = _document(
        company,
        "salesInvoices",
        {"customerId": trey["id"]},
        [{"lineType": "Item", "itemId": items[1]["id"], "quantity": 4, "discountPercent": 5}],
    )
    company.post_invoice(second)
    second["remainingAmount"], second["status"] = 0, "Paid"
    _document(
        company,
        "salesOrders",
        {"customerId": adatum["id"], "externalDocumentNumber": "PO-4800"},
        [
            {"lineType": "Item", "itemId": items[2]["id"], "quantity": 1},
            {"lineType": "Comment", "description": "Deliver to the back entrance"},
        ],
    )
    _document(
        company,
        "salesQuotes",
        {"customerId": trey["id"]},
        [{"lineType": "Item", "itemId": items[0]["id"], "quantity": 1, "unitPrice": 950}],
    )

    other = _company(store, OTHER_COMPANY_ID, "CRONUS Test Company")
    _row(
        store,
        other.id,
        "customers",
        number="C00010",
        displayName="Other Company Customer",
        type="Company",
        currencyCode="EUR",
        blocked=" ",
    )
    return {"companies": 2, "company_id": cid, "customers": len(customers), "items": len(items)}


def _large(store: Store, count: int) -> dict[str, Any]:
    company = _company(store, DEMO_COMPANY_ID, "CRONUS BE NV")
    terms = _row(store, company.id, "paymentTerms", code="30 DAYS", displayName="Net 30 days", dueDateCalculation="30D")
    for index in range(1, count + 1):
        _row(
            store,
            company.id,
            "customers",
            number=f"C{index * 10:07d}",
            displayName=f"Customer {index:07d}",
            type="Company",
            city="Brussel",
            country="BE",
            currencyCode="EUR",
            paymentTermsId=terms["id"],
            blocked=" ",
            email=f"customer{index}@example.invalid",
        )
    return {"companies": 1, "company_id": company.id, "customers": count}


def _bench(store: Store, count: int) -> dict[str, Any]:
    """The sync benchmark's company: N customers, each with its company contact (linked, as
    CustCont-Update makes it) and one person in that company, and N/10 items sold by the piece,
    all valid for the default mappings."""
    company = _company(store, DEMO_COMPANY_ID, "CRONUS BE NV")
    cid = company.id
    terms = _row(store, cid, "paymentTerms", code="30 DAYS", displayName="Net 30 days", dueDateCalculation="30D")
    pcs = _row(store, cid, "unitsOfMeasure", code="PCS", displayName="Piece", internationalStandardCode="H87")
    for index in range(1, count + 1):
        name = f"Customer {index:07d}"
        customer = _row(
            store,
            cid,
            "customers",
            number=f"C{index * 10:07d}",
            displayName=name,
            type="Company",
            addressLine1=f"Rue {index}",
            city="Brussel",
            postalCode="1000",
            country="BE",
            currencyCode="EUR",
            paymentTermsId=terms["id"],
            blocked=" ",
            email=f"customer{index}@example.invalid",
        )
        number = f"CT{index * 2 - 1:07d}"
        shared = {"companyNumber": number, "companyName": name, "city": "Brussel", "country": "BE"}
        contact = _row(
            store,
            cid,
            "contacts",
            number=number,
            type="Company",
            displayName=name,
            searchName=name.upper(),
            email=f"customer{index}@example.invalid",
            **shared,
        )
        link_customer(contact, customer)
        person = f"Person {index:07d}"
        _row(
            store,
            cid,
            "contacts",
            number=f"CT{index * 2:07d}",
            type="Person",
            displayName=person,
            searchName=person.upper(),
            email=f"person{index}@example.invalid",
            phoneNumber=f"+32 2 {index:07d}",
            contactBusinessRelation="None",
            **shared,
        )
    for index in range(1, count // 10 + 1):
        _row(
            store,
            cid,
            "items",
            number=f"I{index:07d}",
            displayName=f"Item {index:07d}",
            type="Inventory",
            unitPrice=10 + index % 90,
            unitCost=5 + index % 40,
            inventory=index % 100,
            baseUnitOfMeasureId=pcs["id"],
            baseUnitOfMeasureCode="PCS",
        )
    return {"companies": 1, "company_id": cid, "customers": count, "contacts": 2 * count, "items": count // 10}


def seed(store: Store, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Replace the data with the named set (``demo``, ``large:<N>``, ``bench:<N>`` or ``empty``)."""
    store.clear()
    if name == "demo":
        return _demo(store)
    if name.startswith("large:"):
        return _large(store, int(name.split(":", 1)[1]))
    if name.startswith("bench:"):
        return _bench(store, int(name.split(":", 1)[1]))
    if name == "empty":
        _company(store, DEMO_COMPANY_ID, "CRONUS BE NV")
        return {"companies": 1, "company_id": DEMO_COMPANY_ID}
    raise ValueError(f"unknown seed {name!r}; use demo, large:<N>, bench:<N> or empty")
