#!/usr/bin/env python3
"""Generate the published NCBR/1 test vectors, spec/vectors/*.json (see spec/vectors.md).

Run from the repository root with the project's Python::

    python spec/vectors/generate.py          # rewrite the files that changed
    python spec/vectors/generate.py --check  # write nothing; exit 1 if anything is off

The convention: one ``cases_<topic>.py`` module per topic
----------------------------------------------------------
- This script imports every module ``spec/vectors/cases_*.py``, sorted by name,
  and calls its ``build()``::

      def build() -> dict[str, Any]:
          return {"codec.json": {...}}  # {json file name: JSON document}

  A module may produce several files; two modules may not produce the same one.
- Each document is written to ``spec/vectors/<name>`` as
  ``json.dumps(doc, indent=2, ensure_ascii=False) + "\\n"`` in UTF-8; only the
  files whose bytes change are rewritten.
- ``--check`` writes nothing and exits 1, listing every file that would change
  (or is missing).  Both modes also exit 1, listing them, for a
  ``spec/vectors/*.json`` that no module produces and for a module that cannot
  be imported or built (its files are then left as they are; the other modules'
  files are still checked or written).
- ``build()`` must be deterministic (fixed seeds, recorded randomness, a fixed
  "now") and must check every expected result it writes against the library,
  raising if the library disagrees.
- Modules not named ``cases_*`` are shared pieces, imported by plain name:
  ``vectorfile`` (the common file shape, ``document()``), ``principals`` (the
  fixed clock, the test principals and their directory), ``construction``
  (honest and hostile envelopes from the library's pieces) and ``recorder``
  (checking envelope cases against the library and recording them).
- Describe each file in spec/vectors.md, and re-verify it from the JSON alone
  in a test (tests/test_vectors.py does so for codec, envelope, disclosure and
  accumulated).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COMMAND = "python spec/vectors/generate.py"

if str(HERE) not in sys.path:  # the modules here import each other by plain name
    sys.path.insert(0, str(HERE))


class GenerationError(Exception):
    """A ``cases_*`` module could not be imported or built, or two produce the same file."""


def render(document: Any) -> str:
    """The exact text of a vector file."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def case_modules(directory: Path = HERE) -> list[str]:
    """The names of the ``cases_*`` modules in ``directory``, sorted."""
    return sorted(path.stem for path in directory.glob("cases_*.py"))


@dataclass
class Generated:
    files: dict[str, str] = field(default_factory=dict)  # file name -> exact text
    errors: list[str] = field(default_factory=list)


def generate(directory: Path = HERE) -> Generated:
    """Build the files of every ``cases_*`` module in ``directory`` (which is on sys.path).

    A module that fails is recorded as an error, not raised, and the others still run.
    """
    out = Generated()
    owners: dict[str, str] = {}
    for module in case_modules(directory):
        try:
            documents = importlib.import_module(module).build()
            if not isinstance(documents, dict):
                raise TypeError(f"build() returned {type(documents).__name__}, not a dict")
            texts = {name: render(doc) for name, doc in documents.items()}
        except Exception as exc:  # report it and go on with the other modules
            out.errors.append(f"{module}.py: build failed: {type(exc).__name__}: {exc}")
            continue
        for name, text in texts.items():
            if not isinstance(name, str) or Path(name).name != name or not name.endswith(".json"):
                out.errors.append(f"{module}.py: {name!r} is not a file name ending in .json")
            elif name in owners:
                out.errors.append(f"{name}: produced by both {owners[name]}.py and {module}.py")
            else:
                owners[name] = module
                out.files[name] = text
    return out


def build_all() -> dict[str, str]:
    """Every vector file's name and exact text; raises GenerationError if a module fails."""
    generated = generate()
    if generated.errors:
        raise GenerationError("\n".join(generated.errors))
    return generated.files


def stale_files(files: dict[str, str], directory: Path = HERE) -> list[str]:
    """The names whose file on disk differs from ``files`` (or is missing)."""
    stale = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_bytes() != text.encode("utf-8"):
            stale.append(name)
    return stale


def orphan_files(files: dict[str, str], directory: Path = HERE) -> list[str]:
    """The ``*.json`` files in ``directory`` that no module produced."""
    return sorted(path.name for path in directory.glob("*.json") if path.name not in files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file would change"
    )
    args = parser.parse_args(argv)
    generated = generate()
    problems = list(generated.errors)
    unowned = " (or only by a module that failed)" if generated.errors else ""
    problems += [
        f"{name}: produced by no cases_*.py module{unowned}"
        for name in orphan_files(generated.files)
    ]
    stale = stale_files(generated.files)
    if args.check:
        problems += [f"{name}: out of date; run {COMMAND}" for name in stale]
    else:
        for name in stale:
            (HERE / name).write_bytes(generated.files[name].encode("utf-8"))
            print(f"wrote {name}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
