"""The canonical msgpack profile (CODEC-1 .. CODEC-8), byte by byte.

Expected encodings are written out by hand from the msgpack specification
(https://github.com/msgpack/msgpack/blob/master/spec.md), not produced by the
encoder under test.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from ncb_relay import CodecLimits, LimitExceeded, MalformedInput, UsageError, decode, encode
from ncb_relay.errors import NcbRelayError, ProtocolError


def h(text: str) -> bytes:
    """Hex with optional spaces, for readable byte strings."""
    return bytes.fromhex(text.replace(" ", ""))


def strict_equal(a: object, b: object) -> bool:
    """Equality that also compares types (so True != 1 and [True] != [1])."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a)
    return a == b


# --- values and their one canonical encoding -----------------------------------------

CANONICAL: list[tuple[str, bytes, Any]] = [
    # CODEC-1: the scalar types
    ("nil", h("c0"), None),
    ("false", h("c2"), False),
    ("true", h("c3"), True),
    # CODEC-2: each integer in the shortest format, non-negative ones unsigned
    ("fixint-0", h("00"), 0),
    ("fixint-127", h("7f"), 127),
    ("uint8-128", h("cc 80"), 128),
    ("uint8-255", h("cc ff"), 255),
    ("uint16-256", h("cd 0100"), 256),
    ("uint16-max", h("cd ffff"), 2**16 - 1),
    ("uint32-min", h("ce 00010000"), 2**16),
    ("uint32-max", h("ce ffffffff"), 2**32 - 1),
    ("uint64-min", h("cf 0000000100000000"), 2**32),
    ("uint64-2^63", h("cf 8000000000000000"), 2**63),
    ("uint64-max", h("cf ffffffffffffffff"), 2**64 - 1),
    ("negfixint--1", h("ff"), -1),
    ("negfixint--32", h("e0"), -32),
    ("int8--33", h("d0 df"), -33),
    ("int8--128", h("d0 80"), -128),
    ("int16--129", h("d1 ff7f"), -129),
    ("int16--32768", h("d1 8000"), -(2**15)),
    ("int32--32769", h("d2 ffff7fff"), -(2**15) - 1),
    ("int32-min", h("d2 80000000"), -(2**31)),
    ("int64--2^31-1", h("d3 ffffffff7fffffff"), -(2**31) - 1),
    ("int64-min", h("d3 8000000000000000"), -(2**63)),
    # CODEC-2 / CODEC-4: str lengths in the shortest format, UTF-8 payload
    ("fixstr-empty", h("a0"), ""),
    ("fixstr-a", h("a1 61"), "a"),
    ("fixstr-31", h("bf") + b"x" * 31, "x" * 31),
    ("str8-32", h("d9 20") + b"x" * 32, "x" * 32),
    ("str8-255", h("d9 ff") + b"x" * 255, "x" * 255),
    ("str16-256", h("da 0100") + b"x" * 256, "x" * 256),
    ("str16-max", h("da ffff") + b"x" * 65535, "x" * 65535),
    ("str-2-byte-utf8", h("a2 c3a9"), "\u00e9"),
    ("str-3-byte-utf8", h("a3 efbfbf"), "\uffff"),
    ("str-4-byte-utf8", h("a4 f09f9880"), "\U0001f600"),
    ("str-max-code-point", h("a4 f48fbfbf"), "\U0010ffff"),
    ("str-nul", h("a1 00"), "\x00"),
    # bin lengths
    ("bin8-empty", h("c4 00"), b""),
    ("bin8-255", h("c4 ff") + b"\x01" * 255, b"\x01" * 255),
    ("bin16-256", h("c5 0100") + b"\x02" * 256, b"\x02" * 256),
    ("bin16-max", h("c5 ffff") + b"\x03" * 65535, b"\x03" * 65535),
    ("bin32-min", h("c6 00010000") + b"\x04" * 65536, b"\x04" * 65536),
    # array and map counts
    ("fixarray-empty", h("90"), []),
    ("fixarray-15", h("9f") + h("c0") * 15, [None] * 15),
    ("array16-16", h("dc 0010") + h("c3") * 16, [True] * 16),
    ("fixmap-empty", h("80"), {}),
    ("nested", h("92 91 80 81 a1 61 90"), [[{}], {"a": []}]),
    (
        "fixmap-15",
        h("8f") + b"".join(bytes([0xA1, 0x61 + i, i]) for i in range(15)),
        {chr(0x61 + i): i for i in range(15)},
    ),
    (
        "map16-16",
        h("de 0010") + b"".join(bytes([0xA1, 0x41 + i, 0xC0]) for i in range(16)),
        {chr(0x41 + i): None for i in range(16)},
    ),
    # CODEC-3: keys sorted by their UTF-8 bytes; a prefix sorts first
    ("keys-prefix-first", h("82 a1 61 01 a2 6162 02"), {"a": 1, "ab": 2}),
    ("keys-upper-before-lower", h("82 a1 42 01 a1 61 02"), {"B": 1, "a": 2}),
    ("keys-ascii-before-multibyte", h("82 a1 7a 01 a2 c3a9 02"), {"z": 1, "\u00e9": 2}),
    ("keys-bmp-before-astral", h("82 a3 efbfbf 01 a4 f09f9880 02"), {"\uffff": 1, "\U0001f600": 2}),
    ("keys-empty-first", h("82 a0 01 a1 00 02"), {"": 1, "\x00": 2}),
]


