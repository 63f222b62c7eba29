"""A bureau verifies its relay's log (ncb_relay.bureau.log_keeper) on a real relay node.

Every acceptance is verified before a message is ``accepted``: the relay's
signed receipt, the checkpoint it is proven against (consistent with the one
the bureau holds) and the inclusion proof.  A hostile relay is played by
:class:`bureau_world.Tamper`, which rewrites the real relay's answers; where a
test needs evidence that is *validly signed* but false (a fork), it signs with
the relay's own key (``RELAY_SIGNER``), as a relay that lies would.  Each
misbehaviour is detected with its typed error, its evidence kept exactly, the
message not reported accepted, and the bureau's state left as it was: the
next honest answer still makes the message ``accepted``.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bureau_world import FAST, GS, IDS, Tamper, bureau, relay_node
from directory_world import T0, genesis, loaded, rotated
from message_samples import H0, PARIS, RABAT, SEOUL, request
from ncb_relay import merkle
from ncb_relay.bureau import Bureau, BureauStore, RowState
from ncb_relay.bureau.directory_keeper import DirectoryKeeper
from ncb_relay.bureau.log_keeper import LogKeeper
from ncb_relay.bureau.store import MAX_LOG_FORKS, LogForkRow
from ncb_relay.checkpoint import (
    Checkpoint,
    LogKey,
    WitnessKey,
    cosign_checkpoint,
    parse_note,
    sign_checkpoint,
)
from ncb_relay.client import Acceptance, RelayClient
from ncb_relay.client.answers import ConsistencyProof
from ncb_relay.directory import StaticDirectory
from ncb_relay.errors import BelowThreshold, LogFork, UnknownKey
from ncb_relay.receipt import Receipt, log_origin, parse_receipt, sign_receipt
from relay_node_world import GUARD, RELAY, RELAY_SIGNER

LOG = LogKey(log_origin(RELAY), RELAY_SIGNER.public_key)


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _flipped_signature(answer: dict[str, Any]) -> dict[str, Any]:
    receipt = bytearray(_unb64url(answer["receipt"]))
    receipt[-1] ^= 0x01  # the last byte of the signature: still canonical, no longer valid
    return {**answer, "receipt": _b64url(bytes(receipt))}


def _resigned(answer: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The answer with its receipt changed and signed again with the relay's key."""
    stated, _, _ = parse_receipt(_unb64url(answer["receipt"]))
    return {**answer, "receipt": _b64url(sign_receipt(replace(stated, **changes), RELAY_SIGNER))}


def _bad_inclusion(answer: dict[str, Any]) -> dict[str, Any]:
    if not answer["inclusion"]:
        return {**answer, "inclusion": ["00" * 32]}
    return {**answer, "inclusion": ["00" * 32, *answer["inclusion"][1:]]}


