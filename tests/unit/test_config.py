"""Settings validation: every bad setting is named, secrets never show in repr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import SETTINGS, load_settings
from shared.errors import ConfigurationError

pytestmark = pytest.mark.unit

VALID = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com/",
    "DATAVERSE_AUTHORITY": "https://login.microsoftonline.com/00000000-0000-0000-0000-00000000000a",
    "DATAVERSE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "DATAVERSE_CLIENT_SECRET": "dv-secret-value",
    "BC_API_URL": "https://api.businesscentral.dynamics.com/v2.0/tenant/Production/api/v2.0",
    "BC_COMPANY_ID": "AAAAAAAA-1111-2222-3333-444444444444",
    "BC_AUTHORITY": "https://login.microsoftonline.com/00000000-0000-0000-0000-00000000000a",
    "BC_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "BC_CLIENT_SECRET": "bc-secret-value",
    "StateTablesConnection": "UseDevelopmentStorage=true",
    "ServiceBusConnection": "Endpoint=sb://localhost;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true",
    "SCHEDULE_MAPPING_SYNC": "0 */5 * * * *",
}


def test_valid_settings_are_normalized() -> None:
    settings = load_settings(VALID)
    assert settings.dataverse.api_url == "https://contoso.crm4.dynamics.com/api/data/v9.2"
    assert settings.dataverse.scope == "https://contoso.crm4.dynamics.com/.default"
    assert settings.business_central.scope == "https://api.businesscentral.dynamics.com/.default"
    assert settings.business_central.company_id == "aaaaaaaa-1111-2222-3333-444444444444"
    assert settings.business_central.company_url.endswith("/companies(aaaaaaaa-1111-2222-3333-444444444444)")
    assert settings.auth_mode == "client_secret"


def test_every_problem_is_named_at_once() -> None:
    bad = {k: v for k, v in VALID.items() if k not in {"DATAVERSE_URL", "BC_CLIENT_SECRET", "StateTablesConnection"}}
    bad["BC_COMPANY_ID"] = "CRONUS"
    bad["BC_API_URL"] = "http://insecure.example/api"
    with pytest.raises(ConfigurationError) as raised:
        load_settings(bad)
    message = raised.value.message
    for name in ("DATAVERSE_URL", "BC_CLIENT_SECRET", "BC_COMPANY_ID", "BC_API_URL", "StateTablesConnection"):
        assert name in message
    assert raised.value.code == "InvalidSettings"


def test_unknown_auth_mode_and_missing_certificate_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONNECTOR_AUTH_MODE must be one of"):
        load_settings({**VALID, "CONNECTOR_AUTH_MODE": "password"})
    with pytest.raises(ConfigurationError, match=r"DATAVERSE_CLIENT_CERTIFICATE_PATH names no file"):
        load_settings(
            {
                **VALID,
                "CONNECTOR_AUTH_MODE": "client_certificate",
                "DATAVERSE_CLIENT_CERTIFICATE_PATH": "/nope.pem",
                "BC_CLIENT_CERTIFICATE_PATH": str(tmp_path),
            }
        )


def test_managed_identity_needs_no_client_secrets() -> None:
    values = {k: v for k, v in VALID.items() if "SECRET" not in k and "CLIENT_ID" not in k and "AUTHORITY" not in k}
    values |= {
        "CONNECTOR_AUTH_MODE": "managed_identity",
        "StateTablesConnection": "",
        "StateTablesConnection__tableServiceUri": "https://acct.table.core.windows.net",
    }
    settings = load_settings(values)
    assert settings.dataverse.credential is None and settings.tables.endpoint is not None


def test_secrets_never_appear_in_repr() -> None:
    text = repr(load_settings(VALID))
    assert "dv-secret-value" not in text and "bc-secret-value" not in text
    assert "SharedAccessKey" not in text and "UseDevelopmentStorage" not in text


def test_example_settings_file_documents_every_setting() -> None:
    example = json.loads((Path(__file__).parents[2] / "local.settings.example.json").read_text())
    documented = set(example["Values"])
    assert set(SETTINGS) <= documented, f"undocumented: {set(SETTINGS) - documented}"


def test_full_sync_steps_default_and_bounds() -> None:
    defaults = load_settings(VALID).full_sync
    assert defaults.step_seconds == 240 and defaults.page_size is None
    tuned = load_settings({**VALID, "FULL_SYNC_STEP_SECONDS": "0", "FULL_SYNC_PAGE_SIZE": "500"}).full_sync
    assert tuned.step_seconds == 0 and tuned.page_size == 500
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**VALID, "FULL_SYNC_STEP_SECONDS": "-1", "FULL_SYNC_PAGE_SIZE": "50000"})
    assert "FULL_SYNC_STEP_SECONDS must be a whole number from 0" in raised.value.message
    assert "FULL_SYNC_PAGE_SIZE must be a whole number from 1 to 20,000" in raised.value.message
