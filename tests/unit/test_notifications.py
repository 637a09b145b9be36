"""BC webhook notifications and Dataverse RemoteExecutionContexts: parsing, checking and routing."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import load_settings
from shared.domain.mapping import FieldMapping, TableMapping
from shared.domain.notifications import (
    ProcessingStep,
    ServiceEndpoint,
    client_state_matches,
    dataverse_push_mappings,
    parse_bc_notifications,
    parse_remote_execution_context,
    parse_resource,
    plan_bc_notifications,
    plan_dataverse_event,
    service_endpoint_for,
    webhook_mappings,
)
from shared.domain.state import SyncDirection
from shared.errors import ConfigurationError, PermanentError
from shared.usecases.push import ensure_bc_subscriptions, ensure_dataverse_push

pytestmark = pytest.mark.unit

COMPANY = "aaaaaaaa-1111-2222-3333-444444444444"
OTHER_COMPANY = "bbbbbbbb-1111-2222-3333-444444444444"
C1 = "11111111-0000-0000-0000-000000000001"
C2 = "11111111-0000-0000-0000-000000000002"
SECRET = "s3cret-s3cret-s3cret"
APP_USER = "99999999-0000-0000-0000-000000000000"
SELLER = "88888888-0000-0000-0000-000000000000"
BOTH = SyncDirection.BIDIRECTIONAL


def _mapping(name: str, bc_set: str, dv_set: str, direction: SyncDirection = BOTH) -> TableMapping:
    fields = (FieldMapping("displayName", "name", direction),)
    return TableMapping(name, bc_set, dv_set, "id", direction, fields)


MAPPINGS = (
    _mapping("CUSTOMER", "customers", "accounts"),
    _mapping("CONTACT", "contacts", "contacts"),  # BC has no webhooks for contacts
    _mapping("CURRENCY", "currencies", "transactioncurrencies", SyncDirection.TO_DATAVERSE),
    _mapping("SALESPEOPLE", "salespeoplePurchasers", "systemusers", SyncDirection.FROM_DATAVERSE),
    _mapping("PAYMENT TERMS", "paymentTerms", "account.paymenttermscode", SyncDirection.TO_DATAVERSE),
)
LOGICAL = {"accounts": "account", "contacts": "contact", "systemusers": "systemuser"}


def _post(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"value": list(entries)}).encode()


def _entry(
    resource: str, change: str = "updated", *, state: str = SECRET, stamp: str = "2026-11-24T10:00:00Z"
) -> dict[str, Any]:
    return {
        "subscriptionId": "sub-1",
        "clientState": state,
        "expirationDateTime": "2026-11-27T10:00:00Z",
        "resource": resource,
        "changeType": change,
        "lastModifiedDateTime": stamp,
    }


def _customer(record_id: str, company: str = COMPANY) -> str:
    return f"api/v2.0/companies({company})/customers({record_id})"


# -- resources --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "resource",
    [
        f"api/v2.0/companies({COMPANY})/customers({C1})",
        f"/api/v2.0/companies({COMPANY.upper()})/customers({C1.upper()})",
        f"https://api.businesscentral.dynamics.com/v2.0/t/Production/api/v2.0/companies({COMPANY})/customers({C1})",
    ],
)
def test_a_record_resource_names_company_set_and_record(resource: str) -> None:
    path = parse_resource(resource)
    assert path is not None
    assert (path.company_id, path.entity_set, path.record_id) == (COMPANY, "customers", C1)


def test_a_collection_resource_keeps_its_set_and_drops_the_filter() -> None:
    path = parse_resource(f"/api/v2.0/companies({COMPANY})/customers?$filter=lastModifiedDateTime%20gt%202026-11-24")
    assert path is not None and path.entity_set == "customers" and path.record_id is None


@pytest.mark.parametrize("resource", ["", "customers", f"api/v2.0/companies(CRONUS)/customers({C1})", "api/v1.0/x"])
def test_other_resources_are_not_recognized(resource: str) -> None:
    assert parse_resource(resource) is None


# -- parsing and the secret -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"value": {}}', b'{"value": [1]}', _post({"clientState": SECRET, "resource": "x"})],
)
def test_malformed_posts_are_permanent_errors(body: bytes) -> None:
    with pytest.raises(PermanentError) as raised:
        parse_bc_notifications(body)
    assert raised.value.code == "MalformedNotification"


def test_a_bom_is_tolerated_and_the_secret_stays_out_of_repr() -> None:
    (notification,) = parse_bc_notifications(b"\xef\xbb\xbf" + _post(_entry(_customer(C1), "Updated")))
    assert notification.change_type == "updated"
    assert SECRET not in repr(notification)


def test_every_notification_must_carry_the_secret() -> None:
    good, bad = _entry(_customer(C1)), _entry(_customer(C2), state="s3cret-s3cret-s3creX")
    assert client_state_matches(parse_bc_notifications(_post(good, good)), SECRET)
    assert not client_state_matches(parse_bc_notifications(_post(good, bad)), SECRET)
    assert not client_state_matches([], SECRET)


# -- routing BC notifications -----------------------------------------------------------------------
def test_only_mappings_toward_sales_on_webhook_resources_get_subscriptions() -> None:
    assert {s: [m.name for m in ms] for s, ms in webhook_mappings(MAPPINGS).items()} == {
        "customers": ["CUSTOMER"],
        "currencies": ["CURRENCY"],
        "paymentTerms": ["PAYMENT TERMS"],
    }


def test_records_are_deduplicated_and_batched_per_mapping() -> None:
    notifications = parse_bc_notifications(
        _post(
            _entry(_customer(C1)),
            _entry(_customer(C1.upper()), "created"),
            _entry(_customer(C2)),
            _entry(f"api/v2.0/companies({COMPANY})/currencies({C1})"),
        )
    )
    plan = plan_bc_notifications(notifications, MAPPINGS, company_id=COMPANY.upper(), batch_size=1)
    assert [(b.request.mapping, b.request.ids) for b in plan.batches] == [
        ("CUSTOMER", (C1,)),
        ("CUSTOMER", (C2,)),
        ("CURRENCY", (C1,)),
    ]
    assert all(b.request.direction is SyncDirection.TO_DATAVERSE for b in plan.batches)
    assert len({b.message_id for b in plan.batches}) == 3


def test_a_resent_post_gets_the_same_message_ids_and_a_later_change_new_ones() -> None:
    first = plan_bc_notifications(parse_bc_notifications(_post(_entry(_customer(C1)))), MAPPINGS, company_id=COMPANY)
    again = plan_bc_notifications(parse_bc_notifications(_post(_entry(_customer(C1)))), MAPPINGS, company_id=COMPANY)
    later = plan_bc_notifications(
        parse_bc_notifications(_post(_entry(_customer(C1), stamp="2026-11-24T10:05:00Z"))), MAPPINGS, company_id=COMPANY
    )
    assert first.batches[0].message_id == again.batches[0].message_id != later.batches[0].message_id


def test_collection_asks_for_the_mappings_incremental_sync_instead_of_records() -> None:
    collection = f"/api/v2.0/companies({COMPANY})/customers?$filter=lastModifiedDateTime%20gt%202026-11-24T10:00:00Z"
    notifications = parse_bc_notifications(_post(_entry(_customer(C1)), _entry(collection, "collection")))
    plan = plan_bc_notifications(notifications, MAPPINGS, company_id=COMPANY)
    assert plan.full_syncs == ("CUSTOMER",) and plan.batches == ()


def test_deletes_other_companies_and_unmapped_sets_are_ignored_with_a_reason() -> None:
    notifications = parse_bc_notifications(
        _post(
            _entry(_customer(C1), "deleted"),
            _entry(_customer(C1, OTHER_COMPANY)),
            _entry(f"api/v2.0/companies({COMPANY})/vendors({C1})"),
            _entry("garbage"),
            _entry(_customer(C2), "renamed"),
        )
    )
    plan = plan_bc_notifications(notifications, MAPPINGS, company_id=COMPANY)
    assert plan.batches == () and plan.full_syncs == ()
    assert [i.reason for i in plan.ignored] == [
        "deletes are not propagated automatically",
        "another company",
        "no mapping syncs this entity set toward Dataverse",
        "not an API v2.0 company resource",
        "unknown change type 'renamed'",
    ]


# -- Dataverse events -------------------------------------------------------------------------------
def _context(**changes: Any) -> bytes:
    context: dict[str, Any] = {
        "MessageName": "Update",
        "PrimaryEntityName": "account",
        "PrimaryEntityId": C1,
        "InitiatingUserId": SELLER,
        "UserId": SELLER,
        "CorrelationId": "c-1",
        "InputParameters": [],
    }
    context.update(changes)
    return json.dumps({k: v for k, v in context.items() if v is not ...}).encode()


def test_a_context_is_parsed_to_what_the_connector_acts_on() -> None:
    event = parse_remote_execution_context(_context(PrimaryEntityId=C1.upper()))
    assert (event.message, event.entity, event.record_id, event.initiator) == ("Update", "account", C1, SELLER)


@pytest.mark.parametrize(
    "body",
    [
        b"\x40\x06binary",
        b"[]",
        _context(MessageName=""),
        _context(PrimaryEntityName="Account Name"),
        _context(PrimaryEntityId="not-a-guid"),
        _context(InitiatingUserId="nobody"),
        _context(InitiatingUserId=..., UserId=...),
    ],
)
def test_malformed_contexts_are_permanent_errors(body: bytes) -> None:
    with pytest.raises(PermanentError) as raised:
        parse_remote_execution_context(body)
    assert raised.value.code == "MalformedMessage"


def test_an_event_is_routed_to_the_mappings_of_its_table_toward_bc() -> None:
    event = parse_remote_execution_context(_context())
    plan = plan_dataverse_event(event, MAPPINGS, logical_names=LOGICAL, application_user_id=APP_USER)
    assert [(r.mapping, r.direction, r.ids) for r in plan.requests] == [
        ("CUSTOMER", SyncDirection.FROM_DATAVERSE, (C1,))
    ]


def test_the_connectors_own_writes_deletes_and_unmapped_tables_go_nowhere() -> None:
    def plan_for(**changes: Any) -> str:
        event = parse_remote_execution_context(_context(**changes))
        return plan_dataverse_event(event, MAPPINGS, logical_names=LOGICAL, application_user_id=APP_USER).skipped

    assert plan_for(InitiatingUserId=APP_USER.upper()) == "made by the connector itself"
    assert plan_for(InitiatingUserId=..., UserId=APP_USER) == "made by the connector itself"
    assert plan_for(MessageName="Delete") == "Delete is not synchronized automatically"
    assert plan_for(PrimaryEntityName="transactioncurrency") == "no mapping syncs transactioncurrency toward BC"


def test_option_mappings_and_mappings_toward_sales_only_are_not_pushed_from_dataverse() -> None:
    assert [m.name for m in dataverse_push_mappings(MAPPINGS)] == ["CUSTOMER", "CONTACT", "SALESPEOPLE"]


# -- the service endpoint ---------------------------------------------------------------------------
def test_an_azure_connection_string_becomes_a_sas_key_endpoint() -> None:
    connection = (
        "Endpoint=sb://sb-connector.servicebus.windows.net/;SharedAccessKeyName=dataverse-send;"
        "SharedAccessKey=k3y=;EntityPath=dataverse-events"
    )
    endpoint = service_endpoint_for("ep", connection, "dataverse-events")
    assert (endpoint.auth_type, endpoint.namespace_address, endpoint.path) == (
        2,
        "sb://sb-connector.servicebus.windows.net/",
        "dataverse-events",
    )
    assert (endpoint.sas_key_name, endpoint.sas_key, endpoint.contract, endpoint.message_format) == (
        "dataverse-send",
        "k3y=",
        2,
        2,
    )
    assert "k3y" not in repr(endpoint)


def test_a_development_emulator_connection_string_is_passed_whole() -> None:
    connection = "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=R;SharedAccessKey=K;UseDevelopmentEmulator=true;"
    endpoint = service_endpoint_for("ep", connection, "dataverse-events")
    assert isinstance(endpoint, ServiceEndpoint) and endpoint.auth_type == 7 and endpoint.auth_value == connection


@pytest.mark.parametrize(
    "connection",
    [
        "Endpoint=sb://x/;SharedAccessKeyName=R",
        "Endpoint=sb://x/;SharedAccessKeyName=R;SharedAccessKey=K;EntityPath=quotes",
    ],
)
def test_an_unusable_connection_string_is_a_configuration_error(connection: str) -> None:
    with pytest.raises(ConfigurationError):
        service_endpoint_for("ep", connection, "dataverse-events")


# -- the push settings ------------------------------------------------------------------------------
_BASE_SETTINGS = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
    "DATAVERSE_AUTHORITY": "https://login.microsoftonline.com/t",
    "DATAVERSE_CLIENT_ID": "c",
    "DATAVERSE_CLIENT_SECRET": "s",
    "BC_API_URL": "https://api.businesscentral.dynamics.com/v2.0/t/Production/api/v2.0",
    "BC_COMPANY_ID": COMPANY,
    "BC_AUTHORITY": "https://login.microsoftonline.com/t",
    "BC_CLIENT_ID": "c",
    "BC_CLIENT_SECRET": "s",
    "StateTablesConnection": "UseDevelopmentStorage=true",
    "ServiceBusConnection": "Endpoint=sb://localhost;SharedAccessKeyName=k;SharedAccessKey=v",
    "SCHEDULE_MAPPING_SYNC": "0 */5 * * * *",
}


def test_push_settings_are_optional_and_their_secrets_stay_out_of_repr() -> None:
    assert load_settings(_BASE_SETTINGS).push.client_state is None
    settings = load_settings(
        {
            **_BASE_SETTINGS,
            "WEBHOOK_NOTIFICATION_URL": "http://127.0.0.1:7071/api/webhooks/bc",
            "WEBHOOK_CLIENT_STATE": SECRET,
            "DATAVERSE_SERVICEBUS_CONNECTION": "Endpoint=sb://x/;SharedAccessKeyName=R;SharedAccessKey=K3Y",
        }
    )
    assert settings.push.client_state == SECRET and settings.schedule_webhook_renewal == "0 0 */12 * * *"
    assert SECRET not in repr(settings) and "K3Y" not in repr(settings)


def test_bad_push_settings_are_named_without_the_secret() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            {
                **_BASE_SETTINGS,
                "WEBHOOK_NOTIFICATION_URL": "http://connector.example/api/webhooks/bc",
                "WEBHOOK_CLIENT_STATE": "short-secret",
                "DATAVERSE_SERVICEBUS_CONNECTION": "sb://nothing",
                "SCHEDULE_WEBHOOK_RENEWAL": "hourly",
            }
        )
    message = raised.value.message
    for name in (
        "WEBHOOK_NOTIFICATION_URL",
        "WEBHOOK_CLIENT_STATE",
        "DATAVERSE_SERVICEBUS_CONNECTION",
        "SCHEDULE_WEBHOOK",
    ):
        assert name in message
    assert "short-secret" not in message


def test_an_unresolved_key_vault_reference_leaves_push_off() -> None:
    reference = "@Microsoft.KeyVault(VaultName=kv;SecretName=webhook-client-state)"
    assert load_settings({**_BASE_SETTINGS, "WEBHOOK_CLIENT_STATE": reference}).push.client_state is None


# -- registration, over in-memory fakes --------------------------------------------------------------
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
URL = "https://connector.example/api/webhooks/bc"


@dataclass(frozen=True)
class _Sub:
    subscription_id: str
    notification_url: str
    resource: str
    expiration: datetime | None
    etag: str
    client_state: str


class _FakeBc:
    def __init__(self, *subscriptions: _Sub) -> None:
        self.live = {s.subscription_id: s for s in subscriptions}
        self.calls: list[str] = []

    def list_subscriptions(self) -> list[_Sub]:
        return list(self.live.values())

    def create_subscription(self, notification_url: str, resource: str, client_state: str) -> _Sub:
        created = _Sub(uuid.uuid4().hex, notification_url, resource, NOW + timedelta(days=3), "e1", client_state)
        self.live[created.subscription_id] = created
        self.calls.append(f"create {resource.rsplit('/', 1)[1]}")
        return created

    def renew_subscription(self, subscription_id: str, etag: str) -> _Sub:
        renewed = replace(self.live[subscription_id], expiration=NOW + timedelta(days=3))
        self.live[subscription_id] = renewed
        self.calls.append(f"renew {subscription_id}")
        return renewed

    def delete_subscription(self, subscription_id: str, etag: str | None = None) -> None:
        self.live.pop(subscription_id, None)
        self.calls.append(f"delete {subscription_id}")


def _sub(name: str, entity_set: str, *, days: float = 3, state: str = SECRET, url: str = URL) -> _Sub:
    resource = f"/api/v2.0/companies({COMPANY})/{entity_set}"
    return _Sub(name, url, resource, NOW + timedelta(days=days), "e0", state)


def _ensure(bc: _FakeBc) -> list[tuple[str, str]]:
    items = ensure_bc_subscriptions(
        subscriptions=bc,
        mappings=MAPPINGS,
        company_id=COMPANY,
        notification_url=URL,
        client_state=SECRET,
        clock=type("Clock", (), {"now": staticmethod(lambda: NOW)})(),
    )
    return sorted((i.name, i.action) for i in items)


def test_subscriptions_are_kept_renewed_replaced_and_created_so_one_per_set_remains() -> None:
    bc = _FakeBc(
        _sub("fresh", "customers"),
        _sub("twin", "customers"),
        _sub("old-secret", "currencies", state="an-older-secret-value"),
        _sub("expiring", "paymentTerms", days=1),
        _sub("unwanted", "vendors"),
        _sub("someone-elses", "vendors", url="https://other.example/hook"),
    )
    assert _ensure(bc) == [
        ("currencies", "created"),
        ("currencies", "deleted"),
        ("customers", "deleted"),
        ("customers", "kept"),
        ("paymentTerms", "renewed"),
        ("vendors", "deleted"),
    ]
    assert {s.subscription_id for s in bc.live.values()} >= {"fresh", "expiring", "someone-elses"}
    assert not {"twin", "old-secret", "unwanted"} & set(bc.live)
    bc.calls.clear()
    assert {action for _, action in _ensure(bc)} == {"kept"} and bc.calls == []


class _FakeRegistry:
    def __init__(self) -> None:
        self.endpoints: dict[str, str] = {}
        self.steps: dict[str, tuple[str, ProcessingStep, str]] = {}
        self.writes: list[str] = []

    def logical_name(self, entity_set: str) -> str:
        return LOGICAL[entity_set]

    def find_service_endpoint(self, name: str) -> str | None:
        return self.endpoints.get(name)

    def create_service_endpoint(self, endpoint: ServiceEndpoint) -> str:
        self.endpoints[endpoint.name] = "ep-1"
        self.writes.append("create endpoint")
        return "ep-1"

    def update_service_endpoint(self, endpoint_id: str, endpoint: ServiceEndpoint) -> None:
        self.writes.append("update endpoint")

    def find_step(self, name: str) -> Any:
        if name not in self.steps:
            return None
        step_id, step, endpoint_id = self.steps[name]

        class Found:
            enabled = True

            def __init__(self) -> None:
                self.step_id = step_id

            def differs_from(self, wanted: ProcessingStep, wanted_endpoint: str) -> bool:
                return wanted != step or wanted_endpoint != endpoint_id

        return Found()

    def create_step(self, step: ProcessingStep, endpoint_id: str) -> str:
        if step.entity == "systemuser":
            raise PermanentError("no filter", code="NoMessageFilter")
        self.steps[step.name] = (f"st-{len(self.steps)}", step, endpoint_id)
        self.writes.append(f"create {step.name}")
        return self.steps[step.name][0]

    def update_step(self, step_id: str, step: ProcessingStep, endpoint_id: str) -> None:
        self.writes.append(f"update {step.name}")


def test_dataverse_registration_creates_each_step_once_and_reports_what_it_could_not() -> None:
    registry = _FakeRegistry()
    connection = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=R;SharedAccessKey=K"

    def run() -> list[tuple[str, str]]:
        items = ensure_dataverse_push(
            registry=registry, mappings=MAPPINGS, connection_string=connection, queue="dataverse-events"
        )
        return [(i.name, i.action) for i in items]

    first = run()
    assert ("BC connector: dataverse-events", "created") in first
    assert ("BC connector: Update of account to dataverse-events", "created") in first
    assert ("BC connector: Create of systemuser to dataverse-events", "failed") in first
    update = registry.steps["BC connector: Update of account to dataverse-events"][1]
    assert update.filtering_attributes == ("name",) and update.mode == 1 and update.stage == 40
    registry.writes.clear()
    second = run()
    assert {a for n, a in second if n.startswith("BC connector: Update of account")} == {"kept"}
    assert registry.writes == ["update endpoint"]  # the key cannot be read back, so it is rewritten
