"""The delivery receipt operations, the sender's side and the recipient's.

spec/messages.md, "Delivery receipts": which receipts a sender takes and what
state each sent message is in (MSG-15, MSG-16), and what a recipient receipts
(MSG-13, MSG-14).
"""

from __future__ import annotations

import os

from ... import NcbRelayError
from ...bureau.delivery import check_receipt, delivery_state
from ...bureau.store import Direction, JournalRow, RowState
from ...messages import (
    DEFAULT_RECEIPT_POLICY,
    DeliveryReceipt,
    Forward,
    ReceiptPolicy,
    read_message,
    seal_message,
    verify_forward,
)
from .base import OperationsBase
from .values import JSON, BadRequest, private_identity


class ReceiptOperations(OperationsBase):
    """check-delivery and receive-messages."""

    @staticmethod
    def sent_row(sender: str, position: int, sent: JSON) -> JournalRow:
        """A sent message as the sender's journal holds it (what MSG-15 and MSG-16 read)."""
        return JournalRow(
            pos=position,
            direction=Direction.OUT,
            message_id=bytes.fromhex(sent["messageId"]),
            message_hash=bytes.fromhex(sent["messageHash"]),
            sender=sender,
            recipients=tuple(sent["recipients"]),
            schema=sent.get("schema", ""),
            created=sent.get("created", 0),
            at=sent.get("created", 0),
            reply_to=None,
            refers_to=None,
            envelope=b"",
            body=None,
            state=RowState(sent["submission"]),
            detail=None,
        )

    def check_delivery(self, request: JSON) -> JSON:
        sender = request["sender"]["id"]
        rows = [self.sent_row(sender, i, m) for i, m in enumerate(request["sent"])]
        by_id = {row.message_id: row for row in rows}
        receipted: dict[bytes, set[str]] = {row.message_id: set() for row in rows}
        results: list[JSON] = []
        for item in request["receipts"]:
            try:
                message = self.read_as(request, "sender", item["envelope"], item["now"])
                if not isinstance(message.body, DeliveryReceipt):
                    raise BadRequest("a receipt is an ncbr.delivery-receipt")
                body = check_receipt(message, by_id.get(message.body.message_id))
            except NcbRelayError as exc:
                results.append({"error": self.error_code(exc)})
                continue
            receipted[body.message_id].add(message.sender)
            results.append({"messageId": body.message_id.hex(), "recipient": message.sender})
        states = [
            delivery_state(
                submission=row.state,
                recipients=row.recipients,
                receipted=receipted[row.message_id],
                expects=sent["expectsReceipts"],
                deadline=sent["deadline"],
                now=request["now"],
            ).value
            for row, sent in zip(rows, request["sent"], strict=True)
        ]
        return {"receipts": results, "states": states}

    def receive_messages(self, request: JSON) -> JSON:
        """A recipient's side of delivery receipts (MSG-13, MSG-14): what it receipts."""
        me, coordinator = request["recipient"], request["coordinator"]
        policy = DEFAULT_RECEIPT_POLICY
        if "receiptsOff" in request:
            policy = ReceiptPolicy(off=frozenset(request["receiptsOff"]))
        guard, directory = self.replay_guard(request), self.directory(request)
        rows = [
            self.sent_row(me["id"], i, {"submission": "accepted", **m})
            for i, m in enumerate(request.get("sent", []))
        ]
        sent = {row.message_id: row for row in rows}
        taken: set[bytes] = set()
        seq = request["seq"]
        results: list[JSON] = []
        for item in request["messages"]:
            data, now = bytes.fromhex(item["envelope"]), item["now"]
            if data in taken:  # a copy delivered again: known, not receipted again
                results.append({"known": True})
                continue
            try:
                envelope = self.open_one({**request, "now": now}, data, guard, directory)
                message = read_message(envelope, coordinator=coordinator)
                if isinstance(message.body, Forward):
                    verify_forward(message, directory=directory, coordinator=coordinator)
                if isinstance(message.body, DeliveryReceipt):
                    check_receipt(message, sent.get(message.body.message_id))
            except NcbRelayError as exc:
                results.append({"error": self.error_code(exc)})
                continue
            taken.add(data)
            if not policy.wants(message.body.schema_id):
                results.append({"receipt": None})
                continue
            receipt = seal_message(
                DeliveryReceipt.of(message.message_id, message.message_hash, now),
                sender=private_identity(me),
                recipients=self.listed(request, [message.sender]),
                now=now,
                seq=seq,
                ttl=request["ttl"],
                reply_to=message.message_hash,
                rng=os.urandom,
            )
            seq += 1
            results.append({"receipt": receipt.data.hex()})
        return {"messages": results}
