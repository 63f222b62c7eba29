"""What a recipient receipts, and what it never receipts (MSG-13, MSG-14).

``receive-messages`` delivers messages to Tokyo in order: the exchange of
``test_parties.py`` (Seoul's request, the coordinator's forward of it with Tokyo in
copy, Rabat's replies to the forward), an error report, delivery receipts, a replay
and a message for another bureau.  Each receipt Tokyo sends is opened by the
reference as the message's sender and read as a message (MSG-12): signed by Tokyo,
sealed to the message's sender alone, with ``reply_to`` the message's hash and a body
naming the message's id and hash and the time Tokyo received it.
"""

from __future__ import annotations

import pytest

from ncb_relay import ReplayGuard, open_envelope
from ncb_relay.envelope import SealedEnvelope
from ncb_relay.messages import DeliveryReceipt, encode_body, read_message

from .adapter_process import AdapterProcess
from .test_parties import (
    BODIES,
    COORDINATOR,
    DIRECTORY,
    EXCHANGE,
    NOW,
    PRINCIPALS,
    RABAT,
    SENT,
    SEOUL,
    TOKYO,
    identity,
    sealed,
)
from .vectors import JSON

E = EXCHANGE
REPORT = sealed(  # Rabat's error report about Seoul's request, to Tokyo
    BODIES["ncbr.error-report"], RABAT, (TOKYO,), label="report", reply_to=E.request.message_hash
)
TOKYO_ACK = sealed(  # what Tokyo sent Seoul: an acknowledgement of its request
    BODIES["ncbr.acknowledgement"],
    TOKYO,
    (SEOUL,),
    label="tokyo ack",
    reply_to=E.request.message_hash,
)


def receipt_to_tokyo(of: SealedEnvelope, label: str) -> SealedEnvelope:
    body = DeliveryReceipt.of(of.message_id, of.message_hash, NOW)
    return sealed(encode_body(body), SEOUL, (TOKYO,), label=label, reply_to=of.message_hash)


RECEIPT = receipt_to_tokyo(TOKYO_ACK, "receipt to tokyo")  # of a message Tokyo sent
STRAY_RECEIPT = receipt_to_tokyo(E.request, "stray receipt")  # of a message Tokyo did not send


def at(i: int) -> int:
    return NOW + 60 + i


def receive(
    adapter: AdapterProcess, messages: list[SealedEnvelope], off: list[str] | None = None
) -> list[JSON]:
    request: JSON = {
        "op": "receive-messages",
        "recipient": PRINCIPALS.private(TOKYO),
        "messages": [{"envelope": m.data.hex(), "now": at(i)} for i, m in enumerate(messages)],
        "sent": [
            {
                "messageId": TOKYO_ACK.message_id.hex(),
                "messageHash": TOKYO_ACK.message_hash.hex(),
                "recipients": [SEOUL],
            }
        ],
        "directory": PRINCIPALS.directory,
        "coordinator": COORDINATOR,
        "seq": 100,
        "ttl": 86400,
    }
    if off is not None:
        request["receiptsOff"] = off
    got = adapter.call(request)
    assert "error" not in got, f"the request was refused: {got}"
    results: list[JSON] = got.get("messages", [])
    assert len(results) == len(messages), f"one result per message: {got}"
    return results


def check_receipt(result: JSON, of: SealedEnvelope, received_at: int) -> None:
    """``result`` carries Tokyo's receipt of ``of``, received at ``received_at`` (MSG-13)."""
    assert result.get("receipt"), f"no receipt sent: {result}"
    sender = of.header.sender
    opened = open_envelope(
        bytes.fromhex(result["receipt"]),
        recipient=identity(sender),
        directory=DIRECTORY,
        now=received_at,
        replay=ReplayGuard(),
    )
    assert (opened.sender, opened.recipients) == (TOKYO, (sender,)), "to the sender alone"
    message = read_message(opened, coordinator=COORDINATOR)  # MSG-12: reply_to names it
    assert message.reply_to == of.message_hash
    body = message.body
    assert isinstance(body, DeliveryReceipt), f"not a delivery receipt: {body.schema_id}"
    assert (body.message_id, body.message_hash, body.received_at) == (
        of.message_id,
        of.message_hash,
        received_at,
    )


def kinds(results: list[JSON]) -> list[str]:
    def kind(r: JSON) -> str:
        if "error" in r:
            return str(r["error"])
        if r.get("known"):
            return "known"
        return "receipt" if r.get("receipt") else "none"

    return [kind(r) for r in results]


# --- MSG-13: a receipt for each message the policy receipts, once --------------------------------


@pytest.mark.req("MSG-13")
def test_each_message_received_is_receipted_once_to_its_sender(adapter: AdapterProcess) -> None:
    messages = [E.request, E.ack, E.forward, E.request, E.status, E.response, REPORT]
    got = receive(adapter, messages)
    assert kinds(got) == ["receipt", "receipt", "receipt", "known", "receipt", "receipt", "none"]
    for i, (result, message) in enumerate(zip(got, messages, strict=True)):
        if kinds([result]) == ["receipt"]:  # the forward's own envelope is receipted
            check_receipt(result, message, at(i))


@pytest.mark.req("MSG-13")
def test_the_policy_names_the_schemas_receipted(adapter: AdapterProcess) -> None:
    messages = [E.request, E.status, REPORT]
    got = receive(adapter, messages, off=["ncbr.status-update"])
    assert kinds(got) == ["receipt", "none", "receipt"], "error reports are receipted if asked"
    check_receipt(got[0], E.request, at(0))
    check_receipt(got[2], REPORT, at(2))


# --- MSG-14: never a receipt of a receipt, nor of a refused message -----------------------------


@pytest.mark.req("MSG-14")
def test_no_receipt_for_a_receipt_or_a_refused_message(adapter: AdapterProcess) -> None:
    not_for_tokyo = SENT["diffusion"]  # Seoul's diffusion to Rabat
    messages = [RECEIPT, STRAY_RECEIPT, E.status, E.status_again, not_for_tokyo]
    got = receive(adapter, messages, off=[])  # a policy that receipts every other schema
    assert kinds(got) == ["none", "binding-mismatch", "receipt", "replay", "decryption-failed"]
    check_receipt(got[2], E.status, at(2))
