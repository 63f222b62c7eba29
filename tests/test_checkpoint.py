"""Signed checkpoints, witness cosignatures and a client's view (spec/log.md, LOG-6 .. LOG-14)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncb_relay import (
    BadSignature,
    BelowThreshold,
    BindingMismatch,
    InvalidProof,
    LimitExceeded,
    LogFork,
    MalformedInput,
    NcbRelayError,
    SigningKeyPair,
    UnknownKey,
    UsageError,
    primitives,
)
from ncb_relay import merkle as m
from ncb_relay.checkpoint import (
    Checkpoint,
    CheckpointLimits,
    LogKey,
    LogView,
    VerifiedCheckpoint,
    WitnessKey,
    cosign_checkpoint,
    cosigned_message,
    parse_note,
    sign_checkpoint,
    verify_checkpoint,
)
from ncb_relay.envelope import INNER_SIGNATURE_LABEL, OUTER_SIGNATURE_LABEL
from ncb_relay.receipt import RECEIPT_LABEL
from ncb_relay.request_auth import REQUEST_SIGNATURE_LABEL
from ncb_relay.signatures import ANCHOR_KIND, DIRECTORY_KIND

NAME = "relay.example/log"
LOG_PAIR = SigningKeyPair(bytes([1]) * 32)
LOG = LogKey(NAME, LOG_PAIR.public_key)
W_PAIRS = [SigningKeyPair(bytes([10 + i]) * 32) for i in range(3)]
WITNESSES = [WitnessKey(f"w{i}.example", p.public_key) for i, p in enumerate(W_PAIRS)]
LEAVES = [m.leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
NODE = m.nodes_from_leaves(lambda start, end: LEAVES[start:end])
NOW = 1_800_000_000


def head(size: int, leaves: list[bytes] = LEAVES) -> Checkpoint:
    return Checkpoint(NAME, size, m.tree_root(leaves[:size]))


def signed(size: int, witnesses: int = 0, leaves: list[bytes] = LEAVES) -> bytes:
    note = sign_checkpoint(head(size, leaves), log=LOG, signer=LOG_PAIR)
    for i in range(witnesses):
        note = cosign_checkpoint(note, witness=WITNESSES[i], signer=W_PAIRS[i], now=NOW + i)
    return note


def proof(old: int, new: int) -> list[bytes]:
    return m.consistency_proof(old, new, NODE)


@pytest.mark.req("LOG-6", "LOG-8")
def test_the_note_is_the_c2sp_format() -> None:
    note = signed(13)
    root = base64.b64encode(m.tree_root(LEAVES[:13])).decode()
    text = f"{NAME}\n13\n{root}\n".encode()
    signature = LOG_PAIR.sign(text)
    key_id = primitives.sha256(NAME.encode() + b"\n\x01" + LOG_PAIR.public_key.raw)[:4]
    line = f"\u2014 {NAME} {base64.b64encode(key_id + signature).decode()}\n".encode()
    assert note == text + b"\n" + line
    verified = verify_checkpoint(note, log=LOG)
    assert (verified.origin, verified.size, verified.data) == (NAME, 13, note)
    assert Checkpoint.parse(text) == head(13)
    with pytest.raises(UsageError):
        VerifiedCheckpoint(head(13), note, {})


@pytest.mark.req("LOG-6")
@given(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(
        st.text(st.characters(min_codepoint=0x20, codec="utf-8"), min_size=1, max_size=20),
        max_size=8,
    ),
)
def test_a_checkpoint_text_round_trips(size: int, root: bytes, extensions: list[str]) -> None:
    extensions = [e for e in extensions if "\x7f" not in e]
    if size == 0:
        root = m.EMPTY_ROOT
    checkpoint = Checkpoint(NAME, size, root, tuple(extensions))
    assert Checkpoint.parse(checkpoint.text()) == checkpoint


@pytest.mark.req("LOG-6")
def test_checkpoint_values_are_checked_when_built() -> None:
    root = m.tree_root(LEAVES[:3])
    for args in (
        ("", 3, root),
        ("a b", 3, root),
        ("a+b", 3, root),
        (NAME, -1, root),
        (NAME, 2**63, root),
        (NAME, 3, root[:31]),
        (NAME, 0, root),
    ):
        with pytest.raises(UsageError):
            Checkpoint(*args)
    with pytest.raises(UsageError):
        Checkpoint(NAME, 3, root, ("",))
    with pytest.raises(UsageError):
        Checkpoint(NAME, 3, root, ("x",) * 9)
    for bad in ("x\x7fy", "x\ty"):
        with pytest.raises(UsageError):
            Checkpoint(NAME, 3, root, (bad,))
        text = head(3).text() + bad.encode() + b"\n"
        with pytest.raises(MalformedInput):
            verify_checkpoint(text + b"\n" + _line(LOG, text), log=LOG)
    with pytest.raises(UsageError):
        Checkpoint(NAME, True, root)
    with pytest.raises(UsageError):
        LogKey("a b", LOG_PAIR.public_key)
    with pytest.raises(UsageError):
        WitnessKey("", LOG_PAIR.public_key)
    with pytest.raises(UsageError):
        verify_checkpoint(signed(3), log=LOG, threshold=-1)
    with pytest.raises(UsageError):
        cosign_checkpoint(signed(3), witness=WITNESSES[0], signer=W_PAIRS[0], now=-1)
    with pytest.raises(UsageError):
        parse_note("text\n\n")  # type: ignore[arg-type]


@pytest.mark.req("LOG-8")
def test_size_limits_hold_before_decoding() -> None:
    note = signed(5)
    with pytest.raises(LimitExceeded):
        parse_note(note, CheckpointLimits(max_bytes=len(note) - 1))
    parse_note(note, CheckpointLimits(max_bytes=len(note)))
    with pytest.raises(LimitExceeded):
        verify_checkpoint(b"\xff" * (16 * 1024 + 1), log=LOG)  # not even UTF-8
    with pytest.raises(MalformedInput):
        verify_checkpoint(b"\xff" * 100, log=LOG)
    sixteen = signed(5, witnesses=3)
    for i in range(13):  # unknown cosigners: accepted (up to 32 lines), ignored
        pair = SigningKeyPair(bytes([50 + i]) * 32)
        sixteen = cosign_checkpoint(
            sixteen, witness=WitnessKey(f"x{i}.example", pair.public_key), signer=pair, now=NOW
        )
    assert len(parse_note(sixteen).signatures) == 17
    assert verify_checkpoint(sixteen, log=LOG, witnesses=WITNESSES, threshold=3).size == 5


@pytest.mark.req("LOG-7")
def test_the_origin_must_be_the_log_name() -> None:
    other = Checkpoint("relay.example/other", 5, m.tree_root(LEAVES[:5]))
    text = other.text()
    with pytest.raises(BindingMismatch):  # signed by the log's key and name, another origin
        verify_checkpoint(text + b"\n" + _line(LOG, text), log=LOG)
    with pytest.raises(UsageError):
        sign_checkpoint(other, log=LOG, signer=LOG_PAIR)
    with pytest.raises(UsageError):
        sign_checkpoint(head(5), log=LOG, signer=W_PAIRS[0])


def _line(key: LogKey, text: bytes) -> bytes:
    signature = LOG_PAIR.sign(text)
    return f"\u2014 {key.name} {base64.b64encode(key.key_id + signature).decode()}\n".encode()


@pytest.mark.req("LOG-9")
def test_unknown_signatures_are_ignored_and_known_ones_must_verify() -> None:
    note = signed(7)
    text = parse_note(note).text
    stranger = SigningKeyPair(bytes([99]) * 32)
    strange = sign_checkpoint(head(7), log=LogKey(NAME, stranger.public_key), signer=stranger)
    strange_line = strange[len(text) + 1 :]
    log_line = note[len(text) + 1 :]
    assert verify_checkpoint(text + b"\n" + strange_line + log_line, log=LOG).size == 7
    with pytest.raises(UnknownKey):
        verify_checkpoint(strange, log=LOG)
    tampered = bytearray(note)
    tampered[len(text) - 3] ^= 0x01  # inside the root's base64
    with pytest.raises((BadSignature, MalformedInput)):
        verify_checkpoint(bytes(tampered), log=LOG)
    with pytest.raises(BadSignature):
        verify_checkpoint(head(8).text() + b"\n" + log_line, log=LOG)


@pytest.mark.req("LOG-9")
@given(st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    note = signed(21, witnesses=2)
    at = data.draw(st.integers(min_value=0, max_value=len(note) - 1))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    changed = note[:at] + bytes([note[at] ^ mask]) + note[at + 1 :]
    with pytest.raises(NcbRelayError) as caught:
        verify_checkpoint(changed, log=LOG, witnesses=WITNESSES, threshold=2)
    codes = {"malformed", "bad-signature", "unknown-key", "below-threshold", "binding-mismatch"}
    assert caught.value.code in codes


@pytest.mark.req("LOG-10")
def test_witness_cosignatures_are_counted_by_distinct_key() -> None:
    note = signed(9, witnesses=2)
    verified = verify_checkpoint(note, log=LOG, witnesses=WITNESSES, threshold=2)
    assert verified.cosigned == {WITNESSES[0].name: NOW, WITNESSES[1].name: NOW + 1}
    with pytest.raises(BelowThreshold):
        verify_checkpoint(note, log=LOG, witnesses=WITNESSES, threshold=3)
    # the same key under two names counts once
    alias = WitnessKey("alias.example", W_PAIRS[0].public_key)
    twice = cosign_checkpoint(signed(9, witnesses=1), witness=alias, signer=W_PAIRS[0], now=NOW)
    with pytest.raises(BelowThreshold):
        verify_checkpoint(twice, log=LOG, witnesses=[*WITNESSES, alias], threshold=2)
    # a cosignature is over "cosignature/v1", the time and the text
    sig = parse_note(note).signatures[1]
    text = parse_note(note).text
    W_PAIRS[0].public_key.verify(cosigned_message(text, NOW), sig.signature[8:])
    assert cosigned_message(text, NOW).startswith(b"cosignature/v1\ntime 1800000000\n")
    with pytest.raises(UsageError):
        verify_checkpoint(note, log=LOG, witnesses=WITNESSES[:1], threshold=2)
    with pytest.raises(UsageError):
        cosign_checkpoint(note, witness=WITNESSES[0], signer=W_PAIRS[1], now=NOW)


@pytest.mark.req("LOG-12")
def test_a_view_moves_forward_only_by_consistency_proofs() -> None:
    view = LogView(LOG, witnesses=WITNESSES, threshold=1)
    assert view.latest is None
    with pytest.raises(BelowThreshold):
        view.update(signed(3))  # not enough cosignatures: nothing recorded
    assert view.latest is None
    assert view.update(signed(3, witnesses=1)).size == 3
    assert view.update(signed(10, witnesses=1), proof(3, 10)).size == 10
    assert view.update(signed(10, witnesses=2)).cosigned.keys() == {"w0.example", "w1.example"}
    with pytest.raises(InvalidProof):
        view.update(signed(10, witnesses=1), proof(3, 10))  # same size: the proof is empty
    assert view.latest is not None
    restarted = LogView(LOG, witnesses=WITNESSES, threshold=1, latest=view.latest.data)
    assert restarted.update(signed(40, witnesses=1), proof(10, 40)).size == 40
    assert not view.forks
    assert not restarted.forks


@pytest.mark.req("LOG-13")
@pytest.mark.parametrize(
    ("offered_size", "rewrite", "use_proof", "reason"),
    [
        (5, False, True, "a smaller tree than the one held"),
        (12, True, False, "two roots for the same size"),
        (20, True, True, "no valid consistency proof"),
        (20, False, False, "no valid consistency proof"),
    ],
)
def test_a_fork_is_caught_with_both_checkpoints_as_evidence(
    offered_size: int, rewrite: bool, use_proof: bool, reason: str
) -> None:
    rewritten = [*LEAVES[:4], m.leaf_hash(b"rewritten"), *LEAVES[5:]]
    view = LogView(LOG)
    held = signed(12)
    view.update(held)
    offered = signed(offered_size, leaves=rewritten if rewrite else LEAVES)
    given_proof = proof(min(12, offered_size), max(12, offered_size)) if use_proof else []
    with pytest.raises(LogFork) as caught:
        view.update(offered, given_proof)
    fork = caught.value
    assert (fork.held, fork.offered, fork.proof) == (held, offered, tuple(given_proof))
    assert reason in fork.reason
    assert fork.code == "log-fork"
    assert view.forks == (fork,)
    assert view.latest is not None
    assert view.latest.data == held  # not replaced
    # the evidence stands on its own: both notes verify with the log's key alone
    assert verify_checkpoint(fork.held, log=LOG).size == 12
    assert verify_checkpoint(fork.offered, log=LOG).size == offered_size


@pytest.mark.req("LOG-14")
@pytest.mark.parametrize(
    "label",
    [
        OUTER_SIGNATURE_LABEL,
        INNER_SIGNATURE_LABEL,
        REQUEST_SIGNATURE_LABEL,
        RECEIPT_LABEL,
        DIRECTORY_KIND.label,
        ANCHOR_KIND.label,
    ],
)
def test_no_labelled_message_is_a_checkpoint_text(label: bytes) -> None:
    assert label.index(b"\x00") == len(label) - 1
    assert b"\x00" not in signed(3)
    assert b"\x00" not in cosigned_message(head(3).text(), NOW)
    with pytest.raises(MalformedInput):
        Checkpoint.parse(label + bytes(64) + b"\n")
    with pytest.raises(MalformedInput):
        parse_note(label + "\n\n\u2014 x AAAAAAAA\n".encode())


# --- review 7: the checkpoint observed, several log keys, bounded fork evidence ------------------

FORKED = [*LEAVES[:3], *(m.leaf_hash(b"fork %d" % i) for i in range(37))]
FORKED_NODE = m.nodes_from_leaves(lambda start, end: FORKED[start:end])


@pytest.mark.req("LOG-12", "LOG-13")
@pytest.mark.parametrize("held", [None, 3])
def test_with_a_witness_threshold_a_split_view_below_it_is_a_fork(held: int | None) -> None:
    # two checkpoints of one size and two roots, neither cosigned, both extending the held one
    latest = None if held is None else signed(held, witnesses=1)
    view = LogView(LOG, witnesses=WITNESSES, threshold=1, latest=latest)
    first = view.check(signed(20), [] if held is None else proof(held, 20))
    assert (first.size, view.latest, view.observed) == (20, view.latest, first)
    assert view.latest is None or view.latest.size == held  # not witnessed: not the latest
    other = signed(20, leaves=FORKED)
    forked_proof = [] if held is None else m.consistency_proof(held, 20, FORKED_NODE)
    with pytest.raises(LogFork) as caught:
        view.check(other, forked_proof)
    assert (caught.value.held, caught.value.offered) == (signed(20), other)
    assert "two roots for the same size" in caught.value.reason
    # a smaller one must be proven consistent with the one observed, not only the latest
    with pytest.raises(LogFork):
        view.check(signed(16, leaves=FORKED), [] if held is None else proof(held, 16))
    assert view.check(signed(16), proof(16, 20)).size == 16
    assert view.observed is not None
    assert view.observed.data == signed(20)
    # a witnessed checkpoint moves the latest forward, proven from the one observed
    assert view.check(signed(24, witnesses=1), proof(20, 24)).size == 24
    assert view.latest is not None
    assert (view.latest.size, view.observed.size) == (24, 24)


@pytest.mark.req("LOG-12")
def test_the_checkpoint_observed_is_taken_up_again() -> None:
    view = LogView(LOG, witnesses=WITNESSES, threshold=1, latest=signed(3, 1), observed=signed(20))
    assert view.latest is not None
    assert view.observed is not None
    assert (view.latest.size, view.observed.size) == (3, 20)
    with pytest.raises(LogFork):
        view.check(signed(20, leaves=FORKED))
    assert view.check(signed(10, 1), proof(10, 20)).size == 10
    assert view.latest.size == 10
    with pytest.raises(UsageError):  # the one observed is never below the latest
        LogView(LOG, witnesses=WITNESSES, threshold=1, latest=signed(10, 1), observed=signed(3))


@pytest.mark.req("LOG-7", "LOG-9", "LOG-12")
def test_a_view_follows_the_log_across_a_key_rotation() -> None:
    new_pair = SigningKeyPair(bytes([2]) * 32)
    new = LogKey(NAME, new_pair.public_key)

    def resigned(size: int, leaves: list[bytes] = LEAVES) -> bytes:
        return sign_checkpoint(head(size, leaves), log=new, signer=new_pair)

    # the held note keeps verifying with its own (older) key, listed but not current
    view = LogView([new], held_keys=[LOG], latest=signed(12))
    assert view.latest is not None
    assert view.latest.size == 12
    with pytest.raises(UnknownKey):  # an offered note needs a current key
        view.check(signed(13), proof(12, 13))
    # the first checkpoint under the new key must be proven consistent with the held one
    with pytest.raises(LogFork):
        view.check(resigned(3, FORKED), [])
    with pytest.raises(LogFork):
        view.check(resigned(20, FORKED), m.consistency_proof(12, 20, FORKED_NODE))
    assert view.check(resigned(20), proof(12, 20)).size == 20
    assert view.latest.size == 20
    # verify_checkpoint takes every key of the log, by the note's key id
    both = [new, LOG]
    assert verify_checkpoint(signed(5), log=both).size == 5
    assert verify_checkpoint(resigned(5), log=both).size == 5
    with pytest.raises(UsageError):
        verify_checkpoint(signed(5), log=[LOG, LogKey("other.example/log", new.public_key)])
    with pytest.raises(UsageError):
        verify_checkpoint(signed(5), log=[])
    with pytest.raises(UsageError):  # a lone surrogate is no UTF-8 text
        Checkpoint(NAME, 1, LEAVES[0], ("\ud800",))
    with pytest.raises(UnknownKey):  # nothing held verifies: refused, never an empty view
        LogView([new], latest=signed(12))


@pytest.mark.req("LOG-13")
def test_fork_evidence_is_bounded_and_keeps_what_proves_a_fork() -> None:
    view = LogView(LOG, latest=signed(2))
    same_size = signed(2, leaves=FORKED[10:])
    with pytest.raises(LogFork):
        view.check(same_size)
    junk = [bytes(32)]
    for i in range(3 * LogView.MAX_FORKS):
        made_up = Checkpoint(NAME, 3 + i, primitives.sha256(b"%d" % i))
        note = sign_checkpoint(made_up, log=LOG, signer=LOG_PAIR)
        for _ in range(2):  # the same contradiction again is kept once
            with pytest.raises(LogFork):
                view.check(note, junk)
    late = signed(2, leaves=FORKED[20:])  # proves a fork on its own: kept even now
    with pytest.raises(LogFork):
        view.check(late)
    forks = view.forks
    assert len(forks) == LogView.MAX_FORKS
    assert forks[0].offered == same_size  # the first fork stays
    assert late in [f.offered for f in forks]
    keys = [(f.held, f.offered) for f in forks]
    assert len(set(keys)) == len(keys)
    assert view.latest is not None
    assert view.latest.data == signed(2)
