"""BC API v2.0 entity types as data: field names, types, lengths, editability, navigation.

Names follow Microsoft Learn "api-reference/v2.0/resources/dynamics_<entity>". Where the docs'
JSON representation and the APIV2 AL pages differ, the AL page wins (``description2`` and
``locationId`` on document lines are on the pages but not in the docs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ENTITIES", "EntityType", "Field", "entity_by_set"]

BLANK_GUID = "00000000-0000-0000-0000-000000000000"
BLANK_DATE = "0001-01-01"
BLANK_DATETIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Field:
    """One property. ``type`` is guid, string, decimal, int, bool, date, datetime or enum."""

    name: str
    type: str = "string"
    max_length: int | None = None
    read_only: bool = False
    enum: tuple[str, ...] = ()
    # Editable on create but not afterwards (e.g. a line's documentId).
    insert_only: bool = False

    def blank(self) -> object:
        """What BC returns for an unset value of this type."""
        return {
            "guid": BLANK_GUID,
            "string": "",
            "decimal": 0,
            "int": 0,
            "bool": False,
            "date": BLANK_DATE,
            "datetime": BLANK_DATETIME,
        }.get(self.type, self.enum[0] if self.enum else "")


@dataclass(frozen=True)
class EntityType:
    """One API page: entity set, fields and what may be done with it."""

    name: str
    set_name: str
    fields: tuple[Field, ...]
    methods: frozenset[str] = frozenset({"GET", "POST", "PATCH", "DELETE"})
    # Collection navigation to child lines: nav name → child entity set (deep insert, $expand).
    children: dict[str, str] = field(default_factory=dict)
    # Single-valued navigation for $expand: nav name → (entity set, foreign-key field).
    lookups: dict[str, tuple[str, str]] = field(default_factory=dict)
    # For lines: the header entity set and the field holding the header id.
    parent: tuple[str, str] | None = None
    # Read-only collection navigation computed from other tables (not stored): nav name → entity set.
    computed: dict[str, str] = field(default_factory=dict)
    number_series: str | None = None
    webhooks: bool = False
    company_scoped: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    def get_field(self, name: str) -> Field | None:
        """The field called ``name`` (case-sensitive, as OData is)."""
        by_name: dict[str, Field] = self.__dict__["_by_name"]
        return by_name.get(name)

    @property
    def navigations(self) -> set[str]:
        """All navigation property names."""
        return set(self.children) | set(self.lookups) | set(self.computed)


def _f(name: str, type_: str = "string", max_length: int | None = None, **kw: object) -> Field:
    return Field(name, type_, max_length, **kw)  # type: ignore[arg-type]


def _ro(name: str, type_: str = "string") -> Field:
    return Field(name, type_, read_only=True)


ID = _ro("id", "guid")
MODIFIED = _ro("lastModifiedDateTime", "datetime")
CONTACT_TYPE = ("Company", "Person")
# NAV.contactBusinessRelationLinkToTable, as contactInformation.relatedType documents it.
RELATED_TYPE = (" ", "Customer", "Vendor", "Bank Account", "Employee")
LINE_TYPES = ("Comment", "Account", "Item", "Resource", "Fixed Asset", "Charge")


def _address(prefix: str) -> tuple[Field, ...]:
    return (
        _f(f"{prefix}AddressLine1", max_length=100),
        _f(f"{prefix}AddressLine2", max_length=50),
        _f(f"{prefix}City", max_length=30),
        _f(f"{prefix}Country", max_length=10),
        _f(f"{prefix}State", max_length=30),
        _f(f"{prefix}PostCode", max_length=20),
    )


def _document_party() -> tuple[Field, ...]:
    return (
        _f("customerId", "guid"),
        _f("customerNumber", max_length=20),
        _ro("customerName"),
        _f("billToName", max_length=100),
        _f("billToCustomerId", "guid"),
        _f("billToCustomerNumber", max_length=20),
        _f("shipToName", max_length=100),
        _f("shipToContact", max_length=100),
        *_address("sellTo"),
        *_address("billTo"),
        *_address("shipTo"),
        _f("shortcutDimension1Code", max_length=20),
        _f("shortcutDimension2Code", max_length=20),
        _f("currencyId", "guid"),
        _f("currencyCode", max_length=10),
    )


_TOTALS = (
    _f("discountAmount", "decimal"),
    _ro("totalAmountExcludingTax", "decimal"),
    _ro("totalTaxAmount", "decimal"),
    _ro("totalAmountIncludingTax", "decimal"),
)
_CONTACTABLE = (_f("phoneNumber", max_length=30), _f("email", max_length=80))


def _line(*extra: Field, document_set: str) -> tuple[Field, ...]:
    return (
        ID,
        _f("documentId", "guid", insert_only=True),
        _f("sequence", "int"),
        _f("itemId", "guid"),
        _f("accountId", "guid"),
        _f("lineType", "enum", enum=LINE_TYPES),
        _f("lineObjectNumber", max_length=20),
        _f("description", max_length=100),
        _f("description2", max_length=50),
        _f("unitOfMeasureId", "guid"),
        _f("unitOfMeasureCode", max_length=10),
        _f("quantity", "decimal"),
        _f("unitPrice", "decimal"),
        _f("discountAmount", "decimal"),
        _f("discountPercent", "decimal"),
        _ro("discountAppliedBeforeTax", "bool"),
        _ro("amountExcludingTax", "decimal"),
        _f("taxCode", max_length=20),
        _ro("taxPercent", "decimal"),
        _ro("totalTaxAmount", "decimal"),
        _ro("amountIncludingTax", "decimal"),
        _ro("invoiceDiscountAllocation", "decimal"),
        _ro("netAmount", "decimal"),
        _ro("netTaxAmount", "decimal"),
        _ro("netAmountIncludingTax", "decimal"),
        *extra,
        _f("itemVariantId", "guid"),
        _f("locationId", "guid"),
    )


_DOC_LOOKUPS = {
    "customer": ("customers", "customerId"),
    "currency": ("currencies", "currencyId"),
    "paymentTerm": ("paymentTerms", "paymentTermsId"),
    "shipmentMethod": ("shipmentMethods", "shipmentMethodId"),
}
_LINE_LOOKUPS = {"item": ("items", "itemId"), "unitOfMeasure": ("unitsOfMeasure", "unitOfMeasureId")}

ENTITIES: tuple[EntityType, ...] = (
    EntityType(
        "company",
        "companies",
        (
            ID,
            _ro("systemVersion"),
            _ro("name"),
            _ro("displayName"),
            _ro("businessProfileId"),
            _ro("systemCreatedAt", "datetime"),
            _ro("systemCreatedBy", "guid"),
            _ro("systemModifiedAt", "datetime"),
            _ro("systemModifiedBy", "guid"),
        ),
        methods=frozenset({"GET"}),
        company_scoped=False,
    ),
    EntityType(
        "customer",
        "customers",
        (
            ID,
            _f("number", max_length=20),
            _f("displayName", max_length=100),
            _f("type", "enum", enum=CONTACT_TYPE),
            _f("addressLine1", max_length=100),
            _f("addressLine2", max_length=50),
            _f("city", max_length=30),
            _f("state", max_length=30),
            _f("country", max_length=10),
            _f("postalCode", max_length=20),
            _f("phoneNumber", max_length=30),
            _f("email", max_length=80),
            _f("website", max_length=80),
            _f("salespersonCode", max_length=20),
            _ro("balanceDue", "decimal"),
            _f("creditLimit", "decimal"),
            _f("taxLiable", "bool"),
            _f("taxAreaId", "guid"),
            _ro("taxAreaDisplayName"),
            _f("taxRegistrationNumber", max_length=20),
            _f("currencyId", "guid"),
            _f("currencyCode", max_length=10),
            _f("paymentTermsId", "guid"),
            _f("shipmentMethodId", "guid"),
            _f("paymentMethodId", "guid"),
            _f("blocked", "enum", enum=(" ", "Ship", "Invoice", "All")),
            MODIFIED,
        ),
        lookups={
            "currency": ("currencies", "currencyId"),
            "paymentTerm": ("paymentTerms", "paymentTermsId"),
            "shipmentMethod": ("shipmentMethods", "shipmentMethodId"),
            "customerFinancialDetail": ("customerFinancialDetails", "id"),
        },
        computed={"contactsInformation": "contactsInformation"},
        number_series="customers",
        webhooks=True,
    ),
    EntityType(
        "contact",
        "contacts",
        (
            ID,
            _f("number", max_length=20),
            _f("type", "enum", enum=CONTACT_TYPE),
            _f("displayName", max_length=100),
            _f("companyNumber", max_length=20),
            _ro("companyName"),
            _ro("contactBusinessRelation", "enum"),
            _f("addressLine1", max_length=100),
            _f("addressLine2", max_length=50),
            _f("city", max_length=30),
            _f("state", max_length=30),
            _f("country", max_length=10),
            _f("postalCode", max_length=20),
            _f("phoneNumber", max_length=30),
            _f("mobilePhoneNumber", max_length=30),
            _f("email", max_length=80),
            _f("website", max_length=80),
            _f("searchName", max_length=100),
            _f("privacyBlocked", "bool"),
            _f("taxRegistrationNumber", max_length=20),
            _ro("lastInteractionDate", "date"),
            MODIFIED,
        ),
        number_series="contacts",
    ),
    # Page 30072 "APIV2 - Contacts Information": a temporary buffer filled per request from the
    # contact business relation of one customer (or vendor); key contactId; GET only.
    EntityType(
        "contactInformation",
        "contactsInformation",
        (
            _ro("contactId", "guid"),
            _ro("contactNumber"),
            _ro("contactName"),
            Field("contactType", "enum", read_only=True, enum=CONTACT_TYPE),
            _ro("relatedId", "guid"),
            Field("relatedType", "enum", read_only=True, enum=RELATED_TYPE),
        ),
        methods=frozenset({"GET"}),
        lookups={"contact": ("contacts", "contactId")},
    ),
    EntityType(
        "salespersonPurchaser",
        "salespeoplePurchasers",
        (
            ID,
            _f("code", max_length=20),
            _f("displayName", max_length=50),
            _f("email", max_length=80),
            _f("email2", max_length=80),
            _f("phoneNo", max_length=30),
            _f("jobTitle", max_length=30),
            _f("commisionPercent", "decimal"),
            _f("privacyBlocked", "bool"),
            _f("blocked", "bool"),
            MODIFIED,
        ),
    ),
    EntityType(
        "currency",
        "currencies",
        (
            ID,
            _f("code", max_length=10),
            _f("displayName", max_length=30),
            _f("symbol", max_length=10),
            _f("amountDecimalPlaces", max_length=5),
            _f("amountRoundingPrecision", "decimal"),
            MODIFIED,
        ),
        webhooks=True,
    ),
    EntityType(
        "unitOfMeasure",
        "unitsOfMeasure",
        (
            ID,
            _f("code", max_length=10),
            _f("displayName", max_length=50),
            _f("internationalStandardCode", max_length=10),
            _f("symbol", max_length=10),
            MODIFIED,
        ),
        webhooks=True,
    ),
    EntityType(
        "item",
        "items",
        (
            ID,
            _f("number", max_length=20),
            _f("displayName", max_length=100),
            _f("displayName2", max_length=50),
            _f("type", "enum", enum=("Inventory", "Service", "Non-Inventory")),
            _f("itemCategoryId", "guid"),
            _f("itemCategoryCode", max_length=20),
            _f("blocked", "bool"),
            _f("gtin", max_length=14),
            _ro("inventory", "decimal"),
            _f("unitPrice", "decimal"),
            _f("priceIncludesTax", "bool"),
            _f("unitCost", "decimal"),
            _f("taxGroupId", "guid"),
            _f("taxGroupCode", max_length=20),
            _f("baseUnitOfMeasureId", "guid"),
            _f("baseUnitOfMeasureCode", max_length=10),
            _f("generalProductPostingGroupId", "guid"),
            _f("generalProductPostingGroupCode", max_length=20),
            _f("inventoryPostingGroupId", "guid"),
            _f("inventoryPostingGroupCode", max_length=20),
            MODIFIED,
        ),
        lookups={"unitOfMeasure": ("unitsOfMeasure", "baseUnitOfMeasureId")},
        number_series="items",
        webhooks=True,
    ),
    EntityType(
        "paymentTerm",
        "paymentTerms",
        (
            ID,
            _f("code", max_length=10),
            _f("displayName", max_length=100),
            _f("dueDateCalculation", max_length=32),
            _f("discountDateCalculation", max_length=32),
            _f("discountPercent", "decimal"),
            _f("calculateDiscountOnCreditMemos", "bool"),
            MODIFIED,
        ),
        webhooks=True,
    ),
    EntityType(
        "shipmentMethod",
        "shipmentMethods",
        (ID, _f("code", max_length=10), _f("displayName", max_length=50), MODIFIED),
        webhooks=True,
    ),
    EntityType(
        "salesOrder",
        "salesOrders",
        (
            ID,
            _ro("number"),
            _f("externalDocumentNumber", max_length=35),
            _f("orderDate", "date"),
            _f("postingDate", "date"),
            *_document_party(),
            _ro("pricesIncludeTax", "bool"),
            _f("paymentTermsId", "guid"),
            _f("shipmentMethodId", "guid"),
            _f("salesperson", max_length=20),
            _f("partialShipping", "bool"),
            _f("requestedDeliveryDate", "date"),
            *_TOTALS[:1],
            _ro("discountAppliedBeforeTax", "bool"),
            *_TOTALS[1:],
            _ro("fullyShipped", "bool"),
            _ro("status", "enum"),
            MODIFIED,
            *_CONTACTABLE,
        ),
        children={"salesOrderLines": "salesOrderLines"},
        lookups=_DOC_LOOKUPS,
        number_series="salesOrders",
        webhooks=True,
    ),
    EntityType(
        "salesOrderLine",
        "salesOrderLines",
        _line(
            _f("shipmentDate", "date"),
            _ro("shippedQuantity", "decimal"),
            _ro("invoicedQuantity", "decimal"),
            _f("invoiceQuantity", "decimal"),
            _f("shipQuantity", "decimal"),
            document_set="salesOrders",
        ),
        lookups=_LINE_LOOKUPS,
        parent=("salesOrders", "documentId"),
    ),
    EntityType(
        "salesQuote",
        "salesQuotes",
        (
            ID,
            _ro("number"),
            _f("externalDocumentNumber", max_length=35),
            _f("documentDate", "date"),
            _f("postingDate", "date"),
            _f("dueDate", "date"),
            *_document_party(),
            _f("paymentTermsId", "guid"),
            _f("shipmentMethodId", "guid"),
            _f("salesperson", max_length=20),
            *_TOTALS,
            _ro("status", "enum"),
            _ro("sentDate", "datetime"),
            _f("validUntilDate", "date"),
            _ro("acceptedDate", "date"),
            MODIFIED,
            *_CONTACTABLE,
        ),
        children={"salesQuoteLines": "salesQuoteLines"},
        lookups=_DOC_LOOKUPS,
        number_series="salesQuotes",
        webhooks=True,
    ),
    EntityType(
        "salesQuoteLine",
        "salesQuoteLines",
        _line(document_set="salesQuotes"),
        lookups=_LINE_LOOKUPS,
        parent=("salesQuotes", "documentId"),
    ),
    EntityType(
        "salesInvoice",
        "salesInvoices",
        (
            ID,
            _ro("number"),
            _f("externalDocumentNumber", max_length=35),
            _f("invoiceDate", "date"),
            _f("postingDate", "date"),
            _f("dueDate", "date"),
            _f("customerPurchaseOrderReference", max_length=35),
            *_document_party(),
            _ro("orderId", "guid"),
            _ro("orderNumber"),
            _f("paymentTermsId", "guid"),
            _f("shipmentMethodId", "guid"),
            _f("salesperson", max_length=20),
            _ro("pricesIncludeTax", "bool"),
            _ro("remainingAmount", "decimal"),
            *_TOTALS[:1],
            _ro("discountAppliedBeforeTax", "bool"),
            *_TOTALS[1:],
            _ro("status", "enum"),
            MODIFIED,
            *_CONTACTABLE,
        ),
        children={"salesInvoiceLines": "salesInvoiceLines"},
        lookups=_DOC_LOOKUPS,
        number_series="salesInvoices",
        webhooks=True,
    ),
    EntityType(
        "salesInvoiceLine",
        "salesInvoiceLines",
        _line(_f("shipmentDate", "date"), document_set="salesInvoices"),
        lookups=_LINE_LOOKUPS,
        parent=("salesInvoices", "documentId"),
    ),
    EntityType(
        "salesShipment",
        "salesShipments",
        tuple(
            Field(f.name, f.type, f.max_length, read_only=True)
            for f in (
                ID,
                _f("number"),
                _f("externalDocumentNumber"),
                _f("invoiceDate", "date"),
                _f("postingDate", "date"),
                _f("dueDate", "date"),
                _f("customerPurchaseOrderReference"),
                _f("customerNumber"),
                _f("customerName"),
                _f("billToName"),
                _f("billToCustomerNumber"),
                _f("shipToName"),
                _f("shipToContact"),
                *_address("sellTo"),
                *_address("billTo"),
                *_address("shipTo"),
                _f("currencyCode"),
                _f("orderNumber"),
                _f("paymentTermsCode"),
                _f("shipmentMethodCode"),
                _f("salesperson"),
                _f("pricesIncludeTax", "bool"),
                MODIFIED,
                *_CONTACTABLE,
            )
        ),
        methods=frozenset({"GET"}),
        children={"salesShipmentLines": "salesShipmentLines"},
    ),
    EntityType(
        "salesShipmentLine",
        "salesShipmentLines",
        tuple(
            Field(f.name, f.type, read_only=True)
            for f in (
                ID,
                _f("documentId", "guid"),
                _f("documentNo"),
                _f("sequence", "int"),
                _f("lineType", "enum"),
                _f("lineObjectNumber"),
                _f("description"),
                _f("description2"),
                _f("unitOfMeasureCode"),
                _f("unitPrice", "decimal"),
                _f("quantity", "decimal"),
                _f("discountPercent", "decimal"),
                _f("taxPercent", "decimal"),
                _f("shipmentDate", "date"),
            )
        ),
        methods=frozenset({"GET"}),
        parent=("salesShipments", "documentId"),
    ),
    EntityType(
        "customerPaymentJournal",
        "customerPaymentJournals",
        (
            ID,
            _f("code", max_length=10),
            _f("displayName", max_length=100),
            _f("balancingAccountId", "guid"),
            _f("balancingAccountNumber", max_length=20),
            MODIFIED,
        ),
        children={"customerPayments": "customerPayments"},
        webhooks=True,
    ),
    EntityType(
        "customerPayment",
        "customerPayments",
        (
            ID,
            _f("journalId", "guid", insert_only=True),
            _ro("journalDisplayName"),
            _f("lineNumber", "int"),
            _f("customerId", "guid"),
            _f("customerNumber", max_length=20),
            _f("postingDate", "date"),
            _f("documentNumber", max_length=20),
            _f("externalDocumentNumber", max_length=35),
            _f("amount", "decimal"),
            _f("appliesToInvoiceId", "guid"),
            _f("appliesToInvoiceNumber", max_length=20),
            _f("description", max_length=100),
            _f("comment", max_length=250),
            MODIFIED,
        ),
        lookups={"customer": ("customers", "customerId")},
        parent=("customerPaymentJournals", "journalId"),
    ),
    EntityType(
        "customerFinancialDetail",
        "customerFinancialDetails",
        (
            ID,
            _ro("number"),
            _ro("balance", "decimal"),
            _ro("totalSalesExcludingTax", "decimal"),
            _ro("overdueAmount", "decimal"),
        ),
        methods=frozenset({"GET"}),
    ),
    EntityType(
        "subscription",
        "subscriptions",
        (
            _ro("subscriptionId"),
            _f("notificationUrl", max_length=250),
            _f("resource", max_length=250),
            _ro("timestamp", "int"),
            _ro("userId", "guid"),
            MODIFIED,
            _f("clientState", max_length=2048),
            _ro("expirationDateTime", "datetime"),
            _ro("systemCreatedAt", "datetime"),
            _ro("systemCreatedBy", "guid"),
            _ro("systemModifiedAt", "datetime"),
            _ro("systemModifiedBy", "guid"),
        ),
        company_scoped=False,
    ),
)

_BY_SET = {e.set_name: e for e in ENTITIES}


def entity_by_set(set_name: str) -> EntityType | None:
    """The entity type served at ``set_name``."""
    return _BY_SET.get(set_name)
