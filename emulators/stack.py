"""The whole local stack in one command: Azurite, the Service Bus, Dataverse and BC emulators,
and the local Functions host running the connector against them.

``python -m emulators.stack run`` (``make run``) starts everything on the demo data set, writes
``.local/stack.json`` saying how to reach each piece, prints a summary and serves until Ctrl-C,
then stops everything it started. ``python -m emulators.stack demo`` (``make demo``) starts a
fresh stack, runs the scripted scenario, prints a report and exits 0 when it succeeded.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from emulators._launch import PROJECT_ROOT, StackProcess, free_port, start_json_line_process
from emulators.azurite import Azurite, start_azurite

DEFAULT_HOST_PORT = 7071


def connector_settings(
    *,
    tables: str,
    servicebus: dict[str, Any],
    dataverse: dict[str, Any],
    business_central: dict[str, Any],
    ca_bundle: str,
    host_port: int = DEFAULT_HOST_PORT,
) -> dict[str, str]:
    """The connector's app settings for a local stack, from each piece's start line.

    ``host_port`` is where the local Functions host will listen: BC's webhooks are sent there.
    """
    dataverse_url = str(dataverse["base_url"]).removesuffix("/api/data/v9.2")
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "CONNECTOR_AUTH_MODE": "client_secret",
        "DATAVERSE_URL": dataverse_url,
        "DATAVERSE_AUTHORITY": str(dataverse["authority"]),
        "DATAVERSE_CLIENT_ID": str(dataverse["client_id"]),
        "DATAVERSE_CLIENT_SECRET": str(dataverse["client_secret"]),
        "BC_API_URL": str(business_central["base_url"]),
        "BC_COMPANY_ID": str(business_central["company_id"]),
        "BC_SCOPE": str(business_central["scope"]),
        "BC_AUTHORITY": str(business_central["authority"]),
        "BC_CLIENT_ID": str(business_central["client_id"]),
        "BC_CLIENT_SECRET": str(business_central["client_secret"]),
        "CONNECTOR_CA_BUNDLE": ca_bundle,
        "StateTablesConnection": tables,
        "ServiceBusConnection": str(servicebus["connection_string"]),
        # Every minute locally, so a demo shows changes flowing without a long wait.
        "SCHEDULE_MAPPING_SYNC": "0 * * * * *",
        # Push: BC calls the host back on loopback; a fresh secret per stack, so a notification
        # meant for another stack's connector is refused. Dataverse posts to the local broker.
        "WEBHOOK_NOTIFICATION_URL": f"http://127.0.0.1:{host_port}/api/webhooks/bc",
        "WEBHOOK_CLIENT_STATE": secrets.token_urlsafe(32),
        "DATAVERSE_SERVICEBUS_CONNECTION": str(servicebus["connection_string"]),
        "SCHEDULE_WEBHOOK_RENEWAL": "0 0 */12 * * *",
        # Sales orders and quotes: the safety-net polls (automatic processing itself is off by default).
        "SCHEDULE_SALES_ORDER_POLL": "0 */5 * * * *",
        "SCHEDULE_ORDER_FOLLOWUP": "0 */7 * * * *",
        "FULL_SYNC_STEP_SECONDS": "240",
        "SCHEDULE_SALES_QUOTE_POLL": "0 */5 * * * *",
        "SCHEDULE_POSTED_INVOICES": "0 */30 * * * *",
        "SCHEDULE_PAYMENT_STATUS": "0 */30 * * * *",
        "SCHEDULE_ACCOUNT_STATISTICS": "0 */30 * * * *",
    }


@dataclass
class LocalStack:
    """A running local stack; ``stop()`` stops every process it started, in reverse order."""

    workdir: Path
    azurite: Azurite
    servicebus: StackProcess
    dataverse: StackProcess
    business_central: StackProcess
    host: StackProcess
    settings: dict[str, str]
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def info(self) -> dict[str, Any]:
        """What ``.local/stack.json`` holds (SPEC §6)."""
        return {
            "host": {
                "base_url": self.host.start_line["base_url"],
                "function_key": self.host.start_line["function_key"],
            },
            "dataverse": self.dataverse.start_line,
            "business_central": self.business_central.start_line,
            "servicebus": {"connection_string": self.servicebus.start_line["connection_string"]},
            "tables": {"connection_string": self.azurite.connection_string},
        }

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /api/health`` on the connector."""
        response = requests.get(f"{self.host.start_line['base_url']}/health", timeout=60)
        return response.status_code, response.json()

    def stop(self) -> None:
        """Stop everything, last started first."""
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as error:  # keep stopping the rest
                print(f"stopping: {error}", file=sys.stderr)