def _other_tree(answer: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of the same size whose tree holds the message at its index, signed by the
    relay's key, but where every other leaf is made up: another history (a fork)."""
    stated, _, _ = parse_receipt(_unb64url(answer["receipt"]))
    size = Checkpoint.parse(parse_note(answer["checkpoint"].encode()).text).size
    leaves = [merkle.leaf_hash(bytes([i % 256]) * 32) for i in range(size)]
    leaves[stated.log_index] = merkle.leaf_hash(stated.message_hash)
    nodes = {(0, i): leaf for i, leaf in enumerate(leaves)}

    def node(level: int, index: int) -> bytes:
        if (level, index) not in nodes:
            nodes[level, index] = merkle.node_hash(
                node(level - 1, 2 * index), node(level - 1, 2 * index + 1)
            )
        return nodes[level, index]

    proof = merkle.inclusion_proof(stated.log_index, size, node)
    note = sign_checkpoint(
        Checkpoint(LOG.name, size, merkle.tree_root(leaves)), log=LOG, signer=RELAY_SIGNER
    )
    return {
        **answer,
        "checkpoint": note.decode(),
        "inclusion": [h.hex() for h in proof],
    }


def _held(b: Bureau) -> bytes:
    latest = b.log.latest
    assert latest is not None
    return latest.data


@pytest.mark.req("LOG-18", "LOG-12", "API-24")
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_a_message_is_accepted_with_a_verified_receipt_and_the_checkpoint_kept(
    tmp_path: Path,
) -> None:
    async with relay_node(tmp_path) as (url, clock):
        async with bureau(url, clock, SEOUL, tmp_path) as seoul:
            first = await seoul.send(request(handling=H0), to=[GS])
            second = await seoul.send(request(handling=H0), to=[GS])
            for sent in (first, second):
                assert sent.state is RowState.ACCEPTED
                assert sent.witnessed is True  # no witness threshold
                assert sent.receipt is not None
                assert sent.log_index is not None
                assert sent.checkpoint_size is not None
                assert sent.log_index < sent.checkpoint_size
                kept = seoul.log.receipt(sent.message_id)
                assert kept is not None
                assert (kept.log_index, kept.size) == (sent.log_index, sent.checkpoint_size)
                assert kept.receipt == sent.receipt.data
                assert kept.checkpoint == sent.receipt.checkpoint.data
            assert first.log_index is not None
            assert second.log_index is not None
            assert second.log_index > first.log_index
            latest = seoul.log.latest
            assert latest is not None
            assert latest.size == second.checkpoint_size
            assert seoul.log.problems == []
            assert seoul.log.forks == []
            held = latest.data
        journal = BureauStore(tmp_path / f"{SEOUL}.db", principal=SEOUL)
        try:
            assert journal.log_checkpoint(LOG.name) == held
        finally:
            journal.close()
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as again:
            assert again.log.latest is not None
            assert again.log.latest.size >= parse_size(held)
            third = await again.send(request(handling=H0), to=[GS])  # proven from the held one
            assert third.state is RowState.ACCEPTED
            assert again.log.problems == []


def parse_size(note: bytes) -> int:
    return Checkpoint.parse(parse_note(note).text).size


BARE = ("sender", "messageId", "messageHash", "acceptedAt", "logIndex")
Edit = Callable[[dict[str, Any]], dict[str, Any]]
MISBEHAVIOURS: dict[str, tuple[str, Edit | None]] = {
    "forged receipt signature": ("bad-signature", _flipped_signature),
    "receipt of another message": ("binding-mismatch", None),  # made in the test
    "wrong log index, validly signed": (
        "invalid-proof",
        lambda a: _resigned(a, log_index=a["logIndex"] + 1),
    ),
    "log index not the receipt's": ("binding-mismatch", lambda a: {**a, "logIndex": 0}),
    "bad inclusion proof": ("invalid-proof", _bad_inclusion),
    "another history (fork)": ("log-fork", _other_tree),
    "no receipt": ("malformed", lambda a: {k: a[k] for k in BARE}),
}
QUIET = GUARD * 10  # an outbox task that does not resubmit on its own during a test


@pytest.mark.req("LOG-18", "LOG-13")
@pytest.mark.anyio
@pytest.mark.parametrize("case", list(MISBEHAVIOURS))
async def test_evidence_that_does_not_verify_is_kept_and_the_message_not_accepted(
    tmp_path: Path, case: str
) -> None:
    code, edit = MISBEHAVIOURS[case]
    hostile, given = Tamper(), []

    def tampered(answer: dict[str, Any]) -> dict[str, Any]:
        if edit is None:  # the receipt the relay gave for the message before
            answer = {**answer, "receipt": hostile.acceptances[0]["receipt"]}
        else:
            answer = edit(answer)
        given.append(answer)
        return answer

    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, transport=hostile, retry_interval=QUIET) as seoul,
    ):
        before = await seoul.send(request(handling=H0), to=[GS])
        assert before.state is RowState.ACCEPTED
        held = _held(seoul)
        hostile.acceptance_edits.append(tampered)
        sent = await seoul.send(request(handling=H0), to=[GS])
        assert sent.state is RowState.UNKNOWN
        assert sent.receipt is None
        assert sent.acceptance is None
        assert sent.detail == f"the relay's receipt did not verify: {code}"
        assert seoul.outbox()[1].state is RowState.UNKNOWN
        assert seoul.log.receipt(sent.message_id) is None
        assert _held(seoul) == held  # the checkpoint held did not move
        (problem,) = seoul.log.problems
        assert (problem.code, problem.message_id) == (code, sent.message_id)
        (answer,) = given
        kept = problem.evidence  # exactly as it came
        assert kept.receipt == _unb64url(answer.get("receipt", ""))
        assert kept.checkpoint == answer.get("checkpoint", "").encode()
        assert kept.inclusion == tuple(bytes.fromhex(h) for h in answer.get("inclusion", []))
        forks = seoul.log.forks
        assert len(forks) == (1 if code == "log-fork" else 0)
        if forks:
            assert (forks[0].held, forks[0].offered) == (held, kept.checkpoint)
        (again,) = await seoul.flush()  # the honest answer makes it accepted
        assert again.state is RowState.ACCEPTED
        assert seoul.log.receipt(sent.message_id) is not None
        assert len(seoul.log.problems) == 1