@pytest.mark.req("CODEC-1", "CODEC-2", "CODEC-3", "CODEC-4", "CODEC-6")
@pytest.mark.parametrize(("data", "value"), [pytest.param(d, v, id=i) for i, d, v in CANONICAL])
def test_canonical_encoding_decodes_and_encodes(data: bytes, value: Any) -> None:
    assert strict_equal(decode(data), value)
    assert encode(value) == data


@pytest.mark.req("CODEC-2")
def test_large_counts_use_the_32_bit_formats() -> None:
    """array32, map32 and str32 need limits above the defaults; they are canonical too."""
    limits = CodecLimits(max_array_items=70000, max_map_items=70000, max_str_bytes=70000)
    array = h("dd 00010000") + h("c0") * 65536
    assert decode(array, limits=limits) == [None] * 65536
    assert encode([None] * 65536, limits=limits) == array
    keys = [f"{i:05d}" for i in range(65536)]
    mapping = h("df 00010000") + b"".join(h("a5") + k.encode() + h("c0") for k in keys)
    assert decode(mapping, limits=limits) == dict.fromkeys(keys)
    assert encode(dict.fromkeys(reversed(keys)), limits=limits) == mapping
    text = h("db 00010000") + b"t" * 65536
    assert decode(text, limits=limits) == "t" * 65536
    assert encode("t" * 65536, limits=limits) == text


# --- encodings outside the profile or not canonical -------------------------------------

