"""Parse Bicep files with pycep (run by ``.venv-infra/bin/python``, not the main venv).

Prints one JSON object: each path given on the command line → ``{"ok": <pycep's JSON>}`` or
``{"error": "<why it does not parse>"}``. The tests in this folder call it once per session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pycep import BicepParser


def main(paths: list[str]) -> None:
    parser = BicepParser()
    result: dict[str, dict[str, object]] = {}
    for path in paths:
        try:
            result[path] = {"ok": parser.parse(file_path=Path(path))}
        except Exception as error:  # every parse failure is reported, none stops the others
            result[path] = {"error": f"{type(error).__name__}: {error}"}
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