@pytest.mark.req("LOG-12", "LOG-13")
@pytest.mark.anyio
async def test_a_smaller_checkpoint_needs_a_consistency_proof(tmp_path: Path) -> None:
    """A resubmission answered with an older checkpoint: consistent with a valid proof, a fork
    with a proof that fails."""
    hostile = Tamper()
    hostile.acceptance_edits.append(_flipped_signature)  # the first message stays unknown
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, transport=hostile, retry_interval=QUIET) as seoul,
    ):
        lost = await seoul.send(request(handling=H0), to=[GS])
        assert lost.state is RowState.UNKNOWN
        old = hostile.acceptances[0]  # its evidence, as the relay gave it then
        later = await seoul.send(request(handling=H0), to=[GS])
        assert later.state is RowState.ACCEPTED
        held = _held(seoul)
        old_note = old["checkpoint"].encode()
        assert parse_size(old_note) < parse_size(held)
        stale = {k: v for k, v in old.items() if k != "consistency"}
        hostile.acceptance_edits.append(lambda a: stale)
        hostile.consistency_edits.append(lambda c: {**c, "proof": []})
        (again,) = await seoul.flush()
        assert again.state is RowState.UNKNOWN
        assert again.detail == "the relay's receipt did not verify: log-fork"
        (fork,) = seoul.log.forks
        assert (fork.held, fork.offered, fork.proof) == (held, old_note, ())
        assert fork.reason == "no valid consistency proof"
        assert _held(seoul) == held
        hostile.acceptance_edits.append(lambda a: stale)  # now with the relay's real proof
        (honest,) = await seoul.flush()
        assert honest.state is RowState.ACCEPTED
        assert honest.checkpoint_size == parse_size(old_note)
        assert _held(seoul) == held  # a smaller checkpoint never replaces the held one
        assert [p.code for p in seoul.log.problems] == ["bad-signature", "log-fork"]


@pytest.mark.req("LOG-13")
@pytest.mark.anyio
async def test_a_fork_served_as_the_latest_checkpoint_is_kept_with_both_notes(
    tmp_path: Path,
) -> None:
    hostile = Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul,
    ):
        await seoul.send(request(handling=H0), to=[GS])
        held = _held(seoul)
        forged = _other_tree(hostile.acceptances[-1])["checkpoint"].encode()
        hostile.checkpoint_notes.append(forged)
        with pytest.raises(LogFork) as fork:
            await seoul.refresh_log()
        assert (fork.value.held, fork.value.offered) == (held, forged)
        assert fork.value.reason == "two roots for the same size"
        (kept,) = seoul.log.forks
        assert (kept.held, kept.offered, kept.reason) == (held, forged, fork.value.reason)
        assert _held(seoul) == held
        assert await seoul.refresh_log() is not None  # the honest relay's again
        assert _held(seoul) == held