NOT_CANONICAL: list[tuple[str, bytes]] = [
    # CODEC-1: reserved byte, floats, every extension type (timestamp included)
    ("reserved-c1", h("c1")),
    ("float32", h("ca 00000000")),
    ("float32-one", h("ca 3f800000")),
    ("float64", h("cb 0000000000000000")),
    ("float64-nan", h("cb 7ff8000000000000")),
    ("ext8", h("c7 01 05 00")),
    ("ext8-empty", h("c7 00 05")),
    ("ext16", h("c8 0001 05 00")),
    ("ext32", h("c9 00000001 05 00")),
    ("fixext1", h("d4 01 00")),
    ("fixext2", h("d5 01 0000")),
    ("fixext4", h("d6 01 00000000")),
    ("fixext8", h("d7 01 0000000000000000")),
    ("fixext16", h("d8 01") + bytes(16)),
    ("timestamp32", h("d6 ff 00000000")),
    ("timestamp64", h("d7 ff 0000000000000000")),
    ("timestamp96", h("c7 0c ff") + bytes(12)),
    ("ext-inside-array", h("91 d4 01 00")),
    ("float-inside-map", h("81 a1 61 ca 00000000")),
    # CODEC-2: integers not in the shortest format, or non-negative in a signed format
    ("uint8-0", h("cc 00")),
    ("uint8-127", h("cc 7f")),
    ("uint16-0", h("cd 0000")),
    ("uint16-255", h("cd 00ff")),
    ("uint32-65535", h("ce 0000ffff")),
    ("uint64-max32", h("cf 00000000ffffffff")),
    ("uint64-0", h("cf 0000000000000000")),
    ("int8-0", h("d0 00")),
    ("int8-positive", h("d0 05")),
    ("int8-127", h("d0 7f")),
    ("int8--1", h("d0 ff")),
    ("int8--32", h("d0 e0")),
    ("int16--128", h("d1 ff80")),
    ("int16-positive", h("d1 007f")),
    ("int16-300", h("d1 012c")),
    ("int32--32768", h("d2 ffff8000")),
    ("int32-positive", h("d2 00000001")),
    ("int64--2^31", h("d3 ffffffff80000000")),
    ("int64-positive", h("d3 0000000000000001")),
    ("int64-2^63-1", h("d3 7fffffffffffffff")),
    # CODEC-2: lengths and counts not in the shortest format
    ("str8-empty", h("d9 00")),
    ("str8-31", h("d9 1f") + b"x" * 31),
    ("str16-3", h("da 0003 616263")),
    ("str16-255", h("da 00ff") + b"x" * 255),
    ("str32-3", h("db 00000003 616263")),
    ("str32-65535", h("db 0000ffff") + b"x" * 65535),
    ("bin16-0", h("c5 0000")),
    ("bin16-255", h("c5 00ff") + bytes(255)),
    ("bin32-3", h("c6 00000003 000000")),
    ("bin32-65535", h("c6 0000ffff") + bytes(65535)),
    ("array16-0", h("dc 0000")),
    ("array16-15", h("dc 000f") + h("c0") * 15),
    ("array32-1", h("dd 00000001 c0")),
    ("map16-0", h("de 0000")),
    ("map16-1", h("de 0001 a161 c0")),
    ("map32-1", h("df 00000001 a161 c0")),
    # CODEC-3: map keys are text, unique and sorted
    ("key-int", h("81 01 c0")),
    ("key-nil", h("81 c0 c0")),
    ("key-bin", h("81 c4 01 61 c0")),
    ("key-bin-and-str", h("82 a1 61 c0 c4 01 62 c0")),
    ("key-array", h("81 90 c0")),
    ("keys-unsorted", h("82 a1 62 c0 a1 61 c0")),
    ("keys-duplicate", h("82 a1 61 c0 a1 61 01")),
    ("keys-duplicate-same-value", h("82 a1 61 c0 a1 61 c0")),
    ("keys-longer-before-prefix", h("82 a2 6162 c0 a1 61 c0")),
    ("keys-multibyte-before-ascii", h("82 a2 c3a9 c0 a1 7a c0")),
    ("keys-unsorted-nested", h("91 82 a1 62 c0 a1 61 c0")),
    # CODEC-4: str must be valid UTF-8
    ("utf8-invalid-byte", h("a1 ff")),
    ("utf8-bad-continuation", h("a2 c328")),
    ("utf8-lone-continuation", h("a1 80")),
    ("utf8-truncated", h("a1 c3")),
    ("utf8-surrogate-high", h("a3 eda080")),
    ("utf8-surrogate-low", h("a3 edbfbf")),
    ("utf8-overlong-nul", h("a2 c080")),
    ("utf8-overlong-slash", h("a2 c0af")),
    ("utf8-overlong-3-byte", h("a3 e080af")),
    ("utf8-overlong-4-byte", h("a4 f08080af")),
    ("utf8-beyond-10ffff", h("a4 f4908080")),
    ("utf8-in-key", h("81 a1 ff c0")),
    # CODEC-5: exactly one value
    ("empty", b""),
    ("two-values", h("c0 c0")),
    ("trailing-byte", h("90 00")),
    ("trailing-after-map", h("80 80")),
    ("truncated-array", h("92 01")),
    ("truncated-str", h("a2 61")),
    ("truncated-bin", h("c4 05 61")),
    ("truncated-uint16", h("cd 01")),
    ("truncated-array16-header", h("dc 00")),
    ("truncated-map-value", h("81 a1 61")),
    # CODEC-7: a length prefix larger than the remaining input
    ("bin32-longer-than-input", h("c6 00010000") + b"x"),
    ("str32-longer-than-input", h("db 00001000 61")),
    ("array32-longer-than-input", h("dd 00000005 c0")),
    ("map16-longer-than-input", h("de 00ff a161 c0")),
]


@pytest.mark.req("CODEC-1", "CODEC-2", "CODEC-3", "CODEC-4", "CODEC-5", "CODEC-6", "CODEC-7")
@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in NOT_CANONICAL])
def test_non_canonical_input_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedInput):
        decode(data)


@pytest.mark.req("CODEC-6")
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decode_accepts_any_bytes_like(kind: type[Any]) -> None:
    assert decode(kind(h("92 01 a1 61"))) == [1, "a"]


@pytest.mark.req("CODEC-6")
@pytest.mark.parametrize("value", ["92 01", [146, 1], None, 3.0])
def test_decode_of_non_bytes_is_a_usage_error(value: Any) -> None:
    with pytest.raises(UsageError):
        decode(value)


