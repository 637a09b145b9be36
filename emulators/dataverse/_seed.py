"""Seed data sets: ``demo`` (small, realistic, deterministic ids) and ``large`` (N accounts).

Seeding goes through the same write primitives as API calls (so every seeded row has its server
defaults, numbers, prices and totals), as the connector's application user. Ids are derived from
names with uuid5 so tests and other fixtures can address seeded rows without a lookup.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._entities import BY_LOGICAL_NAME

if TYPE_CHECKING:
    from ._service import DataverseApi

_NS = uuid.UUID("0c0ffee0-d474-4e55-9a1e-000000000001")


def seed_id(entity: str, name: str) -> str:
    """The deterministic id of seeded row ``name`` of ``entity``."""
    return str(uuid.uuid5(_NS, f"{entity}:{name}"))


def ensure_application_user(api: DataverseApi, client_id: str) -> str:
    """The organisation always has the connector's application user (reset keeps it)."""
    # An application user holds no licence; the connector's counts as an integration user.
    return _ensure_application_user(api, "connector", "Connector", client_id.lower(), integration=True)


def ensure_seed_user(api: DataverseApi) -> str:
    """The user seeded rows come from: a data-migration application user, not the connector.

    Rows the connector's own user wrote last are left out of its Sales passes (the echo rule), so
    data that stands for what people entered in Sales must carry another user.
    """
    application_id = seed_id("application", "data-migration")
    return _ensure_application_user(api, "data-migration", "Data Migration", application_id, integration=False)


def _ensure_application_user(api: DataverseApi, key: str, name: str, application_id: str, *, integration: bool) -> str:
    from ._records import utc_now_iso

    user_id = seed_id("systemuser", key)
    if api.store.get("systemuser", user_id) is None:
        row = dict.fromkeys(BY_LOGICAL_NAME["systemuser"].attributes)
        now = utc_now_iso()
        row.update(
            systemuserid=user_id,
            firstname="#",
            lastname=name,
            fullname=f"# {name}",
            applicationid=application_id,
            accessmode=4,  # non-interactive
            isdisabled=False,
            islicensed=False,
            isintegrationuser=integration,
            internalemailaddress=f"{key}@contoso.invalid",
            createdon=now,
            modifiedon=now,
            versionnumber=api.store.next_version(),
        )
        api.store.put("systemuser", user_id, row)
    return user_id


def ensure_organization(api: DataverseApi) -> str:
    """The one ``organization`` row (id = WhoAmI's OrganizationId); the API cannot create it."""
    from ._records import utc_now_iso

    if api.store.get("organization", api.organization_id) is None:
        row = dict.fromkeys(BY_LOGICAL_NAME["organization"].attributes)
        now = utc_now_iso()
        row.update(
            organizationid=api.organization_id,
            name=urlsplit(api.org_url).hostname or "emulator",
            languagecode=1033,
            currencydecimalprecision=2,
            createdon=now,
            modifiedon=now,
            versionnumber=api.store.next_version(),
        )
        api.store.put("organization", api.organization_id, row)
    return api.organization_id


def _set_base_currency(api: DataverseApi, currency_id: str) -> None:
    # The base currency is chosen when an organisation is provisioned, never through the API.
    row = api.store.get("organization", ensure_organization(api))
    assert row is not None
    row["basecurrencyid"] = {"id": currency_id, "entity": "transactioncurrency"}
    row["versionnumber"] = api.store.next_version()
    api.store.put("organization", api.organization_id, row)


def _ref(entity: str, name: str) -> str:
    return f"/{BY_LOGICAL_NAME[entity].entity_set}({seed_id(entity, name)})"


