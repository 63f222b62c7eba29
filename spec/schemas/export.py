#!/usr/bin/env python3
"""Export the JSON Schema of every built-in message body into spec/schemas/ (spec/messages.md).

Run from the repository root with the project's Python::

    python spec/schemas/export.py          # rewrite the files that changed
    python spec/schemas/export.py --check  # write nothing; exit 1 if any file is out of date

The schemas come from the reference models (``ncb_relay.messages.schemas``);
``tests/test_message_schemas.py`` fails when a file here differs from them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ncb_relay.messages.schemas import json_schemas

HERE = Path(__file__).resolve().parent
COMMAND = "python spec/schemas/export.py"


def render(schema: Any) -> str:
    """The exact text of a schema file."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """Every schema file's name and exact text."""
    return {name: render(schema) for name, schema in json_schemas().items()}


def out_of_date(files: dict[str, str], directory: Path = HERE) -> list[str]:
    """The files that differ from ``files`` or are missing, and the ``*.json`` files not in it."""
    stale = [
        name
        for name, text in files.items()
        if not (directory / name).exists() or (directory / name).read_text("utf-8") != text
    ]
    orphans = [path.name for path in directory.glob("*.json") if path.name not in files]
    return sorted(stale + orphans)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    files = rendered()
    problems = out_of_date(files)
    if args.check:
        for name in problems:
            print(f"{name}: out of date; run {COMMAND}", file=sys.stderr)
        return 1 if problems else 0
    for name in problems:
        if name in files:
            (HERE / name).write_bytes(files[name].encode("utf-8"))
            print(f"wrote {name}")
        else:
            print(f"{name}: no body type has this schema; remove it", file=sys.stderr)
    return 1 if any(name not in files for name in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
