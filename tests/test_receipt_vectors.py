"""Re-verify the Receipt and LogCheck groups of spec/vectors/log.json (LOG-12 .. LOG-20).

The relay's key comes from its published seed and is checked against the published
public key and key ids; every receipt is verified with the exact error code expected,
and every valid one is decoded, re-signed and compared byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import NcbRelayError, SigningKeyPair
from ncb_relay import merkle as m
from ncb_relay.checkpoint import LogKey, LogView, WitnessKey, verify_checkpoint
from ncb_relay.receipt import (
    MAX_RECEIPT_BYTES,
    RECEIPT_LABEL,
    log_origin,
    parse_receipt,
    sign_receipt,
    verify_receipt,
)

JSON = dict[str, Any]

FILE = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "log.json"
DOC: JSON = json.loads(FILE.read_text(encoding="utf-8"))
RELAY = DOC["relay"]
RELAY_PAIR = SigningKeyPair(bytes.fromhex(RELAY["seed"]))
RELAY_LOG = LogKey(log_origin(RELAY["id"]), RELAY_PAIR.public_key)
LOG_PAIR = SigningKeyPair(bytes.fromhex(DOC["log"]["seed"]))
LOG = LogKey(DOC["log"]["name"], LOG_PAIR.public_key)
WITNESSES = [
    WitnessKey(w["name"], SigningKeyPair(bytes.fromhex(w["seed"])).public_key)
    for w in DOC["witnesses"]
]


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


@pytest.mark.req("LOG-15", "LOG-16", "LOG-20")
def test_the_relay_and_its_log_are_published() -> None:
    assert RELAY_PAIR.public_key.raw.hex() == RELAY["publicKey"]
    assert RELAY_PAIR.public_key.key_id.hex() == RELAY["keyId"]
    assert RELAY["logName"] == RELAY_LOG.name == f"{RELAY['id']}/log"
    assert RELAY_LOG.key_id.hex() == RELAY["logKeyId"]
    assert bytes.fromhex(DOC["receiptLabel"]) == RECEIPT_LABEL == b"NCBR/1 acceptance receipt\x00"
    assert DOC["limits"]["maxReceiptBytes"] == MAX_RECEIPT_BYTES == 512
    errors = {c.get("error") for c in group("Receipt")}
    codes = {"malformed", "limit-exceeded", "binding-mismatch", "unknown-key", "bad-signature"}
    assert errors >= {None, "invalid-proof", *codes}
    reqs = {r for c in group("Receipt") + group("LogCheck") for r in c["requirements"]}
    assert reqs >= {f"LOG-{i}" for i in (12, 13, 15, 16, 17, 18, 19, 20)}


@pytest.mark.req("LOG-15", "LOG-16", "LOG-17", "LOG-19", "LOG-20")
@pytest.mark.parametrize("case", params("Receipt"))
def test_receipt(case: JSON) -> None:
    data, note = bytes.fromhex(case["receipt"]), bytes.fromhex(case["checkpoint"])
    results: list[Any] = []

    def run() -> None:
        results.append(
            verify_receipt(
                data,
                note,
                hashes(case["inclusion"]),
                relay_id=RELAY["id"],
                relay_key=RELAY_PAIR.public_key,
                log=RELAY_LOG,
                message_id=bytes.fromhex(case["messageId"]),
                message_hash=bytes.fromhex(case["messageHash"]),
            )
        )

    assert outcome(run) == case.get("error")
    if case["result"] == "valid":
        verified = results[0]
        receipt = verified.receipt
        assert (receipt.relay, receipt.log_index, receipt.accepted_at) == (
            case["relay"],
            case["logIndex"],
            case["acceptedAt"],
        )
        assert verified.checkpoint.size == case["checkpointSize"]
        assert verified.data == data
        assert sign_receipt(receipt, RELAY_PAIR) == data  # Ed25519 is deterministic
        assert parse_receipt(data)[1] == RELAY_PAIR.public_key.key_id
        assert m.inclusion_proof(receipt.log_index, verified.checkpoint.size, _node()) == hashes(
            case["inclusion"]
        )


def _node() -> m.NodeReader:
    leaves = [m.leaf_hash(bytes.fromhex(e)) for e in DOC["entries"]]
    return m.nodes_from_leaves(lambda start, end: leaves[start:end])


@pytest.mark.req("LOG-12", "LOG-13", "LOG-18")
@pytest.mark.parametrize("case", params("LogCheck"))
def test_log_check(case: JSON) -> None:
    view = LogView(LOG, witnesses=WITNESSES, threshold=case["threshold"])
    for step in case["steps"]:
        data, proof = bytes.fromhex(step["note"]), hashes(step["proof"])
        assert outcome(lambda d=data, p=proof: view.check(d, p)) == step.get("error")
        assert (None if view.latest is None else view.latest.size) == step["latestSize"]
    assert [
        {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason} for f in view.forks
    ] == case["forks"]
    for fork in view.forks:  # the evidence verifies on its own, by the log's key alone
        verify_checkpoint(fork.held, log=LOG)
        verify_checkpoint(fork.offered, log=LOG)
