"""Delivery evidence: what a bureau can prove about each message it sent (spec/messages.md).

Theory of operation.  Two kinds of evidence follow a sent message.  The
relay's answer moves its journal row (:mod:`.outbox`): ``queued``,
``unknown``, ``failed`` or ``accepted`` (with the relay's signed acceptance
and inclusion proof).  Then each recipient that verified and recorded the
message sends back a :class:`~ncb_relay.messages.DeliveryReceipt`, signed
with its own key and sealed to the sender alone (MSG-13).  The inbox checks
such a receipt against the journal with :func:`check_receipt` (it names a
message this bureau sent, with that message's hash, and comes from one of its
recipients: MSG-15), then records it beside the journal row of the receipt,
whose signed envelope is the evidence itself.

:func:`delivery_state` is the table of MSG-16: the state of a message is
never stored, it is computed from the submission state, the receipts
recorded, whether receipts are expected, the receipt deadline and ``now``.
So it cannot disagree with the facts, and it is the same after a restart.
:class:`Evidence` is that state with the facts it was computed from, which is
what :meth:`Bureau.evidence <ncb_relay.bureau.Bureau.evidence>` and
:meth:`Bureau.overdue <ncb_relay.bureau.Bureau.overdue>` return.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import BindingMismatch, UsageError
from ..messages import DeliveryReceipt, Message
from .store import Direction, JournalRow, RowState

__all__ = [
    "DEFAULT_RECEIPT_DEADLINE",
    "DeliveryState",
    "Evidence",
    "Receipted",
    "check_receipt",
    "delivery_state",
    "evidence_of",
]

DEFAULT_RECEIPT_DEADLINE = 3600  # seconds after a message's created, unless its sender sets one


class DeliveryState(StrEnum):
    """The delivery state of a sent message (MSG-16), in the order the table tries them."""

    RECEIPTED = "receipted"  # every recipient receipted it
    OVERDUE = "overdue"  # receipts expected, the deadline passed, some missing, not failed
    DELIVERED = "delivered"  # some recipients receipted it, not all
    ACCEPTED = "accepted"  # the relay accepted it, with proof; no receipt yet
    SUBMITTED = "submitted"  # recorded and sealed, not yet accepted by the relay
    UNKNOWN = "unknown"  # the relay may hold it (its answer was lost)
    FAILED = "failed"  # the relay refused it


_BY_SUBMISSION = {
    RowState.ACCEPTED: DeliveryState.ACCEPTED,
    RowState.QUEUED: DeliveryState.SUBMITTED,
    RowState.UNKNOWN: DeliveryState.UNKNOWN,
    RowState.FAILED: DeliveryState.FAILED,
}


def delivery_state(
    *,
    submission: RowState,
    recipients: Collection[str],
    receipted: Collection[str],
    expects: bool,
    deadline: int,
    now: int,
) -> DeliveryState:
    """The state of one sent message at ``now``: the first row of MSG-16's table that holds."""
    if not recipients:
        raise UsageError("a sent message has recipients")
    if set(recipients) <= set(receipted):
        return DeliveryState.RECEIPTED
    if expects and now >= deadline and submission is not RowState.FAILED:
        return DeliveryState.OVERDUE
    if receipted:
        return DeliveryState.DELIVERED
    # a submission state this table does not know (a newer journal) claims nothing
    return _BY_SUBMISSION.get(submission, DeliveryState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Receipted:
    """One recipient's delivery receipt of a message, as recorded.

    ``receipt_id`` is the receipt's own message id: its journal row holds the
    signed envelope, the evidence itself.  ``received_at`` is the time the
    recipient states; ``at`` is when this bureau verified and recorded it.
    """

    recipient: str
    receipt_id: bytes
    received_at: int
    at: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a bureau can show for one message it sent, and the state it makes at ``now``."""

    message_id: bytes
    message_hash: bytes
    schema: str
    recipients: tuple[str, ...]
    created: int
    submission: RowState  # the journal row's state: the relay's answer
    detail: str | None = field(repr=False)
    expects_receipts: bool
    deadline: int
    receipts: tuple[Receipted, ...]
    now: int
    state: DeliveryState

    @property
    def missing(self) -> tuple[str, ...]:
        """The recipients that have not receipted the message (yet)."""
        done = {r.recipient for r in self.receipts}
        return tuple(r for r in self.recipients if r not in done)

    def receipt_from(self, recipient: str) -> Receipted | None:
        return next((r for r in self.receipts if r.recipient == recipient), None)


def evidence_of(
    row: JournalRow,
    receipts: Iterable[Receipted],
    *,
    expects: bool,
    deadline: int | None,
    default_deadline: int = DEFAULT_RECEIPT_DEADLINE,
    now: int,
) -> Evidence:
    """The evidence of the sent message ``row``; ``deadline`` None: created + the default."""
    if row.direction is not Direction.OUT:
        raise UsageError("delivery evidence is kept for sent messages")
    due = row.created + default_deadline if deadline is None else deadline
    held = tuple(r for r in receipts if r.recipient in row.recipients)
    state = delivery_state(
        submission=row.state,
        recipients=row.recipients,
        receipted={r.recipient for r in held},
        expects=expects,
        deadline=due,
        now=now,
    )
    return Evidence(
        message_id=row.message_id,
        message_hash=row.message_hash,
        schema=row.schema,
        recipients=row.recipients,
        created=row.created,
        submission=row.state,
        detail=row.detail,
        expects_receipts=expects,
        deadline=due,
        receipts=held,
        now=now,
        state=state,
    )


def check_receipt(message: Message, sent: JournalRow | None) -> DeliveryReceipt:
    """MSG-15: the receipt in ``message`` names ``sent``, a message this bureau sent, rightly.

    ``sent`` is the journal row of the message id the receipt names (None if
    there is none).  Raises :class:`~ncb_relay.errors.BindingMismatch`: for a
    message this bureau did not send, another message hash, or a sender that
    was not one of its recipients.  The receipt's own ``reply_to`` binding and
    times were checked with its envelope (MSG-12).
    """
    body = message.body
    if not isinstance(body, DeliveryReceipt):
        raise UsageError("check_receipt checks a delivery receipt")
    if sent is None or sent.direction is not Direction.OUT:
        raise BindingMismatch("a delivery receipt of a message this bureau did not send")
    if sent.message_hash != body.message_hash:
        raise BindingMismatch("a delivery receipt naming another message hash")
    if message.sender not in sent.recipients:
        raise BindingMismatch("a delivery receipt from a bureau the message was not sent to")
    return body
