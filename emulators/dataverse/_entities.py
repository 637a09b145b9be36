"""The tables of the emulated Dynamics 365 Sales organisation (wire-protocols §B, §C.1).

Names, lengths, option values and state/status pairs follow wire-protocols §B (BC proxy tables
and the Sales entity reference). Where the reference marks a name as inferred (collection
navigation properties, the set name of ``nav_accountstatistics``, the ``post`` regarding bind),
the choice made here is noted next to it; clients should resolve names through
``EntityDefinitions`` rather than hard-code them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from . import _options
from ._model import Attribute, AttrType, CollectionNavigation, EntityDefinition, State

T = AttrType


def _s(name: str, length: int = 100, *, create: bool = True, update: bool = True) -> Attribute:
    return Attribute(name, T.STRING, max_length=length, create=create, update=update)


def _memo(name: str, length: int = 2000) -> Attribute:
    return Attribute(name, T.MEMO, max_length=length)


def _int(name: str, *, lo: float | None = None, hi: float | None = None, update: bool = True) -> Attribute:
    return Attribute(name, T.INTEGER, min_value=lo, max_value=hi, update=update)


def _dec(name: str) -> Attribute:
    return Attribute(name, T.DECIMAL)


def _money(name: str, *, read_only: bool = False) -> Attribute:
    return Attribute(name, T.MONEY, create=not read_only, update=not read_only)


def _bool(name: str, *, update: bool = True) -> Attribute:
    return Attribute(name, T.BOOLEAN, update=update)


def _dt(name: str, *, read_only: bool = False) -> Attribute:
    return Attribute(name, T.DATETIME, create=not read_only, update=not read_only)


def _pick(name: str, options: Mapping[int, str], *, update: bool = True) -> Attribute:
    return Attribute(name, T.PICKLIST, options=MappingProxyType(dict(options)), update=update)


def _lookup(name: str, *targets: str, create: bool = True, update: bool = True) -> Attribute:
    kind = T.CUSTOMER if targets == ("account", "contact") else T.LOOKUP
    return Attribute(name, kind, targets=targets, create=create, update=update)


def _states(*rows: tuple[int, str, Mapping[int, str], int]) -> tuple[State, ...]:
    return tuple(
        State(code, label, MappingProxyType(dict(statuses)), default) for code, label, statuses, default in rows
    )


ACTIVE_INACTIVE = _states((0, "Active", {1: "Active"}, 1), (1, "Inactive", {2: "Inactive"}, 2))


def _table(
    logical_name: str,
    entity_set: str,
    object_type_code: int,
    primary_name: str,
    attributes: Iterable[Attribute],
    *,
    states: tuple[State, ...] = (),
    initial_state: tuple[int, int] | None = None,
    owned: bool = True,
    currency: bool = False,
    **extra: object,
) -> EntityDefinition:
    primary_id = f"{logical_name}id"
    common = [
        Attribute(primary_id, T.UNIQUEIDENTIFIER, update=False),
        _dt("createdon", read_only=True),
        _dt("modifiedon", read_only=True),
        _lookup("createdby", "systemuser", create=False, update=False),
        _lookup("modifiedby", "systemuser", create=False, update=False),
        Attribute("versionnumber", T.BIGINT, create=False, update=False),
        _dt("overriddencreatedon", read_only=False),
    ]
    if owned:
        common.append(Attribute("ownerid", T.OWNER, targets=("systemuser",)))
    if states:
        common.append(Attribute("statecode", T.STATE, options=MappingProxyType({s.code: s.label for s in states})))
        every_status = {code: label for s in states for code, label in s.statuses.items()}
        common.append(Attribute("statuscode", T.STATUS, options=MappingProxyType(every_status)))
    if currency:
        common.append(_lookup("transactioncurrencyid", "transactioncurrency"))
        common.append(Attribute("exchangerate", T.DECIMAL, create=False, update=False))
    by_name = {a.name: a for a in common}
    for attribute in attributes:
        by_name[attribute.name] = attribute  # a table may tighten a common column (e.g. insert-only)
    for name, attribute in by_name.items():
        if attribute.type == T.PICKLIST:
            # Each table's picklist is its own local option set (InsertOptionValue changes only it).
            options = _options.register(logical_name, name, attribute.options)
            by_name[name] = dataclasses.replace(attribute, options=options)
    if states and initial_state is None:
        initial_state = (states[0].code, states[0].default_status)
    return EntityDefinition(
        logical_name=logical_name,
        entity_set=entity_set,
        primary_id=primary_id,
        primary_name=primary_name,
        object_type_code=object_type_code,
        attributes=MappingProxyType(by_name),
        states=states,
        initial_state=initial_state,
        ownership="UserOwned" if owned else "OrganizationOwned",
        **extra,  # type: ignore[arg-type]  # keyword pass-through to the dataclass
    )


ADDRESS = [
    *(
        _s(f"address1_{part}", length)
        for part, length in (
            ("line1", 250), ("line2", 250), ("city", 80), ("postalcode", 20), ("country", 80),
            ("stateorprovince", 50),
        )
    ),
]  # fmt: skip

_LINE_SHAPE = [
    _lookup("productid", "product"),
    _lookup("uomid", "uom"),
    _bool("isproductoverridden", update=False),
    _s("productdescription", 500),
    _memo("description", 2000),
    _dec("quantity"),
    _money("priceperunit"),
    _bool("ispriceoverridden"),
    _money("manualdiscountamount"),
    _money("volumediscountamount", read_only=True),
    _money("baseamount", read_only=True),
    _money("extendedamount", read_only=True),
    _money("tax"),
    _int("lineitemnumber"),
    _int("sequencenumber"),
    _dec("quantityshipped"),
    _dec("quantitybackordered"),
    _dec("quantitycancelled"),
    _dt("requestdeliveryby"),
    _lookup("salesrepid", "systemuser"),
]

_TOTALS = [
    _money("totallineitemamount", read_only=True),
    _money("totalamountlessfreight", read_only=True),
    _money("totalamount", read_only=True),
    _money("totaltax", read_only=True),
    _money("totaldiscountamount", read_only=True),
    _money("totallineitemdiscountamount", read_only=True),
    _money("discountamount"),
    Attribute("discountpercentage", T.DECIMAL, min_value=0, max_value=100),
    _money("freightamount"),
]

# The out-of-the-box local option sets the connector's option mappings couple with (bc-connector-behaviour
# §1.4). Labels are Dataverse's: "2% 10, Net 30" is the Sales label; BC's enum caption differs.
PAYMENT_TERMS = {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}
FREIGHT_TERMS = {1: "FOB", 2: "No Charge"}
SHIPPING_METHODS = {1: "Airborne", 2: "DHL", 3: "FedEx", 4: "UPS", 5: "Postal Mail", 6: "Full Load", 7: "Will Call"}

_HEADER = [
    _lookup("customerid", "account", "contact"),
    _lookup("pricelevelid", "pricelevel"),
    _lookup("opportunityid", "opportunity"),
    _dt("requestdeliveryby"),
    _bool("ispricelocked"),
    _memo("description", 2000),
    _pick("paymenttermscode", PAYMENT_TERMS),
    _pick("shippingmethodcode", SHIPPING_METHODS),
    _pick("freighttermscode", FREIGHT_TERMS),
    *(_s(f"{side}_{part}", length) for side in ("shipto", "billto")
      for part, length in (("name", 200), ("line1", 250), ("line2", 250), ("city", 80),
                           ("postalcode", 20), ("country", 80), ("stateorprovince", 50))),
    _lookup("bcbi_companyid", "bcbi_company"),
    *_TOTALS,
]  # fmt: skip

SALESORDER_STATES = _states(
    (0, "Active", {1: "New", 2: "Pending"}, 1),
    (1, "Submitted", {3: "In Progress"}, 3),
    (2, "Canceled", {4: "No Money"}, 4),
    (3, "Fulfilled", {100001: "Complete", 100002: "Partial"}, 100001),
    (4, "Invoiced", {100003: "Invoiced"}, 100003),
)
QUOTE_STATES = _states(
    (0, "Draft", {1: "In Progress"}, 1),
    (1, "Active", {2: "In Progress", 3: "Open"}, 2),
    (2, "Won", {4: "Won"}, 4),
    (3, "Closed", {5: "Lost", 6: "Canceled", 7: "Revised"}, 5),
)
INVOICE_STATES = _states(
    (0, "Active", {1: "New", 2: "Partially Shipped", 4: "Billed", 5: "Booked (applies to services)",
                   6: "Installed (applies to services)"}, 1),
    (1, "Closed (deprecated)", {3: "Canceled (deprecated)", 7: "Paid in Full (deprecated)"}, 3),
    (2, "Paid", {100001: "Complete", 100002: "Partial"}, 100001),
    (3, "Canceled", {100003: "Canceled"}, 100003),
)  # fmt: skip
PRODUCT_STATES = _states(
    (0, "Active", {1: "Active"}, 1),
    (1, "Retired", {2: "Retired"}, 2),
    (2, "Draft", {0: "Draft"}, 0),
    (3, "Under Revision", {3: "Under Revision"}, 3),
)
PRICELEVEL_STATES = _states((0, "Active", {100001: "Active"}, 100001), (1, "Inactive", {100002: "Inactive"}, 100002))

_MONEY_STATS = (
    "balancelcy", "outstandingorderslcy", "shippednotinvoicedlcy", "outstandinginvoiceslcy",
    "outstandingserviceorderslcy", "servshippednotinvoicedlcy", "outstandingservinvoiceslcy", "totallcy",
    "creditlimitlcy", "overdueamountslcy", "totalsaleslcy", "invoicedprepaymentamountlcy",
)  # fmt: skip

REGARDING_TARGETS = ("account", "contact", "salesorder", "quote", "invoice")

DEFINITIONS: tuple[EntityDefinition, ...] = (
    _table(
        "account", "accounts", 1, "name",
        [_s("name", 160), _s("accountnumber", 20), _s("telephone1", 50), _s("emailaddress1", 100),
         _s("websiteurl", 200), _s("fax", 50), *ADDRESS, _lookup("primarycontactid", "contact"),
         _lookup("parentaccountid", "account"), _memo("description"), Attribute("creditlimit", T.MONEY),
         _pick("customertypecode", {1: "Competitor", 3: "Customer", 11: "Prospect", 12: "Other"}),
         _lookup("nav_accountstatisticsid", "nav_accountstatistics"), _lookup("bcbi_companyid", "bcbi_company"),
         _lookup("defaultpricelevelid", "pricelevel"), _pick("paymenttermscode", PAYMENT_TERMS),
         _pick("address1_freighttermscode", FREIGHT_TERMS), _pick("address1_shippingmethodcode", SHIPPING_METHODS),
         _s("address1_primarycontactname", 100)],
        states=ACTIVE_INACTIVE, currency=True, alternate_keys=(("accountnumber",),),
        collections=(CollectionNavigation("contact_customer_accounts", "contact", "parentcustomerid"),
                     CollectionNavigation("order_customer_accounts", "salesorder", "customerid")),
        display_name="Account",
    ),
    _table(
        "contact", "contacts", 2, "fullname",
        [_s("firstname", 50), _s("middlename", 50), _s("lastname", 50), _s("fullname", 160, create=False, update=False),
         _s("emailaddress1", 100), _s("telephone1", 50), _s("mobilephone", 50), _s("fax", 50), _s("pager", 50),
         _s("websiteurl", 200), _s("jobtitle", 100), *ADDRESS,
         _lookup("parentcustomerid", "account", "contact"), _lookup("bcbi_companyid", "bcbi_company")],
        states=ACTIVE_INACTIVE, currency=True, display_name="Contact",
    ),
    _table(
        "systemuser", "systemusers", 8, "fullname",
        [_s("fullname", 200, create=False, update=False), _s("firstname", 64), _s("lastname", 64),
         _s("internalemailaddress", 100), _s("domainname", 1024),
         Attribute("azureactivedirectoryobjectid", T.UNIQUEIDENTIFIER), Attribute("applicationid", T.UNIQUEIDENTIFIER),
         _s("mobilephone", 64), _bool("islicensed"), _bool("isintegrationuser"),
         _bool("isdisabled"), _pick("accessmode", {0: "Read-Write", 1: "Administrative", 2: "Read",
                                                    3: "Support User", 4: "Non-interactive", 5: "Delegated Admin"})],
        owned=False, addressable_by_key=False, display_name="User", bulk_messages=False,
    ),
    _table(
        "transactioncurrency", "transactioncurrencies", 9105, "currencyname",
        [_s("isocurrencycode", 5, update=False), _s("currencyname", 100), _s("currencysymbol", 10),
         Attribute("exchangerate", T.DECIMAL, min_value=0.0000000001, max_value=100000000000),
         _int("currencyprecision", lo=0, hi=4)],
        states=ACTIVE_INACTIVE, owned=False, alternate_keys=(("isocurrencycode",),), display_name="Currency",
        bulk_messages=False,
    ),
    _table(
        "uomschedule", "uomschedules", 1056, "name",
        [_s("name", 200), _s("baseuomname", 100, update=False), _memo("description")],
        states=ACTIVE_INACTIVE, owned=False, display_name="Unit Group",
        collections=(CollectionNavigation("UoMSchedule_UoMs", "uom", "uomscheduleid"),),  # name: Inf
    ),
    _table(
        "uom", "uoms", 1055, "name",
        [_s("name", 100), _lookup("uomscheduleid", "uomschedule", update=False), _lookup("baseuom", "uom"),
         _dec("quantity"), _bool("isschedulebaseuom", update=False)],
        owned=False, display_name="Unit",
    ),
    _table(
        "product", "products", 1024, "name",
        [_s("name", 100), _s("productnumber", 100), _memo("description"),
         _pick("productstructure", {1: "Product", 2: "Product Family", 3: "Product Bundle"}, update=False),
         _pick("producttypecode", {1: "Sales Inventory", 2: "Miscellaneous Charges", 3: "Services",
                                   4: "Flat Fees"}),
         _int("quantitydecimal", lo=0, hi=5), _lookup("defaultuomid", "uom"),
         _lookup("defaultuomscheduleid", "uomschedule"), _lookup("pricelevelid", "pricelevel"), _money("price"),
         _money("standardcost"), _money("currentcost"), _dec("quantityonhand"), _lookup("parentproductid", "product"),
         _dt("validfromdate"), _dt("validtodate"), _lookup("bcbi_companyid", "bcbi_company"),
         _dec("stockvolume"), _dec("stockweight"), _s("vendorid", 100), _s("vendorpartnumber", 100)],
        states=PRODUCT_STATES, initial_state=(2, 0), owned=False, currency=True,
        alternate_keys=(("productnumber",),), display_name="Product",
    ),
    _table(
        "pricelevel", "pricelevels", 1022, "name",
        [_s("name", 100), _lookup("transactioncurrencyid", "transactioncurrency", update=False),
         _dt("begindate"), _dt("enddate"), _memo("description"), _lookup("bcbi_companyid", "bcbi_company")],
        states=PRICELEVEL_STATES, owned=False, display_name="Price List",
        collections=(CollectionNavigation("price_level_product_price_levels", "productpricelevel", "pricelevelid"),),
    ),
    _table(
        "productpricelevel", "productpricelevels", 1026, "productidname",
        [_lookup("pricelevelid", "pricelevel", update=False), _lookup("productid", "product"),
         _lookup("uomid", "uom"), _lookup("uomscheduleid", "uomschedule"), _money("amount"),
         Attribute("percentage", T.DECIMAL),
         _pick("pricingmethodcode", {1: "Currency Amount", 2: "Percent of List", 3: "Cost Plus Percent - Current",
                                     4: "Percent Margin - Current", 5: "Cost Plus Percent - Standard",
                                     6: "Percent Margin - Standard"}),
         _pick("quantitysellingcode", {1: "No Control", 2: "Whole", 3: "Whole and Fractional"}),
         _pick("roundingpolicycode", {1: "None", 2: "Up", 3: "Down", 4: "To Nearest"}),
         _s("productidname", 100, create=False, update=False), _s("productnumber", 100, create=False, update=False)],
        owned=False, currency=True, display_name="Price List Item",
    ),
    _table(
        "salesorder", "salesorders", 1088, "name",
        [_s("name", 300), _s("ordernumber", 100, update=False), *_HEADER,
         _lookup("quoteid", "quote"), _lookup("pricelevelid", "pricelevel"),
         _lookup("transactioncurrencyid", "transactioncurrency", update=False),
         _dt("datefulfilled"), _dt("submitdate"), _int("submitstatus"), _memo("submitstatusdescription"),
         _dt("lastbackofficesubmit"),
         _pick("ordercreationmethod", {776160000: "Unknown", 776160001: "WinQuote"}),
         _s("bcbi_businesscentralordernumber", 20), _int("bcbi_businesscentraldocumentoccurrencenumber")],
        states=SALESORDER_STATES, currency=True, number_attribute="ordernumber", number_prefix="ORD",
        collections=(CollectionNavigation("order_details", "salesorderdetail", "salesorderid"),),
        display_name="Order",
    ),
    _table(
        "salesorderdetail", "salesorderdetails", 1089, "productidname",
        [_lookup("salesorderid", "salesorder", update=False), *_LINE_SHAPE,
         _s("productidname", 100, create=False, update=False)],
        currency=True, display_name="Order Product",
    ),
    _table(
        "quote", "quotes", 1084, "name",
        [_s("name", 300), _s("quotenumber", 100, update=False),
         _int("revisionnumber", update=False), *_HEADER,
         _lookup("transactioncurrencyid", "transactioncurrency", update=False),
         _dt("effectivefrom"), _dt("effectiveto"), _dt("expireson"), _dt("closedon", read_only=True)],
        states=QUOTE_STATES, currency=True, number_attribute="quotenumber", number_prefix="QUO",
        collections=(CollectionNavigation("quote_details", "quotedetail", "quoteid"),),
        display_name="Quote",
    ),
    _table(
        "quotedetail", "quotedetails", 1085, "productidname",
        [_lookup("quoteid", "quote", update=False), *_LINE_SHAPE, _s("productidname", 100, create=False, update=False)],
        currency=True, display_name="Quote Product",
    ),
    _table(
        "invoice", "invoices", 1090, "name",
        [_s("name", 300), _s("invoicenumber", 100, update=False), *_HEADER,
         _lookup("salesorderid", "salesorder"),
         _lookup("transactioncurrencyid", "transactioncurrency", update=False),
         _dt("duedate"), _dt("datedelivered"), _dt("lastbackofficesubmit")],
        states=INVOICE_STATES, currency=True, number_attribute="invoicenumber", number_prefix="INV",
        collections=(CollectionNavigation("invoice_details", "invoicedetail", "invoiceid"),),
        display_name="Invoice",
    ),
    _table(
        "invoicedetail", "invoicedetails", 1091, "productidname",
        [_lookup("invoiceid", "invoice", update=False), *_LINE_SHAPE,
         _s("productidname", 100, create=False, update=False)],
        currency=True, display_name="Invoice Product",
    ),
    _table(
        "post", "posts", 8000, "text",
        [Attribute("regardingobjectid", T.LOOKUP, targets=REGARDING_TARGETS, update=False),
         Attribute("regardingobjecttypecode", T.ENTITYNAME, create=False, update=False),
         _pick("source", {1: "Auto Post", 2: "Manual Post", 3: "ActionHub Post"}, update=False),
         _pick("type", {1: "Check-in", 2: "Idea", 3: "News", 4: "Private Message", 5: "Question",
                        6: "Re-post", 7: "Status"}, update=False),
         _s("text", 2000, update=False), Attribute("largetext", T.MEMO, max_length=1048576, update=False)],
        owned=False, create_only=True, display_name="Post", bulk_messages=False,
    ),
    _table(
        "nav_accountstatistics", "nav_accountstatisticses", 10010, "nav_name",  # set name: Inf (open point 2)
        [_s("nav_name", 160), _s("nav_customerno", 20), *(_money(f"nav_{name}") for name in _MONEY_STATS),
         _dt("nav_overdueamountsasof")],
        states=ACTIVE_INACTIVE, owned=False, currency=True, display_name="Business Central Account Statistics",
    ),
    _table(
        "bcbi_company", "bcbi_companies", 10011, "bcbi_name",
        [_s("bcbi_name", 30), _s("bcbi_externalid", 36)],
        states=ACTIVE_INACTIVE, owned=False, display_name="Business Central Company",
    ),
    _table(
        "opportunity", "opportunities", 3, "name",
        [_s("name", 300), _lookup("customerid", "account", "contact")],
        states=_states((0, "Open", {1: "In Progress", 2: "On Hold"}, 1), (1, "Won", {3: "Won"}, 3),
                       (2, "Lost", {4: "Canceled", 5: "Out-Sold"}, 4)),
        currency=True, display_name="Opportunity",
    ),
    _table(
        "serviceendpoint", "serviceendpoints", 4618, "name",
        [_s("name", 256), _memo("description"),
         _pick("contract", {1: "OneWay", 2: "Queue", 3: "Rest", 4: "TwoWay", 5: "Topic", 6: "Queue (Persistent)",
                            7: "Event Hub", 8: "Webhook", 9: "Event Grid", 10: "Managed Data Lake"}),
         _pick("messageformat", {1: ".NET Binary", 2: "Json", 3: "XML"}),
         _pick("authtype", {1: "ACS", 2: "SAS Key", 3: "SAS Token", 4: "Webhook Key", 5: "Http Header",
                            6: "Http Query String", 7: "Connection String", 8: "Access Key"}),
         _pick("userclaim", {1: "None", 2: "UserId", 3: "UserInfo"}),
         _pick("messagecharset", {0: "Default", 1: "UTF8"}),
         _s("namespaceaddress", 255), _s("path", 160), _s("saskeyname", 256), _s("saskey", 256),
         _s("url", 2000), _memo("authvalue", 4000), _s("solutionnamespace", 160)],
        owned=False, change_tracking=False, bulk_messages=False, display_name="Service Endpoint",
    ),
    _table(
        "sdkmessage", "sdkmessages", 4606, "name",
        [_s("name", 256)], owned=False, change_tracking=False, bulk_messages=False, display_name="Sdk Message",
    ),
    _table(
        "sdkmessagefilter", "sdkmessagefilters", 4607, "primaryobjecttypecode",
        [_lookup("sdkmessageid", "sdkmessage"), Attribute("primaryobjecttypecode", T.ENTITYNAME),
         Attribute("secondaryobjecttypecode", T.ENTITYNAME)],
        owned=False, change_tracking=False, bulk_messages=False, display_name="Sdk Message Filter",
    ),
    _table(
        "sdkmessageprocessingstep", "sdkmessageprocessingsteps", 4608, "name",
        [_s("name", 256), _memo("description"), _lookup("sdkmessageid", "sdkmessage"),
         _lookup("sdkmessagefilterid", "sdkmessagefilter"),
         Attribute("eventhandler", T.LOOKUP, targets=("serviceendpoint", "plugintype")),
         _int("stage"), _int("mode"), _int("rank"), _memo("filteringattributes", 100000),
         _pick("supporteddeployment", {0: "Server Only", 1: "Microsoft Dynamics 365 Client for Outlook Only",
                                       2: "Both"}),
         _bool("asyncautodelete"), _memo("configuration")],
        states=_states((0, "Enabled", {1: "Enabled"}, 1), (1, "Disabled", {2: "Disabled"}, 2)),
        owned=False, change_tracking=False, bulk_messages=False, display_name="Sdk Message Processing Step",
    ),
    _table(
        # One row, created with the organisation; the API only reads it here (read_only_table).
        "organization", "organizations", 1019, "name",
        [_s("name", 160, update=False), _lookup("basecurrencyid", "transactioncurrency", update=False),
         _int("currencydecimalprecision", update=False), _int("languagecode", update=False)],
        owned=False, change_tracking=False, bulk_messages=False, addressable_by_key=False,
        read_only_table=True, display_name="Organization",
    ),
)  # fmt: skip

BY_LOGICAL_NAME: Mapping[str, EntityDefinition] = MappingProxyType({d.logical_name: d for d in DEFINITIONS})
BY_ENTITY_SET: Mapping[str, EntityDefinition] = MappingProxyType({d.entity_set: d for d in DEFINITIONS})
