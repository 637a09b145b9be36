"""Starting and stopping the local Functions host: loud failures for what it cannot run, clean exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from emulators._launch import PROJECT_ROOT, free_port
from tests.plugins.functions_host import FunctionsHostFactory

from ._support import QUEUES_DISABLED, copy_sample_app

pytestmark = pytest.mark.stack


def _start_expecting_failure(app_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "emulators.functions_host", "--port", str(free_port()), "--app-dir", str(app_dir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""  # no start line
    return result.stderr


def _write_app(app_dir: Path, body: str) -> Path:
    app_dir.mkdir()
    source = "import azure.functions as func\n\napp = func.FunctionApp()\n\n" + textwrap.dedent(body)
    (app_dir / "function_app.py").write_text(source, encoding="utf-8")
    return app_dir


def test_unsupported_trigger_fails_loudly_naming_function_and_binding(tmp_path: Path) -> None:
    app_dir = _write_app(
        tmp_path / "app",
        """
        @app.queue_trigger(arg_name="item", queue_name="q", connection="AzureWebJobsStorage")
        def storage_queue_handler(item: func.QueueMessage) -> None:
            pass
        """,
    )
    stderr = _start_expecting_failure(app_dir)
    assert "function 'storage_queue_handler'" in stderr
    assert "type 'queueTrigger' is not supported" in stderr


def test_output_binding_fails_loudly(tmp_path: Path) -> None:
    app_dir = _write_app(
        tmp_path / "app",
        """
        @app.route(route="x")
        @app.service_bus_queue_output(arg_name="out", queue_name="q", connection="SB")
        def http_with_output(req: func.HttpRequest, out: func.Out[str]) -> str:
            return "x"
        """,
    )
    stderr = _start_expecting_failure(app_dir)
    assert "function 'http_with_output': binding 'out' of type 'serviceBus' is not supported" in stderr


def test_missing_setting_reference_fails_loudly(tmp_path: Path) -> None:
    app_dir = _write_app(
        tmp_path / "app",
        """
        @app.timer_trigger(arg_name="timer", schedule="%NOT_DEFINED_ANYWHERE%")
        def timer_x(timer: func.TimerRequest) -> None:
            pass
        """,
    )
    stderr = _start_expecting_failure(app_dir)
    assert "function 'timer_x' schedule: app setting 'NOT_DEFINED_ANYWHERE'" in stderr


def test_random_key_settings_file_and_clean_sigterm_exit(
    tmp_path: Path, functions_host_factory: FunctionsHostFactory
) -> None:
    app_dir = copy_sample_app(tmp_path / "app", {"SAMPLE_GREETING": "unused", "TICK_SCHEDULE": "0 0 0 1 1 *"})
    settings_file = tmp_path / "other.settings.json"
    settings_file.write_text(
        '{"Values": {"SAMPLE_GREETING": "from-other-file", "TICK_SCHEDULE": "0 0 0 1 1 *"}}', encoding="utf-8"
    )
    host = functions_host_factory(
        app_dir,
        {
            **QUEUES_DISABLED,
            "SAMPLE_RECORD_FILE": str(tmp_path / "rec.jsonl"),
            "AzureFunctionsJobHost__extensions__http__routePrefix": "v1",
        },
        extra_args=["--settings", str(settings_file)],
    )
    assert host.base_url.endswith("/v1")
    assert len(host.function_key) >= 32
    guid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    echoed = requests.get(host.url(f"echo/{guid}"), headers=host.key_headers, timeout=10).json()
    assert echoed["setting"] == "from-other-file"
    host.stop()
    assert host.process.process.returncode == 0
    assert "Local Functions host stopped" in host.log()
