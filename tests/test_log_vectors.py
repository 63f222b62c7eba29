"""Re-verify spec/vectors/log.json (spec/log.md, LOG-1 .. LOG-14) from the JSON alone.

Keys come from the published seeds and are checked against the published public
keys and key ids; every hash, root and proof is recomputed with the library and
every verification is run with the exact error code expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import NcbRelayError, SigningKeyPair, primitives
from ncb_relay import merkle as m
from ncb_relay.checkpoint import (
    COSIGNATURE_HEADER,
    DEFAULT_LIMITS,
    LOG_SIGNATURE_TYPE,
    WITNESS_SIGNATURE_TYPE,
    LogKey,
    LogView,
    WitnessKey,
    note_key_id,
    verify_checkpoint,
)

JSON = dict[str, Any]

FILE = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "log.json"
DOC: JSON = json.loads(FILE.read_text(encoding="utf-8"))
ENTRIES = [bytes.fromhex(e) for e in DOC["entries"]]
LEAVES = [m.leaf_hash(e) for e in ENTRIES]
NODE = m.nodes_from_leaves(lambda start, end: LEAVES[start:end])


def _log_key() -> LogKey:
    spec = DOC["log"]
    pair = SigningKeyPair(bytes.fromhex(spec["seed"]))
    assert pair.public_key.raw.hex() == spec["publicKey"]
    key = LogKey(spec["name"], pair.public_key)
    assert key.key_id.hex() == spec["keyId"]
    return key


def _witness_keys() -> list[WitnessKey]:
    out = []
    for spec in DOC["witnesses"]:
        pair = SigningKeyPair(bytes.fromhex(spec["seed"]))
        assert pair.public_key.raw.hex() == spec["publicKey"]
        key = WitnessKey(spec["name"], pair.public_key)
        assert key.key_id.hex() == spec["keyId"]
        out.append(key)
    return out


LOG = _log_key()
WITNESSES = _witness_keys()


def group(kind: str) -> list[JSON]:
    return next(g["tests"] for g in DOC["testGroups"] if g["type"] == kind)


def params(kind: str) -> list[Any]:
    return [pytest.param(c, id=f"{c['tcId']}-{c['comment'][:48]}") for c in group(kind)]


def outcome(run: Any) -> str | None:
    try:
        run()
    except NcbRelayError as exc:
        return exc.code
    return None


def hashes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


@pytest.mark.req("LOG-1", "LOG-2", "LOG-5", "LOG-8", "LOG-10")
def test_the_file_is_well_formed_and_states_the_constants() -> None:
    ids = [c["tcId"] for g in DOC["testGroups"] for c in g["tests"]]
    assert ids == list(range(1, len(ids) + 1))
    assert DOC["numberOfTests"] == len(ids)
    for g in DOC["testGroups"]:
        for case in g["tests"]:
            assert case["result"] in {"valid", "invalid"}
            assert set(case["flags"]) <= set(DOC["notes"])
            assert all(r.startswith("LOG-") for r in case["requirements"])
    assert bytes.fromhex(DOC["emptyRoot"]) == m.EMPTY_ROOT == primitives.sha256(b"")
    assert DOC["log"]["signatureType"] == LOG_SIGNATURE_TYPE == 1
    assert {w["signatureType"] for w in DOC["witnesses"]} == {WITNESS_SIGNATURE_TYPE} == {4}
    assert DOC["cosignatureHeader"].encode() == COSIGNATURE_HEADER
    limits = DOC["limits"]
    assert limits["maxBytes"] == DEFAULT_LIMITS.max_bytes
    assert limits["maxSignatures"] == DEFAULT_LIMITS.max_signatures
    assert limits["maxExtensionLines"] == DEFAULT_LIMITS.max_extension_lines
    assert limits["maxProofHashes"] == m.MAX_PROOF_HASHES
    spec = DOC["log"]
    raw = bytes.fromhex(spec["publicKey"])
    assert (
        note_key_id(spec["name"], 1, raw)
        == primitives.sha256(spec["name"].encode() + b"\n\x01" + raw)[:4]
    )
    # every group holds valid and invalid cases, and every requirement is exercised
    named = {r for g in DOC["testGroups"] for c in g["tests"] for r in c["requirements"]}
    assert named >= {f"LOG-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13)}


@pytest.mark.req("LOG-1", "LOG-2")
@pytest.mark.parametrize("case", params("Hash"))
def test_hash(case: JSON) -> None:
    if case["kind"] == "leaf":
        assert m.leaf_hash(bytes.fromhex(case["entry"])).hex() == case["hash"]
    else:
        left, right = bytes.fromhex(case["left"]), bytes.fromhex(case["right"])
        assert m.node_hash(left, right).hex() == case["hash"]


@pytest.mark.req("LOG-2")
def test_tree_heads() -> None:
    tree = m.CompactTree()
    for case in group("TreeHead"):
        size = case["size"]
        while tree.size < size:
            tree.append(LEAVES[tree.size])
        assert tree.root().hex() == case["root"]
        assert m.tree_root(LEAVES[:size]).hex() == case["root"]


@pytest.mark.req("LOG-3", "LOG-5")
@pytest.mark.parametrize("case", params("Inclusion"))
def test_inclusion(case: JSON) -> None:
    index, size = case["leafIndex"], case["treeSize"]
    leaf, root, proof = bytes.fromhex(case["leafHash"]), bytes.fromhex(case["root"]), case["proof"]
    got = outcome(lambda: m.verify_inclusion(leaf, index, size, hashes(proof), root))
    assert got == case.get("error")
    if case["result"] == "valid":
        assert m.inclusion_proof(index, size, NODE) == hashes(proof)
        assert m.tree_root(LEAVES[:size]) == root


@pytest.mark.req("LOG-4", "LOG-5")
@pytest.mark.parametrize("case", params("Consistency"))
def test_consistency(case: JSON) -> None:
    old, new = case["oldSize"], case["newSize"]
    old_root, new_root = bytes.fromhex(case["oldRoot"]), bytes.fromhex(case["newRoot"])
    proof = hashes(case["proof"])
    got = outcome(lambda: m.verify_consistency(old, new, old_root, new_root, proof))
    assert got == case.get("error")
    if case["result"] == "valid":
        assert m.consistency_proof(old, new, NODE) == proof


@pytest.mark.req("LOG-6", "LOG-7", "LOG-8", "LOG-9", "LOG-10", "LOG-14")
@pytest.mark.parametrize("case", params("Checkpoint"))
def test_checkpoint(case: JSON) -> None:
    note = bytes.fromhex(case["note"])
    if case["noteText"] is not None:
        assert case["noteText"].encode("utf-8") == note
    results: list[Any] = []

    def run() -> None:
        results.append(
            verify_checkpoint(note, log=LOG, witnesses=WITNESSES, threshold=case["threshold"])
        )

    assert outcome(run) == case.get("error")
    if case["result"] == "valid":
        verified = results[0]
        assert verified.origin == case["origin"]
        assert verified.size == case["size"]
        assert verified.root.hex() == case["root"]
        assert list(verified.checkpoint.extensions) == case["extensions"]
        assert verified.cosigned == case["cosigned"]
        assert verified.data == note
        assert m.tree_root(LEAVES[: verified.size]) == verified.root


@pytest.mark.req("LOG-12", "LOG-13")
@pytest.mark.parametrize("case", params("LogView"))
def test_log_view(case: JSON) -> None:
    view = LogView(LOG)
    for step in case["steps"]:
        data, proof = bytes.fromhex(step["note"]), hashes(step["proof"])
        assert outcome(lambda d=data, p=proof: view.update(d, p)) == step.get("error")
        assert (None if view.latest is None else view.latest.size) == step["latestSize"]
    assert [
        {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason} for f in view.forks
    ] == case["forks"]
    for fork in view.forks:  # the evidence verifies on its own, by the log's key alone
        verify_checkpoint(fork.held, log=LOG)
        verify_checkpoint(fork.offered, log=LOG)
