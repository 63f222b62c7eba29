"""The shape every vector file shares (spec/vectors.md): a Wycheproof-style document.

A document holds ``protocol``, ``algorithm``, ``generatedBy``, ``numberOfTests``,
``header`` (prose), ``notes`` (flag -> description), the file's own top-level
fields, then ``testGroups``; each group has a ``type`` and ``tests``, and each
test a ``tcId`` numbered from 1 across the whole file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ncb_relay.codec import Value

JSON = dict[str, Any]

PROTOCOL = "NCBR/1"
GENERATOR = "spec/vectors/generate.py"


def numbered(groups: Sequence[tuple[str, Sequence[JSON]]]) -> list[JSON]:
    """``testGroups``: each (type, tests) as a group, every test given the next ``tcId``."""
    out: list[JSON] = []
    tc = 0
    for kind, tests in groups:
        entries = []
        for test in tests:
            tc += 1
            entries.append({"tcId": tc, **test})
        out.append({"type": kind, "tests": entries})
    return out


def document(
    *,
    algorithm: str,
    header: list[str],
    notes: JSON,
    fields: JSON,
    groups: Sequence[tuple[str, Sequence[JSON]]],
) -> JSON:
    """A whole vector file: the common fields, then ``fields``, then the numbered groups."""
    test_groups = numbered(groups)
    return {
        "protocol": PROTOCOL,
        "algorithm": algorithm,
        "generatedBy": GENERATOR,
        "numberOfTests": sum(len(g["tests"]) for g in test_groups),
        "header": header,
        "notes": notes,
        **fields,
        "testGroups": test_groups,
    }


def typed(value: Value) -> JSON:
    """The typed JSON form of a profile value (spec/vectors.md, "Typed values")."""
    if value is None:
        return {"type": "nil"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, bytes):
        return {"type": "bin", "value": value.hex()}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, list):
        return {"type": "array", "value": [typed(item) for item in value]}
    return {"type": "map", "value": [[typed(k), typed(v)] for k, v in value.items()]}