# --- limits (CODEC-7) ------------------------------------------------------------------


@pytest.mark.req("CODEC-7")
@pytest.mark.parametrize(
    ("limits", "at_limit", "over_limit"),
    [
        pytest.param(
            CodecLimits(max_bytes=6), h("c4 04") + b"abcd", h("c4 05") + b"abcde", id="max_bytes"
        ),
        pytest.param(
            CodecLimits(max_str_bytes=3), h("a3 616263"), h("a4 61626364"), id="max_str_bytes"
        ),
        pytest.param(
            CodecLimits(max_str_bytes=3),
            h("81 a3 616263 c0"),
            h("81 a4 61626364 c0"),
            id="max_str_bytes-key",
        ),
        pytest.param(
            CodecLimits(max_bin_bytes=3), h("c4 03 010203"), h("c4 04 01020304"), id="max_bin_bytes"
        ),
        pytest.param(
            CodecLimits(max_array_items=2), h("92 c0 c0"), h("93 c0 c0 c0"), id="max_array_items"
        ),
        pytest.param(
            CodecLimits(max_map_items=1),
            h("81 a1 61 c0"),
            h("82 a1 61 c0 a1 62 c0"),
            id="max_map_items",
        ),
        pytest.param(CodecLimits(max_depth=2), h("91 91 c0"), h("91 91 91 c0"), id="max_depth"),
        pytest.param(
            CodecLimits(max_depth=2), h("91 81 a1 61 c0"), h("91 81 a1 61 90"), id="max_depth-map"
        ),
        pytest.param(CodecLimits(max_depth=1), h("91 c0"), h("91 90"), id="max_depth-1"),
    ],
)
def test_limits(limits: CodecLimits, at_limit: bytes, over_limit: bytes) -> None:
    value = decode(at_limit, limits=limits)
    assert encode(value, limits=limits) == at_limit
    with pytest.raises(LimitExceeded):
        decode(over_limit, limits=limits)
    assert decode(over_limit) is not None  # within the default limits it is canonical


@pytest.mark.req("CODEC-7")
def test_default_limits() -> None:
    limits = CodecLimits()
    assert (limits.max_bytes, limits.max_depth) == (8 * 1024 * 1024, 16)
    deepest = h("91") * 15 + h("90")
    assert decode(deepest) is not None
    with pytest.raises(LimitExceeded):
        decode(h("91") * 16 + h("90"))
    with pytest.raises(LimitExceeded):
        decode(bytes(limits.max_bytes + 1))


@pytest.mark.req("CODEC-7")
@pytest.mark.parametrize("depth", [100, 2000, 100_000])
def test_deep_nesting_is_a_limit_not_a_crash(depth: int) -> None:
    with pytest.raises(LimitExceeded):
        decode(h("91") * depth + h("c0"))
    with pytest.raises(LimitExceeded):
        decode(h("81 a0") * depth + h("c0"))


DEFAULT_LIMITS = CodecLimits()


