"""A party's state over a run of messages: its conversations (CONV-5, CONV-6), its receipts.

The messages are sealed here by the reference library, from the valid bodies of
``messages.json`` and its principals, with fixed randomness: Seoul asks the
coordinator and Tokyo for assistance; the coordinator forwards the request to
Rabat with Tokyo in copy; Rabat answers the forward.  Tokyo, the observer, can
receive Rabat's replies before its copy of the forward (CONV-6).  Then Seoul,
having sent messages, takes delivery receipts for them (MSG-15) and computes
their delivery states (MSG-16).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ncb_relay import (
    ReplayGuard,
    open_envelope,
    seal,
)
from ncb_relay.envelope import SealedEnvelope
from ncb_relay.messages import (
    AssistanceRequest,
    DeliveryReceipt,
    Diffusion,
    decode_body,
    encode_body,
    seal_forward,
)

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, group, load

MESSAGES = load("messages.json")
PRINCIPALS = Principals(MESSAGES)
COORDINATOR: str = MESSAGES["coordinator"]
NOW: int = MESSAGES["now"]
SEOUL, RABAT, TOKYO, PARIS = "KR.ncb-seoul", "MA.ncb-rabat", "JP.ncb-tokyo", "FR.ncb-paris"
BODIES = {  # the first valid body of each schema the file has
    c["schema"]: bytes.fromhex(c["body"])
    for c in reversed(group(MESSAGES, "BodyDecode"))
    if c["result"] == "valid" and not c["opaque"]
}


identity = PRINCIPALS.identity
public = PRINCIPALS.public_identity
DIRECTORY = PRINCIPALS.static_directory()


def stream(key: str, ephemeral: str) -> Callable[[int], bytes]:
    """The random source of one seal: the content key drawn from ``key``, ``e`` from the other."""
    blocks = [
        hashlib.sha256(f"ncbr conformance {label}".encode()).digest() for label in (key, ephemeral)
    ]

    def draw(n: int) -> bytes:
        return blocks.pop(0)[:n]

    return draw


_seqs: dict[str, int] = {}


def sealed(
    body: bytes,
    sender: str,
    to: tuple[str, ...],
    *,
    label: str,
    reply_to: bytes | None = None,
    key: str | None = None,
) -> SealedEnvelope:
    """``body`` sealed at NOW; ``key`` names the content key's label (a reused message id)."""
    _seqs[sender] = _seqs.get(sender, 0) + 1
    return seal(
        body,
        sender=identity(sender),
        recipients=[public(p) for p in to],
        now=NOW,
        seq=_seqs[sender],
        rng=stream(key or label, label),
        reply_to=reply_to,
    )


def _request_body() -> bytes:
    """The file's request, with the diffusion's handling (H0): it may be forwarded unasked."""
    request = decode_body(BODIES["ncbr.assistance-request"])
    diffusion = decode_body(BODIES["ncbr.diffusion"])
    assert isinstance(request, AssistanceRequest)
    assert isinstance(diffusion, Diffusion)
    return encode_body(request.model_copy(update={"handling": diffusion.handling}))


@dataclass(frozen=True)
class Exchange:
    request: SealedEnvelope  # Seoul to the coordinator and Tokyo
    forward: SealedEnvelope  # the coordinator's forward to Rabat, Tokyo in copy
    ack: SealedEnvelope  # Rabat's replies to the forward, to the coordinator and Tokyo
    status: SealedEnvelope
    response: SealedEnvelope
    status_again: SealedEnvelope  # the status update's message id, another body
    ack_again: SealedEnvelope  # the acknowledgement's message id, another body
    stranger: SealedEnvelope  # Paris, which the forward did not reach, answers it
    diffusion: SealedEnvelope  # not part of any conversation (CONV-8)


def _exchange() -> Exchange:
    request = sealed(_request_body(), SEOUL, (COORDINATOR, TOKYO), label="request")
    opened = open_envelope(
        request.data,
        recipient=identity(COORDINATOR),
        directory=DIRECTORY,
        now=NOW,
        replay=ReplayGuard(),
    )
    _seqs[COORDINATOR] = _seqs.get(COORDINATOR, 0) + 1
    forward = seal_forward(
        opened,
        sender=identity(COORDINATOR),
        recipients=[public(RABAT), public(TOKYO)],
        now=NOW,
        seq=_seqs[COORDINATOR],
        rng=stream("forward", "forward e"),
        coordinator=COORDINATOR,
    ).sealed
    handle, to = forward.message_hash, (COORDINATOR, TOKYO)

    def reply(
        schema: str, label: str, sender: str = RABAT, key: str | None = None
    ) -> SealedEnvelope:
        return sealed(BODIES[schema], sender, to, label=label, reply_to=handle, key=key)

    return Exchange(
        request=request,
        forward=forward,
        ack=reply("ncbr.acknowledgement", "ack"),
        status=reply("ncbr.status-update", "status"),
        response=reply("ncbr.assistance-response", "response"),
        status_again=reply("ncbr.assistance-response", "status again", key="status"),
        ack_again=reply("ncbr.status-update", "ack again", key="ack"),
        stranger=reply("ncbr.status-update", "stranger", sender=PARIS),
        diffusion=reply("ncbr.diffusion", "diffusion"),
    )


