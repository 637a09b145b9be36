"""The default mappings run through the engine's pure decision code as the use-cases will run them.

Shows the conventions the use-cases rely on: code-keyed lookups (salesperson code), LCY through
the CURRENCY lookup (``with_base_currency``), option values as coupled ids, transforms on the way.
"""

from __future__ import annotations

import pytest

from shared.domain.record_sync import EMPTY_GUID, LookupTable, desired_values
from shared.domain.state import SyncDirection
from shared.mappings import registry
from shared.mappings.transforms import TRANSFORMS, with_base_currency

pytestmark = pytest.mark.unit

TO, FROM = SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE
BASE = "0a000000-0000-4000-8000-00000000000a"
USER = "0b000000-0000-4000-8000-00000000000b"
TERMS_BC = "0c000000-0000-4000-8000-00000000000c"
UNIT_BC, UNIT_DV = "0d000000-0000-4000-8000-00000000000d", "0e000000-0000-4000-8000-00000000000e"

LOOKUPS = with_base_currency(
    LookupTable(
        # SALESPEOPLE is keyed by code (registry.lookup_key), the option mapping yields the value.
        to_dataverse={
            "SALESPEOPLE": {"JR": USER},
            "PAYMENT TERMS": {TERMS_BC: "3"},
            "UNIT OF MEASURE": {UNIT_BC: UNIT_DV},
        },
        to_bc={"SALESPEOPLE": {USER: "JR"}, "PAYMENT TERMS": {"3": TERMS_BC}, "UNIT OF MEASURE": {UNIT_DV: UNIT_BC}},
    ),
    BASE,
)


def test_a_bc_customer_in_lcy_maps_to_an_account() -> None:
    customer = {
        "displayName": "Adatum",
        "salespersonCode": "JR",
        "currencyId": EMPTY_GUID,
        "paymentTermsId": TERMS_BC,
        "creditLimit": 5000,
        "email": "info@adatum.example",
    }
    values, errors = desired_values(registry.get_mapping("CUSTOMER"), TO, customer, LOOKUPS, TRANSFORMS)
    assert errors == []
    assert values["ownerid"] == USER
    assert values["transactioncurrencyid"] == BASE
    assert values["paymenttermscode"] == "3"
    assert values["name"] == "Adatum" and values["creditlimit"] == 5000
    assert "address1_freighttermscode" in values  # through the SHIPMENT METHOD option mapping


def test_an_account_in_the_base_currency_maps_back_to_blank() -> None:
    account = {"name": "Adatum", "transactioncurrencyid": BASE, "paymenttermscode": 3}
    values, errors = desired_values(registry.get_mapping("CUSTOMER"), FROM, account, LOOKUPS, TRANSFORMS)
    assert errors == []
    assert values["currencyId"] == EMPTY_GUID
    assert values["paymentTermsId"] == TERMS_BC
    assert "salespersonCode" not in values and "creditLimit" not in values  # one-way towards Dataverse


def test_an_uncoupled_salesperson_fails_naming_the_dependency() -> None:
    customer = {"displayName": "Adatum", "salespersonCode": "ZZ", "currencyId": EMPTY_GUID}
    _, errors = desired_values(registry.get_mapping("CUSTOMER"), TO, customer, LOOKUPS, TRANSFORMS)
    assert len(errors) == 1 and "SALESPEOPLE" in errors[0]


def test_a_blank_salesperson_keeps_the_owner() -> None:
    customer = {"displayName": "Adatum", "salespersonCode": "", "currencyId": EMPTY_GUID}
    values, errors = desired_values(registry.get_mapping("CUSTOMER"), TO, customer, LOOKUPS, TRANSFORMS)
    assert errors == [] and "ownerid" not in values


def test_an_item_maps_to_a_sales_inventory_product() -> None:
    item = {
        "number": "1000",
        "displayName": "Bicycle",
        "unitPrice": -1,
        "unitCost": 350,
        "inventory": -4,
        "baseUnitOfMeasureId": UNIT_BC,
        "blocked": True,
    }
    mapping = registry.get_mapping("ITEM-PRODUCT")
    values, errors = desired_values(mapping, TO, item, LOOKUPS, TRANSFORMS)
    assert errors == []
    assert values == {
        "productnumber": "1000",
        "name": "Bicycle",
        "price": 0,
        "standardcost": 350,
        "currentcost": 350,
        "quantityonhand": 0,
        "defaultuomscheduleid": UNIT_DV,
        "statecode": 1,
        "statuscode": 2,
        "transactioncurrencyid": BASE,
    }
    assert dict(mapping.dataverse_insert_defaults)["producttypecode"] == 1


def test_a_product_maps_back_to_name_unit_and_blocked() -> None:
    product = {"name": "Bicycle", "defaultuomscheduleid": UNIT_DV, "statecode": 0, "price": 99}
    values, errors = desired_values(registry.get_mapping("ITEM-PRODUCT"), FROM, product, LOOKUPS, TRANSFORMS)
    assert errors == []
    assert values == {"displayName": "Bicycle", "baseUnitOfMeasureId": UNIT_BC, "blocked": False}


def test_a_systemuser_becomes_a_salesperson() -> None:
    user = {"systemuserid": USER, "fullname": "Jennifer Smith", "internalemailaddress": "js@contoso.example"}
    values, errors = desired_values(registry.get_mapping("SALESPEOPLE"), FROM, user, LOOKUPS, TRANSFORMS)
    assert errors == []
    assert values == {
        "code": "SP 0B000000",
        "displayName": "Jennifer Smith",
        "email": "js@contoso.example",
        "phoneNo": None,
    }


def test_a_unit_of_measure_becomes_a_nav_unit_group() -> None:
    values, _ = desired_values(registry.get_mapping("UNIT OF MEASURE"), TO, {"code": "PCS"}, LOOKUPS, TRANSFORMS)
    assert values == {"name": "NAV PCS", "baseuomname": "PCS"}
