"""directory.json through the adapter: anchor chains, directory versions, key look-ups."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, cases, describe, load

DIRECTORY = load("directory.json")
FILES: dict[str, str] = DIRECTORY["signedFiles"]


def expect(case: JSON, got: JSON, outputs: tuple[str, ...]) -> None:
    if case["result"] == "invalid":
        assert got.get("error") == case["error"], (
            f"{describe(case)}: gave {got.get('error')!r}, must be {case['error']!r}"
        )
        return
    assert "error" not in got, f"{describe(case)}: refused with {got['error']!r}"
    assert {k: got.get(k) for k in outputs} == {k: case[k] for k in outputs}, describe(case)


def anchors(case: JSON) -> list[str]:
    return [FILES[name] for name in case["anchors"]]


@pytest.mark.parametrize("case", cases(DIRECTORY, "AnchorChain", "directory"))
def test_verify_anchors(adapter: AdapterProcess, case: JSON) -> None:
    got = adapter.call({"op": "verify-anchors", "anchors": anchors(case)})
    expect(case, got, ("currentSerial", "fingerprint"))


@pytest.mark.parametrize("case", cases(DIRECTORY, "DirectoryVerify", "directory"))
def test_verify_directory(adapter: AdapterProcess, case: JSON) -> None:
    got = adapter.call(
        {
            "op": "verify-directory",
            "anchors": anchors(case),
            "previous": None if case["previous"] is None else FILES[case["previous"]],
            "intermediates": [FILES[name] for name in case["intermediates"]],
            "document": FILES[case["directory"]],
            "now": case["now"],
            "grace": case["grace"],
            "maxSkew": case["maxSkew"],
        }
    )
    expect(case, got, ("serial", "hash", "inGrace"))


@pytest.mark.parametrize("case", cases(DIRECTORY, "KeyLookup", "directory"))
def test_look_up_key(adapter: AdapterProcess, case: JSON) -> None:
    request = {
        "op": "look-up-key",
        "anchors": anchors(case),
        "document": FILES[case["directory"]],
        "grace": case["grace"],
        "view": case["view"],
        "lookup": case["lookup"],
        "principal": case["principal"],
        "at": case["at"],
    }
    if "keyId" in case:
        request["keyId"] = case["keyId"]
    got = adapter.call(request)
    expect(case, got, ("key",) if "key" in case else ())
