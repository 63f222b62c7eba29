"""The adapters of ``ncb-relay log audit|witness`` (ncb_relay.log_cli) against a scripted relay.

:class:`FakeLog` answers the log endpoints of spec/relay-api.md from an
in-memory log, through an ``httpx.MockTransport`` given to the real
:class:`~ncb_relay.client.RelayClient`; a test changes what it serves to play a
misbehaving relay.  The commands against a real relay node are in
``test_log_cli_relay.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from directory_world import BUREAUS, COORDINATOR, DAY, T0, genesis, loaded, rotated
from fixtures import seeded_rng
from ncb_relay import PrivateIdentity, SigningKeyPair, primitives
from ncb_relay import merkle as m
from ncb_relay.checkpoint import Checkpoint, LogKey, WitnessKey, sign_checkpoint, verify_checkpoint
from ncb_relay.client import RelayClient, RetryPolicy
from ncb_relay.errors import LogFork, MalformedInput, Rollback, UnknownKey, UsageError
from ncb_relay.lifecycle import next_version, revoke_key, suspend
from ncb_relay.log_cli import (
    _load_witness,
    _save_witness,
    run_audit,
    witness_loop,
    witness_round,
    witness_validity,
    witnessing_keys,
)
from ncb_relay.witness import Witness

RELAY = "XP.relay-lyon"
NAME = f"{RELAY}/log"
LOG_PAIR = SigningKeyPair(bytes([1]) * 32)
LOG = LogKey(NAME, LOG_PAIR.public_key)
FAST = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002)
NOW = 1_800_000_000
WITNESS = PrivateIdentity.generate("KR.ncb-seoul", seeded_rng(b"witness"))
W_KEY = WitnessKey(WITNESS.principal, WITNESS.signer.public_key)
SEOUL, RABAT, PARIS = BUREAUS


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _hashes(count: int, salt: bytes = b"") -> list[bytes]:
    return [primitives.sha256(salt + i.to_bytes(4, "big")) for i in range(count)]


def _note(hashes: list[bytes], size: int) -> bytes:
    root = m.tree_root([m.leaf_hash(h) for h in hashes[:size]])
    return sign_checkpoint(Checkpoint(NAME, size, root), log=LOG, signer=LOG_PAIR)


@dataclass
class FakeLog:
    """A relay's log endpoints over an in-memory log (batches of ``step`` entries signed)."""

    hashes: list[bytes] = field(default_factory=lambda: _hashes(2500))
    step: int = 7
    down: set[str] = field(default_factory=set)  # paths answered 404 not-found
    proof_hook: Callable[[str, list[bytes]], list[bytes]] = lambda _path, proof: proof
    posted: list[bytes] = field(default_factory=list)
    notes: dict[int, bytes] = field(default_factory=dict)
    latest: bytes | None = None  # served instead of the latest listed checkpoint
    seen: list[str] = field(default_factory=list)  # the paths asked for

    def __post_init__(self) -> None:
        self.sign_all()

    def sign_all(self) -> None:
        sizes = [*range(self.step, len(self.hashes), self.step), len(self.hashes)]
        self.notes = {size: _note(self.hashes, size) for size in sizes}

    def node(self) -> m.NodeReader:
        leaves = [m.leaf_hash(h) for h in self.hashes]
        return m.nodes_from_leaves(lambda start, end: leaves[start:end])

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen.append(path)
        query = {k: int(v[0]) for k, v in parse_qs(request.url.query.decode()).items()}
        if path in self.down:
            problem = {"type": "x", "title": "x", "status": 404, "code": "not-found"}
            return httpx.Response(
                404, headers={"content-type": "application/problem+json"}, json=problem
            )
        if path == "/v1/log/checkpoint":
            latest = self.latest or self.notes[max(self.notes)]
            return httpx.Response(200, headers={"content-type": "text/plain"}, content=latest)
        if path == "/v1/log/checkpoints":
            sizes = sorted(s for s in self.notes if s > query["after"])[: query["limit"]]
            return httpx.Response(
                200, json={"checkpoints": [self.notes[s].decode() for s in sizes]}
            )
        if path == "/v1/log/entries":
            start, limit = query["start"], query["limit"]
            items = [
                {"index": i, "kind": "envelope", "hash": self.hashes[i].hex()}
                for i in range(start, min(start + limit, len(self.hashes)))
            ]
            return httpx.Response(200, json={"entries": items})
        if path == "/v1/log/inclusion":
            index, size = query["index"], query["size"]
            proof = self.proof_hook(path, m.inclusion_proof(index, size, self.node()))
            return httpx.Response(
                200, json={"index": index, "size": size, "proof": [p.hex() for p in proof]}
            )
        if path == "/v1/log/consistency":
            old, new = query["from"], query["to"]
            proof = self.proof_hook(path, m.consistency_proof(old, new, self.node()))
            return httpx.Response(
                200, json={"from": old, "to": new, "proof": [p.hex() for p in proof]}
            )
        if path == "/v1/log/cosignature" and request.method == "POST":
            self.posted.append(request.content)
            return httpx.Response(204)
        return httpx.Response(404)

    def client(self, identity: PrivateIdentity = WITNESS) -> RelayClient:
        return RelayClient(
            "http://relay.test",
            relay_id=RELAY,
            identity=identity,
            clock=lambda: NOW,
            rng=seeded_rng(b"client"),
            retry=FAST,
            transport=httpx.MockTransport(self.handle),
        )


