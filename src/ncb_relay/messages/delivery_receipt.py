"""Delivery receipts: a recipient's signed word that it holds a message (spec/messages.md).

Theory of operation.  When a bureau has verified a message and written it to
its journal, it seals a :class:`DeliveryReceipt` back to the message's
sender, in an ordinary envelope: signed by the recipient (so only it can have
written it), encrypted to the sender alone, with ``reply_to`` set to the
message hash it receipts (BIND-2).  The body repeats that hash and the
message id, and states when the recipient's bureau journaled the message.
A receipt says "delivered": it says nothing about whether the message was
read, understood or acted on (that is what the replies of a conversation
are for).

Which messages are receipted is a :class:`ReceiptPolicy`, per body schema:
every schema by default, except error reports (:data:`DEFAULT_OFF`), and never
a delivery receipt itself, so two bureaus can never receipt each other's
receipts for ever.  The sender applies the same policy to know which of its
messages to expect receipts for.

The sender's checks against its own journal (the receipt names a message it
sent, with the right hash, and comes from one of its recipients) are in
:mod:`ncb_relay.bureau.delivery`; here are only the body and its rules
against its own envelope (MSG-12).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .body import Body, check_schema_id
from .fields import Digest, Time
from .handling import Handling

__all__ = [
    "DEFAULT_OFF",
    "DEFAULT_RECEIPT_POLICY",
    "NO_RECEIPTS",
    "RECEIPT_HANDLING",
    "DeliveryReceipt",
    "ReceiptPolicy",
]

# A receipt carries no case information: nothing in it needs restricting.
RECEIPT_HANDLING = Handling(code="H0", source_reliability="A", information_accuracy=1)


class DeliveryReceipt(Body):
    """The recipient holds the message ``message_id`` / ``message_hash`` since ``received_at``.

    Sent by the recipient to the message's sender with ``reply_to`` equal to
    ``message_hash``; ``received_at`` is when the recipient's bureau verified
    and journaled the message, by its own clock, never later than the
    receipt's ``created``.
    """

    schema_id = "ncbr.delivery-receipt"

    message_id: Digest
    message_hash: Digest
    received_at: Time

    @classmethod
    def of(cls, message_id: bytes, message_hash: bytes, received_at: int) -> DeliveryReceipt:
        """The receipt of one message, with the receipts' handling (H0)."""
        return cls(
            handling=RECEIPT_HANDLING,
            message_id=message_id,
            message_hash=message_hash,
            received_at=received_at,
        )


DEFAULT_OFF = frozenset({"ncbr.error-report"})


@dataclass(frozen=True, slots=True)
class ReceiptPolicy:
    """Which body schemas are receipted (MSG-13): all but ``off``, and never a receipt (MSG-14).

    ``enabled=False`` receipts nothing (:data:`NO_RECEIPTS`).  The same policy
    tells a recipient what to receipt and a sender what receipts to expect;
    bureaus that exchange messages agree on it.
    """

    off: frozenset[str] = DEFAULT_OFF
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.off, frozenset) or not isinstance(self.enabled, bool):
            raise UsageError("ReceiptPolicy.off is a frozenset of schema ids; enabled a bool")
        for schema_id in self.off:
            try:
                check_schema_id(schema_id)
            except ValueError:
                raise UsageError(f"{schema_id!r} is not a schema id") from None

    def wants(self, schema_id: str) -> bool:
        """Whether a message whose body has ``schema_id`` is receipted."""
        return self.enabled and schema_id != DeliveryReceipt.schema_id and schema_id not in self.off

    def without(self, *schema_ids: str) -> ReceiptPolicy:
        """This policy, with ``schema_ids`` no longer receipted."""
        return ReceiptPolicy(self.off | frozenset(schema_ids), self.enabled)

    def also(self, *schema_ids: str) -> ReceiptPolicy:
        """This policy, with ``schema_ids`` receipted again (a receipt never is)."""
        return ReceiptPolicy(self.off - frozenset(schema_ids), self.enabled)


DEFAULT_RECEIPT_POLICY = ReceiptPolicy()
NO_RECEIPTS = ReceiptPolicy(enabled=False)
