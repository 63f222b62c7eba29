"""Hypothesis properties: round trips, tamper evidence, a decoder that cannot be fooled.

Identities come from a pool made once at import, so examples spend their time
on sealing and opening rather than on key generation.  Example counts are
kept moderate; the whole file runs in seconds.
"""

from __future__ import annotations

import struct
from collections import Counter

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import NOW, identity, seeded_rng
from ncb_relay import (
    CodecLimits,
    DecryptionFailed,
    PrivateIdentity,
    ReplayGuard,
    StaticDirectory,
    decode,
    encode,
    open_envelope,
    seal,
)
from ncb_relay.codec import Value
from ncb_relay.errors import MalformedInput, NcbRelayError, ProtocolError

POOL: list[PrivateIdentity] = [identity(f"XP.pool-{i:02d}") for i in range(33)]
DIRECTORY = StaticDirectory(p.public for p in POOL)
ROOMY = CodecLimits(max_depth=64)


def open_as(data: bytes, who: PrivateIdentity) -> bytes:
    return open_envelope(
        data, recipient=who, directory=DIRECTORY, now=NOW, replay=ReplayGuard()
    ).body


def strict_equal(a: object, b: object) -> bool:
    """Equality that also compares types (so True != 1 and [True] != [1])."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return a == b


def _failure(data: bytes, who: PrivateIdentity) -> NcbRelayError | None:
    try:
        open_as(data, who)
    except NcbRelayError as error:
        return error
    return None


# --- seal / open ----------------------------------------------------------------------------

recipient_sets = st.lists(st.integers(0, 31), min_size=1, max_size=32, unique=True)


@pytest.mark.req("SEAL-1", "OPEN-8", "OPEN-9", "OPEN-10", "ENV-6")
@settings(max_examples=30)
@given(
    body=st.binary(max_size=4096),
    picks=recipient_sets,
    sender=st.integers(0, 32),
    seq=st.integers(0, 2**63 - 1),
    seed=st.binary(min_size=1, max_size=16),
)
def test_round_trip(body: bytes, picks: list[int], sender: int, seq: int, seed: bytes) -> None:
    recipients = [POOL[i] for i in picks]
    sealed = seal(
        body,
        sender=POOL[sender],
        recipients=[r.public for r in recipients],
        now=NOW,
        seq=seq,
        rng=seeded_rng(seed),
    )
    assert sealed.header.recipient_ids == tuple(sorted(r.principal for r in recipients))
    for recipient in recipients:
        assert open_as(sealed.data, recipient) == body
    outsiders = [p for i, p in enumerate(POOL[:32]) if i not in picks]
    if outsiders:
        with pytest.raises(DecryptionFailed):
            open_as(sealed.data, outsiders[0])


def _flip(data: bytes, bit: int) -> bytes:
    return data[: bit // 8] + bytes([data[bit // 8] ^ (1 << (bit % 8))]) + data[bit // 8 + 1 :]


@pytest.mark.req("BIND-1", "OPEN-2", "OPEN-6", "OPEN-9", "CODEC-6")
@settings(max_examples=150)
@given(st.data())
def test_any_single_bit_flip_is_rejected(data: st.DataObject) -> None:
    body = data.draw(st.binary(max_size=256), label="body")
    picks = data.draw(st.lists(st.integers(0, 31), min_size=1, max_size=4, unique=True))
    sealed = seal(
        body,
        sender=POOL[32],
        recipients=[POOL[i].public for i in picks],
        now=NOW,
        seq=1,
        rng=seeded_rng(bytes(picks) + body[:8]),
    )
    bit = data.draw(st.integers(0, 8 * len(sealed.data) - 1), label="bit")
    with pytest.raises(ProtocolError):
        open_as(_flip(sealed.data, bit), POOL[picks[0]])


SMALL = seal(
    b"",
    sender=POOL[32],
    recipients=[POOL[0].public],
    now=NOW,
    seq=1,
    rng=seeded_rng(b"exhaustive"),
)


@pytest.mark.req("BIND-1", "OPEN-2", "OPEN-6", "CODEC-6", "ERR-1")
def test_every_single_bit_flip_of_one_envelope_is_rejected() -> None:
    assert open_as(SMALL.data, POOL[0]) == b""
    codes: Counter[str] = Counter()
    for bit in range(8 * len(SMALL.data)):
        error = _failure(_flip(SMALL.data, bit), POOL[0])
        assert isinstance(error, ProtocolError), (bit, error)
        codes[error.code] += 1
    assert sum(codes.values()) == 8 * len(SMALL.data)
    assert codes["bad-signature"] > len(SMALL.data)  # most flips reach the signature check
    assert codes["malformed"] > 0


# --- the decoder ------------------------------------------------------------------------------


def _check_decoder(data: bytes) -> None:
    """decode either returns a value whose canonical encoding is the input, or raises."""
    try:
        outcome: Value | NcbRelayError = decode(data, limits=ROOMY)
    except NcbRelayError as error:
        outcome = error
    if isinstance(outcome, NcbRelayError):
        assert isinstance(outcome, ProtocolError)  # never a usage error, never a foreign one
    else:
        assert encode(outcome, limits=ROOMY) == data


@pytest.mark.req("CODEC-5", "CODEC-6", "CODEC-7")
@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_decoder_on_arbitrary_bytes(data: bytes) -> None:
    _check_decoder(data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**34), st.integers(0, 999_999_999)),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 5), children, max_size=5)
    ),
    max_leaves=12,
)


@st.composite
def mutated_msgpack(draw: st.DrawFn) -> bytes:
    value = draw(msgpack_values)
    data = bytearray(msgpack.packb(value, use_bin_type=draw(st.booleans())))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "insert":
            data.insert(position, draw(st.integers(0, 255)))
        elif not data:
            continue
        elif kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[position] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[position]
        else:
            del data[position:]
    return bytes(data)


@pytest.mark.req("CODEC-1", "CODEC-5", "CODEC-6", "CODEC-7")
@settings(max_examples=200)
@given(mutated_msgpack())
def test_decoder_on_mutated_msgpack(data: bytes) -> None:
    _check_decoder(data)


# profile values (CODEC-1)
profile_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=300)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=20,
)


@pytest.mark.req("CODEC-1", "CODEC-2", "CODEC-3", "CODEC-6")
@settings(max_examples=300)
@given(profile_values)
def test_encode_decode_round_trip(value: Value) -> None:
    data = encode(value, limits=ROOMY)
    assert strict_equal(decode(data, limits=ROOMY), value)
    assert encode(decode(data, limits=ROOMY), limits=ROOMY) == data


# A second, deliberately loose msgpack encoder: it may pick any format that can
# hold an item (not only the shortest) and any order of map entries.  Exactly one
# of its outputs is canonical, and decode must accept that one and no other.

_UINT = [(0xCC, "B", 2**8), (0xCD, ">H", 2**16), (0xCE, ">I", 2**32), (0xCF, ">Q", 2**64)]
_INT = [(0xD0, "b", 2**7), (0xD1, ">h", 2**15), (0xD2, ">i", 2**31), (0xD3, ">q", 2**63)]


_STR = (0xA0, 32, [(0xD9, 1), (0xDA, 2), (0xDB, 4)])
_BIN = (None, 0, [(0xC4, 1), (0xC5, 2), (0xC6, 4)])
_ARRAY = (0x90, 16, [(0xDC, 2), (0xDD, 4)])
_MAP = (0x80, 16, [(0xDE, 2), (0xDF, 4)])


def _length_prefix(
    draw: st.DrawFn, n: int, formats: tuple[int | None, int, list[tuple[int, int]]]
) -> bytes:
    """Any header that can hold a length or count of ``n``: fix, 8, 16 or 32 bits."""
    fix, fix_max, sized = formats
    options = [bytes([fix | n])] if fix is not None and n < fix_max else []
    options += [bytes([code]) + n.to_bytes(size, "big") for code, size in sized if n < 256**size]
    return draw(st.sampled_from(options))


def loose_encode(draw: st.DrawFn, value: Value) -> bytes:
    if value is None:
        return b"\xc0"
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        options = []
        if 0 <= value <= 127:
            options.append(bytes([value]))
        if -32 <= value < 0:
            options.append(struct.pack("b", value))
        for code, fmt, bound in _UINT:
            if 0 <= value < bound:
                options.append(bytes([code]) + struct.pack(fmt, value))
        for code, fmt, bound in _INT:
            if -bound <= value < bound:
                options.append(bytes([code]) + struct.pack(fmt, value))
        return draw(st.sampled_from(options))
    if isinstance(value, str):
        raw = value.encode()
        return _length_prefix(draw, len(raw), _STR) + raw
    if isinstance(value, bytes):
        return _length_prefix(draw, len(value), _BIN) + value
    if isinstance(value, list):
        head = _length_prefix(draw, len(value), _ARRAY)
        return head + b"".join(loose_encode(draw, item) for item in value)
    keys = draw(st.permutations(list(value)))
    head = _length_prefix(draw, len(keys), _MAP)
    return head + b"".join(loose_encode(draw, k) + loose_encode(draw, value[k]) for k in keys)


@st.composite
def loosely_encoded(draw: st.DrawFn) -> tuple[Value, bytes]:
    value = draw(profile_values)
    return value, loose_encode(draw, value)


@pytest.mark.req("CODEC-2", "CODEC-3", "CODEC-6")
@settings(max_examples=200)
@given(loosely_encoded())
def test_decoder_accepts_exactly_the_canonical_encoding(case: tuple[Value, bytes]) -> None:
    value, data = case
    assert msgpack.unpackb(data, raw=False, strict_map_key=False) == value  # a valid encoding
    if data == encode(value, limits=ROOMY):
        assert strict_equal(decode(data, limits=ROOMY), value)
    else:
        with pytest.raises(MalformedInput):
            decode(data, limits=ROOMY)


# --- opening arbitrary input ------------------------------------------------------------------


@pytest.mark.req("OPEN-1", "OPEN-2", "ERR-1")
@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_opening_arbitrary_bytes_fails_cleanly(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        open_as(data, POOL[0])


header_fields = st.lists(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.sampled_from([0, 1, 2, NOW, NOW + 60, 2**40, 2**63])
    | st.binary(min_size=0, max_size=40)
    | st.sampled_from([POOL[0].principal, POOL[32].principal, "not an id"])
    | st.sampled_from([POOL[0].public.encryption_key.key_id, POOL[32].signer.public_key.key_id])
    | st.lists(
        st.lists(
            st.sampled_from([POOL[0].principal, POOL[1].principal])
            | st.binary(min_size=16, max_size=16)
            | st.binary(min_size=32, max_size=32),
            max_size=4,
        ),
        max_size=3,
    ),
    min_size=0,
    max_size=12,
)


@st.composite
def envelope_shaped(draw: st.DrawFn) -> bytes:
    fields = draw(header_fields)
    if draw(st.booleans()) and len(fields) >= 2:
        fields[:2] = [1, 1]
    header = msgpack.packb(fields, use_bin_type=True)
    payload = draw(st.binary(min_size=70, max_size=120))
    signature = draw(st.binary(min_size=60, max_size=68))
    return bytes(msgpack.packb([header, payload, signature], use_bin_type=True))


@pytest.mark.req("OPEN-2", "ENV-2", "ERR-1")
@settings(max_examples=300)
@given(envelope_shaped())
def test_opening_envelope_shaped_input_fails_cleanly(data: bytes) -> None:
    error = _failure(data, POOL[0])
    assert isinstance(error, ProtocolError)