async def _audit(fake: FakeLog, **options: Any) -> Any:
    async with fake.client() as client:
        return await run_audit(client, log_keys=[LOG], rng=seeded_rng(b"audit"), **options)


@pytest.mark.anyio
@pytest.mark.req("LOG-31")
async def test_the_audit_pages_through_the_whole_log() -> None:
    lines: list[str] = []
    report = await _audit(FakeLog(), sample=16, progress=lines.append)
    assert report.ok, report.text()
    assert report.size == 2500
    assert report.checkpoints == report.checkpoints_checked == 358
    assert report.entries["envelope"] == 2500
    assert report.consistency_proofs <= 18
    assert report.inclusion_proofs >= 2
    assert lines  # progress was offered at every page


@pytest.mark.anyio
@pytest.mark.req("LOG-31")
async def test_the_audit_reports_a_relay_that_rewrote_an_entry() -> None:
    fake = FakeLog()
    fake.hashes[1234] = bytes(32)  # served now; the checkpoints were signed before
    report = await _audit(fake, sample=32)
    assert {p.code for p in report.problems} >= {"checkpoint-root", "proof-invalid"}


@pytest.mark.anyio
@pytest.mark.req("LOG-31")
async def test_the_audit_reports_proofs_that_do_not_verify() -> None:
    fake = FakeLog(proof_hook=lambda _path, proof: [bytes(32)] * len(proof))
    report = await _audit(fake, sample=4)
    invalid = [p for p in report.problems if p.code == "proof-invalid"]
    assert len(invalid) >= report.inclusion_proofs  # a one-leaf proof of nothing may pass
    assert not report.ok


@pytest.mark.anyio
@pytest.mark.req("LOG-31")
async def test_the_audit_reports_a_latest_checkpoint_not_in_the_list() -> None:
    fake = FakeLog()
    fake.latest = _note(_hashes(2500, b"other"), 2500)  # another history, signed by the log
    report = await _audit(fake)
    assert [p.code for p in report.problems] == ["latest-differs"]


@pytest.mark.anyio
async def test_a_relay_that_stops_answering_is_a_problem_not_a_crash() -> None:
    fake = FakeLog(down={"/v1/log/entries"})
    report = await _audit(fake)
    assert [p.code for p in report.problems][:1] == ["fetch-failed"]
    fake = FakeLog(down={"/v1/log/checkpoint"})
    report = await _audit(fake)
    assert report.ok  # no checkpoint: an empty log, nothing claimed
    assert report.size == 0


@pytest.mark.anyio
@pytest.mark.req("LOG-30")
async def test_the_witness_cosigns_and_posts_each_new_checkpoint(tmp_path: Path) -> None:
    fake = FakeLog(hashes=_hashes(40), step=10)
    state = tmp_path / "witness.json"
    witness = _load_witness(state, log=LOG, key=W_KEY, identity=WITNESS)

    def save(w: Witness) -> None:
        _save_witness(state, w)

    async with fake.client() as client:
        said = await witness_round(client, witness, save=save, now=NOW)
        assert said == "cosigned size 40"
        assert state.exists()
        cosigned = verify_checkpoint(fake.posted[-1], log=LOG, witnesses=[W_KEY], threshold=1)
        assert cosigned.size == 40
        fake.notes[40] = fake.posted[-1]  # the relay now serves it with the cosignature
        assert (
            await witness_round(client, witness, save=save, now=NOW) == "size 40 already cosigned"
        )
        fake.hashes += _hashes(5, b"more")
        fake.sign_all()
        assert await witness_round(client, witness, save=save, now=NOW + 1) == "cosigned size 45"
    again = _load_witness(state, log=LOG, key=W_KEY, identity=WITNESS)
    assert again.held is not None
    assert again.held.size == 45
    assert json.loads(state.read_text())["forks"] == []


