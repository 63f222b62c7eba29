"""The coordinator's review gate: what it holds, forwards and refuses (GATE-1, GATE-2).

``review-gate`` runs the gate of the coordinator of ``messages.json`` with Rabat under
review.  The diffusions are the file's (distribution: Paris and Tokyo), sealed here by
the reference library to the coordinator alone, from Rabat and from Seoul.  Each
forward the gate makes is opened by the reference as each bureau of the distribution
and verified as a forward of the diffusion submitted, by the coordinator.
"""

from __future__ import annotations

import itertools

import pytest

from ncb_relay import ReplayGuard, open_envelope, verify_routing
from ncb_relay.envelope import SealedEnvelope
from ncb_relay.messages import Diffusion, decode_body, encode_body, read_message, verify_forward

from .adapter_process import AdapterProcess
from .test_parties import (
    BODIES,
    COORDINATOR,
    DIRECTORY,
    EXCHANGE,
    NOW,
    PRINCIPALS,
    RABAT,
    SEOUL,
    identity,
    sealed,
)
from .vectors import JSON

DISTRIBUTION = ("FR.ncb-paris", "JP.ncb-tokyo")


def _diffusion(title: str) -> bytes:
    body = decode_body(BODIES["ncbr.diffusion"])
    assert isinstance(body, Diffusion)
    assert body.distribution.bureaus == DISTRIBUTION
    return encode_body(body.model_copy(update={"title": title}))


HELD = sealed(_diffusion("Held for review"), RABAT, (COORDINATOR,), label="gate held")
REJECTED = sealed(_diffusion("Unverified rumour"), RABAT, (COORDINATOR,), label="gate rejected")
FREE = sealed(
    _diffusion("From a bureau not under review"), SEOUL, (COORDINATOR,), label="gate free"
)


def submit(envelope: SealedEnvelope) -> JSON:
    return {"submit": envelope.data.hex(), "now": NOW + 30}


def approve(envelope: SealedEnvelope) -> JSON:
    return {"approve": envelope.message_hash.hex(), "now": NOW + 60}


def reject(envelope: SealedEnvelope) -> JSON:
    return {"reject": envelope.message_hash.hex(), "now": NOW + 60}


def forward(envelope: SealedEnvelope, seq: int) -> JSON:
    return {"forward": envelope.message_hash.hex(), "now": NOW + 90, "seq": seq, "ttl": 86400}


def run(adapter: AdapterProcess, steps: list[JSON]) -> list[JSON]:
    got = adapter.call(
        {
            "op": "review-gate",
            "coordinator": PRINCIPALS.private(COORDINATOR),
            "underReview": [RABAT],
            "steps": steps,
            "directory": PRINCIPALS.directory,
        }
    )
    assert "error" not in got, f"the request was refused: {got}"
    results: list[JSON] = got.get("steps", [])
    assert len(results) == len(steps), f"one result per step: {got}"
    return results


def statuses(results: list[JSON]) -> list[str | None]:
    return [r.get("status", r.get("error")) for r in results]


def check_forward(result: JSON, original: SealedEnvelope) -> None:
    """``result`` carries the coordinator's forward of ``original`` to its distribution."""
    data = bytes.fromhex(result["envelope"])
    routed = verify_routing(data, directory=DIRECTORY, now=NOW + 90)
    assert (routed.sender, routed.recipients) == (COORDINATOR, DISTRIBUTION)
    for bureau in DISTRIBUTION:
        opened = open_envelope(
            data,
            recipient=identity(bureau),
            directory=DIRECTORY,
            now=NOW + 90,
            replay=ReplayGuard(),
        )
        got = verify_forward(
            read_message(opened, coordinator=COORDINATOR),
            directory=DIRECTORY,
            coordinator=COORDINATOR,
        )
        assert (got.author, got.forwarder) == (original.header.sender, COORDINATOR)
        assert got.original_hash == original.message_hash


# --- GATE-1: held until approved, forwarded only then (or at once if not under review) ---------


@pytest.mark.req("GATE-1")
def test_a_diffusion_under_review_is_held_until_approved_then_forwarded(
    adapter: AdapterProcess,
) -> None:
    got = run(
        adapter,
        [
            submit(HELD),
            forward(HELD, 1),  # held: not forwarded
            submit(HELD),  # submitted twice: the same submission, still held
            approve(HELD),
            submit(HELD),  # the same submission, approved
            forward(HELD, 2),
        ],
    )
    assert statuses(got) == ["held", "usage", "held", "approved", "approved", "forwarded"]
    assert "envelope" not in got[1], "a held diffusion is never forwarded"
    check_forward(got[-1], HELD)


@pytest.mark.req("GATE-1")
def test_a_rejected_diffusion_is_never_forwarded(adapter: AdapterProcess) -> None:
    got = run(adapter, [submit(REJECTED), reject(REJECTED), forward(REJECTED, 1)])
    assert statuses(got) == ["held", "rejected", "usage"]
    assert "envelope" not in got[2]


@pytest.mark.req("GATE-1")
def test_a_diffusion_from_a_bureau_not_under_review_is_released_and_forwarded(
    adapter: AdapterProcess,
) -> None:
    got = run(adapter, [submit(FREE), forward(FREE, 1)])
    assert statuses(got) == ["released", "forwarded"]
    check_forward(got[1], FREE)


# --- GATE-2: every move by the table, every other refused ---------------------------------------

PATHS = {  # the steps that bring Rabat's diffusion (HELD) or Seoul's (FREE) to a status
    "held": (HELD, [submit(HELD)]),
    "released": (FREE, [submit(FREE)]),
    "approved": (HELD, [submit(HELD), approve(HELD)]),
    "rejected": (HELD, [submit(HELD), reject(HELD)]),
    "forwarded": (HELD, [submit(HELD), approve(HELD), forward(HELD, 1)]),
}
MOVES = {  # GATE-2's table
    ("held", "approve"): "approved",
    ("held", "reject"): "rejected",
    ("approved", "forward"): "forwarded",
    ("released", "forward"): "forwarded",
}


@pytest.mark.req("GATE-2")
@pytest.mark.parametrize(
    ("status", "action"),
    list(itertools.product(PATHS, ["approve", "reject", "forward"])),
)
def test_every_move_is_in_the_table_or_refused(
    adapter: AdapterProcess, status: str, action: str
) -> None:
    envelope, path = PATHS[status]
    move = {"approve": approve, "reject": reject}.get(action)
    last = forward(envelope, 2) if move is None else move(envelope)
    got = run(adapter, [*path, last, submit(envelope)])
    assert statuses(got[: len(path)])[-1] == status
    want = MOVES.get((status, action), "usage")
    assert statuses(got)[len(path)] == want, f"{action} of a {status} diffusion: {got}"
    assert statuses(got)[-1] == (status if want == "usage" else want), "the status after it"


@pytest.mark.req("GATE-2")
def test_the_gate_moves_only_a_submitted_diffusion(adapter: AdapterProcess) -> None:
    request = EXCHANGE.request  # Seoul's request, to the coordinator and Tokyo: no diffusion
    got = run(adapter, [approve(HELD), forward(FREE, 1), submit(request)])
    assert statuses(got) == ["usage", "usage", "usage"]
