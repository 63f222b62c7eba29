"""The client's reading of the relay's log (ncb_relay.client): evidence of an acceptance, log reads.

A canned relay (``httpx.MockTransport``) answers exactly what each test says, so
every bound and every malformed shape is checked without a server: an
acceptance whose evidence is unusable is :class:`SubmissionUnknown`, a log read
that is unusable :class:`RelayUnavailable`, a refusal its typed error; no
httpx exception and no JSON error ever leaves the client.  The same methods
against a real relay are in ``test_bureau_log.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fixtures import seeded_rng
from ncb_relay import seal
from ncb_relay.client import Acceptance, ConsistencyProof, LogEntry, RelayClient, RetryPolicy
from ncb_relay.envelope import SealedEnvelope
from ncb_relay.errors import (
    BindingMismatch,
    MalformedInput,
    RelayRefused,
    RelayUnavailable,
    SubmissionUnknown,
    UsageError,
)
from relay_node_world import RABAT, RELAY, SEOUL, Clock, bureaus

IDS = bureaus()
ONCE = RetryPolicy(attempts=1)
NOTE = "XP.relay-lyon/log\n3\n" + "A" * 43 + "=\n\n\u2014 XP.relay-lyon/log AAAA\n"
H = "ab" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _envelope() -> SealedEnvelope:
    return seal(
        b"a notice",
        sender=IDS[SEOUL],
        recipients=[IDS[RABAT].public],
        now=Clock()(),
        seq=1,
        rng=seeded_rng(b"log client"),
    )


SEALED = _envelope()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def acceptance(**fields: Any) -> dict[str, Any]:
    """A 202 body for SEALED with evidence; ``fields`` replace (``None``: remove) fields."""
    value: dict[str, Any] = {
        "sender": SEOUL,
        "messageId": SEALED.message_id.hex(),
        "messageHash": SEALED.message_hash.hex(),
        "acceptedAt": 1000,
        "logIndex": 2,
        "receipt": _b64url(b"r" * 237),
        "checkpoint": NOTE,
        "inclusion": [H, H],
        "consistency": {"from": 1, "to": 3, "proof": [H]},
    }
    value.update(fields)
    return {k: v for k, v in value.items() if v is not None}


def relay(answer: Callable[[httpx.Request], httpx.Response]) -> RelayClient:
    return RelayClient(
        "http://relay.test",
        relay_id=RELAY,
        identity=IDS[SEOUL],
        clock=Clock(),
        rng=seeded_rng(b"client log"),
        retry=ONCE,
        transport=httpx.MockTransport(answer),
    )


def json_answer(value: object, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=value)


def problem(status: int, code: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"type": f"urn:ncbr1:error:{code}", "title": code, "status": status, "code": code}
    return lambda request: httpx.Response(
        status, headers={"content-type": "application/problem+json"}, json=body
    )


@pytest.mark.anyio
async def test_an_acceptance_carries_its_evidence_unverified() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=acceptance())

    async with relay(answer) as client:
        accepted = await client.submit(SEALED.data, known=1)
    assert seen[0].url.params["known"] == "1"
    assert "authorization" in seen[0].headers  # signed over the target with its query
    assert accepted.log_index == 2
    assert accepted.receipt == b"r" * 237
    assert accepted.checkpoint == NOTE.encode()
    assert accepted.inclusion == (bytes.fromhex(H),) * 2
    assert accepted.consistency == ConsistencyProof(1, 3, (bytes.fromhex(H),))


@pytest.mark.anyio
async def test_a_relay_that_signs_no_receipts_gives_an_acceptance_without_evidence() -> None:
    bare = acceptance(receipt=None, checkpoint=None, inclusion=None, consistency=None)
    async with relay(lambda r: httpx.Response(202, json=bare)) as client:
        accepted = await client.submit(SEALED.data)
    assert accepted == Acceptance(SEOUL, SEALED.message_id, SEALED.message_hash, 1000, 2)
    assert accepted.receipt is None


UNUSABLE: dict[str, dict[str, Any]] = {
    "receipt over 512 bytes": {"receipt": _b64url(b"r" * 513)},
    "empty receipt": {"receipt": ""},
    "padded receipt": {"receipt": _b64url(b"r" * 10) + "=="},
    "receipt not a string": {"receipt": 5},
    "note over 16 KiB": {"checkpoint": NOTE + "x" * 16 * 1024},
    "note of many-byte characters over 16 KiB": {"checkpoint": "\u2014" * 6000},
    "lone surrogate in the note": {"checkpoint": "\ud800"},
    "empty note": {"checkpoint": ""},
    "missing note": {"checkpoint": None},
    "65 inclusion hashes": {"inclusion": [H] * 65},
    "upper-case hash": {"inclusion": [H.upper()]},
    "short hash": {"inclusion": ["ab"]},
    "inclusion not a list": {"inclusion": H},
    "negative index": {"logIndex": -1},
    "index of 2**63": {"logIndex": 2**63},
    "index a float": {"logIndex": 2.0},
    "receipt without index": {"logIndex": None},
    "consistency backwards": {"consistency": {"from": 3, "to": 1, "proof": []}},
    "consistency of 65 hashes": {"consistency": {"from": 1, "to": 3, "proof": [H] * 65}},
    "consistency not an object": {"consistency": [1, 3]},
    "consistency without sizes": {"consistency": {"proof": []}},
    "evidence without receipt": {"receipt": None},
    "proof without receipt": {"receipt": None, "checkpoint": None, "consistency": None},
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(UNUSABLE))
async def test_unusable_evidence_makes_the_submission_unknown(case: str) -> None:
    body = json.dumps(acceptance(**UNUSABLE[case])).encode()  # ASCII: a lone surrogate escaped
    async with relay(lambda r: httpx.Response(202, content=body)) as client:
        with pytest.raises(SubmissionUnknown, match="unusable"):
            await client.submit(SEALED.data)


@pytest.mark.anyio
async def test_an_acceptance_too_large_to_read_is_unknown() -> None:
    body = acceptance(padding="x" * 100_000)
    async with relay(lambda r: httpx.Response(202, json=body)) as client:
        with pytest.raises(SubmissionUnknown):
            await client.submit(SEALED.data)


@pytest.mark.anyio
async def test_known_is_a_tree_size() -> None:
    async with relay(lambda r: httpx.Response(202, json=acceptance())) as client:
        for bad in (-1, 2**63, True, 1.0):
            with pytest.raises(UsageError):
                await client.submit(SEALED.data, known=bad)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_latest_checkpoint_or_none() -> None:
    def note(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers  # public
        assert request.url.path == "/v1/log/checkpoint"
        return httpx.Response(200, text=NOTE)

    async with relay(note) as client:
        assert await client.checkpoint() == NOTE.encode()
    async with relay(problem(404, "not-found")) as client:
        assert await client.checkpoint() is None
    async with relay(lambda r: httpx.Response(200, content=b"x" * (16 * 1024 + 1))) as client:
        with pytest.raises(RelayUnavailable):
            await client.checkpoint()
    async with relay(lambda r: httpx.Response(200, content=b"\xff\xfe")) as client:
        with pytest.raises(RelayUnavailable, match="UTF-8"):
            await client.checkpoint()
    async with relay(lambda r: httpx.Response(200, content=b"")) as client:
        with pytest.raises(RelayUnavailable):
            await client.checkpoint()
    async with relay(problem(500, "internal")) as client:
        with pytest.raises(RelayUnavailable):
            await client.checkpoint()


@pytest.mark.anyio
async def test_checkpoints_are_notes_at_most_limit() -> None:
    seen: list[httpx.Request] = []

    def notes(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"checkpoints": [NOTE, NOTE]})

    async with relay(notes) as client:
        assert await client.checkpoints(after=3, limit=2) == (NOTE.encode(),) * 2
        assert dict(seen[0].url.params) == {"after": "3", "limit": "2"}
        with pytest.raises(RelayUnavailable):  # more than asked for
            await client.checkpoints(after=3, limit=1)
        for bad in ({"after": -1}, {"limit": 0}, {"limit": 1001}):
            with pytest.raises(UsageError):
                await client.checkpoints(**bad)
    for body in ({"checkpoints": [1]}, {"checkpoints": NOTE}, {}, [NOTE]):
        async with relay(json_answer(body)) as client:
            with pytest.raises(RelayUnavailable):
                await client.checkpoints()
    async with relay(lambda r: httpx.Response(200, content=b"{not json")) as client:
        with pytest.raises(RelayUnavailable):
            await client.checkpoints()


@pytest.mark.anyio
async def test_inclusion_and_consistency_proofs_are_for_the_sizes_asked() -> None:
    async with relay(json_answer({"index": 1, "size": 5, "proof": [H, H, H]})) as client:
        assert await client.inclusion(1, 5) == (bytes.fromhex(H),) * 3
        with pytest.raises(RelayUnavailable, match="another index"):
            await client.inclusion(2, 5)
        with pytest.raises(UsageError):
            await client.inclusion(5, 5)
    async with relay(json_answer({"index": 1, "size": 5, "proof": [H] * 65})) as client:
        with pytest.raises(RelayUnavailable):
            await client.inclusion(1, 5)
    async with relay(json_answer({"from": 2, "to": 5, "proof": [H]})) as client:
        assert await client.consistency(2, 5) == (bytes.fromhex(H),)
        with pytest.raises(RelayUnavailable, match="other sizes"):
            await client.consistency(1, 5)
        with pytest.raises(UsageError):
            await client.consistency(5, 2)
    async with relay(json_answer({"from": 2, "to": 5, "proof": ["zz" * 32]})) as client:
        with pytest.raises(RelayUnavailable):
            await client.consistency(2, 5)
    async with relay(problem(400, "malformed")) as client:
        with pytest.raises(MalformedInput, match="refused"):  # the refusal's typed error
            await client.consistency(2, 5)


@pytest.mark.anyio
async def test_entries_are_consecutive_and_of_known_kinds() -> None:
    entries = [
        {"index": 4, "kind": "envelope", "hash": H},
        {"index": 5, "kind": "directory", "hash": "cd" * 32},
    ]
    async with relay(json_answer({"entries": entries})) as client:
        assert await client.entries(4, 2) == (
            LogEntry(4, "envelope", bytes.fromhex(H)),
            LogEntry(5, "directory", bytes.fromhex("cd" * 32)),
        )
        with pytest.raises(RelayUnavailable, match="consecutive"):
            await client.entries(3, 2)
        with pytest.raises(RelayUnavailable):
            await client.entries(4, 1)
    for bad in ({**entries[0], "kind": "other"}, {**entries[0], "hash": 1}, [4]):
        async with relay(json_answer({"entries": [bad]})) as client:
            with pytest.raises(RelayUnavailable):
                await client.entries(4, 10)


@pytest.mark.anyio
async def test_a_cosignature_is_a_signed_post() -> None:
    seen: list[httpx.Request] = []

    def accept(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with relay(accept) as client:
        await client.cosign(NOTE.encode())
        with pytest.raises(UsageError):
            await client.cosign(b"x" * (16 * 1024 + 1))
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/log/cosignature")
    assert request.headers["content-type"].startswith("text/plain")
    assert request.headers["authorization"].startswith("NCBR1")
    assert request.content == NOTE.encode()
    async with relay(problem(403, "binding-mismatch")) as client:
        with pytest.raises(BindingMismatch):
            await client.cosign(NOTE.encode())
    async with relay(lambda r: httpx.Response(200, json={})) as client:
        with pytest.raises(RelayRefused):
            await client.cosign(NOTE.encode())


def test_the_evidence_is_not_in_repr() -> None:
    accepted = Acceptance(SEOUL, b"\x01" * 32, b"\x02" * 32, 1, 0, b"r", b"note", ())
    assert "note" not in repr(accepted)
    assert json.dumps(repr(accepted))
