"""Starting Azurite's Table service (from ``node_modules``) for the connector's state tables."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emulators._launch import PROJECT_ROOT, wait_for_port

# Azurite's well-known development account; public by design, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int) -> str:
    """The Table Storage connection string for an Azurite table service on ``port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )


@dataclass
class Azurite:
    """A running Azurite table service."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def connection_string(self) -> str:
        """How the connector reaches it."""
        return connection_string(self.port)

    def stop(self) -> None:
        """Stop Azurite and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def azurite_executable() -> Path:
    """The pinned ``azurite-table`` from ``npm ci``.

    Raises:
        FileNotFoundError: ``npm ci`` has not been run (``make`` targets run it).
    """
    path = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `npm ci` (the Makefile targets do it for you)")
    return path


def start_azurite(port: int, *, workspace: Path | None = None, timeout: float = 60.0) -> Azurite:
    """Start Azurite's table service on 127.0.0.1:``port``, in memory unless ``workspace`` is given.

    Raises:
        RuntimeError: Azurite exited or did not listen within ``timeout`` seconds.
    """
    node = shutil.which("node")
    if node is None:
        raise FileNotFoundError("Node.js is required for Azurite and was not found on PATH")
    argv = [
        str(azurite_executable()),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(port),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
    ]
    if workspace is None:
        argv.append("--inMemoryPersistence")
    else:
        workspace.mkdir(parents=True, exist_ok=True)
        argv += ["--location", str(workspace)]
    # stderr goes to a file, not a pipe: nobody reads a pipe while Azurite runs, and a full one
    # would stall it.
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603
        try:
            wait_for_port(port, timeout=timeout)
        except TimeoutError as error:
            process.kill()
            process.wait(timeout=10)
            err.seek(0)
            said = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"Azurite did not start on port {port}: {said}") from error
    return Azurite(process=process, port=port)
