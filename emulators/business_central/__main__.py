"""Start the BC API v2.0 emulator: ``python -m emulators.business_central --port N [--seed demo]``."""

from __future__ import annotations

import argparse

from emulators._http import EmulatorServer, print_start_line
from emulators.business_central._api import BC_RESOURCE, BcApi, BcSettings
from emulators.business_central._seed import DEMO_COMPANY_ID, seed
from emulators.business_central._store import Store
from emulators.business_central._webhooks import Webhooks


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, seed, print the start line and serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m emulators.business_central")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", default="demo", help="demo, large:<N> or empty")
    parser.add_argument("--environment", default="production")
    parser.add_argument(
        "--page-size",
        type=int,
        default=100,
        help="server page size (BC uses 20,000; small here so paging is exercised)",
    )
    parser.add_argument("--stale-etag-status", type=int, choices=(409, 412), default=409)
    parser.add_argument("--read-only-fields", choices=("reject", "ignore"), default="reject")
    parser.add_argument("--delete-requires-if-match", action="store_true")
    parser.add_argument("--token-lifetime", type=float, default=3599.0)
    parser.add_argument(
        "--webhook-window", type=float, default=30.0, help="seconds changes are coalesced before webhook delivery"
    )
    parser.add_argument(
        "--webhook-handshake-method",
        choices=("POST", "GET"),
        default="POST",
        help="HTTP method of the validationToken handshake (BC's is not documented)",
    )
    args = parser.parse_args(argv)

    server = EmulatorServer(
        port=args.port, resources=[BC_RESOURCE], token_lifetime=args.token_lifetime, name="business_central"
    )
    try:
        store = Store()
        settings = BcSettings(
            environment=args.environment,
            page_size=args.page_size,
            stale_etag_status=args.stale_etag_status,
            read_only_fields=args.read_only_fields,
            delete_requires_if_match=args.delete_requires_if_match,
        )
        api = BcApi(server, store, settings)
        api.webhooks = Webhooks(api, window=args.webhook_window, handshake_method=args.webhook_handshake_method)
        summary = seed(store, args.seed)
        server.mount(api)
        tenant = server.issuer.tenant
        print_start_line(
            {
                **server.start_info(),
                "name": "business_central",
                "base_url": f"{server.origin}/v2.0/{tenant}/{args.environment}/api/v2.0",
                "scope": f"{BC_RESOURCE}/.default",
                "company_id": summary.get("company_id", DEMO_COMPANY_ID),
                "environment": args.environment,
                "seed": args.seed,
            }
        )
    except BaseException:
        server.close()  # the temp dir with the CA goes too
        raise
    server.serve_forever()


if __name__ == "__main__":
    main()
