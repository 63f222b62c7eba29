"""codec.json through the adapter: canonical msgpack (CODEC-1 to CODEC-7, ERR-1)."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, cases, describe, load

CODEC = load("codec.json")


def input_hex(spec: JSON) -> str:
    if "hex" in spec:
        text: str = spec["hex"]
        return text
    return str(spec["repeat"]) * int(spec["count"]) + str(spec["then"])


def limits(case: JSON) -> JSON:
    return {**CODEC["limits"], **case.get("limits", {})}


@pytest.mark.parametrize("case", cases(CODEC, "CodecValid", "codec"))
def test_decode_then_encode(adapter: AdapterProcess, case: JSON) -> None:
    data = input_hex(case["input"])
    decoded = adapter.call({"op": "decode", "data": data, "limits": limits(case)})
    assert "error" not in decoded, f"{describe(case)}: canonical input refused: {decoded}"
    assert decoded["value"] == case["value"], f"{describe(case)}: decoded to another value"
    encoded = adapter.call({"op": "encode", "value": case["value"], "limits": limits(case)})
    assert encoded.get("data") == data, f"{describe(case)}: not re-encoded byte for byte"


@pytest.mark.parametrize("case", cases(CODEC, "CodecInvalid", "codec"))
def test_decode_refuses(adapter: AdapterProcess, case: JSON) -> None:
    data = input_hex(case["input"])
    decoded = adapter.call({"op": "decode", "data": data, "limits": limits(case)})
    assert "value" not in decoded, f"{describe(case)}: accepted, must be {case['error']!r}"
    assert decoded.get("error") == case["error"], (
        f"{describe(case)}: refused with {decoded.get('error')!r}, must be {case['error']!r}"
    )
