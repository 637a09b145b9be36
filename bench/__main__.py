"""``make bench``: run every benchmark and rewrite ``docs/benchmarks.md``.

Each benchmark module exposes ``section() -> str``: it runs its benchmark and returns its part of
the report (a ``## …`` heading and what it measured). ``BENCH_ONLY=name,name`` runs a subset and
leaves the other sections of the existing report as they are.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import coupling_lookup, full_sync, incremental
from bench import orders as sales_orders
from bench import statistics as account_statistics

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

# Report order. A new benchmark adds one line here and nothing else in this file.
SECTIONS: dict[str, Callable[[], str]] = {
    "coupling_lookup": coupling_lookup.section,
    "full_sync": full_sync.section,
    "incremental": incremental.section,
    "statistics": account_statistics.section,
    "orders": sales_orders.section,
}

_MARK = "<!-- bench:{} -->"


def _previous_sections() -> dict[str, str]:
    """The sections of the report on disk, by benchmark name (kept when BENCH_ONLY skips them)."""
    if not DOC.exists():
        return {}
    text = DOC.read_text()
    found: dict[str, str] = {}
    for name in SECTIONS:
        match = re.search(re.escape(_MARK.format(name)) + r"\n(.*?)(?=\n<!-- bench:|\Z)", text, re.S)
        if match:
            found[name] = match.group(1).rstrip() + "\n"
    return found


def main() -> int:
    """Run the benchmarks and write the report."""
    only = {n.strip() for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip()}
    unknown = only - SECTIONS.keys()
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; known: {sorted(SECTIONS)}", file=sys.stderr)
        return 2
    previous = _previous_sections()
    parts: list[str] = []
    for name, run_section in SECTIONS.items():
        if only and name not in only:
            parts.append(previous.get(name, f"## {name}\n\nNot run yet.\n"))
            continue
        print(f"benchmark {name}…", flush=True)
        parts.append(run_section().rstrip() + "\n")
    body = "\n".join(f"{_MARK.format(name)}\n{part}" for name, part in zip(SECTIONS, parts, strict=True))
    report = f"""# Benchmarks

Produced by `make bench` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()},
{platform.machine()}, on the local stack; `BENCH_ONLY=name,…` reruns a subset). Requests are counted
by the emulators or at the HTTP client as each section says. Timings are from a shared 2-core machine
and are indicative; request counts are exact and are what the design is judged on.

{body}"""
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
