"""``python -m emulators.dataverse --port N [--seed demo|large:N]``: serve until SIGTERM.

Prints one JSON line: ``base_url`` (the API root), ``token_url``, ``client_id``,
``client_secret``, ``scope`` (org URL + ``/.default``), ``ca_bundle``, ``authority``,
``org_url`` and ``admin`` (the back door's URL, key and header).
"""

from __future__ import annotations

import argparse

from emulators._http import EmulatorServer, print_start_line
from emulators.dataverse._push import Publisher
from emulators.dataverse._service import DataverseApi


def _seed_spec(text: str) -> dict[str, object]:
    if text == "demo":
        return {"name": "demo"}
    if text.startswith("large:") and text[6:].isdigit():
        return {"name": "large", "accounts": int(text[6:])}
    if text.startswith("bench:") and text[6:].isdigit():
        return {"name": "bench"}  # the benchmark's Sales side: empty but for its base currency
    raise argparse.ArgumentTypeError("use demo, large:N or bench:N")


def main(argv: list[str] | None = None) -> None:
    """Start the emulator and serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m emulators.dataverse")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=_seed_spec, default=None, help="demo | large:N | bench:N")
    parser.add_argument("--token-lifetime", type=float, default=3599.0)
    args = parser.parse_args(argv)
    # The org URL is the origin itself: tokens for "<origin>/.default" are what the API accepts.
    server = EmulatorServer(port=args.port, resources=[], token_lifetime=args.token_lifetime, name="dataverse")
    org_url = server.origin
    server.issuer.resources.append(org_url)
    api = DataverseApi(server, org_url=org_url)
    api.publisher = Publisher(api)
    server.mount(api)
    if args.seed is not None:
        api.seed(args.seed)
    info = server.start_info()
    print_start_line({
        **info,
        "base_url": f"{org_url}/api/data/v9.2",
        "org_url": org_url,
        "scope": f"{org_url}/.default",
        "application_user_id": api.store.get("systemuser", _app_user_id())["systemuserid"],  # type: ignore[index]
    })  # fmt: skip
    server.serve_forever()


def _app_user_id() -> str:
    from emulators.dataverse._seed import seed_id

    return seed_id("systemuser", "connector")


if __name__ == "__main__":
    main()