@pytest.mark.req("LOG-13")
@pytest.mark.anyio
async def test_two_relays_from_one_store_that_diverge_are_a_fork(tmp_path: Path) -> None:
    """A relay's store copied, both copies then accept other messages: a bureau that saw one
    history and then meets the other keeps both signed checkpoints."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    async with relay_node(a) as (url, clock), bureau(url, clock, SEOUL, tmp_path) as seoul:
        await seoul.send(request(handling=H0), to=[GS])
    shutil.copytree(a / "relay", b / "relay")
    async with relay_node(a) as (url, clock), bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:
        sent = await seoul.send(request(handling=H0), to=[GS])
        assert sent.state is RowState.ACCEPTED
        held = _held(seoul)
    async with relay_node(b) as (url, clock):
        async with bureau(url, clock, PARIS, tmp_path) as paris:  # the other history
            other = await paris.send(request(handling=H0), to=[GS])
            assert other.checkpoint_size == parse_size(held)
        async with bureau(url, clock, SEOUL, tmp_path, run=2) as seoul:
            (fork,) = seoul.log.forks  # found by the refresh at start
            assert fork.held == held
            assert parse_size(fork.offered) == parse_size(held)
            assert fork.offered != held
            assert fork.reason == "two roots for the same size"
            assert _held(seoul) == held
            third = await seoul.send(request(handling=H0), to=[RABAT])
            assert third.state is RowState.UNKNOWN  # this relay's history is not the one held
            assert third.detail == "the relay's receipt did not verify: log-fork"


@pytest.mark.anyio
async def test_without_the_relays_key_nothing_is_reported_accepted(tmp_path: Path) -> None:
    """Fixed keys that do not list the relay: no acceptance can be verified, none is accepted,
    and nothing is held against the relay (no evidence was shown to be false)."""
    keys = StaticDirectory(i.public for p, i in IDS.items() if p != RELAY)
    async with (
        relay_node(tmp_path) as (url, clock),
        Bureau.connect(
            IDS[SEOUL],
            relay_url=url,
            relay_id=RELAY,
            store=tmp_path / "seoul.db",
            coordinator=GS,
            directory=keys,
            clock=clock,
            retry=FAST,
            poll_wait=1,
            retry_interval=QUIET,
        ) as seoul,
    ):
        assert seoul.log.problem is not None
        assert seoul.log.problem.code == "unknown-key"
        sent = await seoul.send(request(handling=H0), to=[GS])
        assert sent.state is RowState.UNKNOWN
        assert sent.detail == "the relay's receipt is not verified yet: unknown-key"
        assert seoul.log.problems == []
        assert seoul.log.latest is None


@pytest.mark.req("LOG-10", "LOG-12", "API-29")
@pytest.mark.anyio
async def test_a_checkpoint_is_held_only_with_the_witness_cosignatures_required(
    tmp_path: Path,
) -> None:
    witness = WitnessKey(GS, IDS[GS].signer.public_key)
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, log_witnesses=[GS], log_threshold=1) as seoul,
    ):
        sent = await seoul.send(request(handling=H0), to=[GS])
        assert sent.state is RowState.ACCEPTED  # a receipt needs no witness
        assert sent.witnessed is False  # but it is not witnessed yet (LOG-18)
        assert seoul.log.latest is None  # and its checkpoint is not held without one
        assert seoul.log.observed is not None
        assert seoul.log.observed.size == sent.checkpoint_size
        with pytest.raises(BelowThreshold):
            await seoul.refresh_log()
        assert seoul.log.problem is not None
        assert seoul.log.problem.code == "below-threshold"
        assert seoul.log.problems == []  # not the relay's fault
        async with RelayClient(
            url, relay_id=RELAY, identity=IDS[GS], clock=clock, retry=FAST
        ) as coordinator:
            note = await coordinator.checkpoint()
            assert note is not None
            await coordinator.cosign(
                cosign_checkpoint(note, witness=witness, signer=IDS[GS].signer, now=clock())
            )
        held = await seoul.refresh_log()
        assert held is not None
        assert held.cosigned == {GS: clock()}
        assert seoul.log.problem is None
        assert seoul.log.witnessed(sent.message_id) is True


@pytest.mark.req("API-25", "API-26", "API-27", "API-28")
@pytest.mark.anyio
async def test_the_clients_log_reads_on_a_real_relay_verify(tmp_path: Path) -> None:
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path) as seoul,
    ):
        first = await seoul.send(request(handling=H0), to=[GS])
        second = await seoul.send(request(handling=H0), to=[GS])
        assert first.receipt is not None
        assert second.log_index is not None
        relay = seoul.relay
        note = await relay.checkpoint()
        assert note is not None
        latest = Checkpoint.parse(parse_note(note).text)
        assert (await relay.checkpoints(after=latest.size - 1, limit=10)) == (note,)
        entries = await relay.entries(0, 1000)
        assert len(entries) == latest.size
        assert (entries[second.log_index].kind, entries[second.log_index].entry) == (
            "envelope",
            second.message_hash,
        )
        leaves = [merkle.leaf_hash(e.entry) for e in entries]
        assert merkle.tree_root(leaves) == latest.root
        proof = await relay.inclusion(second.log_index, latest.size)
        merkle.verify_inclusion(
            leaves[second.log_index], second.log_index, latest.size, proof, latest.root
        )
        old = first.receipt.checkpoint
        proof = await relay.consistency(old.size, latest.size)
        merkle.verify_consistency(old.size, latest.size, old.root, latest.root, proof)


@pytest.mark.req("LOG-13")
@pytest.mark.anyio
async def test_a_relay_that_lost_its_history_is_a_fork(tmp_path: Path) -> None:
    """The same relay key on a fresh store: its checkpoints cannot be joined to the one held."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    async with relay_node(a) as (url, clock), bureau(url, clock, SEOUL, tmp_path) as seoul:
        for _ in range(3):
            await seoul.send(request(handling=H0), to=[GS])
        held = _held(seoul)
    async with (
        relay_node(b) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, run=1, retry_interval=QUIET) as seoul,
    ):
        sent = await seoul.send(request(handling=H0), to=[GS])
        assert sent.state is RowState.UNKNOWN
        assert sent.detail == "the relay's receipt did not verify: log-fork"
        assert seoul.log.forks
        assert all(fork.held == held for fork in seoul.log.forks)
        assert _held(seoul) == held


