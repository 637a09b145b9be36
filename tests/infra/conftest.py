"""Shared fixtures of the infrastructure checks: the ``.venv-infra`` tools and the parsed Bicep.

checkov and pycep-parser live in their own venv (``requirements-infra.txt``) because checkov's
dependencies clash with the runtime pins. ``make test`` creates it; without it these tests fail,
saying how to create it, rather than skip.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
INFRA_VENV = REPO / ".venv-infra"
_HOW_TO_INSTALL = (
    f"{INFRA_VENV} is missing or incomplete: run `make install` (or "
    f"`python3 -m venv .venv-infra && .venv-infra/bin/pip install -r requirements-infra.txt`)"
)


def infra_tool(name: str) -> Path:
    """A program of ``.venv-infra/bin``; fails the test (never skips) when it is not installed."""
    tool = INFRA_VENV / "bin" / name
    if not tool.is_file():
        pytest.fail(f"{tool.relative_to(REPO)} not found. {_HOW_TO_INSTALL}", pytrace=False)
    return tool


def bicep_files() -> list[Path]:
    """Every ``.bicep`` file under ``infra/``."""
    return sorted(INFRA.rglob("*.bicep"))


@pytest.fixture(scope="session")
def parsed_bicep() -> dict[str, dict[str, Any]]:
    """``infra``-relative path → ``{"ok": pycep JSON}`` or ``{"error": message}``, for every file."""
    files = bicep_files()
    assert files, f"no .bicep file under {INFRA}"
    completed = subprocess.run(
        [str(infra_tool("python")), str(Path(__file__).with_name("bicep_to_json.py")), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    if completed.returncode != 0:
        pytest.fail(f"the Bicep parser did not run: {completed.stderr.strip()}", pytrace=False)
    results: dict[str, dict[str, Any]] = json.loads(completed.stdout)
    return {Path(path).relative_to(INFRA).as_posix(): result for path, result in results.items()}


@pytest.fixture(scope="session")
def bicep(parsed_bicep: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``infra``-relative path → pycep JSON, for the files that parse (the parse test names the others)."""
    return {path: result["ok"] for path, result in parsed_bicep.items() if "ok" in result}


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    """checkov's JSON report over ``infra/`` (Bicep framework), offline."""
    completed = subprocess.run(
        [
            str(infra_tool("checkov")),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",  # no guideline download: CI has no route to it
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"checkov printed no JSON report (exit {completed.returncode}): {completed.stderr[-2000:]}")
    # one framework: one report object (checkov prints a list when several frameworks ran)
    if isinstance(report, list):
        assert len(report) == 1, [r.get("check_type") for r in report]
        report = report[0]
    assert isinstance(report, dict)
    return report
