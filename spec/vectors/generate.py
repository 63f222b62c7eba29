#!/usr/bin/env python3
"""Generate the published NCBR/1 test vectors (described in spec/vectors.md).

Run from the repository root with the project's Python::

    python spec/vectors/generate.py          # rewrite spec/vectors/*.json
    python spec/vectors/generate.py --check  # exit 1 if regenerating would change a file

Everything is deterministic: keys come from fixed seeds, randomness is derived
from fixed labels and fed to ``seal`` as recorded values, and "now" is fixed,
so regeneration is byte-identical.

Each case states its expected outcome by hand here (the error code an
attack must produce); the generator then runs the library on it and refuses
to write a file if the library disagrees.  Malicious but validly signed
envelopes are built from the library's lower-level pieces (primitives, the
canonical codec, and the helpers and labels of ``ncb_relay.envelope``) with the
sender's test key, never by patching the library.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ncb_relay import codec, primitives
from ncb_relay.codec import CodecLimits, Value
from ncb_relay.directory import StaticDirectory
from ncb_relay.envelope import (
    INNER_SIGNATURE_LABEL,
    OUTER_SIGNATURE_LABEL,
    PAYLOAD_NONCE,
    PERSON_BODY,
    PERSON_PAYLOAD,
    SealedEnvelope,
    commitment,
    header_hash,
    message_hash,
    open_envelope,
    payload_key,
    seal,
    verify_routing,
    wrap_pad,
)
from ncb_relay.errors import DecryptionFailed, NcbRelayError
from ncb_relay.freshness import FreshnessPolicy, ReplayGuard
from ncb_relay.header import MAX_SEQ, MAX_TTL, SUITE, SUITE_NAME, VERSION, EnvelopeLimits
from ncb_relay.identity import EncryptionKeyPair, PrivateIdentity, SigningKeyPair

JSON = dict[str, Any]

HERE = Path(__file__).resolve().parent
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
MAX_SKEW = 300
DEFAULT_ENVELOPE_LIMITS = EnvelopeLimits()
GENERATOR = "spec/vectors/generate.py"

# ---------------------------------------------------------------------------------
# Principals: every key is derived from a fixed seed and published with it.
# ---------------------------------------------------------------------------------

DIRECTORY_IDS = (
    "KR.ncb-seoul",
    "MA.ncb-rabat",
    "XP.interpol-gs",
    "FR.ncb-paris",
    "JP.ncb-tokyo",
    "DE.ncb-wiesbaden",
    "BR.ncb-brasilia",
    "ZA.ncb-pretoria",
    "US.ncb-washington",
    "IN.ncb-new-delhi",
    "AU.ncb-canberra",
    "CA.ncb-ottawa",
)
OUTSIDER_ID = "QZ.not-in-directory"
PERSON_TV_SIGN = b"NCBR1 tv sign"
PERSON_TV_ENCRYPT = b"NCBR1 tv encrypt"
PERSON_TV_CONTENT_KEY = b"NCBR1 tv K"
PERSON_TV_EPHEMERAL = b"NCBR1 tv eph"
PERSON_TV_OTHER = b"NCBR1 tv other"


def derive(label: str, person: bytes) -> bytes:
    """A fixed 32-byte test value: BLAKE2b-256(label, person=person)."""
    return primitives.blake2b(label.encode("utf-8"), person=person)


@dataclass(frozen=True, eq=False)
class Principal:
    id: str
    in_directory: bool
    signing: SigningKeyPair
    encryption: EncryptionKeyPair

    @property
    def identity(self) -> PrivateIdentity:
        return PrivateIdentity(self.id, self.signing, [self.encryption])

    @property
    def signing_key_id(self) -> bytes:
        return self.signing.public_key.key_id

    @property
    def encryption_key_id(self) -> bytes:
        return self.encryption.public_key.key_id

    @property
    def encryption_public(self) -> bytes:
        return self.encryption.public_key.raw

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "inDirectory": self.in_directory,
            "signingSeed": self.signing.seed.hex(),
            "signingPublicKey": self.signing.public_key.raw.hex(),
            "signingFingerprint": self.signing.public_key.fingerprint.hex(),
            "signingKeyId": self.signing_key_id.hex(),
            "encryptionSecret": self.encryption.secret.hex(),
            "encryptionPublicKey": self.encryption_public.hex(),
            "encryptionFingerprint": self.encryption.public_key.fingerprint.hex(),
            "encryptionKeyId": self.encryption_key_id.hex(),
        }


def make_principal(pid: str, *, in_directory: bool = True) -> Principal:
    return Principal(
        pid,
        in_directory,
        SigningKeyPair(derive(pid, PERSON_TV_SIGN)),
        EncryptionKeyPair(derive(pid, PERSON_TV_ENCRYPT)),
    )


CAST: dict[str, Principal] = {pid: make_principal(pid) for pid in DIRECTORY_IDS}
CAST[OUTSIDER_ID] = make_principal(OUTSIDER_ID, in_directory=False)
POOL = tuple(CAST[pid] for pid in DIRECTORY_IDS)
S = CAST["KR.ncb-seoul"]  # the usual sender
A = CAST["MA.ncb-rabat"]  # a recipient
B = CAST["XP.interpol-gs"]  # another recipient
C = CAST["FR.ncb-paris"]  # a third party in the directory
OUTSIDER = CAST[OUTSIDER_ID]  # not in the directory
DIRECTORY = StaticDirectory(p.identity.public for p in POOL)


def principals_json(principals: Sequence[Principal]) -> list[JSON]:
    return [p.to_json() for p in principals]


# ---------------------------------------------------------------------------------
# Honest and malicious construction from the library's pieces
# ---------------------------------------------------------------------------------


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def recorded(*values: bytes) -> Callable[[int], bytes]:
    """A RandomSource that returns the given values in order (and checks the sizes)."""
    queue = list(values)

    def rng(n: int) -> bytes:
        value = queue.pop(0)
        if len(value) != n:
            raise AssertionError(f"recorded value has {len(value)} bytes, {n} requested")
        return value

    return rng


@dataclass(frozen=True)
class Draft:
    """What a sender decides: everything ``seal`` takes, with the randomness named by a label."""

    label: str
    sender: Principal
    recipients: tuple[Principal, ...]
    body: bytes
    seq: int
    created: int = NOW
    ttl: int = 86_400
    reply_to: bytes | None = None

    @property
    def content_key(self) -> bytes:
        return derive(self.label, PERSON_TV_CONTENT_KEY)

    @property
    def ephemeral_secret(self) -> bytes:
        return derive(self.label, PERSON_TV_EPHEMERAL)

    @property
    def sorted_recipients(self) -> list[Principal]:
        return sorted(self.recipients, key=lambda p: p.id.encode("ascii"))


def wrap_entry(
    content_key: bytes, ephemeral_secret: bytes, message_id: bytes, recipient: Principal
) -> list[Value]:
    """One recipient entry [id, key id, K xor pad] (SEAL-3)."""
    ephemeral = primitives.x25519_public_key(ephemeral_secret)
    shared = primitives.x25519(ephemeral_secret, recipient.encryption_public)
    pad = wrap_pad(shared, ephemeral, recipient.encryption_public, message_id)
    return [recipient.id, recipient.encryption_key_id, xor(content_key, pad)]


def honest_fields(d: Draft) -> list[Value]:
    """The 11 header fields an honest sender would sign."""
    message_id = commitment(d.content_key)
    return [
        VERSION,
        SUITE,
        message_id,
        d.sender.id,
        d.sender.signing_key_id,
        d.seq,
        d.created,
        d.created + d.ttl,
        d.reply_to,
        primitives.x25519_public_key(d.ephemeral_secret),
        [wrap_entry(d.content_key, d.ephemeral_secret, message_id, r) for r in d.sorted_recipients],
    ]


# indexes of the header fields (ENV-2)
F_VERSION, F_SUITE, F_ID, F_SENDER, F_SENDER_KEY, F_SEQ = 0, 1, 2, 3, 4, 5
F_CREATED, F_EXPIRES, F_REPLY, F_EPHEMERAL, F_RECIPIENTS = 6, 7, 8, 9, 10


@dataclass(frozen=True)
class Forged:
    """The three parts of an envelope, as bytes (and the inner signature, for reuse)."""

    header: bytes
    payload: bytes
    outer: bytes
    inner: bytes = b""
    body: bytes = b""

    @property
    def envelope(self) -> bytes:
        return codec.encode([self.header, self.payload, self.outer])


def inner_signature(
    signer: SigningKeyPair, header: bytes, body: bytes, label: bytes = INNER_SIGNATURE_LABEL
) -> bytes:
    b_digest = primitives.blake2b(body, person=PERSON_BODY)
    return signer.sign(label + header_hash(header) + b_digest)


def outer_signature(
    signer: SigningKeyPair, header: bytes, payload: bytes, label: bytes = OUTER_SIGNATURE_LABEL
) -> bytes:
    p_digest = primitives.blake2b(payload, person=PERSON_PAYLOAD)
    return signer.sign(label + header_hash(header) + p_digest)


def encrypt(content_key: bytes, header: bytes, plaintext: bytes) -> bytes:
    return primitives.aead_encrypt(
        payload_key(content_key), PAYLOAD_NONCE, plaintext, header_hash(header)
    )


def build(
    signer: SigningKeyPair,
    header: bytes | list[Value],
    content_key: bytes,
    body: bytes,
    *,
    inner: bytes | None = None,
    inner_label: bytes = INNER_SIGNATURE_LABEL,
) -> Forged:
    """Sign-encrypt-sign ``body`` under ``header`` exactly as SEAL-4..SEAL-6 say."""
    header_bytes = header if isinstance(header, bytes) else codec.encode(header)
    if inner is None:
        inner = inner_signature(signer, header_bytes, body, inner_label)
    payload = encrypt(content_key, header_bytes, inner + body)
    outer = outer_signature(signer, header_bytes, payload)
    return Forged(header_bytes, payload, outer, inner, body)


def resign(f: Forged, signer: SigningKeyPair, *, header: bytes | None = None) -> Forged:
    """Replace the header (optionally) and the outer signature, keeping the payload."""
    header_bytes = f.header if header is None else header
    return replace(f, header=header_bytes, outer=outer_signature(signer, header_bytes, f.payload))


def seal_draft(d: Draft) -> SealedEnvelope:
    return seal(
        d.body,
        sender=d.sender.identity,
        recipients=[r.identity.public for r in d.recipients],
        now=d.created,
        seq=d.seq,
        ttl=d.ttl,
        reply_to=d.reply_to,
        rng=recorded(d.content_key, d.ephemeral_secret),
    )


def honest(d: Draft) -> Forged:
    """Seal with the library and check that the piecewise construction agrees."""
    f = build(d.sender.signing, honest_fields(d), d.content_key, d.body)
    sealed = seal_draft(d)
    if sealed.data != f.envelope:
        raise AssertionError(f"{d.label}: seal() and the piecewise construction differ")
    return f


def fields_of(f: Forged) -> list[Value]:
    value = codec.decode(f.header)
    assert isinstance(value, list)
    return value


def recipient_entries(f: Forged) -> list[list[Value]]:
    """``f``'s recipient entries, each a three-element list."""
    entries = fields_of(f)[F_RECIPIENTS]
    assert isinstance(entries, list)
    out = []
    for entry in entries:
        assert isinstance(entry, list)
        out.append(list(entry))
    return out


