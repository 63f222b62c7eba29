"""A witness of a relay's log (ncb_relay.witness): it cosigns only what extends what it cosigned."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ncb_relay import SigningKeyPair, UsageError
from ncb_relay import merkle as m
from ncb_relay.checkpoint import (
    Checkpoint,
    LogKey,
    WitnessKey,
    parse_note,
    sign_checkpoint,
    verify_checkpoint,
)
from ncb_relay.errors import (
    BadSignature,
    BindingMismatch,
    InvalidProof,
    LogFork,
    MalformedInput,
    Rollback,
    UnknownKey,
)
from ncb_relay.witness import MAX_FORKS_KEPT, Witness

NAME = "XP.relay-lyon/log"
LOG_PAIR = SigningKeyPair(bytes([1]) * 32)
LOG = LogKey(NAME, LOG_PAIR.public_key)
W_PAIR = SigningKeyPair(bytes([7]) * 32)
KEY = WitnessKey("KR.ncb-seoul", W_PAIR.public_key)
LEAVES = [m.leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
FORKED = [*LEAVES[:3], *(m.leaf_hash(b"x" + i.to_bytes(2, "big")) for i in range(37))]
NOW = 1_800_000_000


def note(size: int, leaves: list[bytes] = LEAVES, *, name: str = NAME) -> bytes:
    checkpoint = Checkpoint(name, size, m.tree_root(leaves[:size]))
    return sign_checkpoint(checkpoint, log=LogKey(name, LOG_PAIR.public_key), signer=LOG_PAIR)


def proof(old: int, new: int, leaves: list[bytes] = LEAVES) -> list[bytes]:
    return m.consistency_proof(old, new, m.nodes_from_leaves(lambda s, e: leaves[s:e]))


def witness(held: bytes | None = None) -> Witness:
    return Witness(log=LOG, key=KEY, signer=W_PAIR, held=held)


@pytest.mark.req("LOG-10", "LOG-30")
def test_the_witness_cosigns_a_consistent_larger_checkpoint() -> None:
    w = witness()
    first = w.cosign(note(5), now=NOW)  # nothing held: the first checkpoint is taken
    assert verify_checkpoint(first, log=LOG, witnesses=[KEY], threshold=1).cosigned == {
        KEY.name: NOW
    }
    assert w.held is not None
    assert w.held.size == 5
    second = w.cosign(note(12), proof(5, 12), now=NOW + 1)
    assert verify_checkpoint(second, log=LOG, witnesses=[KEY], threshold=1).size == 12
    assert w.held.data == note(12)  # the log's note, without the cosignature
    again = w.cosign(note(12), now=NOW + 2)  # the same head again: cosigned again
    assert verify_checkpoint(again, log=LOG, witnesses=[KEY], threshold=1).cosigned == {
        KEY.name: NOW + 2
    }
    assert not w.forks


@pytest.mark.req("LOG-10", "LOG-30")
def test_the_witness_verifies_the_log_signature_first() -> None:
    w = witness(note(5))
    other = SigningKeyPair(bytes([3]) * 32)
    forged = sign_checkpoint(
        Checkpoint(NAME, 12, m.tree_root(LEAVES[:12])),
        log=LogKey(NAME, other.public_key),
        signer=other,
    )
    with pytest.raises(UnknownKey):
        w.cosign(forged, proof(5, 12), now=NOW)
    parsed = parse_note(note(12))
    text = parsed.text.replace(b"\n12\n", b"\n13\n")
    with pytest.raises(BadSignature):
        w.cosign(text + note(12)[len(parsed.text) :], proof(5, 12), now=NOW)
    with pytest.raises(BindingMismatch):
        w.cosign(note(12, name="XP.relay-other/log"), proof(5, 12), now=NOW)
    assert w.held is not None
    assert w.held.size == 5


@pytest.mark.req("LOG-30")
def test_a_checkpoint_without_a_valid_consistency_proof_is_a_fork() -> None:
    w = witness(note(5))
    with pytest.raises(LogFork) as caught:
        w.cosign(note(12), [bytes(32)] * 3, now=NOW)
    assert (caught.value.held, caught.value.offered) == (note(5), note(12))
    with pytest.raises(LogFork):
        w.cosign(note(12), [], now=NOW)
    assert w.held is not None
    assert w.held.size == 5
    assert len(w.forks) == 1  # the same two heads: kept once


@pytest.mark.req("LOG-30")
def test_a_forked_history_is_refused_with_both_notes_kept() -> None:
    w = witness(note(20))
    forked = note(30, FORKED)
    with pytest.raises(LogFork) as caught:
        w.cosign(forked, proof(20, 30, FORKED), now=NOW)
    assert caught.value.reason == "no valid consistency proof"
    with pytest.raises(LogFork) as caught:
        w.cosign(note(20, FORKED), now=NOW)  # same size, another root
    assert caught.value.reason == "two roots for the same size"
    assert [f.offered for f in w.forks] == [forked, note(20, FORKED)]
    assert all(f.held == note(20) for f in w.forks)
    assert w.held is not None
    assert w.held.data == note(20)


@pytest.mark.req("LOG-30")
def test_a_smaller_checkpoint_is_never_cosigned() -> None:
    w = witness(note(20))
    with pytest.raises(Rollback):
        w.cosign(note(8), proof(8, 20), now=NOW)  # an earlier head of the same tree
    assert not w.forks
    with pytest.raises(LogFork):
        w.cosign(note(8, [*LEAVES[:2], *FORKED[20:]]), proof(8, 20), now=NOW)
    with pytest.raises(InvalidProof):
        w.cosign(note(20), proof(8, 20), now=NOW)  # the same head needs no proof
    assert w.held is not None
    assert w.held.size == 20


@pytest.mark.req("LOG-30")
def test_the_state_survives_a_restart_as_json() -> None:
    w = witness()
    w.cosign(note(5), now=NOW)
    w.cosign(note(9), proof(5, 9), now=NOW)
    with pytest.raises(LogFork):
        w.cosign(note(9, FORKED), now=NOW)
    saved = json.loads(json.dumps(w.state))
    again = Witness.restore(saved, log=LOG, key=KEY, signer=W_PAIR)
    assert again.held is not None
    assert again.held.data == note(9)
    assert [(f.held, f.offered, f.reason, f.proof) for f in again.forks] == [
        (f.held, f.offered, f.reason, f.proof) for f in w.forks
    ]
    assert again.state == w.state
    fresh = Witness.restore(witness().state, log=LOG, key=KEY, signer=W_PAIR)
    assert fresh.held is None


def test_a_state_of_another_shape_is_refused() -> None:
    state = witness(note(5)).state
    many = state["held"] + state["held"].split("\n\n")[1] * 40  # too many signature lines
    bads: list[Any] = [
        [],
        {**state, "version": 2},
        {**state, "log": "XP.relay-other/log"},
        {**state, "witness": "FR.ncb-paris"},
        {**state, "forks": "none"},
        {**state, "held": 5},
        {**state, "forks": [{"reason": 1}]},
        {**state, "forks": [{"reason": "r", "held": "x", "offered": "y", "proof": ["zz"]}]},
        {**state, "forks": [{"reason": "r", "held": "x", "offered": "y", "proof": ["00"]}]},
        {**state, "forks": [{"reason": "r", "held": "x", "offered": "y", "proof": []}]},
        {**state, "forks": [{"reason": "r", "held": state["held"], "offered": many, "proof": []}]},
    ]
    for bad in bads:
        with pytest.raises(MalformedInput):
            Witness.restore(bad, log=LOG, key=KEY, signer=W_PAIR)
    with pytest.raises(UnknownKey):  # the held note is verified again
        Witness.restore(state, log=LogKey(NAME, W_PAIR.public_key), key=KEY, signer=W_PAIR)


def signed_junk(size: int, seed: int) -> bytes:
    """A checkpoint the log signed over a root that is no tree's (a forked history)."""
    return sign_checkpoint(
        Checkpoint(NAME, size, m.leaf_hash(b"junk %d" % seed)), log=LOG, signer=LOG_PAIR
    )