# --- review 7: the keeper's checkpoint observed, key rotation, bounded fork evidence -------------


class _Keys:
    """Fixed keys: the relay's signing key is whatever ``key`` holds now."""

    def __init__(self, key: Any) -> None:
        self.key = key

    def identity(self, principal: str) -> Any:
        return SimpleNamespace(signing_key=self.key)


def _directory(keys: Any) -> DirectoryKeeper:
    return cast(DirectoryKeeper, SimpleNamespace(keys=keys))


class _NoProofs:
    async def consistency(self, old: int, new: int) -> tuple[bytes, ...]:
        raise AssertionError("the answer carries the proof")


def _note(entries: list[bytes], signer: Any = RELAY_SIGNER) -> bytes:
    leaves = [merkle.leaf_hash(e) for e in entries]
    key = LogKey(LOG.name, signer.public_key)
    return sign_checkpoint(
        Checkpoint(LOG.name, len(leaves), merkle.tree_root(leaves)), log=key, signer=signer
    )


def _node(entries: list[bytes]) -> Callable[[int, int], bytes]:
    leaves = [merkle.leaf_hash(e) for e in entries]
    return lambda level, i: merkle.tree_root(leaves[i << level : (i + 1) << level])


def _acceptance(entries: list[bytes], held: int, signer: Any = RELAY_SIGNER) -> Acceptance:
    """The relay's answer for the envelope whose hash is the last entry."""
    size, index = len(entries), len(entries) - 1
    mid, mh = bytes([size]) * 32, entries[index]
    return Acceptance(
        SEOUL,
        mid,
        mh,
        100,
        index,
        sign_receipt(Receipt(RELAY, mid, mh, index, 100), signer),
        _note(entries, signer),
        tuple(merkle.inclusion_proof(index, size, _node(entries))),
        ConsistencyProof(held, size, tuple(merkle.consistency_proof(held, size, _node(entries)))),
    )


def _sealed(acceptance: Acceptance) -> Any:
    return SimpleNamespace(message_id=acceptance.message_id, message_hash=acceptance.message_hash)


@pytest.mark.req("LOG-12", "LOG-13", "LOG-18")
@pytest.mark.anyio
async def test_with_a_witness_threshold_the_keeper_catches_a_split_view(tmp_path: Path) -> None:
    witness = WitnessKey(GS, IDS[GS].signer.public_key)
    common = [bytes([i]) * 32 for i in range(2)]
    held = cosign_checkpoint(_note(common), witness=witness, signer=IDS[GS].signer, now=1)
    store = BureauStore(tmp_path / "seoul.db", principal=SEOUL)
    try:
        store.save_log_checkpoint(LOG.name, 2, held)
        keeper = LogKeeper(
            store,
            relay_id=RELAY,
            directory=_directory(_Keys(RELAY_SIGNER.public_key)),
            clock=lambda: 0,
            witnesses=[witness],
            threshold=1,
        )
        keeper.load()
        a = _acceptance([*common, b"\xaa" * 32, b"\xa1" * 32], 2)
        verified = await keeper.verify_acceptance(_sealed(a), a, _NoProofs())  # type: ignore[arg-type]
        keeper.record_accepted(verified, detail="accepted")
        assert keeper.latest is not None
        assert keeper.latest.size == 2  # not witnessed: the latest stays
        assert keeper.observed is not None
        assert keeper.observed.size == 4
        assert keeper.known_size() == 4
        assert keeper.witnessed(a.message_id) is False
        assert store.log_observed(LOG.name) == a.checkpoint
        b = _acceptance([*common, b"\xbb" * 32, b"\xb1" * 32], 2)  # the other branch
        with pytest.raises(LogFork):
            await keeper.verify_acceptance(_sealed(b), b, _NoProofs())  # type: ignore[arg-type]
        (fork,) = keeper.forks
        assert (fork.held, fork.offered) == (a.checkpoint, b.checkpoint)
        assert fork.reason == "two roots for the same size"
    finally:
        store.close()
    store = BureauStore(tmp_path / "seoul.db", principal=SEOUL)  # taken up again at a restart
    try:
        keeper = LogKeeper(
            store,
            relay_id=RELAY,
            directory=_directory(_Keys(RELAY_SIGNER.public_key)),
            clock=lambda: 0,
            witnesses=[witness],
            threshold=1,
        )
        keeper.load()
        assert keeper.observed is not None
        assert keeper.observed.data == a.checkpoint
        with pytest.raises(LogFork):
            await keeper.verify_acceptance(_sealed(b), b, _NoProofs())  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.mark.req("LOG-12", "LOG-20")