def _peak_allocation(data: bytes, limits: CodecLimits = DEFAULT_LIMITS) -> tuple[int, object]:
    """Decode ``data`` and return the peak memory traced meanwhile and the outcome."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            outcome: object = decode(data, limits=limits)
        except NcbRelayError as exc:
            outcome = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, outcome


@pytest.mark.req("CODEC-7")
def test_memory_tracing_sees_decoder_allocations() -> None:
    """Control for the tests below: a real 2 MiB byte string shows up in the trace."""
    size = 2 * 1024 * 1024
    peak, outcome = _peak_allocation(h("c6") + size.to_bytes(4, "big") + bytes(size))
    assert outcome == bytes(size)
    assert peak >= size


@pytest.mark.req("CODEC-7")
@pytest.mark.parametrize(
    ("data", "error"),
    [
        # a claimed length within the limit but beyond the input: malformed
        pytest.param(h("c6 00800000 00"), MalformedInput, id="bin32-8MiB-claim"),
        pytest.param(h("db 00010000 61"), MalformedInput, id="str32-64KiB-claim"),
        # a claimed length beyond the limit: refused without allocating either way
        pytest.param(h("c6 ffffffff 00"), ProtocolError, id="bin32-4GiB-claim"),
        pytest.param(h("db ffffffff 61"), ProtocolError, id="str32-4GiB-claim"),
        pytest.param(h("dd ffffffff c0"), ProtocolError, id="array32-4G-claim"),
        pytest.param(h("df ffffffff a161 c0"), ProtocolError, id="map32-4G-claim"),
        pytest.param(h("91") * 10 + h("c6 00800000"), MalformedInput, id="nested-bin32-claim"),
    ],
)
def test_length_prefixes_never_allocate_beyond_the_input(
    data: bytes, error: type[NcbRelayError]
) -> None:
    peak, outcome = _peak_allocation(data)
    assert isinstance(outcome, error)
    assert peak < 256 * 1024


@pytest.mark.req("CODEC-7")
def test_array_count_allocation_is_bounded_by_the_limit() -> None:
    """An array header may make the decoder reserve its (limited) count of slots, no more."""
    limits = CodecLimits(max_array_items=4096)
    peak, outcome = _peak_allocation(h("dd 00001000"), limits)
    assert isinstance(outcome, MalformedInput)
    assert peak < 8 * 4096 + 64 * 1024
    peak, outcome = _peak_allocation(h("dd 00100000"), limits)  # 2**20 items claimed
    assert isinstance(outcome, LimitExceeded)
    assert peak < 64 * 1024


# --- encode ----------------------------------------------------------------------------


@pytest.mark.req("CODEC-3")
def test_encode_sorts_keys_whatever_the_insertion_order() -> None:
    forward: dict[str, Any] = {"a": 1, "ab": 2, "b": {"y": 1, "x": 2}, "\u00e9": None}
    backward = dict(reversed(list(forward.items())))
    expected = h("84 a1 61 01 a2 6162 02 a1 62 82 a1 78 02 a1 79 01 a2 c3a9 c0")
    assert encode(forward) == expected
    assert encode(backward) == expected
    assert list(decode(expected)) == ["a", "ab", "b", "\u00e9"]  # type: ignore[arg-type]


@pytest.mark.req("CODEC-1")
def test_encode_keeps_booleans_apart_from_integers() -> None:
    assert encode([True, 1, False, 0]) == h("94 c3 01 c2 00")


class _Int(int):
    pass


class _Str(str):
    __slots__ = ()


@pytest.mark.req("CODEC-1", "CODEC-3", "CODEC-4")
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.0, id="float"),
        pytest.param(float("nan"), id="nan"),
        pytest.param((1, 2), id="tuple"),
        pytest.param({1, 2}, id="set"),
        pytest.param(bytearray(b"x"), id="bytearray"),
        pytest.param(memoryview(b"x"), id="memoryview"),
        pytest.param(object(), id="object"),
        pytest.param(2**64, id="int-too-large"),
        pytest.param(-(2**63) - 1, id="int-too-small"),
        pytest.param(_Int(1), id="int-subclass"),
        pytest.param(_Str("x"), id="str-subclass"),
        pytest.param({1: "a"}, id="int-key"),
        pytest.param({b"a": 1}, id="bytes-key"),
        pytest.param({None: 1}, id="nil-key"),
        pytest.param({"a": 1, 2: 3}, id="mixed-keys"),
        pytest.param([[1.5]], id="nested-float"),
        pytest.param({"a": {"b": (1,)}}, id="nested-tuple"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param(["ok", "\udfff"], id="lone-surrogate-nested"),
        pytest.param({"\ud83d": 1}, id="lone-surrogate-key"),
        pytest.param({"a": 1, "\ud83d": 1}, id="lone-surrogate-second-key"),
    ],
)
def test_encode_rejects_values_outside_the_profile(value: Any) -> None:
    with pytest.raises(UsageError):
        encode(value)


@pytest.mark.req("CODEC-7")
def test_encode_limits() -> None:
    with pytest.raises(LimitExceeded):
        encode(b"x" * 10, limits=CodecLimits(max_bytes=11))
    assert encode(b"x" * 9, limits=CodecLimits(max_bytes=11)) == h("c4 09") + b"x" * 9
    with pytest.raises(LimitExceeded):
        encode([[[]]], limits=CodecLimits(max_depth=2))
    assert encode([[]], limits=CodecLimits(max_depth=2)) == h("91 90")


@pytest.mark.req("CODEC-7")
def test_encode_of_deep_or_cyclic_values_is_refused_not_a_crash() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(NcbRelayError):
        encode(deep)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(NcbRelayError):
        encode(cyclic)
    deep_map: dict[str, Any] = {}
    for _ in range(5000):
        deep_map = {"k": deep_map}
    with pytest.raises(NcbRelayError):
        encode(deep_map)