@pytest.mark.anyio
@pytest.mark.req("LOG-30")
async def test_the_witness_keeps_a_fork_in_its_state_and_posts_nothing(tmp_path: Path) -> None:
    fake = FakeLog(hashes=_hashes(40), step=10)
    state = tmp_path / "witness.json"
    witness = _load_witness(state, log=LOG, key=W_KEY, identity=WITNESS)

    def save(w: Witness) -> None:
        _save_witness(state, w)

    async with fake.client() as client:
        await witness_round(client, witness, save=save, now=NOW)
        posted = len(fake.posted)
        fake.hashes = [*fake.hashes[:20], *_hashes(30, b"fork")]  # history rewritten from 20
        fake.sign_all()
        with pytest.raises(LogFork):
            await witness_round(client, witness, save=save, now=NOW + 1)
    assert len(fake.posted) == posted
    forks = json.loads(state.read_text())["forks"]
    assert len(forks) == 1
    assert forks[0]["held"].encode() == _note(_hashes(40), 40)


@pytest.mark.anyio
@pytest.mark.req("LOG-30")
async def test_the_witness_never_cosigns_an_older_checkpoint(tmp_path: Path) -> None:
    fake = FakeLog(hashes=_hashes(45), step=10)
    witness = Witness(log=LOG, key=W_KEY, signer=WITNESS.signer)
    async with fake.client() as client:
        await witness_round(client, witness, save=lambda _w: None, now=NOW)
        fake.latest = fake.notes[40]  # the relay went back to an earlier head
        with pytest.raises(Rollback):
            await witness_round(client, witness, save=lambda _w: None, now=NOW)
    assert len(fake.posted) == 1
    assert witness.held is not None
    assert witness.held.size == 45


def _junk_line(key: WitnessKey) -> bytes:
    """A cosignature line in ``key``'s name and key id that verifies nothing."""
    return f"\u2014 {key.name} ".encode() + base64.b64encode(key.key_id + bytes(72)) + b"\n"


@pytest.mark.anyio
@pytest.mark.req("LOG-30")
async def test_a_junk_line_in_the_witness_name_is_the_relays_fault_not_the_witness(
    tmp_path: Path,
) -> None:
    fake = FakeLog(hashes=_hashes(40), step=10)
    fake.latest = fake.notes[40] + _junk_line(W_KEY)
    witness = Witness(log=LOG, key=W_KEY, signer=WITNESS.signer)
    async with fake.client() as client:
        said = await witness_round(client, witness, save=lambda _w: None, now=NOW)
    assert "cosigned size 40" in said
    assert "do not verify: the relay's fault" in said
    posted = fake.posted[-1]
    assert verify_checkpoint(posted, log=LOG, witnesses=[W_KEY], threshold=1).size == 40
    assert posted.count(W_KEY.name.encode()) == 1  # the junk line is not given back
    assert witness.held is not None
    assert witness.held.size == 40


@pytest.mark.anyio
@pytest.mark.req("LOG-30")
async def test_the_witness_loop_survives_every_error_but_a_fork(tmp_path: Path) -> None:
    fake = FakeLog(hashes=_hashes(40), step=10)
    state = tmp_path / "witness.json"
    witness = Witness(log=LOG, key=W_KEY, signer=WITNESS.signer)
    said: list[str] = []
    warned: list[str] = []
    good = fake.notes[40]
    other = LogKey(NAME, SigningKeyPair(bytes([9]) * 32).public_key)
    forged = sign_checkpoint(
        Checkpoint(NAME, 50, bytes(32)), log=other, signer=SigningKeyPair(bytes([9]) * 32)
    )

    def rewrite() -> None:  # history rewritten from 20: a fork
        fake.hashes = [*fake.hashes[:20], *_hashes(30, b"fork")]
        fake.sign_all()
        fake.latest = None

    def refuse_cosignatures() -> None:
        fake.latest = good + _junk_line(W_KEY)  # cosigned again, but the relay refuses it
        fake.down.add("/v1/log/cosignature")

    scenes: list[Callable[[], None]] = [
        lambda: setattr(fake, "latest", b"not a note"),
        lambda: setattr(fake, "latest", forged),  # signed by another key
        lambda: setattr(fake, "latest", fake.notes[30]),  # an older head
        refuse_cosignatures,
        fake.down.clear,  # the same again, taken now
        rewrite,
    ]

    async def next_scene(seconds: float) -> None:
        assert seconds == 5.0
        scenes.pop(0)()

    async with fake.client() as client:
        with pytest.raises(LogFork):
            await witness_loop(
                client,
                witness,
                save=lambda w: _save_witness(state, w),
                clock=lambda: NOW,
                interval=5.0,
                say=said.append,
                warn=warned.append,
                sleep=next_scene,
            )
    assert not scenes
    codes = ["(malformed)", "(unknown-key)", "(rollback)", "(relay-refused)"]
    assert [code in line for code, line in zip(codes, warned, strict=True)] == [True] * 4, warned
    assert said[0].endswith("cosigned size 40")
    assert "the relay's fault" in said[1]
    assert len(json.loads(state.read_text())["forks"]) == 1
    assert witness.held is not None
    assert witness.held.size == 40