@pytest.mark.anyio
async def test_a_rotated_relay_key_keeps_the_held_checkpoint(tmp_path: Path) -> None:
    document, members = genesis()
    relay = members[RELAY]
    after, new = rotated(document, relay, 1, issued=T0 + 10)
    directory = SimpleNamespace(keys=loaded(document))  # the relay's key changes below
    entries = [bytes([i]) * 32 for i in range(8)]
    store = BureauStore(tmp_path / "seoul.db", principal=SEOUL)
    try:
        keeper = LogKeeper(
            store, relay_id=RELAY, directory=cast(DirectoryKeeper, directory), clock=lambda: T0 + 20
        )
        first = _acceptance(entries, 0, relay.signer)
        keeper.record_accepted(
            await keeper.verify_acceptance(_sealed(first), first, _NoProofs()),  # type: ignore[arg-type]
            detail="accepted",
        )
        directory.keys = loaded(after)  # the relay's next signing key is listed now
        assert keeper.latest is not None
        assert keeper.latest.data == first.checkpoint  # still verifies, with its own key
        rewritten = [b"\xee" * 32, b"\xef" * 32, b"\xe0" * 32]
        with pytest.raises(LogFork):  # the first checkpoint under the new key: proven or a fork
            keeper.view().check(_note(rewritten, new.signer), ())
        grown = _acceptance([*entries, b"\x99" * 32], 8, new.signer)
        keeper.record_accepted(
            await keeper.verify_acceptance(_sealed(grown), grown, _NoProofs()),  # type: ignore[arg-type]
            detail="accepted",
        )
        assert keeper.latest.size == 9
        # fixed keys that no longer hold the key of the checkpoint held: no silent empty view
        keeper = LogKeeper(
            store,
            relay_id=RELAY,
            directory=_directory(_Keys(relay.signer.public_key)),
            clock=lambda: T0 + 20,
        )
        keeper.load()
        assert keeper.problem is not None
        assert keeper.problem.code == "unknown-key"
        again = _acceptance([b"\x01" * 32], 0, relay.signer)
        with pytest.raises(UnknownKey):
            await keeper.verify_acceptance(_sealed(again), again, _NoProofs())  # type: ignore[arg-type]
        assert keeper.latest is None
        assert store.log_checkpoint(LOG.name) == grown.checkpoint  # kept, not overwritten
    finally:
        store.close()


@pytest.mark.req("LOG-13")
def test_the_journal_keeps_a_bounded_set_of_forks(tmp_path: Path) -> None:
    store = BureauStore(tmp_path / "seoul.db", principal=SEOUL)
    try:
        held = _note([b"\x00" * 32, b"\x01" * 32])
        proves = _note([b"\x00" * 32, b"\x02" * 32])
        store.record_log_fork(
            LogForkRow(1, LOG.name, "two roots for the same size", held, proves, ())
        )
        for i in range(MAX_LOG_FORKS + 20):
            offered = _note([bytes([i % 256, i // 256]) * 16] * 3)
            for proof in ((), (b"\x00" * 32,)):  # the same two checkpoints once
                row = LogForkRow(
                    2 + i, LOG.name, "no valid consistency proof", held, offered, proof
                )
                store.record_log_fork(row)
        late = _note([b"\x00" * 32, b"\x03" * 32])
        store.record_log_fork(
            LogForkRow(9, LOG.name, "two roots for the same size", held, late, ())
        )
        forks = store.log_forks()
        assert len(forks) == MAX_LOG_FORKS
        assert forks[0].offered == proves  # the first stays
        assert forks[-1].offered == late  # one that proves a fork on its own is kept
        assert len({(f.held, f.offered) for f in forks}) == len(forks)
    finally:
        store.close()