def with_fields(f: Forged, **changes: Value) -> list[Value]:
    """A copy of ``f``'s header fields with some replaced (by field name)."""
    names = {
        "version": F_VERSION,
        "suite": F_SUITE,
        "message_id": F_ID,
        "sender": F_SENDER,
        "sender_key_id": F_SENDER_KEY,
        "seq": F_SEQ,
        "created": F_CREATED,
        "expires": F_EXPIRES,
        "reply_to": F_REPLY,
        "ephemeral": F_EPHEMERAL,
        "recipients": F_RECIPIENTS,
    }
    fields = fields_of(f)
    for name, value in changes.items():
        fields[names[name]] = value
    return fields


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


# ---------------------------------------------------------------------------------
# Running the library on a case (the generator checks every expectation it states)
# ---------------------------------------------------------------------------------


def envelope_limits(overrides: JSON | None) -> EnvelopeLimits:
    overrides = overrides or {}
    return EnvelopeLimits(
        max_envelope_bytes=overrides.get(
            "maxEnvelopeBytes", DEFAULT_ENVELOPE_LIMITS.max_envelope_bytes
        ),
        max_recipients=overrides.get("maxRecipients", DEFAULT_ENVELOPE_LIMITS.max_recipients),
    )


@dataclass
class Outcome:
    error: str | None = None
    reason: str | None = None
    body: bytes | None = None


def library_open(
    data: bytes, recipient: Principal, now: int, limits: EnvelopeLimits, guard: ReplayGuard
) -> Outcome:
    try:
        verified = open_envelope(
            data,
            recipient=recipient.identity,
            directory=DIRECTORY,
            now=now,
            replay=guard,
            limits=limits,
        )
    except DecryptionFailed as exc:
        return Outcome(exc.code, exc.reason)
    except NcbRelayError as exc:
        return Outcome(exc.code)
    return Outcome(body=verified.body)


def library_route(data: bytes, now: int, limits: EnvelopeLimits) -> str | None:
    try:
        verify_routing(
            data, directory=DIRECTORY, now=now, policy=FreshnessPolicy(MAX_SKEW), limits=limits
        )
    except NcbRelayError as exc:
        return exc.code
    return None


# ---------------------------------------------------------------------------------
# codec.json
# ---------------------------------------------------------------------------------


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


CODEC_LIMIT_NAMES = {
    "maxBytes": "max_bytes",
    "maxStrBytes": "max_str_bytes",
    "maxBinBytes": "max_bin_bytes",
    "maxArrayItems": "max_array_items",
    "maxMapItems": "max_map_items",
    "maxDepth": "max_depth",
}