@pytest.mark.anyio
async def test_one_round_raises_what_went_wrong() -> None:
    fake = FakeLog(hashes=_hashes(40), step=10)
    fake.latest = b"not a note"
    witness = Witness(log=LOG, key=W_KEY, signer=WITNESS.signer)
    async with fake.client() as client:
        with pytest.raises(MalformedInput):
            await witness_loop(
                client, witness, save=lambda _w: None, clock=lambda: NOW, interval=5.0, once=True
            )


@pytest.mark.anyio
@pytest.mark.req("LOG-31")
async def test_the_audit_verifies_the_latest_checkpoint_before_it_pages() -> None:
    """An unsigned claim of a huge log makes the audit fetch nothing, and hold nothing."""
    fake = FakeLog(hashes=_hashes(40), step=10)
    other = SigningKeyPair(bytes([9]) * 32)
    huge = Checkpoint(NAME, 2**62, bytes(32))
    fake.latest = sign_checkpoint(huge, log=LogKey(NAME, other.public_key), signer=other)
    report = await _audit(fake)
    assert [p.code for p in report.problems] == ["checkpoint-invalid"]
    assert fake.seen == ["/v1/log/checkpoint"]
    fake = FakeLog(hashes=_hashes(40), step=10, latest=b"example/log\n99999999999\nroot\n\n")
    report = await _audit(fake)
    assert [(p.code, p.error) for p in report.problems] == [("checkpoint-invalid", "malformed")]
    assert fake.seen == ["/v1/log/checkpoint"]


# --- the keys, from the directory -----------------------------------------------------------


def test_the_witness_takes_the_relays_key_valid_now_and_its_own() -> None:
    document, members = genesis()
    relay = members[RELAY]
    later, new = rotated(document, relay, 1, issued=T0 + 100)  # the new key from T0 + 100
    directory = loaded(later)
    seoul = members[SEOUL].identity
    log, key = witnessing_keys(directory, RELAY, seoul, T0 + 50)
    assert log == LogKey(NAME, relay.signer.public_key)
    assert key == WitnessKey(SEOUL, seoul.signer.public_key)
    log, _key = witnessing_keys(directory, RELAY, seoul, T0 + 100 + 10 * DAY)
    assert log == LogKey(NAME, new.signer.public_key)
    with pytest.raises(UsageError):  # the keystore holds another key than the directory lists
        witnessing_keys(directory, RELAY, WITNESS, T0 + 50)
    with pytest.raises(UnknownKey):  # a relay witnesses nothing
        witnessing_keys(directory, RELAY, relay.identity, T0 + 50)
    suspended = loaded(suspend(next_version(document, issued=T0 + 100), RELAY))
    with pytest.raises(UnknownKey):
        witnessing_keys(suspended, RELAY, seoul, T0 + 200)


@pytest.mark.req("LOG-30", "LOG-31")
def test_the_audit_counts_a_witness_key_only_when_it_was_valid() -> None:
    document, members = genesis()
    draft = next_version(document, issued=T0 + 100)
    draft = suspend(draft, PARIS)  # from T0 + 100
    rabat = members[RABAT].signer.public_key
    draft = revoke_key(draft, RABAT, rabat.key_id, at=T0 + 50)  # stolen from T0 + 50
    seoul_old = members[SEOUL].signer.public_key
    draft, seoul = rotated(draft, members[SEOUL], 1, issued=T0 + 100)
    witnesses, valid_at = witness_validity(loaded(draft))
    assert {w.name for w in witnesses} == {SEOUL, RABAT, PARIS, COORDINATOR}  # not the relay
    assert len(witnesses) == 5  # Seoul's two keys

    def valid(name: str, key: Any, at: int) -> bool:
        return valid_at(WitnessKey(name, key), at)

    gs = members[COORDINATOR].signer.public_key
    assert valid(COORDINATOR, gs, T0 + 200)
    assert not valid(COORDINATOR, gs, T0 - 1)  # before it was listed
    paris = members[PARIS].signer.public_key
    assert valid(PARIS, paris, T0 + 99)
    assert not valid(PARIS, paris, T0 + 100)  # suspended
    assert valid(RABAT, rabat, T0 + 49)
    assert not valid(RABAT, rabat, T0 + 50)  # revoked
    assert valid(SEOUL, seoul_old, T0 + 10)
    assert not valid(SEOUL, seoul_old, T0 + 100 + 30 * DAY)  # rotated out
    assert valid(SEOUL, seoul.signer.public_key, T0 + 200)
    assert not valid(SEOUL, seoul.signer.public_key, T0 + 50)  # not yet in its window
    assert not valid(SEOUL, gs, T0 + 200)  # another principal's key
    relay = members[RELAY].signer.public_key
    assert not valid(RELAY, relay, T0 + 200)
