"""``python -m emulators.functions_host --port 7071 [--app-dir DIR] [--settings FILE]``.

Prints one JSON line to stdout when ready, then serves until SIGTERM/SIGINT. Everything else,
including whatever the app prints, goes to stderr so the start line stays alone on stdout.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ._host import FunctionsHost, HostOptions
from ._invoke import HOST_LOG, configure_logging
from ._settings import HostConfigError


def _parse(argv: list[str] | None) -> HostOptions:
    parser = argparse.ArgumentParser(prog="python -m emulators.functions_host", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="default: Host.LocalHttpPort, else 7071")
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="folder with function_app.py")
    parser.add_argument("--settings", type=Path, default=None, help="default: <app-dir>/local.settings.json")
    parser.add_argument("--function-key", default=None, help="default: $FUNCTIONS_HOST_FUNCTION_KEY, else random")
    args = parser.parse_args(argv)
    return HostOptions(
        app_dir=args.app_dir.resolve(),
        settings_file=args.settings.resolve() if args.settings else None,
        port=args.port,
        function_key=args.function_key,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the host; return the process exit code."""
    options = _parse(argv)
    start_line_out = sys.stdout
    sys.stdout = sys.stderr  # user print() must not land next to the start line
    configure_logging(sys.stderr)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host = FunctionsHost(options)
    try:
        host.load()
        start_line = host.start()
    except HostConfigError as exc:
        HOST_LOG.error("The local Functions host cannot start: %s", exc)
        host.stop()
        return 1
    except OSError as exc:
        HOST_LOG.error("The local Functions host cannot start: %s", exc)
        host.stop()
        return 1
    except Exception as exc:
        if type(exc).__name__.endswith("ConfigurationError"):
            # The app refused its settings on purpose and said why: the message is the whole
            # story, a traceback would only bury it.
            HOST_LOG.error("The local Functions host cannot start: the app's settings are wrong: %s", exc)
            host.stop()
            return 1
        # Typically function_app.py itself failing to import; the traceback is the useful part.
        HOST_LOG.exception("The local Functions host cannot start: loading the app failed")
        host.stop()
        return 1
    start_line_out.write(json.dumps(start_line) + "\n")
    start_line_out.flush()
    HOST_LOG.info("Host started; %d function(s) loaded", len(start_line["functions"]))
    try:
        stop.wait()
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
