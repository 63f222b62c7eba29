"""codec.json: the canonical msgpack profile (CODEC-1 .. CODEC-7).

Valid cases: decoding the input yields the value and encoding the value yields
the input.  Invalid cases: decoding fails with the error code given.  The cases
are tables of runs that share requirement ids, flags and (for invalid ones) the
error; the generator checks each against the library before writing the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from principals import NOW
from vectorfile import JSON, document, typed

from ncb_relay import codec
from ncb_relay.codec import CodecLimits, Value
from ncb_relay.errors import NcbRelayError
from ncb_relay.header import MAX_SEQ

NOTES: JSON = {
    "Canonical": "A canonical encoding: decoders accept it and encoders produce it.",
    "Integer": "Integer formats: the shortest one, unsigned formats for values >= 0.",
    "Length": "str/bin/array/map lengths in the shortest format.",
    "MapOrder": "Map keys sorted by their UTF-8 bytes (not UTF-16 code units, not "
    "code points as numbers of another width), unique.",
    "Depth": "Container nesting at (or beyond) the depth limit.",
    "NonShortestInt": "An integer in a longer format than needed (CODEC-2).",
    "SignedFormatForNonNegative": "A non-negative integer in an int 8/16/32/64 format (CODEC-2).",
    "NonShortestLength": "A length or count in a longer format than needed (CODEC-2).",
    "UnsortedMap": "Map keys out of order (CODEC-3).",
    "DuplicateKey": "The same map key twice (CODEC-3).",
    "NonStrKey": "A map key that is not a str (CODEC-3).",
    "Float": "A float32/float64; floats are outside the profile (CODEC-1).",
    "Extension": "An extension type; every one is outside the profile (CODEC-1).",
    "Timestamp": "The msgpack timestamp extension (type -1), outside the profile (CODEC-1).",
    "Reserved": "The reserved byte 0xc1 (CODEC-1).",
    "InvalidUtf8": "A str that is not valid UTF-8: bad byte, overlong, surrogate, beyond "
    "U+10FFFF or cut (CODEC-4).",
    "TrailingBytes": "Bytes after the one value (CODEC-5).",
    "Truncated": "The input ends inside a value (CODEC-5).",
    "LengthBeyondInput": "A length or count larger than the rest of the input; must be "
    "refused without allocating (CODEC-7).",
    "Limit": "A limit is hit (the case's limits say which; CODEC-7).",
}

# JSON name -> CodecLimits field, in the order of the file's "limits"
LIMIT_NAMES = {
    "maxBytes": "max_bytes",
    "maxStrBytes": "max_str_bytes",
    "maxBinBytes": "max_bin_bytes",
    "maxArrayItems": "max_array_items",
    "maxMapItems": "max_map_items",
    "maxDepth": "max_depth",
}


def nested_arrays(n: int) -> Value:
    value: Value = []
    for _ in range(n - 1):
        value = [value]
    return value


CANON = ["CODEC-1", "CODEC-2", "CODEC-6"]
MAPS = [*CANON, "CODEC-3"]
UTF8 = [*CANON, "CODEC-4"]

# valid runs: (requirements, flags, [(comment, value, canonical encoding in hex)])
VALID: list[tuple[list[str], list[str], list[tuple[str, Value, str]]]] = [
    (
        ["CODEC-1"],
        ["Canonical"],
        [("nil", None, "c0"), ("false", False, "c2"), ("true", True, "c3")],
    ),
    (
        CANON,
        ["Integer"],
        [
            ("0: positive fixint", 0, "00"),
            ("127: largest positive fixint", 127, "7f"),
            ("128: smallest uint 8", 128, "cc80"),
            ("255: largest uint 8", 255, "ccff"),
            ("256: smallest uint 16", 256, "cd0100"),
            ("65535: largest uint 16", 65535, "cdffff"),
            ("65536: smallest uint 32", 65536, "ce00010000"),
            ("2^32-1: largest uint 32", 2**32 - 1, "ceffffffff"),
            ("2^32: smallest uint 64", 2**32, "cf0000000100000000"),
            ("2^63-1: largest seq", MAX_SEQ, "cf7fffffffffffffff"),
            ("2^64-1: largest integer", 2**64 - 1, "cfffffffffffffffff"),
            ("1800000000: the vectors' now", NOW, "ce6b49d200"),
            ("-1: negative fixint", -1, "ff"),
            ("-32: smallest negative fixint", -32, "e0"),
            ("-33: largest int 8 value below fixint", -33, "d0df"),
            ("-128: smallest int 8", -128, "d080"),
            ("-129: largest int 16 value", -129, "d1ff7f"),
            ("-32768: smallest int 16", -32768, "d18000"),
            ("-32769: int 32", -32769, "d2ffff7fff"),
            ("-2^31: smallest int 32", -(2**31), "d280000000"),
            ("-2^31-1: int 64", -(2**31) - 1, "d3ffffffff7fffffff"),
            ("-2^63: smallest integer", -(2**63), "d38000000000000000"),
        ],
    ),
    (
        CANON,
        ["Length"],
        [
            ("empty str", "", "a0"),
            ("a principal id", "KR.ncb-seoul", "ac" + b"KR.ncb-seoul".hex()),
            ("str of 31 bytes: largest fixstr", "a" * 31, "bf" + "61" * 31),
            ("str of 32 bytes: smallest str 8", "a" * 32, "d920" + "61" * 32),
            ("str of 255 bytes: largest str 8", "b" * 255, "d9ff" + "62" * 255),
            ("str of 256 bytes: str 16", "c" * 256, "da0100" + "63" * 256),
        ],
    ),
    (
        UTF8,
        ["Length"],
        [
            (
                "non-ASCII str (length counts UTF-8 bytes)",
                "Séoul 서울",
                "ad" + "Séoul 서울".encode().hex(),
            ),
            ("str with a 4-byte UTF-8 character and NUL", "\U0001f512\x00", "a5f09f949200"),
        ],
    ),
    (
        CANON,
        ["Length"],
        [
            ("empty bin", b"", "c400"),
            ("bin of 32 bytes", bytes(range(32)), "c420" + bytes(range(32)).hex()),
            ("bin of 255 bytes: largest bin 8", b"\xaa" * 255, "c4ff" + "aa" * 255),
            ("bin of 256 bytes: bin 16", b"\xbb" * 256, "c50100" + "bb" * 256),
            ("empty array", [], "90"),
            ("array of 15: largest fixarray", list(range(15)), "9f" + bytes(range(15)).hex()),
            ("array of 16: array 16", list(range(16)), "dc0010" + bytes(range(16)).hex()),
        ],
    ),
    (
        CANON,
        ["Canonical"],
        [
            (
                "mixed array",
                [None, True, False, -1, "x", b"\x01", {"k": [1]}],
                "97c0c3c2ffa178c40101" + "81a16b9101",
            )
        ],
    ),
    (CANON, ["Length"], [("empty map", {}, "80")]),
    (
        MAPS,
        ["MapOrder"],
        [
            ("map of one entry", {"a": 1}, "81a16101"),
            ("map keys: a prefix sorts first", {"a": 1, "ab": 2, "b": 3}, "83a16101a2616202a16203"),
            (
                "map keys by UTF-8 bytes: 'Z' < 'a' < 'é'",
                {"Z": 1, "a": 2, "é": 3},
                "83a15a01a16102a2c3a903",
            ),
            (
                "map keys by UTF-8 bytes: U+FF21 (ef bc a1) before U+1F512 (f0 9f 94 92), "
                "the reverse of UTF-16 order",
                {"\uff21": 1, "\U0001f512": 2},
                "82a3efbca101a4f09f949202",
            ),
        ],
    ),
    (
        MAPS,
        ["Length"],
        [
            (
                "map of 16 entries: map 16",
                {chr(0x61 + i): i for i in range(16)},
                "de0010" + "".join(f"a1{0x61 + i:02x}{i:02x}" for i in range(16)),
            )
        ],
    ),
    (
        [*CANON, "CODEC-7"],
        ["Depth"],
        [("16 nested arrays: the depth limit (16) exactly", nested_arrays(16), "91" * 15 + "90")],
    ),
]

MALFORMED, LIMIT = "malformed", "limit-exceeded"
SHORTEST = ["CODEC-2", "CODEC-6"]
BEYOND = ["CODEC-5", "CODEC-7"]

# invalid runs: (requirements, flags, error, [(comment, input hex)])
INVALID: list[tuple[list[str], list[str], str, list[tuple[str, str]]]] = [
    (
        SHORTEST,
        ["NonShortestInt"],
        MALFORMED,
        [
            ("0 as uint 8", "cc00"),
            ("127 as uint 8", "cc7f"),
            ("255 as uint 16", "cd00ff"),
            ("1 as uint 16", "cd0001"),
            ("65535 as uint 32", "ce0000ffff"),
            ("2^32-1 as uint 64", "cf00000000ffffffff"),
            ("1800000000 as uint 64", "cf000000006b49d200"),
        ],
    ),
    (
        SHORTEST,
        ["SignedFormatForNonNegative"],
        MALFORMED,
        [
            ("1 as int 8", "d001"),
            ("127 as int 8", "d07f"),
            ("0 as int 16", "d10000"),
            ("200 as int 16", "d100c8"),
            ("1 as int 32", "d200000001"),
            ("2^63-1 as int 64", "d37fffffffffffffff"),
        ],
    ),
    (
        SHORTEST,
        ["NonShortestInt"],
        MALFORMED,
        [
            ("-1 as int 8", "d0ff"),
            ("-32 as int 8", "d0e0"),
            ("-128 as int 16", "d1ff80"),
            ("-32768 as int 32", "d2ffff8000"),
            ("-2^31 as int 64", "d3ffffffff80000000"),
        ],
    ),
    (
        SHORTEST,
        ["NonShortestLength"],
        MALFORMED,
        [
            ("str of 1 byte as str 8", "d90161"),
            ("str of 31 bytes as str 8", "d91f" + "61" * 31),
            ("str of 32 bytes as str 16", "da0020" + "61" * 32),
            ("str of 1 byte as str 32", "db0000000161"),
            ("bin of 1 byte as bin 16", "c5000100"),
            ("bin of 1 byte as bin 32", "c60000000100"),
            ("array of 1 as array 16", "dc0001c0"),
            ("array of 15 as array 16", "dc000f" + "c0" * 15),
            ("array of 1 as array 32", "dd00000001c0"),
            ("map of 1 as map 16", "de0001a161c0"),
            ("map of 1 as map 32", "df00000001a161c0"),
        ],
    ),
    (
        ["CODEC-3", "CODEC-6"],
        ["UnsortedMap"],
        MALFORMED,
        [
            ("map keys out of order: b before a", "82a162c0a161c0"),
            ("map keys out of order: ab before its prefix a", "82a26162c0a161c0"),
            (
                "map keys in UTF-16 order (U+1F512 before U+FF21), not UTF-8 order",
                "82a4f09f949202a3efbca101",
            ),
        ],
    ),
    (
        ["CODEC-3", "CODEC-6"],
        ["DuplicateKey"],
        MALFORMED,
        [
            ("duplicate map key", "82a161c0a161c0"),
            ("duplicate map key with different values", "82a16101a16102"),
        ],
    ),
    (
        ["CODEC-3", "CODEC-6"],
        ["NonStrKey"],
        MALFORMED,
        [
            ("int map key", "8101c0"),
            ("bin map key", "81c40161c0"),
            ("nil map key", "81c0c0"),
            ("array map key", "8190c0"),
        ],
    ),
    (["CODEC-1"], ["Reserved"], MALFORMED, [("reserved byte 0xc1", "c1")]),
    (
        ["CODEC-1"],
        ["Float"],
        MALFORMED,
        [
            ("float 32 (1.0)", "ca3f800000"),
            ("float 64 (1.0)", "cb3ff0000000000000"),
            ("float 64 (0.0) inside an array", "91cb0000000000000000"),
        ],
    ),
    (
        ["CODEC-1"],
        ["Extension"],
        MALFORMED,
        [
            ("fixext 1, type 1", "d40100"),
            ("fixext 2, type 2", "d5020000"),
            ("fixext 16, type 5", "d805" + "00" * 16),
            ("ext 8, type 5", "c70105aa"),
            ("ext 16, type 5", "c8000105aa"),
            ("ext 32, type 5", "c90000000105aa"),
        ],
    ),
    (
        ["CODEC-1"],
        ["Timestamp"],
        MALFORMED,
        [
            ("timestamp 32 (ext -1)", "d6ff6b49d200"),
            ("timestamp 64 (ext -1)", "d7ff000000006b49d200"),
            ("timestamp 96 (ext -1)", "c70cff00000000000000006b49d200"),
        ],
    ),
    (
        ["CODEC-4", "CODEC-6"],
        ["InvalidUtf8"],
        MALFORMED,
        [
            ("str with byte 0xff", "a1ff"),
            ("str with overlong '/' (c0 af)", "a2c0af"),
            ("str with overlong 3-byte '/' (e0 80 af)", "a3e080af"),
            ("str with a UTF-16 surrogate (ed a0 80)", "a3eda080"),
            ("str with a code point above U+10FFFF", "a4f4908080"),
            ("str ending inside a character", "a2e282"),
            ("map key with invalid UTF-8", "81a1ffc0"),
        ],
    ),
    (["CODEC-5"], ["Truncated"], MALFORMED, [("empty input", "")]),
    (
        ["CODEC-5"],
        ["TrailingBytes"],
        MALFORMED,
        [("trailing nil after nil", "c0c0"), ("trailing byte after an array", "9000")],
    ),
    (
        ["CODEC-5"],
        ["Truncated"],
        MALFORMED,
        [
            ("uint 16 cut short", "cd01"),
            ("str cut short", "a261"),
            ("array cut short", "9201"),
            ("map value missing", "81a161"),
            ("bin 8 length byte missing", "c4"),
        ],
    ),
    (
        BEYOND,
        ["LengthBeyondInput"],
        MALFORMED,
        [
            ("bin 16 of 65535 bytes, 1 present", "c5ffff00"),
            ("str 16 of 65535 bytes, 1 present", "daffff61"),
            ("bin 32 of 2^24 bytes, none present", "c601000000"),
            ("array 16 of 256 items, none present", "dc0100"),
            ("map 16 of 200 entries, none present", "de00c8"),
        ],
    ),
    # CODEC-7: a count above its limit is limit-exceeded as soon as it is read; a str or
    # bin that runs past the end of the input is malformed, whatever its length limit.
    (
        BEYOND,
        ["LengthBeyondInput", "Limit"],
        LIMIT,
        [
            (
                "array 32 of 2^32-1 items, none present: the count is above maxArrayItems",
                "ddffffffff",
            ),
            ("array 16 of 65535 items, none present: the count is above maxArrayItems", "dcffff"),
            (
                "map 32 of 2^32-1 entries, none present: the count is above maxMapItems",
                "dfffffffff",
            ),
        ],
    ),
    (
        BEYOND,
        ["LengthBeyondInput"],
        MALFORMED,
        [
            (
                "str 32 of 2^32-1 bytes, 1 present: runs past the input (malformed, although also "
                "above maxStrBytes)",
                "dbffffffff61",
            ),
            (
                "bin 32 of 2^32-1 bytes, 1 present: runs past the input (malformed, although also "
                "above maxBinBytes)",
                "c6ffffffff00",
            ),
        ],
    ),
    (
        ["CODEC-7"],
        ["Depth"],
        LIMIT,
        [
            ("17 nested arrays (limit 16)", "91" * 16 + "90"),
            ("17 nested maps (limit 16)", "81a161" * 16 + "80"),
            ("100000 nested arrays", "91" * 100_000 + "90"),
        ],
    ),
]

# one limit lowered below what the input needs: (comment, input hex, limit, lowered value)
LOWERED: list[tuple[str, str, str, int]] = [
    ("input longer than maxBytes", "a461626364", "maxBytes", 4),
    ("str longer than maxStrBytes", "a461626364", "maxStrBytes", 3),
    ("bin longer than maxBinBytes", "c403010203", "maxBinBytes", 2),
    ("array longer than maxArrayItems", "93010203", "maxArrayItems", 2),
    ("map larger than maxMapItems", "82a16101a16202", "maxMapItems", 1),
    ("nesting deeper than maxDepth", "919190", "maxDepth", 2),
]


@dataclass
class CodecCase:
    comment: str
    flags: list[str]
    requirements: list[str]
    data: bytes
    value: Value = None
    error: str | None = None
    limits: dict[str, int] = field(default_factory=dict)


def valid_cases() -> list[CodecCase]:
    return [
        CodecCase(comment, flags, reqs, bytes.fromhex(hex_), value)
        for reqs, flags, rows in VALID
        for comment, value, hex_ in rows
    ]


def invalid_cases() -> list[CodecCase]:
    out = [
        CodecCase(comment, flags, reqs, bytes.fromhex(hex_), error=error)
        for reqs, flags, error, rows in INVALID
        for comment, hex_ in rows
    ]
    for comment, hex_, name, value in LOWERED:
        flags = ["Limit", "Depth"] if name == "maxDepth" else ["Limit"]
        out.append(
            CodecCase(
                comment, flags, ["CODEC-7"], bytes.fromhex(hex_), error=LIMIT, limits={name: value}
            )
        )
    return out


def compact_hex(data: bytes) -> JSON:
    """{"repeat": hex, "count": n, "then": hex}: ``count`` copies of ``repeat``, then ``then``."""
    unit = data[:1]
    count = len(data) - len(data.lstrip(unit))
    return {"repeat": unit.hex(), "count": count, "then": data[count:].hex()}


def check(case: CodecCase) -> None:
    """Refuse to go on if the library disagrees with the case."""
    limits = CodecLimits(**{LIMIT_NAMES[k]: v for k, v in case.limits.items()})
    if case.error is None:
        if codec.encode(case.value, limits=limits) != case.data:
            raise AssertionError(f"codec: encode({case.comment}) differs")
        if typed(codec.decode(case.data, limits=limits)) != typed(case.value):
            raise AssertionError(f"codec: decode({case.comment}) differs")
        return
    try:
        codec.decode(case.data, limits=limits)
    except NcbRelayError as exc:
        if exc.code != case.error:
            raise AssertionError(f"codec: {case.comment}: {exc.code} != {case.error}") from exc
    else:
        raise AssertionError(f"codec: {case.comment}: accepted")


def entry(case: CodecCase) -> JSON:
    check(case)
    out: JSON = {"comment": case.comment, "flags": case.flags, "requirements": case.requirements}
    if case.limits:
        out["limits"] = case.limits
    # the only large inputs are long runs of one byte followed by a tail
    out["input"] = compact_hex(case.data) if len(case.data) > 4096 else {"hex": case.data.hex()}
    if case.error is None:
        out |= {"value": typed(case.value), "result": "valid"}
    else:
        out |= {"result": "invalid", "error": case.error}
    return out


def build() -> dict[str, Any]:
    defaults = CodecLimits()
    doc = document(
        algorithm="NCBR/1 canonical msgpack profile",
        header=[
            "Canonical msgpack profile of NCBR/1 (requirements CODEC-1 .. CODEC-7).",
            "Valid cases: decoding input yields value, and encoding value yields input.",
            "Invalid cases: decoding input fails with the error code given.",
            "Values use the typed JSON form described in spec/vectors.md.",
        ],
        notes=NOTES,
        fields={"limits": {k: getattr(defaults, v) for k, v in LIMIT_NAMES.items()}},
        groups=[
            ("CodecValid", [entry(c) for c in valid_cases()]),
            ("CodecInvalid", [entry(c) for c in invalid_cases()]),
        ],
    )
    return {"codec.json": doc}