@pytest.mark.req("LOG-30")
def test_the_same_fork_is_kept_once() -> None:
    w = witness(note(20))
    for i in range(MAX_FORKS_KEPT + 3):
        with pytest.raises(LogFork):
            w.cosign(note(20, FORKED), now=NOW)
        with pytest.raises(LogFork):  # the same two heads, another junk proof
            w.cosign(note(30, FORKED), [bytes([i]) * 32], now=NOW)
    assert [f.offered for f in w.forks] == [note(20, FORKED), note(30, FORKED)]


@pytest.mark.req("LOG-30")
def test_forks_kept_are_bounded_but_the_first_and_same_size_ones_stay() -> None:
    """A relay cannot push the evidence that proves a fork out with a flood of junk forks."""
    w = witness(note(20))
    with pytest.raises(LogFork):
        w.cosign(note(30, FORKED), [bytes(32)], now=NOW)  # the first fork: no valid proof
    with pytest.raises(LogFork):
        w.cosign(note(20, FORKED), now=NOW)  # the same size, another root: a proof on its own
    for seed in range(3 * MAX_FORKS_KEPT):
        with pytest.raises(LogFork):
            w.cosign(signed_junk(21 + seed, seed), [bytes(32)], now=NOW)
    offered = [f.offered for f in w.forks]
    assert len(offered) == MAX_FORKS_KEPT
    assert offered[:2] == [note(30, FORKED), note(20, FORKED)]
    assert offered[-1] == signed_junk(21 + 3 * MAX_FORKS_KEPT - 1, 3 * MAX_FORKS_KEPT - 1)
    again = Witness.restore(json.loads(json.dumps(w.state)), log=LOG, key=KEY, signer=W_PAIR)
    assert [f.offered for f in again.forks] == offered


