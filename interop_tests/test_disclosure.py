"""disclosure.json through the adapter: a third party verifies (envelope, K) (DISC-1, DISC-2)."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, cases, describe, load

DISCLOSURE = load("disclosure.json")
PRINCIPALS = Principals(DISCLOSURE)


@pytest.mark.req("DISC-2")
@pytest.mark.parametrize("case", cases(DISCLOSURE, "Disclosure", "disclosure"))
def test_disclosure(adapter: AdapterProcess, case: JSON) -> None:
    request = {
        "op": "verify-disclosure",
        "envelope": case["envelope"],
        "contentKey": case["contentKey"],
        "directory": PRINCIPALS.directory,
        "limits": DISCLOSURE["limits"],
    }
    for attempt in ("first", "second"):  # DISC-2: no clock, no state: the same answer twice
        proven = adapter.call(request)
        if case["result"] == "invalid":
            assert "body" not in proven, f"{describe(case)}: accepted, must be {case['error']!r}"
            assert proven.get("error") == case["error"], (
                f"{describe(case)}: refused with {proven.get('error')!r}, must be {case['error']!r}"
            )
            continue
        assert "error" not in proven, f"{describe(case)}: {attempt} check refused: {proven}"
        got = {k: proven[k] for k in ("body", "sender", "recipients", "created", "messageHash")}
        want = {k: case[k] for k in ("body", "sender", "recipients", "created", "messageHash")}
        assert got == want, f"{describe(case)}: {attempt} check proves something else"