EXCHANGE = _exchange()


def follow(
    adapter: AdapterProcess, items: list[tuple[SealedEnvelope, bool]], max_held: int | None
) -> list[JSON]:
    """Tokyo follows Seoul's request; ``items`` are envelopes, each flagged if a forward."""
    request: JSON = {
        "op": "follow-conversation",
        "observer": PRINCIPALS.private(TOKYO),
        "request": EXCHANGE.request.data.hex(),
        "replies": [
            {"envelope": e.data.hex(), "now": NOW + 60 + i, **({"forward": True} if f else {})}
            for i, (e, f) in enumerate(items)
        ],
        "directory": PRINCIPALS.directory,
        "now": NOW + 30,
        "coordinator": COORDINATOR,
    }
    if max_held is not None:
        request["maxHeld"] = max_held
    got = adapter.call(request)
    assert "error" not in got, f"the request was refused: {got}"
    replies: list[JSON] = got.get("replies", [])
    assert len(replies) == len(items), f"one result per message: {got}"
    return replies


# --- CONV-5: a message is applied at most once -------------------------------------------------


@pytest.mark.req("CONV-5")
@pytest.mark.parametrize("max_held", [None, 8], ids=["one-conversation", "routed"])
def test_a_message_is_applied_once_and_a_reused_id_is_a_replay(
    adapter: AdapterProcess, max_held: int | None
) -> None:
    e = EXCHANGE
    assert e.status_again.message_id == e.status.message_id != e.ack.message_id
    assert e.status_again.message_hash != e.status.message_hash
    got = follow(
        adapter,
        [
            (e.forward, True),
            (e.ack, False),
            (e.ack, False),  # delivered again: a duplicate
            (e.status, False),
            (e.ack, False),  # again, late: still a duplicate, not a late acknowledgement
            (e.status_again, False),  # the status update's id, another message: a replay
            (e.response, False),
        ],
        max_held,
    )
    assert got == [
        {"released": []},
        {"state": "acknowledged"},
        {"state": "acknowledged", "duplicate": True},
        {"state": "in-progress"},
        {"state": "in-progress", "duplicate": True},
        {"error": "replay"},
        {"state": "answered"},
    ]


@pytest.mark.req("CONV-5", "CONV-6")
def test_a_held_message_is_held_once_and_a_reused_id_is_a_replay(adapter: AdapterProcess) -> None:
    e = EXCHANGE
    assert (e.ack_again.message_id, e.ack_again.message_hash) != (
        e.ack.message_id,
        e.ack.message_hash,
    )
    assert e.ack_again.message_id == e.ack.message_id
    got = follow(
        adapter,
        [
            (e.ack, False),  # names the forward, not known yet: held
            (e.ack, False),  # the same message: not held twice
            (e.ack_again, False),  # the held id, another message: a replay; the first stays
            (e.forward, True),
        ],
        8,
    )
    assert got == [
        {"held": True},
        {"held": True, "duplicate": True},
        {"error": "replay"},
        {"released": [{"state": "acknowledged"}]},
    ]


# --- CONV-6: replies to a hash not known yet ---------------------------------------------------


@pytest.mark.req("CONV-6", "CONV-8", "CONV-2")
def test_replies_to_an_unknown_forward_are_held_then_applied_in_order(
    adapter: AdapterProcess,
) -> None:
    e = EXCHANGE
    got = follow(
        adapter,
        [
            (e.ack, False),
            (e.status, False),
            (e.stranger, False),  # held too: whether Paris may answer is known with the forward
            (e.diffusion, False),  # never held (CONV-8)
            (e.forward, True),
            (e.response, False),
        ],
        8,
    )
    assert got == [
        {"held": True},
        {"held": True},
        {"held": True},
        {"error": "binding-mismatch"},
        {
            "released": [
                {"state": "acknowledged"},
                {"state": "in-progress"},
                {"error": "binding-mismatch"},
            ]
        },
        {"state": "answered"},
    ]


@pytest.mark.req("CONV-6")
def test_a_full_space_refuses_a_new_reply_and_forgets_none(adapter: AdapterProcess) -> None:
    e = EXCHANGE
    got = follow(
        adapter,
        [
            (e.ack, False),
            (e.status, False),
            (e.response, False),  # no room: refused, the two held stay
            (e.forward, True),
            (e.response, False),  # the hash is known now: applied at once
        ],
        2,
    )
    assert got == [
        {"held": True},
        {"held": True},
        {"error": "limit-exceeded"},
        {"released": [{"state": "acknowledged"}, {"state": "in-progress"}]},
        {"state": "answered"},
    ]


# --- MSG-15, MSG-16: delivery receipts and the delivery state ----------------------------------