def seed_into(api: DataverseApi, spec: dict[str, Any]) -> dict[str, Any]:
    """Back-door seed: ``{"name": "demo"}``, ``{"name": "large", "accounts": N}`` or ``{"rows": {...}}``.

    ``rows`` maps logical names to lists of Web API bodies (binds allowed), created in order.
    """
    from ._service import ApiRequest

    ensure_application_user(api, api.client_id)
    user = ensure_seed_user(api)
    request = ApiRequest("POST", "", [], {}, b"", user)
    created: dict[str, int] = {}

    def create(entity: str, body: dict[str, Any], name: str | None = None) -> str:
        definition = BY_LOGICAL_NAME[entity]
        record_id = seed_id(entity, name) if name is not None else None
        row = api.create_row(definition, body, request, record_id=record_id)
        created[entity] = created.get(entity, 0) + 1
        return str(row[definition.primary_id])

    def update(entity: str, name: str, body: dict[str, Any]) -> None:
        definition = BY_LOGICAL_NAME[entity]
        current = api.store.get(entity, seed_id(entity, name))
        assert current is not None
        api.update_row(definition, current, body, request)

    with api.as_user(user):
        name = spec.get("name")
        demo_seeded = api.store.get("transactioncurrency", seed_id("transactioncurrency", "EUR")) is not None
        if name in ("demo", "large") and not demo_seeded:
            _demo(create, update)  # once: seeding "large" on top of "demo" only adds the accounts
            _set_base_currency(api, seed_id("transactioncurrency", "EUR"))
        if name == "bench" and api.store.get("transactioncurrency", seed_id("transactioncurrency", "EUR")) is None:
            # An organisation always has its base currency; the benchmark's Sales has nothing else.
            body = {"isocurrencycode": "EUR", "currencyname": "Euro", "currencysymbol": "€", "exchangerate": 1.0}
            create("transactioncurrency", {**body, "currencyprecision": 2}, "EUR")
            _set_base_currency(api, seed_id("transactioncurrency", "EUR"))
        if name == "large":
            _large(api, int(spec.get("accounts", 1000)), user)
            created["account"] = created.get("account", 0) + int(spec.get("accounts", 1000))
        for entity, bodies in dict(spec.get("rows", {})).items():
            if entity not in BY_LOGICAL_NAME:
                raise ValueError(f"unknown entity {entity!r}")
            for body in bodies:
                create(entity, dict(body))
    return {"created": created, "counts": api.store.counts()}


