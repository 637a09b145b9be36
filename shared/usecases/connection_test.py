"""The connection test: both APIs, step by step, each failure named with its fix.

Dataverse: a token and an application user (``WhoAmI``), then every table privilege the mappings
and document flows need. BC: a token the API accepts (the app registered and enabled in BC), the
configured company among the companies the app sees, then a one-record read of every API page
the connector uses (a permission set missing). A failed step ends that system's checks, since the
later ones could only fail for the same reason. Writes are not tried: in BC a missing write
permission shows at the first write, in the job's error.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from shared.domain.connection import CheckResult, ConnectionReport, needed_bc_pages, needed_privileges
from shared.domain.mapping import TableMapping
from shared.errors import SyncError
from shared.ports import BusinessCentralChecks, DataverseChecks

__all__ = ["run_connection_test"]

_DV = "dataverse"
_BC = "businessCentral"
_NOT_MEMBER = "0x80072560"  # "The user is not a member of the organization."


def _failed(system: str, name: str, error: SyncError, fix: str) -> CheckResult:
    return CheckResult(system, name, False, f"{error.code}: {error.message}", fix)


def _dataverse(checks: DataverseChecks, mappings: Sequence[TableMapping], client_id: str) -> list[CheckResult]:
    try:
        user_id = checks.who_am_i()
    except SyncError as error:
        if error.code == "TokenRequestFailed":
            return [
                _failed(_DV, "token", error, "Correct DATAVERSE_CLIENT_ID / the secret or certificate / authority.")
            ]
        if error.code == _NOT_MEMBER:
            return [
                CheckResult(_DV, "token", True),
                _failed(
                    _DV,
                    "applicationUser",
                    error,
                    f"Create an application user for the app {client_id} in the Power Platform admin center "
                    "(Environment → Settings → Users + permissions → Application users) and give it a security role.",
                ),
            ]
        return [_failed(_DV, "applicationUser", error, "Check DATAVERSE_URL and that the environment is running.")]
    results = [CheckResult(_DV, "token", True), CheckResult(_DV, "applicationUser", True, f"user {user_id}")]
    needed = needed_privileges(mappings)
    try:
        missing = checks.missing_privileges(user_id, needed)
    except SyncError as error:
        return [*results, _failed(_DV, "privileges", error, "")]
    if missing:
        return [
            *results,
            CheckResult(
                _DV,
                "privileges",
                False,
                f"the application user lacks {len(missing)} of {len(needed)} privileges: {', '.join(missing)}",
                "Add them to the application user's security role (Organization depth), e.g. by copying the "
                "role from the built-in integration's 'Integration User' role.",
            ),
        ]
    return [*results, CheckResult(_DV, "privileges", True, f"all {len(needed)} table privileges held")]


def _business_central(
    checks: BusinessCentralChecks, mappings: Sequence[TableMapping], company_id: str, client_id: str
) -> list[CheckResult]:
    try:
        companies = checks.companies()
    except SyncError as error:
        if error.code == "TokenRequestFailed":
            return [_failed(_BC, "token", error, "Correct BC_CLIENT_ID / the secret or certificate / BC_TENANT_ID.")]
        return [
            CheckResult(_BC, "token", True),
            _failed(
                _BC,
                "appRegistration",
                error,
                f"In Business Central, open 'Microsoft Entra Applications', add the app {client_id}, set it Enabled, "
                "grant consent and assign permission sets (e.g. D365 BUS FULL ACCESS).",
            ),
        ]
    results = [CheckResult(_BC, "token", True), CheckResult(_BC, "appRegistration", True)]
    name = companies.get(company_id.lower())
    if name is None:
        seen = ", ".join(f"{n} ({i})" for i, n in sorted(companies.items(), key=lambda c: c[1])) or "none"
        return [
            *results,
            CheckResult(
                _BC,
                "company",
                False,
                f"the company {company_id} is not among the companies this app sees: {seen}",
                "Set BC_COMPANY_ID to one of them (GET companies lists their ids).",
            ),
        ]
    results.append(CheckResult(_BC, "company", True, name))
    pages = needed_bc_pages(mappings)
    try:
        refused = checks.unreadable_pages(company_id, pages)
    except SyncError as error:
        return [*results, _failed(_BC, "permissions", error, "")]
    if refused:
        return [
            *results,
            CheckResult(
                _BC,
                "permissions",
                False,
                "; ".join(f"{page}: {message}" for page, message in sorted(refused.items())),
                f"Assign the app {client_id} permission sets that cover these tables on its 'Microsoft Entra "
                "Applications' card.",
            ),
        ]
    return [*results, CheckResult(_BC, "permissions", True, f"all {len(pages)} API pages readable")]


def run_connection_test(
    *,
    dataverse: DataverseChecks,
    business_central: BusinessCentralChecks,
    mappings: Sequence[TableMapping],
    company_id: str,
    dataverse_client_id: str,
    bc_client_id: str,
) -> ConnectionReport:
    """Test both connections at once; the report lists every check that ran."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="connection-test") as pool:
        dv = pool.submit(_dataverse, dataverse, mappings, dataverse_client_id)
        bc = pool.submit(_business_central, business_central, mappings, company_id, bc_client_id)
        return ConnectionReport((*dv.result(), *bc.result()))
