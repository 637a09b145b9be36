"""The Bicep in ``infra/`` parses, passes checkov, and its parameters file fits ``main.bicep``.

No Bicep CLI here: pycep-parser stands in for ``bicep build`` as the syntax check, and checkov's
Bicep framework for the security review. Every checkov suppression must say why, where it stands,
and must still suppress something (a stale one hides nothing but misleads the reader).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.conftest import INFRA, bicep_files

pytestmark = pytest.mark.unit

_OUTPUT_REFERENCE = re.compile(r"\b(\w+)\.outputs\.(\w+)")
_SKIP_COMMENT = re.compile(r"#checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


def test_every_bicep_file_parses(parsed_bicep: dict[str, dict[str, Any]]) -> None:
    failures = {path: result["error"] for path, result in parsed_bicep.items() if "error" in result}
    assert not failures, "Bicep files that do not parse:\n" + "\n".join(f"{p}: {e}" for p, e in failures.items())
    assert {"main.bicep"} <= parsed_bicep.keys()


def test_every_module_main_bicep_uses_exists_and_every_module_is_used(bicep: dict[str, dict[str, Any]]) -> None:
    referenced = {module["detail"]["path"] for module in bicep["main.bicep"].get("modules", {}).values()}
    on_disk = {path for path in bicep if path != "main.bicep"}
    assert referenced == on_disk, f"modules referenced {sorted(referenced)} vs files {sorted(on_disk)}"


def test_main_bicep_passes_each_module_exactly_its_parameters(bicep: dict[str, dict[str, Any]]) -> None:
    # what `bicep build` would reject: a required module parameter not passed, or an unknown one passed
    for name, module in bicep["main.bicep"].get("modules", {}).items():
        declared: dict[str, dict[str, Any]] = bicep[module["detail"]["path"]].get("parameters", {})
        passed = set(module["config"].get("params", {}))
        required = {p for p, spec in declared.items() if spec.get("default") is None}
        assert passed <= declared.keys(), f"module {name}: unknown parameters {sorted(passed - declared.keys())}"
        assert required <= passed, f"module {name}: required parameters not passed {sorted(required - passed)}"


def test_main_bicep_reads_only_outputs_its_modules_declare(bicep: dict[str, dict[str, Any]]) -> None:
    modules = bicep["main.bicep"].get("modules", {})
    text = (INFRA / "main.bicep").read_text(encoding="utf-8")
    for module_name, output in set(_OUTPUT_REFERENCE.findall(text)):
        assert module_name in modules, f"main.bicep reads {module_name}.outputs.{output} of no module"
        declared = bicep[modules[module_name]["detail"]["path"]].get("outputs", {})
        assert output in declared, f"module {module_name} has no output {output}"


def test_checkov_reports_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = checkov_report["results"].get("failed_checks", [])
    details = "\n".join(
        f"{c['check_id']} {c['check_name']} — {c['resource']} ({c['file_path']}:{c['file_line_range']})" for c in failed
    )
    assert summary["failed"] == 0, f"checkov failed checks:\n{details}"
    assert summary["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    assert summary["resource_count"] > 0 and summary["passed"] > 0, summary


def test_every_suppression_is_justified_and_still_needed(checkov_report: dict[str, Any]) -> None:
    written: set[tuple[str, str]] = set()
    for path in bicep_files():
        relative = "/" + path.relative_to(INFRA).as_posix()
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = _SKIP_COMMENT.search(line)
            if match is None:
                continue
            reason = (match.group(2) or "").strip()
            assert len(reason) >= 20, f"{relative}:{line_number}: suppression of {match.group(1)} without a reason"
            written.add((relative, match.group(1)))
    skipped = checkov_report["results"].get("skipped_checks", [])
    used = {(c["file_path"], c["check_id"]) for c in skipped}
    for check in skipped:
        assert (check["check_result"].get("suppress_comment") or "").strip(), f"unjustified skip: {check}"
    assert written - used == set(), f"suppressions that no longer suppress anything: {sorted(written - used)}"


def test_parameters_file_matches_main_bicep(bicep: dict[str, dict[str, Any]]) -> None:
    declared: dict[str, dict[str, Any]] = bicep["main.bicep"]["parameters"]
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    given = set(document["parameters"])
    assert given <= declared.keys(), f"parameters main.bicep does not declare: {sorted(given - declared.keys())}"
    required = {name for name, param in declared.items() if param.get("default") is None}
    assert required <= given, f"required parameters missing from main.parameters.json: {sorted(required - given)}"
    secure = {
        name for name, param in declared.items() if any(d.get("type") == "secure" for d in param.get("decorators", []))
    }
    assert not secure & given, f"secrets do not belong in a committed parameters file: {sorted(secure & given)}"
