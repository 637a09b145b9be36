"""The registry: active mappings, look-ups, configuration overrides and the HTTP view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.mapping import DeletionConflictResolution, MatchRule, UpdateConflictResolution
from shared.domain.state import SyncDirection
from shared.errors import ConfigurationError, PermanentError
from shared.mappings import registry
from shared.mappings._options import OPTION_BIDIRECTIONAL_MESSAGE

pytestmark = pytest.mark.unit


def _overrides(**mappings: Any) -> dict[str, Any]:
    return {"mappings": mappings}


def _field(mapping_name: str, bc_field: str | None, dataverse_field: str | None, overrides: Any = None) -> Any:
    mapping = registry.get_definition(mapping_name, overrides).mapping
    return next(f for f in mapping.fields if f.bc_field == bc_field and f.dataverse_field == dataverse_field)


def _refused(overrides: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        registry.definitions(overrides)
    assert caught.value.code == "InvalidMappingOverride"
    return caught.value.message


# -- defaults ------------------------------------------------------------------------------


def test_default_mappings_are_the_active_ones_in_prioritised_order() -> None:
    assert [m.name for m in registry.default_mappings()] == [
        "SALESPEOPLE",
        "CURRENCY",
        "UNIT OF MEASURE",
        "CUSTOMER",
        "CONTACT",
        "ITEM-PRODUCT",
        "PAYMENT TERMS",
        "SHIPMENT METHOD",
    ]


def test_configured_mappings_reads_the_setting_value() -> None:
    raw = json.dumps(_overrides(**{"SHIPMENT METHOD": {"enabled": False}}))
    assert "SHIPMENT METHOD" not in [m.name for m in registry.configured_mappings(raw)]
    assert registry.configured_mappings(None) == registry.default_mappings()


def test_get_mapping_is_case_insensitive_and_explains_unknown_and_inactive() -> None:
    assert registry.get_mapping("customer").name == "CUSTOMER"
    with pytest.raises(PermanentError) as unknown:
        registry.get_mapping("VENDOR")
    assert unknown.value.code == "UnknownMapping"
    with pytest.raises(PermanentError) as unavailable:
        registry.get_mapping("RESOURCE-PRODUCT")
    assert unavailable.value.code == "MappingDisabled"
    assert "resource" in unavailable.value.message
    switched_off = {"mappings": {"SHIPMENT METHOD": {"enabled": False}}}
    with pytest.raises(PermanentError, match="MAPPING_OVERRIDES"):
        registry.get_mapping("SHIPMENT METHOD", switched_off)


def test_lookup_keys_and_option_sets() -> None:
    assert registry.lookup_key("CUSTOMER", "salespersonCode") == "code"
    assert registry.lookup_key("CUSTOMER", "currencyId") == "id"
    option_set = registry.option_set_of("PAYMENT TERMS")
    assert option_set is not None
    assert (option_set.entity, option_set.attribute) == ("account", "paymenttermscode")
    assert registry.option_set_of("CUSTOMER") is None


# -- overrides that apply ----------------------------------------------------------------------


def test_mapping_level_overrides_apply() -> None:
    overrides = _overrides(
        customer={
            "direction": "toDataverse",
            "updateConflict": "GetUpdateFromDataverse",
            "deletionConflict": "RemoveCoupling",
            "syncOnlyCoupled": False,
            "bcFilter": None,
            "dataverseFilter": "statecode eq 0",
            "dependencies": ["salespeople", "CURRENCY"],
            "syncAfterMatchCoupling": True,
            "createNewIfNoMatch": True,
        }
    )
    mapping = registry.get_mapping("CUSTOMER", overrides)
    assert mapping.direction is SyncDirection.TO_DATAVERSE
    assert mapping.update_conflict is UpdateConflictResolution.GET_UPDATE_FROM_DATAVERSE
    assert mapping.deletion_conflict is DeletionConflictResolution.REMOVE_COUPLING
    assert mapping.sync_only_coupled is False
    assert mapping.bc_filter is None
    assert mapping.dataverse_filter == "statecode eq 0"
    assert mapping.dependencies == ("SALESPEOPLE", "CURRENCY")
    assert mapping.sync_after_match_coupling and mapping.create_new_if_no_match
    assert registry.get_mapping("CUSTOMER").direction is SyncDirection.BIDIRECTIONAL  # defaults untouched


def test_field_overrides_apply() -> None:
    overrides = _overrides(
        CUSTOMER={
            "fields": [
                {"bcField": "email", "direction": "toDataverse", "match": {"priority": 1}},
                {"bcField": "shipmentMethodId", "enabled": True},
                {"dataverseField": "ownerid", "clearOnFailedSync": True, "notNull": False},
                {"bcField": "website", "enabled": False},
            ]
        },
        **{"SHIPMENT METHOD": {"enabled": True}},
    )
    email = _field("CUSTOMER", "email", "emailaddress1", overrides)
    assert email.direction is SyncDirection.TO_DATAVERSE
    assert email.match == MatchRule(priority=1)
    assert _field("CUSTOMER", "shipmentMethodId", "address1_freighttermscode", overrides).enabled
    owner = _field("CUSTOMER", "salespersonCode", "ownerid", overrides)
    assert owner.clear_on_failed_sync and not owner.not_null
    assert not _field("CUSTOMER", "website", "websiteurl", overrides).enabled


def test_fields_are_added_and_constants_changed() -> None:
    overrides = _overrides(
        CUSTOMER={"fields": [{"add": True, "bcField": "number", "dataverseField": "accountnumber",
                              "direction": "toDataverse", "match": True}]},
        **{"PLLINE-PRODPRICE": {"fields": [{"dataverseField": "pricingmethodcode", "constant": 2}]}},
    )  # fmt: skip
    added = _field("CUSTOMER", "number", "accountnumber", overrides)
    assert added.direction is SyncDirection.TO_DATAVERSE and added.match == MatchRule()
    assert _field("PLLINE-PRODPRICE", None, "pricingmethodcode", overrides).constant == 2


def test_an_option_mapping_may_run_from_dataverse() -> None:
    overrides = _overrides(**{"PAYMENT TERMS": {"direction": "fromDataverse", "fields": [
        {"bcField": "code", "direction": "fromDataverse"}]}})  # fmt: skip
    assert registry.get_mapping("PAYMENT TERMS", overrides).direction is SyncDirection.FROM_DATAVERSE


def test_overrides_come_from_json_text_or_a_file(tmp_path: Path) -> None:
    document = _overrides(CUSTOMER={"syncOnlyCoupled": False})
    assert registry.load_overrides(json.dumps(document)) == document
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert registry.load_overrides(str(path)) == document
    assert registry.load_overrides("") == {}
    assert registry.load_overrides(None) == {}


# -- overrides that are refused ----------------------------------------------------------------


def test_an_option_mapping_cannot_be_bidirectional() -> None:
    message = _refused(_overrides(**{"PAYMENT TERMS": {"direction": "bidirectional"}}))
    assert "PAYMENT TERMS" in message and OPTION_BIDIRECTIONAL_MESSAGE in message


def test_a_direction_without_an_enabled_field_is_refused() -> None:
    message = _refused(_overrides(SALESPEOPLE={"direction": "toDataverse"}))
    assert "SALESPEOPLE" in message
    assert "You must set the direction of at least one enabled integration field mapping to" in message
    message = _refused(_overrides(CURRENCY={"fields": [
        {"bcField": "code", "enabled": False}, {"bcField": "symbol", "enabled": False},
        {"bcField": "displayName", "enabled": False}]}))  # fmt: skip
    assert "CURRENCY" in message and "toDataverse" in message


def test_unavailable_mappings_cannot_be_enabled() -> None:
    message = _refused(_overrides(**{"RESOURCE-PRODUCT": {"enabled": True}}))
    assert "RESOURCE-PRODUCT" in message and "resource" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (_overrides(VENDOR={"enabled": True}), "no mapping 'VENDOR'"),
        (_overrides(CUSTOMER={"directon": "toDataverse"}), "unknown key(s) ['directon']"),
        (_overrides(CUSTOMER={"direction": "sideways"}), "'sideways' is not one of"),
        (_overrides(CUSTOMER={"updateConflict": "BcWins"}), "'BcWins' is not one of"),
        (_overrides(CUSTOMER={"syncOnlyCoupled": "yes"}), "'syncOnlyCoupled' must be true or false"),
        (_overrides(CUSTOMER={"fields": [{"bcField": "fax"}]}), "field 'fax' → '(constant)': matches no field"),
        (_overrides(**{"ITEM-PRODUCT": {"fields": [{"bcField": "unitCost", "enabled": False}]}}), "matches 2 fields"),
        (_overrides(CUSTOMER={"fields": [{"bcField": "email", "transform": "shout"}]}), "unknown transform 'shout'"),
        (_overrides(CUSTOMER={"fields": [{"bcField": "email", "lookup": "VENDOR"}]}), "lookup 'VENDOR' is not a"),
        (_overrides(CUSTOMER={"fields": [{"bcField": "email", "notNull": True}]}), "notNull applies to lookups"),
        (_overrides(CUSTOMER={"fields": [{"bcField": "email", "match": {"priority": -1}}]}), "priority"),
        (_overrides(CUSTOMER={"fields": [{"add": True, "bcField": "email", "dataverseField": "emailaddress1",
                                          "direction": "toDataverse"}]}), "already mapped"),
        (_overrides(CUSTOMER={"fields": [{"add": True, "bcField": "number", "dataverseField": "accountnumber"}]}),
         "needs a direction"),
        (_overrides(CUSTOMER={"dependencies": ["NOPE"]}), "dependency 'NOPE' is not a mapping"),
        (_overrides(CURRENCY={"dependencies": ["CUSTOMER"]}), "cycle"),
        ({"mapping": {}}, "unknown top-level key(s)"),
    ],
)  # fmt: skip
def test_invalid_overrides_name_the_mapping_and_field(overrides: dict[str, Any], expected: str) -> None:
    message = _refused(overrides)
    assert expected in message
    assert message.startswith("MAPPING_OVERRIDES: ")


def test_field_errors_name_mapping_and_field() -> None:
    message = _refused(_overrides(CUSTOMER={"fields": [{"bcField": "email", "transform": "shout"}]}))
    assert "mapping 'CUSTOMER', field 'email' → 'emailaddress1'" in message


def test_unreadable_settings_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        registry.load_overrides('{"mappings": ')
    with pytest.raises(ConfigurationError, match="cannot read"):
        registry.load_overrides(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="must be a JSON object"):
        registry.load_overrides(str(_write(tmp_path, '["CUSTOMER"]')))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "document.json"
    path.write_text(text, encoding="utf-8")
    return path


# -- the HTTP view -------------------------------------------------------------------------


def test_every_mapping_renders_as_plain_json() -> None:
    for definition in registry.definitions():
        rendered = registry.mapping_as_json(definition)
        assert json.loads(json.dumps(rendered)) == rendered
        assert rendered["name"] == definition.name
        assert rendered["enabled"] is definition.active


def test_json_view_shows_lookup_keys_option_sets_and_status() -> None:
    customer = registry.mapping_as_json(registry.get_mapping("CUSTOMER"))
    owner = next(f for f in customer["fields"] if f["dataverseField"] == "ownerid")
    assert owner["lookup"] == "SALESPEOPLE" and owner["lookupKey"] == "code" and owner["notNull"] is True
    assert customer["dataverseFilter"] == "statecode eq 0 and customertypecode eq 3"
    assert customer["kind"] == "table" and "enabled" not in customer
    terms = registry.mapping_as_json(registry.get_definition("PAYMENT TERMS"))
    assert terms["kind"] == "option"
    assert terms["optionSet"] == {"entity": "account", "attribute": "paymenttermscode"}
    resources = registry.mapping_as_json(registry.get_definition("RESOURCE-PRODUCT"))
    assert resources["enabled"] is False and resources["unavailableReason"]