def _python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start_local_stack(
    *,
    workdir: Path,
    seed: str = "demo",
    host_port: int | None = None,
    echo: bool = False,
    settings_overrides: dict[str, str] | None = None,
) -> LocalStack:
    """Start every piece on 127.0.0.1 and the connector against them.

    ``settings_overrides`` replace app settings of the connector (tests pin schedules with it).

    Raises:
        RuntimeError: a piece failed to start (with what it printed).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        azurite = start_azurite(free_port())
        cleanup.callback(azurite.stop)
        servicebus = start_json_line_process(
            "servicebus", _python_module("emulators.servicebus", "--port", str(free_port())), echo=echo
        )
        cleanup.callback(servicebus.stop)
        dataverse = start_json_line_process(
            "dataverse",
            _python_module("emulators.dataverse", "--port", str(free_port()), "--seed", seed),
            echo=echo,
        )
        cleanup.callback(dataverse.stop)
        business_central = start_json_line_process(
            "business_central",
            _python_module("emulators.business_central", "--port", str(free_port()), "--seed", seed),
            echo=echo,
        )
        cleanup.callback(business_central.stop)

        # One CA bundle the connector trusts: each HTTPS emulator made its own CA at start.
        ca_bundle = workdir / "ca-bundle.pem"
        ca_bundle.write_text(
            "".join(Path(p.start_line["ca_bundle"]).read_text() for p in (dataverse, business_central))
        )
        host_port = host_port or free_port()
        settings = connector_settings(
            tables=azurite.connection_string,
            servicebus=servicebus.start_line,
            dataverse=dataverse.start_line,
            business_central=business_central.start_line,
            ca_bundle=str(ca_bundle),
            host_port=host_port,
        ) | (settings_overrides or {})
        settings_file = workdir / "local.settings.json"
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}, indent=2))
        host = start_json_line_process(
            "functions_host",
            _python_module(
                "emulators.functions_host",
                "--port",
                str(host_port),
                "--app-dir",
                str(PROJECT_ROOT),
                "--settings",
                str(settings_file),
            ),
            echo=echo,
        )
        cleanup.callback(host.stop)
        stack = LocalStack(workdir, azurite, servicebus, dataverse, business_central, host, settings)
        stack._stoppers = [azurite.stop, servicebus.stop, dataverse.stop, business_central.stop, host.stop]
        cleanup.pop_all()
    return stack


def _print_health(stack: LocalStack) -> bool:
    status, body = stack.health()
    print(f"\nGET /api/health → {status} {body.get('status', '')}")
    for name, dependency in body.get("dependencies", {}).items():
        mark = "ok " if dependency.get("ok") else "FAIL"
        reason = "" if dependency.get("ok") else f"  {dependency['error']['code']}: {dependency['error']['message']}"
        print(f"  [{mark}] {name:<16} {dependency.get('latencyMs', '?'):>5} ms{reason}")
    if "error" in body:
        print(f"  {body['error']['code']}: {body['error']['message']}")
    return status == 200


def _run(args: argparse.Namespace) -> int:
    from emulators.scenario import initial_sync

    local = Path(args.workdir)
    stack = start_local_stack(workdir=local, seed=args.seed, host_port=args.port, echo=args.verbose)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        (local / "stack.json").write_text(json.dumps(stack.info, indent=2))
        print(f"Local stack up (details in {local / 'stack.json'}):")
        print(f"  connector   {stack.host.start_line['base_url']}  (function key in stack.json)")
        print(f"  dataverse   {stack.dataverse.start_line['base_url']}")
        print(f"  bc          {stack.business_central.start_line['base_url']}")
        print(f"  tables      {stack.azurite.connection_string.split('TableEndpoint=')[1].rstrip(';')}")
        print(f"  servicebus  127.0.0.1:{stack.servicebus.start_line.get('port', '?')}")
        if _print_health(stack) and not args.no_sync:
            _, summary = initial_sync(stack)
            print("\n".join(summary))
            print("\nFrom now on the timers run on their schedules (mappings every minute here) and pushed changes")
            print("flow within seconds; GET /api/jobs and GET /api/errors show what each run did.")
        print("\nServing until Ctrl-C.")
        stopped.wait()
    finally:
        print("Stopping the local stack…")
        stack.stop()
        (local / "stack.json").unlink(missing_ok=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from emulators.scenario import lead_to_cash

    with tempfile.TemporaryDirectory(prefix="connector-demo-") as tmp:
        # Orders flow on their own (Dataverse push to the sales-orders queue), as an administrator
        # who switched "Automatically Create Sales Orders" on would see it.
        stack = start_local_stack(
            workdir=Path(tmp), seed="demo", echo=args.verbose, settings_overrides={"AUTO_CREATE_SALES_ORDERS": "true"}
        )
        try:
            passed = _print_health(stack)
            if passed:
                passed, report = lead_to_cash(stack)
                print("\n".join(report))
        finally:
            stack.stop()
    print("\nDemo report: lead to cash went through end to end." if passed else "\nDemo report: FAILED (see above).")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    """Command line: ``run`` or ``demo``."""
    parser = argparse.ArgumentParser(prog="python -m emulators.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="echo every process's output")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start everything and serve until Ctrl-C")
    run.add_argument("--port", type=int, default=DEFAULT_HOST_PORT, help="the connector's HTTP port (7071)")
    run.add_argument("--seed", default="demo", help="emulator data set: demo or large:N")
    run.add_argument("--workdir", default=str(PROJECT_ROOT / ".local"), help="where stack.json and settings go")
    run.add_argument("--no-sync", action="store_true", help="skip the initial full synchronization and push setup")
    commands.add_parser("demo", help="run the scripted scenario on a fresh stack and report")
    args = parser.parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _demo(args)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