CODEC_NOTES: JSON = {
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


@dataclass
class CodecCase:
    comment: str
    flags: list[str]
    requirements: list[str]
    data: bytes
    value: Value = None
    error: str | None = None
    limits: dict[str, int] = field(default_factory=dict)


def _nested_arrays(n: int) -> Value:
    value: Value = []
    for _ in range(n - 1):
        value = [value]
    return value


def codec_valid_cases() -> list[CodecCase]:
    canon = ["CODEC-1", "CODEC-2", "CODEC-6"]
    cases: list[tuple[str, list[str], list[str], Value, str]] = [
        ("nil", ["Canonical"], ["CODEC-1"], None, "c0"),
        ("false", ["Canonical"], ["CODEC-1"], False, "c2"),
        ("true", ["Canonical"], ["CODEC-1"], True, "c3"),
        ("0: positive fixint", ["Integer"], canon, 0, "00"),
        ("127: largest positive fixint", ["Integer"], canon, 127, "7f"),
        ("128: smallest uint 8", ["Integer"], canon, 128, "cc80"),
        ("255: largest uint 8", ["Integer"], canon, 255, "ccff"),
        ("256: smallest uint 16", ["Integer"], canon, 256, "cd0100"),
        ("65535: largest uint 16", ["Integer"], canon, 65535, "cdffff"),
        ("65536: smallest uint 32", ["Integer"], canon, 65536, "ce00010000"),
        ("2^32-1: largest uint 32", ["Integer"], canon, 2**32 - 1, "ceffffffff"),
        ("2^32: smallest uint 64", ["Integer"], canon, 2**32, "cf0000000100000000"),
        ("2^63-1: largest seq", ["Integer"], canon, MAX_SEQ, "cf7fffffffffffffff"),
        ("2^64-1: largest integer", ["Integer"], canon, 2**64 - 1, "cfffffffffffffffff"),
        ("1800000000: the vectors' now", ["Integer"], canon, NOW, "ce6b49d200"),
        ("-1: negative fixint", ["Integer"], canon, -1, "ff"),
        ("-32: smallest negative fixint", ["Integer"], canon, -32, "e0"),
        ("-33: largest int 8 value below fixint", ["Integer"], canon, -33, "d0df"),
        ("-128: smallest int 8", ["Integer"], canon, -128, "d080"),
        ("-129: largest int 16 value", ["Integer"], canon, -129, "d1ff7f"),
        ("-32768: smallest int 16", ["Integer"], canon, -32768, "d18000"),
        ("-32769: int 32", ["Integer"], canon, -32769, "d2ffff7fff"),
        ("-2^31: smallest int 32", ["Integer"], canon, -(2**31), "d280000000"),
        ("-2^31-1: int 64", ["Integer"], canon, -(2**31) - 1, "d3ffffffff7fffffff"),
        ("-2^63: smallest integer", ["Integer"], canon, -(2**63), "d38000000000000000"),
        ("empty str", ["Length"], canon, "", "a0"),
        ("a principal id", ["Length"], canon, "KR.ncb-seoul", "ac" + b"KR.ncb-seoul".hex()),
        ("str of 31 bytes: largest fixstr", ["Length"], canon, "a" * 31, "bf" + "61" * 31),
        ("str of 32 bytes: smallest str 8", ["Length"], canon, "a" * 32, "d920" + "61" * 32),
        ("str of 255 bytes: largest str 8", ["Length"], canon, "b" * 255, "d9ff" + "62" * 255),
        ("str of 256 bytes: str 16", ["Length"], canon, "c" * 256, "da0100" + "63" * 256),
        (
            "non-ASCII str (length counts UTF-8 bytes)",
            ["Length"],
            [*canon, "CODEC-4"],
            "Séoul 서울",
            "ad" + "Séoul 서울".encode().hex(),
        ),
        (
            "str with a 4-byte UTF-8 character and NUL",
            ["Length"],
            [*canon, "CODEC-4"],
            "\U0001f512\x00",
            "a5f09f949200",
        ),
        ("empty bin", ["Length"], canon, b"", "c400"),
        ("bin of 32 bytes", ["Length"], canon, bytes(range(32)), "c420" + bytes(range(32)).hex()),
        ("bin of 255 bytes: largest bin 8", ["Length"], canon, b"\xaa" * 255, "c4ff" + "aa" * 255),
        ("bin of 256 bytes: bin 16", ["Length"], canon, b"\xbb" * 256, "c50100" + "bb" * 256),
        ("empty array", ["Length"], canon, [], "90"),
        (
            "array of 15: largest fixarray",
            ["Length"],
            canon,
            list(range(15)),
            "9f" + bytes(range(15)).hex(),
        ),
        (
            "array of 16: array 16",
            ["Length"],
            canon,
            list(range(16)),
            "dc0010" + bytes(range(16)).hex(),
        ),
        (
            "mixed array",
            ["Canonical"],
            canon,
            [None, True, False, -1, "x", b"\x01", {"k": [1]}],
            "97c0c3c2ffa178c40101" + "81a16b9101",
        ),
        ("empty map", ["Length"], canon, {}, "80"),
        ("map of one entry", ["MapOrder"], [*canon, "CODEC-3"], {"a": 1}, "81a16101"),
        (
            "map keys: a prefix sorts first",
            ["MapOrder"],
            [*canon, "CODEC-3"],
            {"a": 1, "ab": 2, "b": 3},
            "83a16101a2616202a16203",
        ),
        (
            "map keys by UTF-8 bytes: 'Z' < 'a' < 'é'",
            ["MapOrder"],
            [*canon, "CODEC-3"],
            {"Z": 1, "a": 2, "é": 3},
            "83a15a01a16102a2c3a903",
        ),
        (
            "map keys by UTF-8 bytes: U+FF21 (ef bc a1) before U+1F512 (f0 9f 94 92), "
            "the reverse of UTF-16 order",
            ["MapOrder"],
            [*canon, "CODEC-3"],
            {"\uff21": 1, "\U0001f512": 2},
            "82a3efbca101a4f09f949202",
        ),
        (
            "map of 16 entries: map 16",
            ["Length"],
            [*canon, "CODEC-3"],
            {chr(0x61 + i): i for i in range(16)},
            "de0010" + "".join(f"a1{0x61 + i:02x}{i:02x}" for i in range(16)),
        ),
        (
            "16 nested arrays: the depth limit (16) exactly",
            ["Depth"],
            [*canon, "CODEC-7"],
            _nested_arrays(16),
            "91" * 15 + "90",
        ),
    ]
    return [
        CodecCase(comment, flags, reqs, bytes.fromhex(hex_), value)
        for comment, flags, reqs, value, hex_ in cases
    ]


def codec_invalid_cases() -> list[CodecCase]:
    out: list[CodecCase] = []

    def bad(
        comment: str,
        flags: list[str],
        reqs: list[str],
        hex_: str,
        error: str = "malformed",
        *,
        limits: dict[str, int] | None = None,
    ) -> None:
        out.append(
            CodecCase(
                comment,
                flags,
                reqs,
                bytes.fromhex(hex_),
                error=error,
                limits=limits or {},
            )
        )

    ints = ["CODEC-2", "CODEC-6"]
    bad("0 as uint 8", ["NonShortestInt"], ints, "cc00")
    bad("127 as uint 8", ["NonShortestInt"], ints, "cc7f")
    bad("255 as uint 16", ["NonShortestInt"], ints, "cd00ff")
    bad("1 as uint 16", ["NonShortestInt"], ints, "cd0001")
    bad("65535 as uint 32", ["NonShortestInt"], ints, "ce0000ffff")
    bad("2^32-1 as uint 64", ["NonShortestInt"], ints, "cf00000000ffffffff")
    bad("1800000000 as uint 64", ["NonShortestInt"], ints, "cf000000006b49d200")
    bad("1 as int 8", ["SignedFormatForNonNegative"], ints, "d001")
    bad("127 as int 8", ["SignedFormatForNonNegative"], ints, "d07f")
    bad("0 as int 16", ["SignedFormatForNonNegative"], ints, "d10000")
    bad("200 as int 16", ["SignedFormatForNonNegative"], ints, "d100c8")
    bad("1 as int 32", ["SignedFormatForNonNegative"], ints, "d200000001")
    bad("2^63-1 as int 64", ["SignedFormatForNonNegative"], ints, "d37fffffffffffffff")
    bad("-1 as int 8", ["NonShortestInt"], ints, "d0ff")
    bad("-32 as int 8", ["NonShortestInt"], ints, "d0e0")
    bad("-128 as int 16", ["NonShortestInt"], ints, "d1ff80")
    bad("-32768 as int 32", ["NonShortestInt"], ints, "d2ffff8000")
    bad("-2^31 as int 64", ["NonShortestInt"], ints, "d3ffffffff80000000")

    lengths = ["CODEC-2", "CODEC-6"]
    bad("str of 1 byte as str 8", ["NonShortestLength"], lengths, "d90161")
    bad("str of 31 bytes as str 8", ["NonShortestLength"], lengths, "d91f" + "61" * 31)
    bad("str of 32 bytes as str 16", ["NonShortestLength"], lengths, "da0020" + "61" * 32)
    bad("str of 1 byte as str 32", ["NonShortestLength"], lengths, "db0000000161")
    bad("bin of 1 byte as bin 16", ["NonShortestLength"], lengths, "c5000100")
    bad("bin of 1 byte as bin 32", ["NonShortestLength"], lengths, "c60000000100")
    bad("array of 1 as array 16", ["NonShortestLength"], lengths, "dc0001c0")
    bad("array of 15 as array 16", ["NonShortestLength"], lengths, "dc000f" + "c0" * 15)
    bad("array of 1 as array 32", ["NonShortestLength"], lengths, "dd00000001c0")
    bad("map of 1 as map 16", ["NonShortestLength"], lengths, "de0001a161c0")
    bad("map of 1 as map 32", ["NonShortestLength"], lengths, "df00000001a161c0")

    maps = ["CODEC-3", "CODEC-6"]
    bad("map keys out of order: b before a", ["UnsortedMap"], maps, "82a162c0a161c0")
    bad("map keys out of order: ab before its prefix a", ["UnsortedMap"], maps, "82a26162c0a161c0")
    bad(
        "map keys in UTF-16 order (U+1F512 before U+FF21), not UTF-8 order",
        ["UnsortedMap"],
        maps,
        "82a4f09f949202a3efbca101",
    )
    bad("duplicate map key", ["DuplicateKey"], maps, "82a161c0a161c0")
    bad("duplicate map key with different values", ["DuplicateKey"], maps, "82a16101a16102")
    bad("int map key", ["NonStrKey"], maps, "8101c0")
    bad("bin map key", ["NonStrKey"], maps, "81c40161c0")
    bad("nil map key", ["NonStrKey"], maps, "81c0c0")
    bad("array map key", ["NonStrKey"], maps, "8190c0")

    types = ["CODEC-1"]
    bad("reserved byte 0xc1", ["Reserved"], types, "c1")
    bad("float 32 (1.0)", ["Float"], types, "ca3f800000")
    bad("float 64 (1.0)", ["Float"], types, "cb3ff0000000000000")
    bad("float 64 (0.0) inside an array", ["Float"], types, "91cb0000000000000000")
    bad("fixext 1, type 1", ["Extension"], types, "d40100")
    bad("fixext 2, type 2", ["Extension"], types, "d5020000")
    bad("fixext 16, type 5", ["Extension"], types, "d805" + "00" * 16)
    bad("ext 8, type 5", ["Extension"], types, "c70105aa")
    bad("ext 16, type 5", ["Extension"], types, "c8000105aa")
    bad("ext 32, type 5", ["Extension"], types, "c90000000105aa")
    bad("timestamp 32 (ext -1)", ["Timestamp"], types, "d6ff6b49d200")
    bad("timestamp 64 (ext -1)", ["Timestamp"], types, "d7ff000000006b49d200")
    bad("timestamp 96 (ext -1)", ["Timestamp"], types, "c70cff00000000000000006b49d200")

    utf8 = ["CODEC-4", "CODEC-6"]
    bad("str with byte 0xff", ["InvalidUtf8"], utf8, "a1ff")
    bad("str with overlong '/' (c0 af)", ["InvalidUtf8"], utf8, "a2c0af")
    bad("str with overlong 3-byte '/' (e0 80 af)", ["InvalidUtf8"], utf8, "a3e080af")
    bad("str with a UTF-16 surrogate (ed a0 80)", ["InvalidUtf8"], utf8, "a3eda080")
    bad("str with a code point above U+10FFFF", ["InvalidUtf8"], utf8, "a4f4908080")
    bad("str ending inside a character", ["InvalidUtf8"], utf8, "a2e282")
    bad("map key with invalid UTF-8", ["InvalidUtf8"], utf8, "81a1ffc0")

    shape = ["CODEC-5"]
    bad("empty input", ["Truncated"], shape, "")
    bad("trailing nil after nil", ["TrailingBytes"], shape, "c0c0")
    bad("trailing byte after an array", ["TrailingBytes"], shape, "9000")
    bad("uint 16 cut short", ["Truncated"], shape, "cd01")
    bad("str cut short", ["Truncated"], shape, "a261")
    bad("array cut short", ["Truncated"], shape, "9201")
    bad("map value missing", ["Truncated"], shape, "81a161")
    bad("bin 8 length byte missing", ["Truncated"], shape, "c4")

    beyond = ["CODEC-5", "CODEC-7"]
    bad("bin 16 of 65535 bytes, 1 present", ["LengthBeyondInput"], beyond, "c5ffff00")
    bad("str 16 of 65535 bytes, 1 present", ["LengthBeyondInput"], beyond, "daffff61")
    bad("bin 32 of 2^24 bytes, none present", ["LengthBeyondInput"], beyond, "c601000000")
    bad("array 16 of 256 items, none present", ["LengthBeyondInput"], beyond, "dc0100")
    bad("map 16 of 200 entries, none present", ["LengthBeyondInput"], beyond, "de00c8")
    # CODEC-7: a count above its limit is limit-exceeded as soon as it is read; a str or
    # bin that runs past the end of the input is malformed, whatever its length limit.
    bad(
        "array 32 of 2^32-1 items, none present: the count is above maxArrayItems",
        ["LengthBeyondInput", "Limit"],
        beyond,
        "ddffffffff",
        "limit-exceeded",
    )
    bad(
        "array 16 of 65535 items, none present: the count is above maxArrayItems",
        ["LengthBeyondInput", "Limit"],
        beyond,
        "dcffff",
        "limit-exceeded",
    )
    bad(
        "map 32 of 2^32-1 entries, none present: the count is above maxMapItems",
        ["LengthBeyondInput", "Limit"],
        beyond,
        "dfffffffff",
        "limit-exceeded",
    )
    bad(
        "str 32 of 2^32-1 bytes, 1 present: runs past the input (malformed, although also "
        "above maxStrBytes)",
        ["LengthBeyondInput"],
        beyond,
        "dbffffffff61",
    )
    bad(
        "bin 32 of 2^32-1 bytes, 1 present: runs past the input (malformed, although also "
        "above maxBinBytes)",
        ["LengthBeyondInput"],
        beyond,
        "c6ffffffff00",
    )

    lim = ["CODEC-7"]
    bad("17 nested arrays (limit 16)", ["Depth"], lim, "91" * 16 + "90", "limit-exceeded")
    bad(
        "17 nested maps (limit 16)",
        ["Depth"],
        lim,
        "81a161" * 16 + "80",
        "limit-exceeded",
    )
    bad("100000 nested arrays", ["Depth"], lim, "91" * 100_000 + "90", "limit-exceeded")
    bad(
        "input longer than maxBytes",
        ["Limit"],
        lim,
        "a461626364",
        "limit-exceeded",
        limits={"maxBytes": 4},
    )
    bad(
        "str longer than maxStrBytes",
        ["Limit"],
        lim,
        "a461626364",
        "limit-exceeded",
        limits={"maxStrBytes": 3},
    )
    bad(
        "bin longer than maxBinBytes",
        ["Limit"],
        lim,
        "c403010203",
        "limit-exceeded",
        limits={"maxBinBytes": 2},
    )
    bad(
        "array longer than maxArrayItems",
        ["Limit"],
        lim,
        "93010203",
        "limit-exceeded",
        limits={"maxArrayItems": 2},
    )
    bad(
        "map larger than maxMapItems",
        ["Limit"],
        lim,
        "82a16101a16202",
        "limit-exceeded",
        limits={"maxMapItems": 1},
    )
    bad(
        "nesting deeper than maxDepth",
        ["Limit", "Depth"],
        lim,
        "919190",
        "limit-exceeded",
        limits={"maxDepth": 2},
    )
    return out


def codec_limits(overrides: dict[str, int]) -> CodecLimits:
    return CodecLimits(**{CODEC_LIMIT_NAMES[k]: v for k, v in overrides.items()})


def check_codec_case(case: CodecCase) -> None:
    limits = codec_limits(case.limits)
    if case.error is None:
        if codec.encode(case.value, limits=limits) != case.data:
            raise AssertionError(f"codec: encode({case.comment}) differs")
        decoded = codec.decode(case.data, limits=limits)
        if typed(decoded) != typed(case.value):
            raise AssertionError(f"codec: decode({case.comment}) differs")
        return
    try:
        codec.decode(case.data, limits=limits)
    except NcbRelayError as exc:
        if exc.code != case.error:
            raise AssertionError(f"codec: {case.comment}: {exc.code} != {case.error}") from exc
    else:
        raise AssertionError(f"codec: {case.comment}: accepted")


def codec_file() -> JSON:
    defaults = CodecLimits()
    tests: list[JSON] = []
    for tc, case in enumerate(codec_valid_cases() + codec_invalid_cases(), start=1):
        check_codec_case(case)
        entry: JSON = {
            "tcId": tc,
            "comment": case.comment,
            "flags": case.flags,
            "requirements": case.requirements,
        }
        if case.limits:
            entry["limits"] = case.limits
        if len(case.data) > 4096:
            # the only large inputs are long runs of one byte followed by a tail
            entry["input"] = compact_hex(case.data)
        else:
            entry["input"] = {"hex": case.data.hex()}
        if case.error is None:
            entry["value"] = typed(case.value)
            entry["result"] = "valid"
        else:
            entry["result"] = "invalid"
            entry["error"] = case.error
        tests.append(entry)
    valid = [t for t in tests if t["result"] == "valid"]
    invalid = [t for t in tests if t["result"] == "invalid"]
    return {
        "protocol": "NCBR/1",
        "algorithm": "NCBR/1 canonical msgpack profile",
        "generatedBy": GENERATOR,
        "numberOfTests": len(tests),
        "header": [
            "Canonical msgpack profile of NCBR/1 (requirements CODEC-1 .. CODEC-7).",
            "Valid cases: decoding input yields value, and encoding value yields input.",
            "Invalid cases: decoding input fails with the error code given.",
            "Values use the typed JSON form described in spec/vectors.md.",
        ],
        "notes": CODEC_NOTES,
        "limits": {
            "maxBytes": defaults.max_bytes,
            "maxStrBytes": defaults.max_str_bytes,
            "maxBinBytes": defaults.max_bin_bytes,
            "maxArrayItems": defaults.max_array_items,
            "maxMapItems": defaults.max_map_items,
            "maxDepth": defaults.max_depth,
        },
        "testGroups": [
            {"type": "CodecValid", "tests": valid},
            {"type": "CodecInvalid", "tests": invalid},
        ],
    }


def compact_hex(data: bytes) -> JSON:
    """{"repeat": hex, "count": n, "then": hex}: ``count`` copies of ``repeat``, then ``then``."""
    unit = data[:1]
    count = len(data) - len(data.lstrip(unit))
    return {"repeat": unit.hex(), "count": count, "then": data[count:].hex()}


# ---------------------------------------------------------------------------------
# envelope.json
# ---------------------------------------------------------------------------------

ENVELOPE_NOTES: JSON = {
    "Honest": "Sealed by the reference library's seal() with the recorded randomness.",
    "MaliciousSender": "Built and validly signed by the sender itself (a buggy or hostile "
    "sender): the signatures verify, and the receiver must still refuse.",
    "SignatureStripping": "The outer signature removed, zeroed, or taken from another message.",
    "SenderSubstitution": "The sender field or sender key id changed, or the routing header "
    "re-signed by another principal.",
    "SurreptitiousForwarding": "A recipient re-seals the sender's inner signature and body to a "
    "third party; the inner signature covers the original header hash, so it fails.",
    "RecipientStripping": "A recipient entry removed from the header.",
    "RecipientExtension": "A recipient entry added to the header.",
    "KeyCommitment": "A recipient's wrapped key yields a content key that does not match the "
    "message id (the key commitment); that recipient must not decrypt anything.",
    "CrossContextSignature": "A signature made for another context (inner vs outer label, or "
    "no label) used in the wrong place.",
    "Replay": "A message seen before, or a sequence number reused.",
    "Freshness": "Created too far in the future or expired, with respect to now and max skew.",
    "Version": "A protocol version other than 1.",
    "Suite": "A suite other than 1.",
    "NonCanonical": "Not the canonical encoding (CODEC), even though the content is sensible.",
    "SmallOrderKey": "A small-order X25519 ephemeral key.",
    "UnknownKey": "A key or principal that the directory does not know.",
    "KeyBinding": "A key id that belongs to another principal or to another key type.",
    "Truncation": "A part of the envelope cut short.",
    "BitFlip": "A single bit flipped.",
    "PayloadSwap": "The payload of another message.",
    "ValidityWindow": "The expires - created window is empty or longer than 30 days.",
    "RecipientOrder": "Recipient entries unsorted or duplicated.",
    "Limit": "A size or count limit (the case's limits say which).",
    "NotARecipient": "Opened by a principal the envelope is not addressed to.",
    "Layout": "The envelope or header array has the wrong shape or field types.",
    "Boundary": "At the edge of what is allowed (and allowed).",
    "ReplyBinding": "A response checked against the request it claims to answer (BIND-2).",
}

ROUTING_PASSES = {"decryption-failed", "replay"}


class EnvelopeCases:
    def __init__(self) -> None:
        self.seal_tests: list[JSON] = []
        self.open_tests: list[JSON] = []
        self.reply_tests: list[JSON] = []
        self.tc = 0

    def next_id(self) -> int:
        self.tc += 1
        return self.tc

    # --- seal ---------------------------------------------------------------

    def seal_case(self, d: Draft, comment: str, flags: list[str], reqs: list[str]) -> Forged:
        sealed = seal_draft(d)
        f = honest(d)
        content_key, secret = d.content_key, d.ephemeral_secret
        message_id = commitment(content_key)
        ephemeral = primitives.x25519_public_key(secret)
        wraps = []
        for r in d.sorted_recipients:
            shared = primitives.x25519(secret, r.encryption_public)
            pad = wrap_pad(shared, ephemeral, r.encryption_public, message_id)
            wraps.append(
                {
                    "recipient": r.id,
                    "encryptionPublicKey": r.encryption_public.hex(),
                    "keyId": r.encryption_key_id.hex(),
                    "sharedSecret": shared.hex(),
                    "pad": pad.hex(),
                    "wrappedKey": xor(content_key, pad).hex(),
                }
            )
        h_digest = header_hash(f.header)
        p_digest = primitives.blake2b(f.payload, person=PERSON_PAYLOAD)
        m_hash = message_hash(h_digest, p_digest)
        assert sealed.header.encode() == f.header
        assert sealed.message_id == message_id
        assert sealed.message_hash == m_hash
        for r in d.recipients:
            got = library_open(f.envelope, r, NOW, DEFAULT_ENVELOPE_LIMITS, ReplayGuard())
            if got.body != d.body:
                raise AssertionError(f"{d.label}: {r.id} cannot open it: {got}")
        self.seal_tests.append(
            {
                "tcId": self.next_id(),
                "comment": comment,
                "flags": flags,
                "requirements": reqs,
                "sender": d.sender.id,
                "recipients": [r.id for r in d.sorted_recipients],
                "body": d.body.hex(),
                "seq": d.seq,
                "created": d.created,
                "ttl": d.ttl,
                "expires": d.created + d.ttl,
                "replyTo": None if d.reply_to is None else d.reply_to.hex(),
                "contentKey": content_key.hex(),
                "ephemeralSecret": secret.hex(),
                "messageId": message_id.hex(),
                "ephemeralPublicKey": ephemeral.hex(),
                "wraps": wraps,
                "header": f.header.hex(),
                "headerHash": h_digest.hex(),
                "bodyHash": primitives.blake2b(d.body, person=PERSON_BODY).hex(),
                "innerSignature": f.inner.hex(),
                "payloadKey": payload_key(content_key).hex(),
                "payload": f.payload.hex(),
                "payloadHash": p_digest.hex(),
                "outerSignature": f.outer.hex(),
                "messageHash": m_hash.hex(),
                "envelope": f.envelope.hex(),
                "now": NOW,
                "result": "valid",
            }
        )
        return f

    # --- open ---------------------------------------------------------------

    def open_case(
        self,
        comment: str,
        flags: list[str],
        reqs: list[str],
        envelope: bytes,
        error: str | None,
        *,
        recipient: Principal = A,
        reason: str | None = None,
        body: bytes | None = None,
        limits: JSON | None = None,
        prior: Sequence[tuple[bytes, str | None]] = (),
        now: int = NOW,
    ) -> None:
        lim = envelope_limits(limits)
        guard = ReplayGuard(policy=FreshnessPolicy(MAX_SKEW))
        prior_json = []
        for data, expected in prior:
            got = library_open(data, recipient, now, lim, guard)
            if got.error != expected:
                raise AssertionError(f"{comment}: prior envelope gave {got.error}")
            prior_json.append(
                {"envelope": data.hex(), "result": "valid" if expected is None else "invalid"}
                | ({} if expected is None else {"error": expected})
            )
        got = library_open(envelope, recipient, now, lim, guard)
        if got.error != error or (reason is not None and got.reason != reason):
            raise AssertionError(f"{comment}: expected {error}/{reason}, library says {got}")
        if error is None and got.body != body:
            raise AssertionError(f"{comment}: wrong body")
        routing = None if error is None or error in ROUTING_PASSES else error
        if library_route(envelope, now, lim) != routing:
            raise AssertionError(f"{comment}: routing verdict differs from {routing}")
        entry: JSON = {
            "tcId": self.next_id(),
            "comment": comment,
            "flags": flags,
            "requirements": reqs,
            "recipient": recipient.id,
            "now": now,
        }
        if limits:
            entry["limits"] = limits
        if prior_json:
            entry["prior"] = prior_json
        entry["envelope"] = envelope.hex()
        entry["routingError"] = routing
        if error is None:
            assert body is not None
            entry["result"] = "valid"
            entry["body"] = body.hex()
        else:
            entry["result"] = "invalid"
            entry["error"] = error
            if got.reason is not None:
                entry["localReason"] = got.reason
        self.open_tests.append(entry)

    # --- reply binding ------------------------------------------------------

    def reply_case(
        self,
        comment: str,
        flags: list[str],
        reqs: list[str],
        request: Forged,
        response: Forged,
        *,
        opened_by: Principal,
        error: str | None,
    ) -> None:
        routed = verify_routing(request.envelope, directory=DIRECTORY, now=NOW)
        record = SealedEnvelope(
            request.envelope, routed.message_id, routed.message_hash, routed.header
        )
        verified = open_envelope(
            response.envelope,
            recipient=opened_by.identity,
            directory=DIRECTORY,
            now=NOW,
            replay=ReplayGuard(),
        )
        try:
            verified.require_reply_to(record)
            got = None
        except NcbRelayError as exc:
            got = exc.code
        if got != error:
            raise AssertionError(f"{comment}: expected {error}, library says {got}")
        entry: JSON = {
            "tcId": self.next_id(),
            "comment": comment,
            "flags": flags,
            "requirements": reqs,
            "request": request.envelope.hex(),
            "requestMessageHash": routed.message_hash.hex(),
            "response": response.envelope.hex(),
            "responseOpenedBy": opened_by.id,
            "now": NOW,
        }
        if error is None:
            entry["result"] = "valid"
        else:
            entry["result"] = "invalid"
            entry["error"] = error
        self.reply_tests.append(entry)


BODY_1 = b"Request for information, case 2027/0142: vehicle KR-12-3456, last seen Busan port."
BODY_2 = b"Follow-up, case 2027/0142: please add the registered owner's travel history."
REPLY_BODY = b"Case 2027/0142: vehicle shipped to Tanger Med on 2027-01-09; details follow."


def envelope_file() -> JSON:
    cases = EnvelopeCases()
    seal_reqs = ["ENV-1", "ENV-2", "ENV-9", "SEAL-1", "SEAL-2", "SEAL-3", "SEAL-4", "SEAL-5"]
    seal_reqs += ["SEAL-6", "CODEC-6", "CODEC-8", "KEY-2", "OPEN-8", "OPEN-9", "OPEN-10"]

    # ---- valid seals (also the bases of the attacks below) ----------------------
    d1 = Draft("base-1", S, (A, B), BODY_1, seq=10)
    m1 = cases.seal_case(
        d1, "two recipients (the base message M1 of the attacks)", ["Honest"], seal_reqs
    )
    d2 = Draft("base-2", S, (A, B), BODY_2, seq=11, created=NOW - 30)
    m2 = cases.seal_case(
        d2, "two recipients, another message M2 from the same sender", ["Honest"], seal_reqs
    )
    d_one = Draft("one-recipient", S, (A,), b"Hello from Seoul.", seq=1)
    m_one = cases.seal_case(d_one, "one recipient", ["Honest"], seal_reqs)
    ten = tuple(p for p in POOL if p not in (S, C))[:10]
    assert len(ten) == 10
    big_body = b"".join(
        f"Line {i:03d} of the notice: subject, aliases, identifiers.\n".encode() for i in range(10)
    )
    d_ten = Draft("ten-recipients", S, ten, big_body, seq=2, ttl=3 * 86_400)
    m_ten = cases.seal_case(d_ten, "ten recipients", ["Honest"], [*seal_reqs, "ENV-6"])
    d_reply = Draft(
        "reply",
        A,
        (S,),
        REPLY_BODY,
        seq=1,
        reply_to=message_hash(
            header_hash(m1.header), primitives.blake2b(m1.payload, person=PERSON_PAYLOAD)
        ),
    )
    m_reply = cases.seal_case(
        d_reply,
        "a reply from MA.ncb-rabat to M1, reply_to = M1's message hash",
        ["Honest"],
        [*seal_reqs, "BIND-2"],
    )
    d_empty = Draft("empty-body", S, (A, B), b"", seq=3)
    cases.seal_case(
        d_empty,
        "empty body: the payload is exactly 80 bytes",
        ["Honest", "Boundary"],
        [*seal_reqs, "ENV-7"],
    )
    d_maxttl = Draft("max-ttl", S, (B,), b"\x00\x01\x02\xff binary body", seq=4, ttl=MAX_TTL)
    cases.seal_case(
        d_maxttl,
        "validity window of exactly 30 days",
        ["Honest", "Boundary"],
        [*seal_reqs, "ENV-5"],
    )

    # shorthands for the attacks
    k1 = d1.content_key
    env1 = m1.envelope
    op = cases.open_case
    zero_sig = bytes(64)

    # ---- signature stripping -------------------------------------------------
    op(
        "outer signature zeroed",
        ["SignatureStripping"],
        ["SEAL-6", "OPEN-6"],
        Forged(m1.header, m1.payload, zero_sig).envelope,
        "bad-signature",
    )
    op(
        "outer signature removed: a two-element envelope",
        ["SignatureStripping", "Layout"],
        ["ENV-1", "OPEN-2"],
        codec.encode([m1.header, m1.payload]),
        "malformed",
    )
    op(
        "outer signature replaced by an empty bin",
        ["SignatureStripping", "Layout"],
        ["ENV-1", "OPEN-2"],
        codec.encode([m1.header, m1.payload, b""]),
        "malformed",
    )
    op(
        "outer signature of M2 on M1",
        ["SignatureStripping"],
        ["SEAL-6", "OPEN-6", "BIND-1"],
        Forged(m1.header, m1.payload, m2.outer).envelope,
        "bad-signature",
    )
    op(
        "outer signature: one bit flipped (first byte)",
        ["BitFlip"],
        ["SEAL-6", "OPEN-6"],
        Forged(m1.header, m1.payload, flip(m1.outer, 0)).envelope,
        "bad-signature",
    )
    op(
        "outer signature: one bit flipped (last byte, in S)",
        ["BitFlip"],
        ["SEAL-6", "OPEN-6"],
        Forged(m1.header, m1.payload, flip(m1.outer, 63, 3)).envelope,
        "bad-signature",
    )

    # ---- sender substitution -------------------------------------------------
    op(
        "sender field changed to FR.ncb-paris, sender key id still KR.ncb-seoul's",
        ["SenderSubstitution", "KeyBinding"],
        ["OPEN-4", "BIND-1"],
        Forged(codec.encode(with_fields(m1, sender=C.id)), m1.payload, m1.outer).envelope,
        "binding-mismatch",
    )
    op(
        "sender key id swapped for FR.ncb-paris's signing key id",
        ["SenderSubstitution", "KeyBinding"],
        ["OPEN-4", "BIND-1"],
        Forged(
            codec.encode(with_fields(m1, sender_key_id=C.signing_key_id)), m1.payload, m1.outer
        ).envelope,
        "binding-mismatch",
    )
    h = codec.encode(with_fields(m1, sender_key_id=S.encryption_key_id))
    op(
        "sender key id is the sender's own encryption key id (validly re-signed by the sender)",
        ["KeyBinding", "MaliciousSender"],
        ["KEY-1", "KEY-2", "OPEN-4"],
        resign(m1, S.signing, header=h).envelope,
        "binding-mismatch",
    )
    h = codec.encode(with_fields(m1, sender=C.id, sender_key_id=C.signing_key_id))
    op(
        "FR.ncb-paris sets sender and key id to its own and re-signs the outer signature; "
        "payload unchanged",
        ["SenderSubstitution"],
        ["BIND-1", "OPEN-9", "OPEN-10", "OPEN-11"],
        resign(m1, C.signing, header=h).envelope,
        "decryption-failed",
        reason="aead",
    )
    h = codec.encode(with_fields(m1, sender=B.id, sender_key_id=B.signing_key_id))
    m_b = build(B.signing, h, k1, BODY_1, inner=m1.inner)
    op(
        "XP.interpol-gs (a recipient, so it knows K) re-attributes M1: header names itself, "
        "payload re-encrypted under the new header with KR.ncb-seoul's inner signature, "
        "outer signed by XP.interpol-gs; MA.ncb-rabat opens",
        ["SenderSubstitution"],
        ["BIND-1", "OPEN-10", "OPEN-11"],
        m_b.envelope,
        "decryption-failed",
        reason="inner-signature",
    )
    op(
        "sender key id of a key not in the directory",
        ["UnknownKey", "SenderSubstitution"],
        ["OPEN-4"],
        resign(
            m1,
            OUTSIDER.signing,
            header=codec.encode(with_fields(m1, sender_key_id=OUTSIDER.signing_key_id)),
        ).envelope,
        "unknown-key",
    )
    d_out = Draft("outsider", OUTSIDER, (A,), b"I am not in your directory.", seq=1)
    op(
        "sealed by a principal that is not in the directory",
        ["UnknownKey", "Honest"],
        ["OPEN-4"],
        honest(d_out).envelope,
        "unknown-key",
    )

    # ---- surreptitious forwarding ----------------------------------------------
    d_fwd = Draft("forward", A, (C,), BODY_1, seq=5)
    fwd_fields = honest_fields(d_fwd)
    fwd = build(A.signing, fwd_fields, d_fwd.content_key, BODY_1, inner=m1.inner)
    op(
        "MA.ncb-rabat re-seals M1's inner signature and body to FR.ncb-paris under its own "
        "signed header",
        ["SurreptitiousForwarding"],
        ["SEAL-4", "OPEN-10", "OPEN-11", "BIND-1"],
        fwd.envelope,
        "decryption-failed",
        recipient=C,
        reason="inner-signature",
    )
    fwd_fields[F_SENDER] = S.id
    fwd_fields[F_SENDER_KEY] = S.signing_key_id
    fwd2 = build(A.signing, fwd_fields, d_fwd.content_key, BODY_1, inner=m1.inner)
    op(
        "MA.ncb-rabat re-seals M1's inner signature and body to FR.ncb-paris, header names "
        "KR.ncb-seoul as sender, outer signature by MA.ncb-rabat",
        ["SurreptitiousForwarding", "SenderSubstitution"],
        ["OPEN-6", "BIND-1"],
        fwd2.envelope,
        "bad-signature",
        recipient=C,
    )
    op(
        "M1 forwarded unchanged to FR.ncb-paris, which is not a recipient",
        ["NotARecipient", "SurreptitiousForwarding"],
        ["OPEN-8", "OPEN-11"],
        env1,
        "decryption-failed",
        recipient=C,
        reason="not-a-recipient",
    )

    # ---- recipient stripping and extension -------------------------------------
    entries: list[Value] = list(recipient_entries(m1))
    a_entry, _b_entry = recipient_entries(m1)
    assert a_entry[0] == A.id
    a_wrapped = a_entry[2]
    stripped = codec.encode(with_fields(m1, recipients=[a_entry]))
    op(
        "XP.interpol-gs's entry removed, signature unchanged",
        ["RecipientStripping"],
        ["BIND-1", "OPEN-6"],
        Forged(stripped, m1.payload, m1.outer).envelope,
        "bad-signature",
    )
    op(
        "XP.interpol-gs's entry removed, outer re-signed by FR.ncb-paris "
        "(sender still KR.ncb-seoul)",
        ["RecipientStripping"],
        ["BIND-1", "OPEN-6"],
        resign(m1, C.signing, header=stripped).envelope,
        "bad-signature",
    )
    stripped_c = codec.encode(
        with_fields(m1, recipients=[a_entry], sender=C.id, sender_key_id=C.signing_key_id)
    )
    op(
        "XP.interpol-gs's entry removed, sender set to FR.ncb-paris, re-signed by FR.ncb-paris",
        ["RecipientStripping", "SenderSubstitution"],
        ["BIND-1", "OPEN-9", "OPEN-11"],
        resign(m1, C.signing, header=stripped_c).envelope,
        "decryption-failed",
        reason="aead",
    )
    extra: list[Value] = [C.id, C.encryption_key_id, derive("extension", PERSON_TV_OTHER)]
    extended: list[Value] = [extra, *entries]  # FR.ncb-paris sorts before MA and XP
    assert [e[0] for e in recipient_entries(m1)] == [A.id, B.id]
    h_ext = codec.encode(with_fields(m1, recipients=extended))
    op(
        "FR.ncb-paris adds an entry for itself, signature unchanged",
        ["RecipientExtension"],
        ["BIND-1", "OPEN-6"],
        Forged(h_ext, m1.payload, m1.outer).envelope,
        "bad-signature",
        recipient=C,
    )
    # an insider (MA.ncb-rabat knows K) re-wraps K for A, B and C under a new ephemeral key
    e_ins = derive("insider-extension", PERSON_TV_EPHEMERAL)
    mid1 = commitment(k1)
    ins_entries: list[Value] = [
        wrap_entry(k1, e_ins, mid1, p) for p in sorted((A, B, C), key=lambda p: p.id)
    ]
    ins = with_fields(m1, ephemeral=primitives.x25519_public_key(e_ins), recipients=ins_entries)
    op(
        "MA.ncb-rabat (knows K) adds FR.ncb-paris: K re-wrapped for three under a new "
        "ephemeral key, payload re-encrypted with KR.ncb-seoul's inner signature, outer "
        "signed by MA.ncb-rabat while the header still names KR.ncb-seoul",
        ["RecipientExtension"],
        ["BIND-1", "OPEN-6"],
        build(A.signing, ins, k1, BODY_1, inner=m1.inner).envelope,
        "bad-signature",
        recipient=C,
    )
    ins[F_SENDER] = A.id
    ins[F_SENDER_KEY] = A.signing_key_id
    ins_env = build(A.signing, ins, k1, BODY_1, inner=m1.inner).envelope
    op(
        "as before, but the header names MA.ncb-rabat as sender: FR.ncb-paris opens it",
        ["RecipientExtension", "SurreptitiousForwarding"],
        ["BIND-1", "OPEN-10", "OPEN-11"],
        ins_env,
        "decryption-failed",
        recipient=C,
        reason="inner-signature",
    )
    op(
        "as before, opened by XP.interpol-gs (an original recipient)",
        ["RecipientExtension", "SurreptitiousForwarding"],
        ["BIND-1", "OPEN-10", "OPEN-11"],
        ins_env,
        "decryption-failed",
        recipient=B,
        reason="inner-signature",
    )

    # ---- malicious sender: different content keys for different recipients -------
    d_k = Draft(
        "two-keys", S, (A, B), b"Each of you reads the same message, or so you think.", seq=20
    )
    k_other = derive("two-keys-other", PERSON_TV_CONTENT_KEY)
    mid_k = commitment(d_k.content_key)
    fields_k = honest_fields(d_k)
    fields_k[F_RECIPIENTS] = [
        wrap_entry(d_k.content_key, d_k.ephemeral_secret, mid_k, A),
        wrap_entry(k_other, d_k.ephemeral_secret, mid_k, B),
    ]
    two_keys = build(S.signing, fields_k, d_k.content_key, d_k.body).envelope
    op(
        "the sender wraps a different content key K' for XP.interpol-gs (message id commits to K): "
        "XP.interpol-gs opens",
        ["KeyCommitment", "MaliciousSender"],
        ["SEAL-2", "OPEN-8", "OPEN-11"],
        two_keys,
        "decryption-failed",
        recipient=B,
        reason="key-commitment",
    )
    op(
        "the same envelope opened by MA.ncb-rabat, whose wrapped key is K: accepted",
        ["KeyCommitment", "MaliciousSender"],
        ["SEAL-2", "OPEN-8"],
        two_keys,
        None,
        recipient=A,
        body=d_k.body,
    )
    honest_k = honest(d_k).envelope
    op(
        "after refusing the K' envelope, XP.interpol-gs accepts the honest envelope with the same "
        "message id and seq (a refused message is not recorded)",
        ["KeyCommitment", "Replay"],
        ["OPEN-12", "REPLAY-1"],
        honest_k,
        None,
        recipient=B,
        body=d_k.body,
        prior=[(two_keys, "decryption-failed")],
    )
    f_mid = with_fields(m_one, message_id=derive("not-a-commitment", PERSON_TV_OTHER))
    fake_id = f_mid[F_ID]
    assert isinstance(fake_id, bytes)
    f_mid[F_RECIPIENTS] = [wrap_entry(d_one.content_key, d_one.ephemeral_secret, fake_id, A)]
    op(
        "message id is not the commitment of K (validly signed by the sender)",
        ["KeyCommitment", "MaliciousSender"],
        ["SEAL-2", "OPEN-8", "OPEN-11"],
        build(S.signing, f_mid, d_one.content_key, d_one.body).envelope,
        "decryption-failed",
        reason="key-commitment",
    )

    # ---- cross-context signatures ------------------------------------------------
    op(
        "M1's inner signature used as its outer signature",
        ["CrossContextSignature"],
        ["SEAL-4", "SEAL-6", "OPEN-6"],
        Forged(m1.header, m1.payload, m1.inner).envelope,
        "bad-signature",
    )
    unlabelled = S.signing.sign(
        header_hash(m1.header) + primitives.blake2b(m1.payload, person=PERSON_PAYLOAD)
    )
    op(
        "outer signature by the sender over header_hash || payload_hash without the label",
        ["CrossContextSignature"],
        ["SEAL-6", "OPEN-6"],
        Forged(m1.header, m1.payload, unlabelled).envelope,
        "bad-signature",
    )
    op(
        "outer signature by the sender with the inner label",
        ["CrossContextSignature"],
        ["SEAL-6", "OPEN-6"],
        Forged(
            m1.header,
            m1.payload,
            outer_signature(S.signing, m1.header, m1.payload, INNER_SIGNATURE_LABEL),
        ).envelope,
        "bad-signature",
    )
    op(
        "inner signature without the label (validly sealed otherwise)",
        ["CrossContextSignature", "MaliciousSender"],
        ["SEAL-4", "OPEN-10", "OPEN-11"],
        build(S.signing, m1.header, k1, BODY_1, inner_label=b"").envelope,
        "decryption-failed",
        reason="inner-signature",
    )
    op(
        "inner signature with the outer label (validly sealed otherwise)",
        ["CrossContextSignature", "MaliciousSender"],
        ["SEAL-4", "OPEN-10", "OPEN-11"],
        build(S.signing, m1.header, k1, BODY_1, inner_label=OUTER_SIGNATURE_LABEL).envelope,
        "decryption-failed",
        reason="inner-signature",
    )
    op(
        "inner signature of M2 (another header) inside M1 (validly sealed otherwise)",
        ["CrossContextSignature", "MaliciousSender"],
        ["SEAL-4", "OPEN-10", "OPEN-11"],
        build(S.signing, m1.header, k1, BODY_1, inner=m2.inner).envelope,
        "decryption-failed",
        reason="inner-signature",
    )

    # ---- replay ------------------------------------------------------------------
    op(
        "M1 opened a second time",
        ["Replay"],
        ["REPLAY-1", "OPEN-7"],
        env1,
        "replay",
        prior=[(env1, None)],
    )
    d1b = replace(d1, label="base-1-again", body=b"Same seq, new message.")
    op(
        "another message from the same sender with M1's seq",
        ["Replay"],
        ["REPLAY-2", "OPEN-7", "ENV-8"],
        honest(d1b).envelope,
        "replay",
        prior=[(env1, None)],
    )
    op(
        "M1 (seq 10) arrives after M2 (seq 11), inside its window: not a replay",
        ["Replay", "Boundary"],
        ["REPLAY-3"],
        env1,
        None,
        body=BODY_1,
        prior=[(m2.envelope, None)],
    )
    op(
        "XP.interpol-gs accepted the honest envelope, then gets the K' envelope with the same "
        "message id: replay is checked before decryption",
        ["Replay", "KeyCommitment"],
        ["OPEN-7", "REPLAY-1"],
        two_keys,
        "replay",
        recipient=B,
        prior=[(honest_k, None)],
    )

    # ---- freshness -------------------------------------------------------------
    fresh = ["FRESH-1", "FRESH-2", "OPEN-3"]
    d_stale = Draft("stale", S, (A,), b"Old news.", seq=30, created=NOW - 3600 - MAX_SKEW, ttl=3600)
    op(
        "expired max_skew seconds ago (now = expires + 300)",
        ["Freshness"],
        fresh,
        honest(d_stale).envelope,
        "stale",
    )
    d_edge = replace(d_stale, label="stale-edge", created=NOW - 3600 - MAX_SKEW + 1)
    op(
        "expires + 299 = now: still accepted",
        ["Freshness", "Boundary"],
        fresh,
        honest(d_edge).envelope,
        None,
        body=d_edge.body,
    )
    d_future = Draft("future", S, (A,), b"From the future.", seq=31, created=NOW + MAX_SKEW + 1)
    op("created now + 301", ["Freshness"], fresh, honest(d_future).envelope, "future-dated")
    d_future_edge = replace(d_future, label="future-edge", created=NOW + MAX_SKEW)
    op(
        "created now + 300: accepted",
        ["Freshness", "Boundary"],
        fresh,
        honest(d_future_edge).envelope,
        None,
        body=d_future_edge.body,
    )

    # ---- version and suite (all validly signed by the sender) -------------------
    def signed(fields: list[Value], body: bytes = BODY_1) -> bytes:
        return build(S.signing, fields, k1, body).envelope

    op(
        "version 2, otherwise M1, validly signed",
        ["Version", "MaliciousSender"],
        ["ENV-3", "OPEN-2"],
        signed(with_fields(m1, version=2)),
        "unsupported-version",
    )
    op(
        "version 2 header of two fields [2, 1], validly signed",
        ["Version", "MaliciousSender"],
        ["ENV-3"],
        signed([2, 1]),
        "unsupported-version",
    )
    op(
        "version 0, validly signed",
        ["Version", "MaliciousSender"],
        ["ENV-3"],
        signed(with_fields(m1, version=0)),
        "unsupported-version",
    )
    op(
        "version 2^64-1 and suite 7, validly signed: the version is reported",
        ["Version", "MaliciousSender"],
        ["ENV-3"],
        signed(with_fields(m1, version=2**64 - 1, suite=7)),
        "unsupported-version",
    )
    op(
        "suite 2, validly signed",
        ["Suite", "MaliciousSender"],
        ["ENV-4", "OPEN-2"],
        signed(with_fields(m1, suite=2)),
        "unsupported-suite",
    )
    op(
        "version as str '1', validly signed",
        ["Version", "Layout", "MaliciousSender"],
        ["ENV-2", "CODEC-4"],
        signed(with_fields(m1, version="1")),
        "malformed",
    )
    op(
        "version true (c3): a boolean is never a uint, validly signed",
        ["Version", "Layout", "MaliciousSender"],
        ["ENV-2", "ENV-3", "OPEN-2"],
        signed(with_fields(m1, version=True)),
        "malformed",
    )
    op(
        "header of one field [1], validly signed",
        ["Layout", "MaliciousSender"],
        ["ENV-2", "OPEN-2"],
        signed([1]),
        "malformed",
    )

    # ---- non-canonical encodings --------------------------------------------------
    assert len(m_one.header) < 256
    enc = codec.encode
    op(
        "header bin (181 bytes) in bin 16 format",
        ["NonCanonical"],
        ["CODEC-2", "CODEC-6", "OPEN-2"],
        b"\x93\xc5"
        + len(m_one.header).to_bytes(2, "big")
        + m_one.header
        + enc(m_one.payload)
        + enc(m_one.outer),
        "malformed",
    )
    op(
        "payload bin in bin 32 format",
        ["NonCanonical"],
        ["CODEC-2", "CODEC-6", "OPEN-2"],
        b"\x93"
        + enc(m_one.header)
        + b"\xc6"
        + len(m_one.payload).to_bytes(4, "big")
        + m_one.payload
        + enc(m_one.outer),
        "malformed",
    )
    one_fields = fields_of(m_one)
    parts = [enc(v) for v in one_fields]
    assert parts[F_SEQ] == b"\x01"
    parts[F_SEQ] = b"\xcd\x00\x01"
    noncanon_header = b"\x9b" + b"".join(parts)
    op(
        "header bytes with seq 1 as uint 16; both signatures and the AEAD over those exact bytes",
        ["NonCanonical", "MaliciousSender"],
        ["CODEC-2", "CODEC-6", "CODEC-8", "OPEN-2"],
        build(S.signing, noncanon_header, d_one.content_key, d_one.body).envelope,
        "malformed",
    )
    op(
        "one trailing byte after the envelope",
        ["NonCanonical", "Layout"],
        ["CODEC-5", "OPEN-2"],
        m_one.envelope + b"\xc0",
        "malformed",
    )
    op(
        "envelope cut by one byte",
        ["Truncation"],
        ["CODEC-5", "OPEN-2"],
        m_one.envelope[:-1],
        "malformed",
    )
    op(
        "four-element envelope (extra nil): above the outer array limit of 3 (LIM-3), so "
        "limit-exceeded while decoding, before the shape is checked",
        ["Layout", "Limit"],
        ["ENV-1", "LIM-3", "OPEN-2"],
        enc([m_one.header, m_one.payload, m_one.outer, None]),
        "limit-exceeded",
    )
    op(
        "envelope as a map of header, payload, signature",
        ["Layout"],
        ["ENV-1", "OPEN-2"],
        enc({"header": m_one.header, "payload": m_one.payload, "signature": m_one.outer}),
        "malformed",
    )
    op(
        "header carried as str (its hex) instead of bin",
        ["Layout"],
        ["ENV-1", "CODEC-4", "OPEN-2"],
        enc([m_one.header.hex(), m_one.payload, m_one.outer]),
        "malformed",
    )
    op(
        "outer nesting 3 deep: signature wrapped as [[signature]]",
        ["Layout", "Limit"],
        ["LIM-3", "OPEN-2"],
        enc([m_one.header, m_one.payload, [[m_one.outer]]]),
        "limit-exceeded",
    )
    op(
        "header of 12 fields (extra nil), validly signed",
        ["Layout", "MaliciousSender"],
        ["ENV-2", "OPEN-2"],
        signed([*fields_of(m1), None]),
        "malformed",
    )
    op(
        "reply_to of 31 bytes, validly signed",
        ["Layout", "MaliciousSender"],
        ["ENV-2", "OPEN-2"],
        signed(with_fields(m1, reply_to=bytes(31))),
        "malformed",
    )
    op(
        "seq 2^63, validly signed",
        ["Layout", "MaliciousSender"],
        ["ENV-2", "OPEN-2"],
        signed(with_fields(m1, seq=2**63)),
        "malformed",
    )
    op(
        "created 2^40 + 1, validly signed",
        ["Layout", "MaliciousSender"],
        ["ENV-2", "OPEN-2"],
        signed(with_fields(m1, created=2**40 + 1, expires=2**40 + 2)),
        "malformed",
    )
    op(
        "sender 'kr.ncb-seoul' (lower-case country), validly signed",
        ["Layout", "MaliciousSender"],
        ["ID-1", "OPEN-2"],
        signed(with_fields(m1, sender="kr.ncb-seoul")),
        "malformed",
    )

    # ---- small-order ephemeral keys (validly signed) ----------------------------
    for comment, point in (
        ("all-zero ephemeral key", "00" * 32),
        ("ephemeral key 1 with bit 255 set", "01" + "00" * 30 + "80"),
        (
            "ephemeral key of order 8 (e0eb7a7c...)",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ),
        ("ephemeral key p (2^255 - 19, non-canonical zero)", "ed" + "ff" * 30 + "7f"),
    ):
        op(
            comment + ", validly signed",
            ["SmallOrderKey", "MaliciousSender"],
            ["KEY-4", "OPEN-2"],
            signed(with_fields(m1, ephemeral=bytes.fromhex(point))),
            "invalid-peer-key",
        )

    # ---- payload ------------------------------------------------------------------
    op(
        "payload cut by one byte",
        ["Truncation"],
        ["OPEN-6"],
        Forged(m1.header, m1.payload[:-1], m1.outer).envelope,
        "bad-signature",
    )
    op(
        "payload cut by one byte, re-signed by the sender",
        ["Truncation", "MaliciousSender"],
        ["OPEN-9", "OPEN-11"],
        resign(replace(m1, payload=m1.payload[:-1]), S.signing).envelope,
        "decryption-failed",
        reason="aead",
    )
    short = replace(m1, payload=m1.payload[:79])
    op(
        "payload of 79 bytes, validly signed",
        ["Truncation", "MaliciousSender"],
        ["ENV-7", "OPEN-2"],
        resign(short, S.signing).envelope,
        "malformed",
    )
    op(
        "payload: one bit flipped",
        ["BitFlip"],
        ["OPEN-6"],
        Forged(m1.header, flip(m1.payload, 40), m1.outer).envelope,
        "bad-signature",
    )
    op(
        "payload: one bit flipped in the tag, re-signed by the sender",
        ["BitFlip", "MaliciousSender"],
        ["OPEN-9", "OPEN-11"],
        resign(replace(m1, payload=flip(m1.payload, len(m1.payload) - 1, 7)), S.signing).envelope,
        "decryption-failed",
        reason="aead",
    )
    op(
        "payload of M2 with M1's header and signature",
        ["PayloadSwap"],
        ["OPEN-6", "BIND-1"],
        Forged(m1.header, m2.payload, m1.outer).envelope,
        "bad-signature",
    )
    op(
        "payload of M2 with M1's header, re-signed by the sender",
        ["PayloadSwap", "MaliciousSender"],
        ["OPEN-8", "OPEN-11"],
        resign(replace(m1, payload=m2.payload), S.signing).envelope,
        "decryption-failed",
        reason="aead",
    )

    # ---- header bit flips ----------------------------------------------------------
    h_flip = codec.encode(with_fields(m1, message_id=flip(mid1, 0)))
    assert sum(bin(x ^ y).count("1") for x, y in zip(h_flip, m1.header, strict=True)) == 1
    op(
        "header: one bit flipped in the message id",
        ["BitFlip"],
        ["BIND-1", "OPEN-6"],
        Forged(h_flip, m1.payload, m1.outer).envelope,
        "bad-signature",
    )
    assert isinstance(a_wrapped, bytes)
    flipped: list[Value] = [[A.id, A.encryption_key_id, flip(a_wrapped, 5)], entries[1]]
    h_flip_w = codec.encode(with_fields(m1, recipients=flipped))
    op(
        "header: one bit flipped in MA.ncb-rabat's wrapped key",
        ["BitFlip"],
        ["BIND-1", "OPEN-6"],
        Forged(h_flip_w, m1.payload, m1.outer).envelope,
        "bad-signature",
    )
    op(
        "one bit flipped in MA.ncb-rabat's wrapped key, all re-signed by the sender",
        ["BitFlip", "KeyCommitment", "MaliciousSender"],
        ["SEAL-3", "OPEN-8", "OPEN-11"],
        build(S.signing, h_flip_w, k1, BODY_1).envelope,
        "decryption-failed",
        reason="key-commitment",
    )
    h_seq = codec.encode(with_fields(m1, seq=11))
    op(
        "header: seq 10 changed to 11 (one bit)",
        ["BitFlip"],
        ["BIND-1", "OPEN-6"],
        Forged(h_seq, m1.payload, m1.outer).envelope,
        "bad-signature",
    )

    # ---- header semantics, validly signed ----------------------------------------
    op(
        "validity window of 30 days + 1 s, validly signed",
        ["ValidityWindow", "MaliciousSender"],
        ["ENV-5", "OPEN-2"],
        signed(with_fields(m1, expires=NOW + MAX_TTL + 1)),
        "limit-exceeded",
    )
    op(
        "expires == created, validly signed",
        ["ValidityWindow", "MaliciousSender"],
        ["ENV-5", "OPEN-2"],
        signed(with_fields(m1, expires=NOW)),
        "malformed",
    )
    op(
        "recipients in descending order, validly signed",
        ["RecipientOrder", "MaliciousSender"],
        ["ENV-6", "OPEN-2"],
        signed(with_fields(m1, recipients=entries[::-1])),
        "malformed",
    )
    op(
        "MA.ncb-rabat listed twice, validly signed",
        ["RecipientOrder", "MaliciousSender"],
        ["ENV-6", "OPEN-2"],
        signed(with_fields(m1, recipients=[a_entry, a_entry])),
        "malformed",
    )
    op(
        "no recipients, validly signed",
        ["Layout", "MaliciousSender"],
        ["ENV-6", "OPEN-2"],
        signed(with_fields(m1, recipients=[])),
        "malformed",
    )
    unknown_kid: list[Value] = [A.id, derive("unknown key id", PERSON_TV_OTHER)[:16], a_wrapped]
    op(
        "MA.ncb-rabat's entry names an unknown key id, validly signed",
        ["UnknownKey", "MaliciousSender"],
        ["OPEN-5"],
        signed(with_fields(m1, recipients=[unknown_kid])),
        "unknown-key",
    )
    op(
        "MA.ncb-rabat's entry names XP.interpol-gs's encryption key id, validly signed",
        ["KeyBinding", "MaliciousSender"],
        ["OPEN-5"],
        signed(with_fields(m1, recipients=[[A.id, B.encryption_key_id, a_wrapped]])),
        "binding-mismatch",
    )
    op(
        "MA.ncb-rabat's entry names MA.ncb-rabat's signing key id, validly signed",
        ["KeyBinding", "MaliciousSender"],
        ["KEY-1", "KEY-2", "OPEN-5"],
        signed(with_fields(m1, recipients=[[A.id, A.signing_key_id, a_wrapped]])),
        "binding-mismatch",
    )
    d_to_out = Draft("to-outsider", S, (A, OUTSIDER), b"Also to someone unknown.", seq=40)
    op(
        "a recipient that is not in the directory",
        ["UnknownKey", "Honest"],
        ["OPEN-5"],
        honest(d_to_out).envelope,
        "unknown-key",
    )

    # ---- limits ------------------------------------------------------------------
    assert len(m_ten.envelope) > 1024
    op(
        f"envelope of {len(m_ten.envelope)} bytes, maxEnvelopeBytes lowered to 1024",
        ["Limit"],
        ["OPEN-1", "LIM-1"],
        m_ten.envelope,
        "limit-exceeded",
        recipient=ten[0],
        limits={"maxEnvelopeBytes": 1024},
    )
    op(
        "ten recipients, maxRecipients lowered to 4",
        ["Limit"],
        ["LIM-2", "LIM-3", "OPEN-2"],
        m_ten.envelope,
        "limit-exceeded",
        recipient=ten[0],
        limits={"maxRecipients": 4},
    )
    op(
        "ten recipients, maxRecipients lowered to 10: accepted",
        ["Limit", "Boundary"],
        ["LIM-2", "LIM-3"],
        m_ten.envelope,
        None,
        recipient=ten[-1],
        limits={"maxRecipients": 10},
        body=big_body,
    )

    # ---- reply binding (BIND-2) ------------------------------------------------
    rep = cases.reply_case
    rep(
        "MA.ncb-rabat's reply to M1, checked against M1 by its sender",
        ["ReplyBinding", "Honest"],
        ["BIND-2", "ENV-9"],
        m1,
        m_reply,
        opened_by=S,
        error=None,
    )
    rep(
        "MA.ncb-rabat's reply to M1, checked against M2",
        ["ReplyBinding"],
        ["BIND-2"],
        m2,
        m_reply,
        opened_by=S,
        error="binding-mismatch",
    )
    d_r_c = Draft(
        "reply-from-c",
        C,
        (S,),
        b"I was not asked, but here is an answer.",
        seq=1,
        reply_to=d_reply.reply_to,
    )
    rep(
        "reply to M1 from FR.ncb-paris, which was not a recipient of M1",
        ["ReplyBinding", "Honest"],
        ["BIND-2"],
        m1,
        honest(d_r_c),
        opened_by=S,
        error="binding-mismatch",
    )
    d_r_b = replace(d_reply, label="reply-to-b", recipients=(B,))
    rep(
        "MA.ncb-rabat's reply to M1 addressed to XP.interpol-gs, not to M1's sender; checked by "
        "XP.interpol-gs against M1",
        ["ReplyBinding", "Honest"],
        ["BIND-2"],
        m1,
        honest(d_r_b),
        opened_by=B,
        error="binding-mismatch",
    )
    d_r_nil = replace(d_reply, label="reply-nil", reply_to=None)
    rep(
        "a message from MA.ncb-rabat without reply_to, checked against M1",
        ["ReplyBinding", "Honest"],
        ["BIND-2"],
        m1,
        honest(d_r_nil),
        opened_by=S,
        error="binding-mismatch",
    )

    groups: list[JSON] = [
        {"type": "EnvelopeSeal", "tests": cases.seal_tests},
        {"type": "EnvelopeOpen", "tests": cases.open_tests},
        {"type": "ReplyBinding", "tests": cases.reply_tests},
    ]
    return {
        "protocol": "NCBR/1",
        "algorithm": SUITE_NAME,
        "generatedBy": GENERATOR,
        "numberOfTests": cases.tc,
        "header": [
            "NCBR/1 envelopes: sealing with recorded randomness (EnvelopeSeal), opening honest "
            "and hostile envelopes (EnvelopeOpen), checking reply binding (ReplyBinding).",
            "Principals' private keys are test keys, published so that every value can be "
            "recomputed. See spec/vectors.md.",
        ],
        "notes": ENVELOPE_NOTES,
        "defaults": {
            "now": NOW,
            "maxSkew": MAX_SKEW,
            "maxEnvelopeBytes": DEFAULT_ENVELOPE_LIMITS.max_envelope_bytes,
            "maxRecipients": DEFAULT_ENVELOPE_LIMITS.max_recipients,
        },
        "principals": principals_json(list(CAST.values())),
        "testGroups": groups,
    }


# ---------------------------------------------------------------------------------
# accumulated.json
# ---------------------------------------------------------------------------------

ACCUMULATED_KEY = b"NCBR/1 accumulated test vector"
ACCUMULATED_CHECKPOINTS = (1, 10, 100, 1000)
MAX_BODY = 1024
CREATED_SPREAD = 2**20


class ByteStream:
    """The stream block 0 || block 1 || ..., block i = BLAKE2b-512(LE64(i), key=key)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._buffer = b""

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += hashlib.blake2b(
                self._counter.to_bytes(8, "little"), key=self._key, digest_size=64
            ).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "little")


def accumulated_envelopes(count: int) -> list[bytes]:
    """The first ``count`` envelopes of the accumulated test (spec/vectors.md)."""
    stream = ByteStream(ACCUMULATED_KEY)
    out: list[bytes] = []
    for _ in range(count):
        sender = POOL[stream.uint(1) % len(POOL)]
        n = 1 + stream.uint(1) % 10
        candidates = [p for p in POOL if p is not sender]
        chosen = [candidates.pop(stream.uint(1) % len(candidates)) for _ in range(n)]
        body = stream.read(stream.uint(2) % (MAX_BODY + 1))
        shift = stream.uint(1) % 64
        seq = (stream.uint(8) >> 1) >> shift
        created = NOW - stream.uint(4) % CREATED_SPREAD
        ttl = 1 + stream.uint(4) % MAX_TTL
        reply_to = stream.read(32) if stream.uint(1) & 1 else None
        sealed = seal(
            body,
            sender=sender.identity,
            recipients=[p.identity.public for p in chosen],
            now=created,
            seq=seq,
            ttl=ttl,
            reply_to=reply_to,
            rng=stream.read,
        )
        out.append(sealed.data)
    return out


def accumulated_file() -> JSON:
    envelopes = accumulated_envelopes(max(ACCUMULATED_CHECKPOINTS))
    digest = hashlib.blake2b(digest_size=32)
    checkpoints = []
    for i, data in enumerate(envelopes, start=1):
        digest.update(len(data).to_bytes(4, "little") + data)
        if i in ACCUMULATED_CHECKPOINTS:
            checkpoints.append({"count": i, "digest": digest.hexdigest()})
    return {
        "protocol": "NCBR/1",
        "algorithm": SUITE_NAME,
        "generatedBy": GENERATOR,
        "header": [
            "Accumulated randomized test: envelopes sealed from a deterministic byte stream, "
            "every envelope hashed into one digest. See spec/vectors.md for the exact definition.",
        ],
        "streamKey": ACCUMULATED_KEY.decode("ascii"),
        "maxBody": MAX_BODY,
        "createdBase": NOW,
        "createdSpread": CREATED_SPREAD,
        "maxTtl": MAX_TTL,
        "principals": principals_json(POOL),
        "firstEnvelope": envelopes[0].hex(),
        "checkpoints": checkpoints,
    }


# ---------------------------------------------------------------------------------


def render(obj: JSON) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


BUILDERS: dict[str, Callable[[], JSON]] = {
    "codec.json": codec_file,
    "envelope.json": envelope_file,
    "accumulated.json": accumulated_file,
}


def build_all() -> dict[str, str]:
    """Every vector file's name and its exact text."""
    return {name: render(builder()) for name, builder in BUILDERS.items()}


def stale_files(files: dict[str, str], directory: Path = HERE) -> list[str]:
    """The names whose file on disk differs from ``files`` (or is missing)."""
    stale = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_bytes() != text.encode("utf-8"):
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if regenerating would change any file"
    )
    args = parser.parse_args(argv)
    files = build_all()
    stale = stale_files(files)
    if args.check:
        for name in stale:
            print(f"{name}: out of date; run python {GENERATOR}", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        (HERE / name).write_bytes(files[name].encode("utf-8"))
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