@pytest.mark.req("LOG-30")
def test_same_size_forks_are_never_pushed_out_by_other_forks() -> None:
    w = witness(note(20))
    same = [signed_junk(20, seed) for seed in range(MAX_FORKS_KEPT + 5)]
    for forked in same:
        with pytest.raises(LogFork):
            w.cosign(forked, now=NOW)
    for seed in range(10):
        with pytest.raises(LogFork):
            w.cosign(signed_junk(40 + seed, seed), [bytes(32)], now=NOW)
    assert [f.offered for f in w.forks] == same[:MAX_FORKS_KEPT]  # the earliest evidence


def test_the_signer_must_hold_the_witness_key() -> None:
    with pytest.raises(UsageError):
        Witness(log=LOG, key=KEY, signer=LOG_PAIR)
    with pytest.raises(UsageError):
        Witness(log=LOG, key=KEY, signer=W_PAIR, held_keys=[LogKey("other/log", LOG.public_key)])


@pytest.mark.req("LOG-30")
def test_a_witness_keeps_its_state_across_the_relays_key_rotation() -> None:
    w = witness()
    w.cosign(note(5), now=NOW)
    new_pair = SigningKeyPair(bytes([4]) * 32)
    new_log = LogKey(NAME, new_pair.public_key)
    with pytest.raises(UnknownKey):  # the held note is not the new key's
        Witness.restore(w.state, log=new_log, key=KEY, signer=W_PAIR)
    again = Witness.restore(w.state, log=new_log, key=KEY, signer=W_PAIR, held_keys=[LOG])
    assert again.held is not None
    assert again.held.data == note(5)
    newer = sign_checkpoint(
        Checkpoint(NAME, 12, m.tree_root(LEAVES[:12])), log=new_log, signer=new_pair
    )
    cosigned = again.cosign(newer, proof(5, 12), now=NOW)
    assert verify_checkpoint(cosigned, log=new_log, witnesses=[KEY], threshold=1).size == 12
    with pytest.raises(UnknownKey):  # an offer is verified with the log key now only
        again.cosign(note(20), proof(12, 20), now=NOW)
