"""Acceptance receipts and a client's check of them (spec/log.md, LOG-15 .. LOG-20)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncb_relay import (
    BadSignature,
    BindingMismatch,
    InvalidProof,
    LimitExceeded,
    LogFork,
    MalformedInput,
    NcbRelayError,
    SigningKeyPair,
    UnknownKey,
    UsageError,
    codec,
)
from ncb_relay import merkle as m
from ncb_relay.checkpoint import (
    Checkpoint,
    LogKey,
    LogView,
    WitnessKey,
    cosign_checkpoint,
    sign_checkpoint,
)
from ncb_relay.header import MAX_TIME
from ncb_relay.receipt import (
    MAX_RECEIPT_BYTES,
    RECEIPT_LABEL,
    Receipt,
    VerifiedReceipt,
    log_origin,
    parse_receipt,
    sign_receipt,
    verify_receipt,
)

RELAY = "XP.relay-lyon"
RELAY_PAIR = SigningKeyPair(bytes([7]) * 32)
LOG = LogKey(log_origin(RELAY), RELAY_PAIR.public_key)
OTHER_PAIR = SigningKeyPair(bytes([8]) * 32)
ENTRIES = [m.leaf_hash(b"envelope %d" % i) for i in range(24)]  # 32-byte message hashes
LEAVES = [m.leaf_hash(e) for e in ENTRIES]
NODE = m.nodes_from_leaves(lambda start, end: LEAVES[start:end])
NOW = 1_800_000_000


def mid(index: int) -> bytes:
    return bytes([index]) * 32


def receipt(index: int, **changes: object) -> Receipt:
    fields: dict[str, object] = {
        "relay": RELAY,
        "message_id": mid(index),
        "message_hash": ENTRIES[index],
        "log_index": index,
        "accepted_at": NOW,
    }
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


def checkpoint(size: int, leaves: list[bytes] = LEAVES, pair: SigningKeyPair = RELAY_PAIR) -> bytes:
    key = LogKey(LOG.name, pair.public_key)
    return sign_checkpoint(
        Checkpoint(LOG.name, size, m.tree_root(leaves[:size])), log=key, signer=pair
    )


def inclusion(index: int, size: int) -> list[bytes]:
    return m.inclusion_proof(index, size, NODE)


def verify(
    data: bytes, note: bytes, proof: list[bytes], index: int, **changes: object
) -> VerifiedReceipt:
    arguments: dict[str, object] = {
        "relay_id": RELAY,
        "relay_key": RELAY_PAIR.public_key,
        "log": LOG,
        "message_id": mid(index),
        "message_hash": ENTRIES[index],
    }
    arguments.update(changes)
    return verify_receipt(data, note, proof, **arguments)  # type: ignore[arg-type]


@pytest.mark.req("LOG-20")
def test_the_log_is_named_after_the_relay() -> None:
    assert log_origin(RELAY) == "XP.relay-lyon/log"
    for bad in ("relay-lyon", "xp.relay", "", "XP.relay lyon"):
        with pytest.raises(UsageError):
            log_origin(bad)
    with pytest.raises(UsageError):  # the log key must be the one of that relay's log
        verify(
            sign_receipt(receipt(3), RELAY_PAIR),
            checkpoint(5),
            inclusion(3, 5),
            3,
            log=LogKey("XP.relay-paris/log", RELAY_PAIR.public_key),
        )


@pytest.mark.req("LOG-15", "LOG-16")
def test_the_receipt_is_a_labelled_canonical_array() -> None:
    r = receipt(5)
    data = sign_receipt(r, RELAY_PAIR)
    key_id = RELAY_PAIR.public_key.key_id
    fields: list[codec.Value] = [RELAY, mid(5), ENTRIES[5], 5, NOW, key_id]
    signature = RELAY_PAIR.sign(b"NCBR/1 acceptance receipt\x00" + codec.encode(fields))
    assert data == codec.encode([*fields, signature])
    assert parse_receipt(data) == (r, key_id, signature)
    assert r.signed_bytes(key_id) == RECEIPT_LABEL + codec.encode(fields)
    assert len(data) <= MAX_RECEIPT_BYTES
    longest = receipt(5, relay="XP." + "a" * 61, log_index=2**63 - 2, accepted_at=MAX_TIME)
    assert len(sign_receipt(longest, RELAY_PAIR)) == 237
    with pytest.raises(UsageError):
        VerifiedReceipt(r, data, None, ())  # type: ignore[arg-type]


@pytest.mark.req("LOG-15")
def test_receipt_values_are_checked_when_built() -> None:
    for changes in (
        {"relay": "relay"},
        {"message_id": bytes(31)},
        {"message_hash": "00" * 32},
        {"log_index": -1},
        {"log_index": 2**63 - 1},
        {"log_index": True},
        {"accepted_at": MAX_TIME + 1},
    ):
        with pytest.raises(UsageError):
            receipt(1, **changes)
    with pytest.raises(UsageError):
        sign_receipt("a receipt", RELAY_PAIR)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        parse_receipt("97")  # type: ignore[arg-type]


@pytest.mark.req("LOG-15")
def test_the_size_is_checked_before_decoding() -> None:
    with pytest.raises(LimitExceeded):
        parse_receipt(b"\xc1" * (MAX_RECEIPT_BYTES + 1))  # not even msgpack
    with pytest.raises(MalformedInput):
        parse_receipt(b"\xc1" * MAX_RECEIPT_BYTES)
    data = sign_receipt(receipt(2), RELAY_PAIR)
    for bad in (data[:-1], data + b"\x00", codec.encode([RELAY]), codec.encode({"a": 1}), b""):
        with pytest.raises(MalformedInput):
            parse_receipt(bad)


@pytest.mark.req("LOG-17", "LOG-3")
def test_a_receipt_verifies_with_its_checkpoint_and_proof() -> None:
    data = sign_receipt(receipt(9), RELAY_PAIR)
    verified = verify(data, checkpoint(13), inclusion(9, 13), 9)
    assert verified.receipt == receipt(9)
    assert verified.log_index == 9
    assert (verified.checkpoint.size, verified.data) == (13, data)
    assert verified.inclusion == tuple(inclusion(9, 13))
    assert "index=9" in repr(verified)
    # a later checkpoint with a fresh proof proves the same receipt
    assert verify(data, checkpoint(24), inclusion(9, 24), 9).checkpoint.size == 24


@pytest.mark.req("LOG-17")
def test_each_step_raises_its_own_error_in_order() -> None:
    good = sign_receipt(receipt(9), RELAY_PAIR)
    note, proof = checkpoint(13), inclusion(9, 13)
    other_relay = sign_receipt(receipt(9, relay="XP.relay-paris"), RELAY_PAIR)
    other_key = sign_receipt(receipt(9), OTHER_PAIR)
    forged = good[:-64] + OTHER_PAIR.sign(receipt(9).signed_bytes(RELAY_PAIR.public_key.key_id))
    cases: list[tuple[bytes, bytes, list[bytes], type[NcbRelayError]]] = [
        (good + bytes(MAX_RECEIPT_BYTES), note, proof, LimitExceeded),
        (good, note + b"x" * 16_384, proof, LimitExceeded),
        (good[:-1], note, [bytes(32)] * 65, InvalidProof),  # the bounds come first
        (good[:-1], note, proof, MalformedInput),
        (other_relay, note, proof, BindingMismatch),
        (other_key, note, proof, UnknownKey),
        (forged, note, proof, BadSignature),
        (sign_receipt(receipt(10), RELAY_PAIR), note, proof, BindingMismatch),
        (good, checkpoint(13, pair=OTHER_PAIR), proof, UnknownKey),
        (good, checkpoint(9), inclusion(8, 9), InvalidProof),  # index 9 is not in a tree of 9
        (good, note, inclusion(8, 13), InvalidProof),
        (good, note, proof[:-1], InvalidProof),
    ]
    for data, n, p, error in cases:
        with pytest.raises(error):
            verify(data, n, p, 9)


@pytest.mark.req("LOG-17")
def test_the_callers_arguments_are_checked() -> None:
    data, note, proof = sign_receipt(receipt(4), RELAY_PAIR), checkpoint(6), inclusion(4, 6)
    for changes in (
        {"relay_id": "relay"},
        {"relay_key": RELAY_PAIR},
        {"log": LOG.name},
        {"message_id": bytes(31)},
        {"message_hash": None},
    ):
        with pytest.raises(UsageError):
            verify(data, note, proof, 4, **changes)
    with pytest.raises(UsageError):
        verify(data.hex(), note, proof, 4)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        verify(data, note, b"".join(proof), 4)  # type: ignore[arg-type]


@pytest.mark.req("LOG-15", "LOG-16", "LOG-17")
@given(
    st.integers(min_value=1, max_value=len(ENTRIES)).flatmap(
        lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
    ),
    st.integers(min_value=0, max_value=MAX_TIME),
    st.binary(min_size=32, max_size=32),
)
def test_receipts_round_trip(where: tuple[int, int], accepted_at: int, message_id: bytes) -> None:
    size, index = where
    r = receipt(index, accepted_at=accepted_at, message_id=message_id)
    data = sign_receipt(r, RELAY_PAIR)
    assert parse_receipt(data)[0] == r
    verified = verify(data, checkpoint(size), inclusion(index, size), index, message_id=message_id)
    assert verified.receipt == r


@pytest.mark.req("LOG-15", "LOG-16", "LOG-17")
@given(st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    good = sign_receipt(receipt(9), RELAY_PAIR)
    at = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    changed = good[:at] + bytes([good[at] ^ mask]) + good[at + 1 :]
    with pytest.raises(NcbRelayError) as caught:
        verify(changed, checkpoint(13), inclusion(9, 13), 9)
    codes = {"malformed", "limit-exceeded", "binding-mismatch", "unknown-key", "bad-signature"}
    assert caught.value.code in codes


@pytest.mark.req("LOG-18", "LOG-12", "LOG-13")
def test_a_client_checks_the_receipts_checkpoint_against_its_view() -> None:
    view = LogView(LOG)
    view.check(checkpoint(16))
    # a receipt with an older checkpoint: consistent by a proof to the one held
    data = sign_receipt(receipt(9), RELAY_PAIR)
    verified = verify(data, checkpoint(13), inclusion(9, 13), 9)
    old = m.consistency_proof(13, 16, NODE)
    assert view.check(verified.checkpoint.data, old).size == 13
    assert view.latest is not None
    assert view.latest.size == 16  # never moves back
    # a newer one moves the view forward
    view.check(checkpoint(20), m.consistency_proof(16, 20, NODE))
    assert view.latest.size == 20
    # a relay that rewrote entry 9 gives a valid receipt in a tree that forked
    rewritten = [*LEAVES[:9], m.leaf_hash(b"rewritten"), *LEAVES[10:]]
    forked = checkpoint(21, rewritten)
    with pytest.raises(LogFork) as caught:
        view.check(forked, m.consistency_proof(20, 21, NODE))
    assert (caught.value.held, caught.value.offered) == (checkpoint(20), forked)
    assert view.forks == (caught.value,)
    assert view.latest.size == 20
    # an old checkpoint with no proof joining it is a fork too
    with pytest.raises(LogFork):
        view.check(checkpoint(13), [])
    assert len(view.forks) == 2


@pytest.mark.req("LOG-12", "LOG-10")
def test_check_adopts_only_what_meets_the_witness_threshold() -> None:
    witness_pair = SigningKeyPair(bytes([9]) * 32)
    witness = WitnessKey("w.example", witness_pair.public_key)
    view = LogView(LOG, witnesses=[witness], threshold=1)
    assert view.check(checkpoint(5)).size == 5  # verified, not adopted
    assert view.latest is None
    five = cosign_checkpoint(checkpoint(5), witness=witness, signer=witness_pair, now=NOW)
    view.check(five)
    assert view.latest is not None
    assert view.latest.size == 5
    assert view.check(checkpoint(9), m.consistency_proof(5, 9, NODE)).size == 9
    assert view.latest.size == 5
    assert view.observed is not None
    assert view.observed.size == 9  # observed: later proofs are from it
    nine = cosign_checkpoint(checkpoint(9), witness=witness, signer=witness_pair, now=NOW)
    view.check(nine)
    assert view.latest.size == 9
    with pytest.raises(InvalidProof):  # the same size needs no proof; nothing recorded
        view.check(nine, m.consistency_proof(5, 9, NODE))
    with pytest.raises(UsageError):
        view.check(nine, b"")
    assert not view.forks


@pytest.mark.req("LOG-19")
def test_a_receipt_for_an_entry_outside_the_checkpoint_fails() -> None:
    # the relay signed the checkpoint of size 9 before appending entry 9: its receipt for
    # entry 9 with that checkpoint proves nothing, whatever proof comes with it
    data = sign_receipt(receipt(9), RELAY_PAIR)
    for proof in ([], inclusion(8, 9), inclusion(9, 10)):
        with pytest.raises(InvalidProof):
            verify(data, checkpoint(9), proof, 9)
    # a receipt naming an index whose entry is another hash
    wrong = sign_receipt(receipt(9, log_index=10), RELAY_PAIR)
    with pytest.raises(InvalidProof):
        verify(wrong, checkpoint(13), inclusion(10, 13), 9)


@pytest.mark.req("LOG-20")
def test_the_log_key_must_be_the_relays_key() -> None:
    data, note, proof = sign_receipt(receipt(4), RELAY_PAIR), checkpoint(6), inclusion(4, 6)
    other_log = LogKey(LOG.name, OTHER_PAIR.public_key)
    with pytest.raises(UsageError):
        verify(data, checkpoint(6, pair=OTHER_PAIR), proof, 4, log=other_log)
    assert verify(data, note, proof, 4).checkpoint.size == 6