HOUR = 3600


def receipt(
    sender: str, of: SealedEnvelope, *, label: str, message_hash: bytes | None = None
) -> SealedEnvelope:
    """``sender``'s receipt to Seoul of ``of`` (naming ``message_hash`` if given), by MSG-12."""
    named = of.message_hash if message_hash is None else message_hash
    body = DeliveryReceipt.of(of.message_id, named, NOW)
    return sealed(encode_body(body), sender, (SEOUL,), label=label, reply_to=named)


SENT = {  # what Seoul sent: the request to the coordinator and Tokyo, a diffusion to Rabat
    "request": EXCHANGE.request,
    "diffusion": sealed(BODIES["ncbr.diffusion"], SEOUL, (RABAT,), label="seoul diffusion"),
}
NOT_SENT = sealed(BODIES["ncbr.diffusion"], SEOUL, (RABAT,), label="never sent")


def sent(name: str, submission: str, *, expects: bool = True, deadline: int = NOW + HOUR) -> JSON:
    envelope = SENT[name]
    to = {"request": [COORDINATOR, TOKYO], "diffusion": [RABAT]}[name]
    return {
        "messageId": envelope.message_id.hex(),
        "messageHash": envelope.message_hash.hex(),
        "recipients": to,
        "submission": submission,
        "expectsReceipts": expects,
        "deadline": deadline,
    }


def check(
    adapter: AdapterProcess, sent: list[JSON], receipts: list[SealedEnvelope], now: int
) -> JSON:
    got = adapter.call(
        {
            "op": "check-delivery",
            "sender": PRINCIPALS.private(SEOUL),
            "sent": sent,
            "receipts": [{"envelope": r.data.hex(), "now": NOW + 60} for r in receipts],
            "directory": PRINCIPALS.directory,
            "coordinator": COORDINATOR,
            "now": now,
        }
    )
    assert "error" not in got, f"refused: {got}"
    return got


@pytest.mark.req("MSG-15")
def test_a_receipt_counts_only_for_a_message_sent_to_its_sender(adapter: AdapterProcess) -> None:
    request, diffusion = SENT["request"], SENT["diffusion"]
    receipts = [
        receipt(TOKYO, request, label="tokyo receipt"),
        receipt(TOKYO, NOT_SENT, label="receipt of a message not sent"),
        receipt(COORDINATOR, request, label="another hash", message_hash=diffusion.message_hash),
        receipt(PARIS, request, label="paris receipt"),  # the request did not go to Paris
        receipt(RABAT, request, label="rabat receipt"),  # nor to Rabat
        receipt(TOKYO, request, label="tokyo receipt again"),  # recorded, changes nothing
    ]
    got = check(adapter, [sent("request", "accepted")], receipts, NOW + 120)
    ok = {"messageId": request.message_id.hex(), "recipient": TOKYO}
    mismatch = {"error": "binding-mismatch"}
    assert got.get("receipts") == [ok, mismatch, mismatch, mismatch, mismatch, ok]
    assert got.get("states") == ["delivered"], "one recipient of two receipted the request"


@pytest.mark.req("MSG-16")
def test_the_delivery_state_is_the_first_row_of_the_table_that_holds(
    adapter: AdapterProcess,
) -> None:
    request = SENT["request"]
    both = [
        receipt(TOKYO, request, label="tokyo receipt"),
        receipt(COORDINATOR, request, label="coordinator receipt"),
    ]
    one = both[:1]
    late = NOW + 2 * HOUR  # past every deadline
    cases: list[tuple[JSON, list[SealedEnvelope], int, str]] = [
        (sent("request", "accepted"), both, late, "receipted"),
        (sent("request", "failed"), both, late, "receipted"),  # a receipt proves delivery
        (sent("request", "accepted"), one, late, "overdue"),
        (sent("request", "unknown"), one, NOW + 120, "delivered"),
        (sent("request", "accepted", expects=False), one, late, "delivered"),
        (sent("request", "accepted"), [], NOW + 120, "accepted"),
        (sent("request", "queued"), [], NOW + 120, "submitted"),
        (sent("request", "unknown"), [], NOW + 120, "unknown"),
        (sent("request", "unknown"), [], late, "overdue"),
        (sent("request", "failed"), [], NOW + 120, "failed"),
        (sent("request", "failed"), [], late, "failed"),  # a refused message is never overdue
        (sent("request", "failed"), one, late, "delivered"),
        (sent("request", "queued", expects=False), [], late, "submitted"),
        (sent("request", "accepted", deadline=NOW + 120), [], NOW + 120, "overdue"),
    ]
    for number, (message, receipts, now, want) in enumerate(cases):
        got = check(adapter, [message, sent("diffusion", "accepted")], receipts, now)
        assert got.get("states") == [want, "overdue" if now >= NOW + HOUR else "accepted"], (
            f"case #{number}: {message['submission']}, {len(receipts)} receipts, "
            f"{now - NOW} s after sending: {got.get('states')}, must be {want!r}"
        )
