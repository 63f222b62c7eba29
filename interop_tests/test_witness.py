"""A witness cosigns a checkpoint only if it is consistent with the one it holds (LOG-30).

``witness-log`` runs the witness of the first witness key of ``log.json`` over the
step sequences of its LogCheck group (the log's checkpoints, with consistency proofs
in both directions), each step at its own time.  Every cosigned note is compared
byte for byte with the reference's, and each refusal with its code: `log-fork` for
a contradiction (with both notes kept as evidence), `rollback` for a smaller
checkpoint, even a consistent one.
"""

from __future__ import annotations

import pytest

from ncb_relay import NcbRelayError, SigningKeyPair, SigningPublicKey
from ncb_relay.checkpoint import LogKey, WitnessKey
from ncb_relay.witness import Witness

from .adapter_process import AdapterProcess
from .vectors import JSON, describe, group, load

LOG = load("log.json")
LOG_KEY = {"name": LOG["log"]["name"], "publicKey": LOG["log"]["publicKey"]}
WITNESS = LOG["witnesses"][0]
NOW = 1_800_000_000


def witness_request(steps: list[JSON], held: str | None = None) -> JSON:
    return {
        "op": "witness-log",
        "log": LOG_KEY,
        "witness": {"name": WITNESS["name"], "signingSeed": WITNESS["seed"]},
        "held": held,
        "steps": [
            {"note": s["note"], "proof": s["proof"], "now": NOW + 60 * i}
            for i, s in enumerate(steps)
        ],
    }


def reference(request: JSON) -> JSON:
    """What the reference witness answers to ``request``."""
    signer = SigningKeyPair(bytes.fromhex(WITNESS["seed"]))
    witness = Witness(
        log=LogKey(LOG_KEY["name"], SigningPublicKey(bytes.fromhex(LOG_KEY["publicKey"]))),
        key=WitnessKey(WITNESS["name"], signer.public_key),
        signer=signer,
        held=None if request["held"] is None else bytes.fromhex(request["held"]),
    )
    steps: list[JSON] = []
    for step in request["steps"]:
        outcome: JSON = {}
        try:
            proof = [bytes.fromhex(p) for p in step["proof"]]
            note = witness.cosign(bytes.fromhex(step["note"]), proof, now=step["now"])
            outcome["note"] = note.hex()
        except NcbRelayError as exc:
            outcome["error"] = exc.wire_code
        outcome["heldSize"] = None if witness.held is None else witness.held.size
        steps.append(outcome)
    forks = [
        {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason}
        for f in witness.forks
    ]
    return {"steps": steps, "forks": forks}


def size_of(note: str) -> int:
    return int(bytes.fromhex(note).decode().split("\n")[1])


@pytest.mark.req("LOG-30")
@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"log:tc{c['tcId']}") for c in group(LOG, "LogCheck")]
)
def test_a_witness_cosigns_only_what_extends_the_checkpoint_it_holds(
    adapter: AdapterProcess, case: JSON
) -> None:
    request = witness_request(case["steps"])
    want = reference(request)
    # the rules themselves, step by step: a witness never cosigns what a client would
    # refuse, nor a smaller tree, and a fork is refused as a client refuses it
    largest = None
    for step, vector, outcome in zip(request["steps"], case["steps"], want["steps"], strict=True):
        size = size_of(step["note"])
        if vector["result"] == "invalid":
            assert outcome.get("error") == vector["error"], describe(case)
        elif largest is not None and size < largest:
            assert outcome.get("error") == "rollback", describe(case)
        else:
            assert "note" in outcome, describe(case)
            largest = size
    assert [f["reason"] for f in want["forks"]] == [f["reason"] for f in case["forks"]]
    got = adapter.call(request)
    assert got == want, f"{describe(case)}: {got}"


@pytest.mark.req("LOG-30")
def test_a_witness_starts_from_the_checkpoint_it_holds(adapter: AdapterProcess) -> None:
    growing = next(c for c in group(LOG, "LogCheck") if c["tcId"] == 338)["steps"]
    notes = {size_of(s["note"]): s["note"] for s in growing}  # sizes 0, 5, 13 and 16
    proof_13_16 = growing[-1]["proof"]
    request = witness_request(
        [
            {"note": notes[16], "proof": proof_13_16},  # extends the held 13
            {"note": notes[13], "proof": proof_13_16},  # held 13 before: smaller now
            {"note": notes[16], "proof": []},  # the same checkpoint again
        ],
        held=notes[13],
    )
    got = adapter.call(request)
    assert got == reference(request)
    assert [s.get("error") for s in got["steps"]] == [None, "rollback", None]
    assert [s["heldSize"] for s in got["steps"]] == [16, 16, 16]
    assert got["forks"] == []