def _demo(create: Any, update: Any) -> None:
    # Alice and Bob exist only in Sales; Jim, Peter and Léa are also the BC demo company's
    # salespeople (same e-mail), so match-based coupling pairs them.
    for first, last, email in (
        ("Alice", "Seller", "alice@contoso.invalid"),
        ("Bob", "Manager", "bob@contoso.invalid"),
        ("Jim", "Olive", "jim.olive@cronus.example"),
        ("Peter", "Saddow", "peter.saddow@cronus.example"),
        ("Léa", "Dubois-Ñúñez", "lea.dubois@cronus.example"),
    ):
        create(
            "systemuser",
            {
                "firstname": first,
                "lastname": last,
                "internalemailaddress": email,
                "accessmode": 0,
                "isdisabled": False,
                "islicensed": True,
                "isintegrationuser": False,
            },
            email.split("@")[0],
        )
    create(
        "transactioncurrency",
        {
            "isocurrencycode": "EUR",
            "currencyname": "Euro",
            "currencysymbol": "€",
            "exchangerate": 1.0,
            "currencyprecision": 2,
        },
        "EUR",
    )
    create(
        "transactioncurrency",
        {
            "isocurrencycode": "USD",
            "currencyname": "US Dollar",
            "currencysymbol": "$",
            "exchangerate": 1.08,
            "currencyprecision": 2,
        },
        "USD",
    )
    # Unit groups named the way the built-in integration names them ("NAV <BC unit code>"), so
    # the demo's BC units couple to them by match; the seed keys keep their historic names.
    create("uomschedule", {"name": "NAV PCS", "baseuomname": "PCS"}, "Default Unit")
    create(
        "uom",
        {
            "name": "PCS",
            "quantity": 1,
            "isschedulebaseuom": True,
            "uomscheduleid@odata.bind": _ref("uomschedule", "Default Unit"),
        },
        "Primary Unit",
    )
    create(
        "uom",
        {
            "name": "Box of 12",
            "quantity": 12,
            "baseuom@odata.bind": _ref("uom", "Primary Unit"),
            "uomscheduleid@odata.bind": _ref("uomschedule", "Default Unit"),
        },
        "Box of 12",
    )
    create("uomschedule", {"name": "NAV HOUR", "baseuomname": "HOUR"}, "Time")
    create(
        "uom",
        {
            "name": "HOUR",
            "quantity": 1,
            "isschedulebaseuom": True,
            "uomscheduleid@odata.bind": _ref("uomschedule", "Time"),
        },
        "Hour",
    )
    create(
        "pricelevel",
        {"name": "Standard EUR", "transactioncurrencyid@odata.bind": _ref("transactioncurrency", "EUR")},
        "Standard EUR",
    )
    products = (
        ("1000", "Bicycle", 1, "Primary Unit", "Default Unit", 450.0),
        ("1001", "Helmet", 1, "Primary Unit", "Default Unit", 39.95),
        ("1002", "Bicycle lock, extra-long cable", 1, "Box of 12", "Default Unit", 240.0),
        ("R-INSTALL", "Installation service", 3, "Hour", "Time", 85.0),
    )
    for number, name, kind, unit, group, price in products:
        create(
            "product",
            {
                "name": name,
                "productnumber": number,
                "producttypecode": kind,
                "productstructure": 1,
                "quantitydecimal": 0 if kind == 1 else 2,
                "price": price,
                "defaultuomid@odata.bind": _ref("uom", unit),
                "defaultuomscheduleid@odata.bind": _ref("uomschedule", group),
                "pricelevelid@odata.bind": _ref("pricelevel", "Standard EUR"),
                "transactioncurrencyid@odata.bind": _ref("transactioncurrency", "EUR"),
            },
            number,
        )
        update("product", number, {"statecode": 0, "statuscode": 1})
        create(
            "productpricelevel",
            {
                "amount": price,
                "pricingmethodcode": 1,
                "quantitysellingcode": 1,
                "pricelevelid@odata.bind": _ref("pricelevel", "Standard EUR"),
                "productid@odata.bind": _ref("product", number),
                "uomid@odata.bind": _ref("uom", unit),
                "uomscheduleid@odata.bind": _ref("uomschedule", group),
            },
            f"{number}:{unit}",
        )
    create(
        "product",
        {
            "name": "Prototype e-bike (draft)",
            "productnumber": "9000",
            "producttypecode": 1,
            "productstructure": 1,
            "defaultuomid@odata.bind": _ref("uom", "Primary Unit"),
            "defaultuomscheduleid@odata.bind": _ref("uomschedule", "Default Unit"),
        },
        "9000",
    )
    accounts = (
        ("10000", "Adatum Corporation", "Brussels", "alice"),
        ("20000", "Trey Research", "Antwerpen", "bob"),
        ("30000", "School of Fine Art", "Gent", "alice"),
        ("40000", "Café Nørrebro & Søn", "København", "bob"),
    )
    for number, name, city, owner in accounts:
        create(
            "account",
            {
                "name": name,
                "accountnumber": number,
                "address1_city": city,
                "telephone1": "+32 2 555 01 00",
                "customertypecode": 3,
                "ownerid@odata.bind": _ref("systemuser", owner),
                "transactioncurrencyid@odata.bind": _ref("transactioncurrency", "EUR"),
                "defaultpricelevelid@odata.bind": _ref("pricelevel", "Standard EUR"),
            },
            number,
        )
    contacts = (("Robert", "Townes", "10000"), ("Ilse", "Peeters", "20000"), ("Jens", "Ødegaard", "40000"))
    for first, last, account in contacts:
        create(
            "contact",
            {
                "firstname": first,
                "lastname": last,
                "emailaddress1": f"{first.lower()}@example.invalid",
                "parentcustomerid_account@odata.bind": _ref("account", account),
            },
            f"{first} {last}",
        )
        update("account", account, {"primarycontactid@odata.bind": _ref("contact", f"{first} {last}")})
    create(
        "salesorder",
        {
            "name": "Bikes for the Adatum fleet",
            "customerid_account@odata.bind": _ref("account", "10000"),
            "pricelevelid@odata.bind": _ref("pricelevel", "Standard EUR"),
            "transactioncurrencyid@odata.bind": _ref("transactioncurrency", "EUR"),
            "requestdeliveryby": "2026-12-15T00:00:00Z",
            "freightamount": 25.0,
            "order_details": [
                {
                    "productid@odata.bind": _ref("product", "1000"),
                    "uomid@odata.bind": _ref("uom", "Primary Unit"),
                    "quantity": 4,
                    "manualdiscountamount": 100.0,
                    "lineitemnumber": 1,
                },
                {
                    "productid@odata.bind": _ref("product", "1001"),
                    "uomid@odata.bind": _ref("uom", "Primary Unit"),
                    "quantity": 4,
                    "lineitemnumber": 2,
                },
                {
                    "isproductoverridden": True,
                    "productdescription": "Gift wrapping with a handwritten card for each "
                    "bicycle, delivered to the reception desk",
                    "quantity": 1,
                    "priceperunit": 12.5,
                    "ispriceoverridden": True,
                    "lineitemnumber": 3,
                },
            ],
        },
        "Bikes for the Adatum fleet",
    )
    update("salesorder", "Bikes for the Adatum fleet", {"statecode": 1, "statuscode": 3})
    create(
        "quote",
        {
            "name": "Installation at Trey Research",
            "customerid_account@odata.bind": _ref("account", "20000"),
            "pricelevelid@odata.bind": _ref("pricelevel", "Standard EUR"),
            "effectiveto": "2027-01-31T00:00:00Z",
            "quote_details": [
                {
                    "productid@odata.bind": _ref("product", "R-INSTALL"),
                    "uomid@odata.bind": _ref("uom", "Hour"),
                    "quantity": 6,
                },
                {
                    "productid@odata.bind": _ref("product", "1000"),
                    "uomid@odata.bind": _ref("uom", "Primary Unit"),
                    "quantity": 2,
                },
            ],
        },
        "Installation at Trey Research",
    )
    update("quote", "Installation at Trey Research", {"statecode": 1, "statuscode": 2})
    for message in ("Create", "Update", "Delete", "SetState", "SetStateDynamicEntity", "Win", "Close"):
        create("sdkmessage", {"name": message}, message)
    for message in ("Create", "Update", "Delete", "SetStateDynamicEntity"):
        # The tables the service has message filters for that the connector registers steps on.
        for entity in (
            "salesorder", "quote", "account", "contact", "invoice", "product", "systemuser", "transactioncurrency",
            "uomschedule",
        ):  # fmt: skip
            create(
                "sdkmessagefilter",
                {"sdkmessageid@odata.bind": _ref("sdkmessage", message), "primaryobjecttypecode": entity},
                f"{message}:{entity}",
            )


def _large(api: DataverseApi, count: int, user: str) -> None:
    # Bulk rows go straight into the store: N creates through the validating path would check
    # alternate keys against every earlier row (quadratic) for no extra realism.
    from ._records import utc_now_iso

    definition = BY_LOGICAL_NAME["account"]
    now = utc_now_iso()
    caller = {"id": user, "entity": "systemuser"}
    eur = {"id": seed_id("transactioncurrency", "EUR"), "entity": "transactioncurrency"}
    for index in range(1, count + 1):
        record_id = seed_id("account", f"L{index:06d}")
        row: dict[str, Any] = dict.fromkeys(definition.attributes)
        row.update(
            accountid=record_id,
            name=f"Large Account {index:06d}",
            accountnumber=f"L{index:06d}",
            address1_city="Leuven",
            createdon=now,
            modifiedon=now,
            createdby=caller,
            modifiedby=caller,
            ownerid=caller,
            statecode=0,
            statuscode=1,
            transactioncurrencyid=eur,
            exchangerate=1.0,
            versionnumber=api.store.next_version(),
            customertypecode=3,
        )
        api.store.put("account", record_id, row)
