"""log.json through the adapter: hashes, tree heads, proofs, checkpoints, client views and
acceptance receipts (spec/log.md)."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, cases, describe, load

LOG = load("log.json")
ENTRIES: list[str] = LOG["entries"]
LOG_KEY = {"name": LOG["log"]["name"], "publicKey": LOG["log"]["publicKey"]}
WITNESSES = [{"name": w["name"], "publicKey": w["publicKey"]} for w in LOG["witnesses"]]
RELAY = {"id": LOG["relay"]["id"], "publicKey": LOG["relay"]["publicKey"]}


def verdict(case: JSON, got: JSON) -> None:
    """An invalid case is refused with its exact code; a valid one is accepted."""
    if case["result"] == "invalid":
        assert got.get("error") == case["error"], (
            f"{describe(case)}: gave {got.get('error')!r}, must be {case['error']!r}"
        )
    else:
        assert "error" not in got, f"{describe(case)}: refused with {got['error']!r}"


@pytest.mark.parametrize("case", cases(LOG, "Hash", "log"))
def test_log_hash(adapter: AdapterProcess, case: JSON) -> None:
    inputs = ("entry",) if case["kind"] == "leaf" else ("left", "right")
    got = adapter.call({"op": "log-hash", "kind": case["kind"], **{k: case[k] for k in inputs}})
    assert got.get("hash") == case["hash"], f"{describe(case)}: {got}"


@pytest.mark.parametrize("case", cases(LOG, "TreeHead", "log"))
def test_log_root(adapter: AdapterProcess, case: JSON) -> None:
    got = adapter.call({"op": "log-root", "entries": ENTRIES[: case["size"]]})
    assert got.get("root") == case["root"], f"{describe(case)}: {got}"


@pytest.mark.parametrize("case", cases(LOG, "Inclusion", "log"))
def test_verify_inclusion(adapter: AdapterProcess, case: JSON) -> None:
    keys = ("leafHash", "leafIndex", "treeSize", "proof", "root")
    verdict(case, adapter.call({"op": "verify-inclusion", **{k: case[k] for k in keys}}))


@pytest.mark.parametrize("case", cases(LOG, "Consistency", "log"))
def test_verify_consistency(adapter: AdapterProcess, case: JSON) -> None:
    keys = ("oldSize", "newSize", "oldRoot", "newRoot", "proof")
    verdict(case, adapter.call({"op": "verify-consistency", **{k: case[k] for k in keys}}))


@pytest.mark.parametrize("case", cases(LOG, "Checkpoint", "log"))
def test_verify_checkpoint(adapter: AdapterProcess, case: JSON) -> None:
    got = adapter.call(
        {
            "op": "verify-checkpoint",
            "note": case["note"],
            "log": LOG_KEY,
            "witnesses": WITNESSES,
            "threshold": case["threshold"],
        }
    )
    verdict(case, got)
    if case["result"] == "valid":
        keys = ("origin", "size", "root", "extensions", "cosigned")
        assert {k: got.get(k) for k in keys} == {k: case[k] for k in keys}, describe(case)


@pytest.mark.parametrize("case", cases(LOG, "LogView", "log"))
def test_follow_log(adapter: AdapterProcess, case: JSON) -> None:
    steps = case["steps"]
    got = adapter.call(
        {
            "op": "follow-log",
            "log": LOG_KEY,
            "steps": [{"note": s["note"], "proof": s["proof"]} for s in steps],
        }
    )
    assert "error" not in got, f"{describe(case)}: {got}"
    assert len(got.get("steps", [])) == len(steps), f"{describe(case)}: step results missing"
    for number, (want, step) in enumerate(zip(steps, got["steps"], strict=True)):
        assert step.get("error") == want.get("error"), f"{describe(case)}: step #{number}: {step}"
        assert step.get("latestSize") == want["latestSize"], (
            f"{describe(case)}: after step #{number} the latest size is "
            f"{step.get('latestSize')!r}, must be {want['latestSize']!r}"
        )
    assert got.get("forks") == case["forks"], f"{describe(case)}: forks {got.get('forks')}"


@pytest.mark.parametrize("case", cases(LOG, "LogCheck", "log"))
def test_check_log(adapter: AdapterProcess, case: JSON) -> None:
    steps = case["steps"]
    got = adapter.call(
        {
            "op": "check-log",
            "log": LOG_KEY,
            "witnesses": WITNESSES,
            "threshold": case["threshold"],
            "steps": [{"note": s["note"], "proof": s["proof"]} for s in steps],
        }
    )
    assert "error" not in got, f"{describe(case)}: {got}"
    assert len(got.get("steps", [])) == len(steps), f"{describe(case)}: step results missing"
    for number, (want, step) in enumerate(zip(steps, got["steps"], strict=True)):
        assert step.get("error") == want.get("error"), f"{describe(case)}: step #{number}: {step}"
        assert step.get("latestSize") == want["latestSize"], (
            f"{describe(case)}: after step #{number} the latest size is "
            f"{step.get('latestSize')!r}, must be {want['latestSize']!r}"
        )
    assert got.get("forks") == case["forks"], f"{describe(case)}: forks {got.get('forks')}"


@pytest.mark.parametrize("case", cases(LOG, "Receipt", "log"))
def test_verify_receipt(adapter: AdapterProcess, case: JSON) -> None:
    got = adapter.call(
        {
            "op": "verify-receipt",
            "relay": RELAY,
            "receipt": case["receipt"],
            "checkpoint": case["checkpoint"],
            "inclusion": case["inclusion"],
            "messageId": case["messageId"],
            "messageHash": case["messageHash"],
        }
    )
    verdict(case, got)
    if case["result"] == "valid":
        keys = ("relay", "logIndex", "acceptedAt", "checkpointSize")
        assert {k: got.get(k) for k in keys} == {k: case[k] for k in keys}, describe(case)
