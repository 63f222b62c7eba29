"""An auditor's verdict on a whole log (LOG-31).

The log is built here with the reference library, under the log key and the first
two witness keys of ``log.json``: 13 entries (32-byte hashes of fixed labels) and
checkpoints of sizes 1, 5, 8 and 13, each signed by the log and cosigned by both
witnesses at ``NOW + size``.  ``audit-log`` is given the entries, the checkpoints
and the proofs the log served (inclusion of the first and the last entry and of
entry 4 in 5; consistency between consecutive checkpoints), first as an honest log
serves them, then with one thing changed as a misbehaving log would serve it.
The problems expected follow LOG-31's rules; each is compared by its code and the
entry index or checkpoint size it concerns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest

from ncb_relay import SigningKeyPair, merkle
from ncb_relay.checkpoint import Checkpoint, LogKey, WitnessKey, cosign_checkpoint, sign_checkpoint

from .adapter_process import AdapterProcess
from .vectors import JSON, load

LOG = load("log.json")
NAME: str = LOG["log"]["name"]
LOG_PAIR = SigningKeyPair(bytes.fromhex(LOG["log"]["seed"]))
OTHER_PAIR = SigningKeyPair(bytes.fromhex(LOG["witnesses"][2]["seed"]))  # not the log's key
WITNESSES = [(w["name"], SigningKeyPair(bytes.fromhex(w["seed"]))) for w in LOG["witnesses"][:2]]
NOW = 1_800_000_000
SIZES = [1, 5, 8, 13]
HASHES = [hashlib.sha256(f"ncbr conformance audit entry {i}".encode()).digest() for i in range(13)]
INCLUSION = [(0, 13), (4, 5), (12, 13)]
CONSISTENCY = [(1, 5), (5, 8), (8, 13)]

# What each problem is compared by besides its code: the checkpoint size, or the proof's
# entry index (null for a consistency proof) and size.
WHERE = {
    "entry-order": ("index",),  # the index that was due
    "checkpoint-invalid": ("size",),  # the size the note claims
    "checkpoint-order": ("size",),
    "checkpoint-root": ("size",),
    "checkpoint-unchecked": ("size",),
    "entries-short": ("size",),
    "witness-invalid": ("size",),
    "witness-not-valid": ("size",),
    "witness-threshold": ("size",),
    "proof-invalid": ("index", "size"),
    "proof-differs": ("index", "size"),
}


def leaves(hashes: Sequence[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(h) for h in hashes]


def nodes(hashes: Sequence[bytes]) -> merkle.NodeReader:
    hashed = leaves(hashes)
    return merkle.nodes_from_leaves(lambda start, end: hashed[start:end])


def note(
    size: int,
    hashes: Sequence[bytes] = HASHES,
    *,
    signer: SigningKeyPair = LOG_PAIR,
    cosigners: Sequence[tuple[str, SigningKeyPair]] = WITNESSES,
) -> str:
    root = merkle.tree_root(leaves(hashes[:size]))
    data = sign_checkpoint(
        Checkpoint(NAME, size, root), log=LogKey(NAME, signer.public_key), signer=signer
    )
    for name, pair in cosigners:
        witness = WitnessKey(name, pair.public_key)
        data = cosign_checkpoint(data, witness=witness, signer=pair, now=NOW + size)
    return data.hex()


def entry(index: int, digest: bytes | None = None) -> JSON:
    kind = "directory" if index % 5 == 0 else "envelope"
    return {"index": index, "kind": kind, "hash": (digest or HASHES[index]).hex()}


def hexes(proof: Sequence[bytes]) -> list[str]:
    return [p.hex() for p in proof]


def audit_request(**changes: object) -> JSON:
    """The request for the honest log, with ``changes`` to its members."""
    served = nodes(HASHES)
    request: JSON = {
        "op": "audit-log",
        "log": {"name": NAME, "publicKey": LOG_PAIR.public_key.raw.hex()},
        "witnesses": [
            {"name": name, "publicKey": pair.public_key.raw.hex()} for name, pair in WITNESSES
        ],
        "threshold": 2,
        "entries": [entry(i) for i in range(len(HASHES))],
        "checkpoints": [note(size) for size in SIZES],
        "inclusion": [
            {"index": i, "size": s, "proof": hexes(merkle.inclusion_proof(i, s, served))}
            for i, s in INCLUSION
        ],
        "consistency": [
            {"oldSize": a, "newSize": b, "proof": hexes(merkle.consistency_proof(a, b, served))}
            for a, b in CONSISTENCY
        ],
    }
    request.update(changes)
    return request


def where(problem: JSON) -> tuple[object, ...]:
    return (problem.get("code"), *(problem.get(f) for f in WHERE.get(problem.get("code", ""), ())))


def audit(adapter: AdapterProcess, request: JSON) -> JSON:
    got = adapter.call(request)
    assert "error" not in got, f"the audit was refused: {got}"
    return got


def flipped(value: str) -> str:
    raw = bytearray(bytes.fromhex(value))
    raw[-1] ^= 1
    return raw.hex()


@pytest.mark.req("LOG-31")
def test_an_honest_log_is_verified(adapter: AdapterProcess) -> None:
    got = audit(adapter, audit_request())
    assert got.get("problems") == []
    assert got.get("verified") is True
    assert (got.get("size"), got.get("root")) == (13, merkle.tree_root(leaves(HASHES)).hex())


def _without(index: int) -> list[JSON]:
    return [entry(i) for i in range(len(HASHES)) if i != index]


def _repeated(index: int) -> list[JSON]:
    served = [entry(i) for i in range(len(HASHES))]
    return [*served[: index + 1], served[index], *served[index + 1 :]]


def _tampered_entries() -> list[JSON]:
    return [entry(i, hashlib.sha256(b"another").digest() if i == 6 else None) for i in range(13)]


def _wrong_root() -> list[str]:
    other = [hashlib.sha256(f"another tree {i}".encode()).digest() for i in range(8)]
    return [note(1), note(5), note(8, other), note(13)]


def _bad_cosignature() -> list[str]:
    """Checkpoint 8 with the second witness's cosignature of another tree's checkpoint 8."""
    notes = [bytes.fromhex(note(size)) for size in SIZES]
    other = [hashlib.sha256(f"another tree {i}".encode()).digest() for i in range(8)]
    forged = bytes.fromhex(note(8, other, cosigners=WITNESSES[1:])).split(b"\n")[-2]
    notes[2] = b"\n".join([*notes[2].split(b"\n")[:-2], forged, b""])
    return [n.hex() for n in notes]


def _inclusion_flipped() -> list[JSON]:
    request = audit_request()
    proofs: list[JSON] = request["inclusion"]
    last = proofs[-1]
    return [*proofs[:-1], {**last, "proof": [*last["proof"][:-1], flipped(last["proof"][-1])]}]


def _window_closed() -> list[JSON]:
    request = audit_request()
    witnesses: list[JSON] = request["witnesses"]
    return [witnesses[0], {**witnesses[1], "notBefore": NOW, "notAfter": NOW + 13}]


Changes = Callable[[], JSON]
SCENARIOS: list[tuple[str, Changes, int, list[tuple[object, ...]]]] = [
    (
        "an entry missing",
        lambda: {"entries": _without(6)},
        6,
        [("entry-order", 6), ("checkpoint-unchecked", 8)],
    ),
    (
        "an entry served twice",
        lambda: {"entries": _repeated(6)},
        7,
        [("entry-order", 7), ("checkpoint-unchecked", 8)],
    ),
    (
        "an entry with another hash",
        lambda: {"entries": _tampered_entries()},
        13,
        [
            ("checkpoint-root", 8),
            ("checkpoint-root", 13),
            ("proof-differs", 0, 13),
            ("proof-differs", 12, 13),
            ("proof-differs", None, 8),
        ],
    ),
    (
        "fewer entries than the checkpoint covers",
        lambda: {"entries": [entry(i) for i in range(10)]},
        10,
        [("entries-short", 13)],
    ),
    (
        "a checkpoint signed by another key",
        lambda: {"checkpoints": [note(1), note(5, signer=OTHER_PAIR), note(8), note(13)]},
        13,
        [("checkpoint-invalid", 5)],
    ),
    (
        "a checkpoint after a larger one",
        lambda: {"checkpoints": [note(1), note(5), note(13), note(8)]},
        13,
        [("checkpoint-order", 8)],
    ),
    (
        "a signed root that is not the entries' root",
        lambda: {"checkpoints": _wrong_root()},
        13,
        [("checkpoint-root", 8), ("proof-invalid", None, 8), ("proof-invalid", None, 13)],
    ),
    (
        "an inclusion proof with a hash changed",
        lambda: {"inclusion": _inclusion_flipped()},
        13,
        [("proof-invalid", 12, 13)],
    ),
    (
        "a forged cosignature",
        lambda: {"checkpoints": _bad_cosignature()},
        13,
        [("witness-invalid", 8), ("witness-threshold", 8)],
    ),
    (
        "a cosignature after its witness key's window",
        lambda: {"witnesses": _window_closed()},
        13,
        [("witness-not-valid", 13), ("witness-threshold", 13)],
    ),
    (
        "entries and no checkpoint",
        lambda: {"checkpoints": [], "inclusion": [], "consistency": []},
        13,
        [("no-checkpoint",)],
    ),
]


@pytest.mark.req("LOG-31")
@pytest.mark.parametrize(
    ("changes", "size", "problems"),
    [pytest.param(c, s, p, id=name) for name, c, s, p in SCENARIOS],
)
def test_a_misbehaving_log_is_not_verified_and_each_fault_is_reported(
    adapter: AdapterProcess, changes: Changes, size: int, problems: list[tuple[object, ...]]
) -> None:
    got = audit(adapter, audit_request(**changes()))
    reported = sorted((where(p) for p in got.get("problems", [])), key=repr)
    assert reported == sorted(problems, key=repr), f"problems reported: {got.get('problems')}"
    assert got.get("verified") is False
    assert got.get("size") == size, "the entries replayed, up to where the replay stopped"
