"""The delivery receipts a bureau owes for what it received, and those it holds for what it sent.

Owed (MSG-13).  In the transaction that journals a message whose schema the
bureau's :class:`~ncb_relay.messages.ReceiptPolicy` receipts, the inbox also
journals a :class:`~ncb_relay.messages.DeliveryReceipt` to the message's
sender, sealed by :meth:`ReceiptBook.owed_for`; a task of its own
(:meth:`ReceiptBook.submit_while_running`) submits it beside the handler, and
what is still owed when the bureau stops is submitted before it stops.  A
receipt this task cannot take (more than :data:`MAX_RECEIPTS_OWED`) is
journaled all the same, so the outbox task submits it.

Held (MSG-15, MSG-16).  A delivery receipt received is checked against the
journal (:meth:`ReceiptBook.check`, :func:`~.delivery.check_receipt`) and
journaled with the evidence it gives; :meth:`ReceiptBook.evidence` computes
each sent message's delivery state from the journal (:mod:`.delivery`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import anyio

from ..envelope import SealedEnvelope
from ..errors import NcbRelayError, UsageError
from ..messages import Body, DeliveryReceipt, Message, ReceiptPolicy
from .delivery import DeliveryState, Evidence, Receipted, check_receipt, evidence_of
from .outbox import Outbox
from .outgoing import Draft
from .store import BureauStore, Direction, JournalRow

__all__ = ["MAX_RECEIPTS_OWED", "ReceiptBook", "ReceiptHolder"]

log = logging.getLogger("ncb_relay.bureau")

MAX_RECEIPTS_OWED = 1024  # delivery receipts waiting for the receipt loop (more: the outbox's)


class ReceiptHolder(Protocol):
    """The bureau of a :class:`ReceiptBook`, read at each use (a ``Bureau`` is one)."""

    store: BureauStore
    outbox_task: Outbox
    receipts: ReceiptPolicy  # which schemas are receipted, and expected receipted (MSG-13)
    receipt_deadline: int  # the default: receipts due this long after a message's created


_Stored = tuple[bytes, str, bytes, int, int]  # BureauStore.delivery_receipts: one receipt


class ReceiptBook:
    """The delivery receipts of one bureau."""

    def __init__(
        self,
        bureau: ReceiptHolder,
        *,
        draft: Callable[..., Draft],
        clock: Callable[[], int],
        stopping: Callable[[], bool],
    ) -> None:
        self.owed: list[SealedEnvelope] = []  # journaled, for the receipt loop to submit
        self._due: anyio.Event | None = None
        self._bureau = bureau
        self._draft = draft  # Composer.draft
        self._clock = clock
        self._stopping = stopping

    # --- owed ----------------------------------------------------------------------------------

    def owed_for(self, message: Message, now: int) -> Draft | None:
        """The delivery receipt this bureau owes for ``message``, sealed, if its policy says so."""
        if not self._bureau.receipts.wants(message.body.schema_id):
            return None  # never a receipt of a receipt (MSG-14)
        receipt: Body = DeliveryReceipt.of(message.message_id, message.message_hash, now)
        try:
            return self._draft(
                receipt,
                [message.sender],
                reply_to=message.message_hash,
                refers_to=message.message_hash,
            )
        except NcbRelayError as exc:  # the clock stepped back, the sender's key is gone, ...
            log.error("receipt-not-sealed", extra={"code": exc.code, "sender": message.sender})
            return None

    def owe(self, sealed: SealedEnvelope) -> None:
        """Submit ``sealed``, journaled already, beside the handler (MSG-13)."""
        if len(self.owed) < MAX_RECEIPTS_OWED:  # else the outbox task sends it
            self.owed.append(sealed)
        if self._due is not None:
            self._due.set()

    async def submit_while_running(self) -> None:
        """Submit the delivery receipts owed, as they are journaled, beside the inbox loop."""
        while not self._stopping():
            if not self.owed:
                self._due = anyio.Event()
                await self._due.wait()
                continue
            await self.submit_owed(1)

    async def submit_owed(self, count: int = MAX_RECEIPTS_OWED) -> None:
        for _ in range(min(count, len(self.owed))):
            sealed = self.owed.pop(0)
            with contextlib.suppress(NcbRelayError):  # recorded: the outbox task sends it again
                await self._bureau.outbox_task.submit(sealed)

    # --- held ----------------------------------------------------------------------------------

    def check(self, message: Message) -> tuple[bytes, int] | None:
        """For a delivery receipt: the message it receipts and when, once checked (MSG-15)."""
        body = message.body
        if not isinstance(body, DeliveryReceipt):
            return None
        check_receipt(message, self._bureau.store.lookup(body.message_id))
        return body.message_id, body.received_at

    def expect(self, message_id: bytes, *, by: int) -> None:
        self._sent_row(message_id)
        self._bureau.store.set_receipt_deadline(message_id, by)

    def evidence(self, message_id: bytes, *, now: int | None) -> Evidence:
        row = self._sent_row(message_id)
        receipts = self._bureau.store.delivery_receipts(message_id)
        deadline = self._bureau.store.receipt_deadlines().get(message_id)
        return self._evidence(row, receipts, deadline, self._clock() if now is None else now)

    def evidences(self, *, now: int | None, states: Iterable[DeliveryState]) -> list[Evidence]:
        at = self._clock() if now is None else now
        wanted = set(states)
        receipts: dict[bytes, list[_Stored]] = {}
        for receipt in self._bureau.store.delivery_receipts():
            receipts.setdefault(receipt[0], []).append(receipt)
        deadlines = self._bureau.store.receipt_deadlines()
        found = (
            self._evidence(row, receipts.get(row.message_id, ()), deadlines.get(row.message_id), at)
            for row in self._bureau.store.rows(direction=Direction.OUT)
        )
        return [e for e in found if not wanted or e.state in wanted]

    def _sent_row(self, message_id: bytes) -> JournalRow:
        row = self._bureau.store.lookup(message_id)
        if row is None or row.direction is not Direction.OUT:
            raise UsageError(f"no sent message {message_id.hex()}")
        return row

    def _evidence(
        self, row: JournalRow, receipts: Iterable[_Stored], deadline: int | None, now: int
    ) -> Evidence:
        return evidence_of(
            row,
            [Receipted(who, rid, received_at, at) for _, who, rid, received_at, at in receipts],
            expects=self._bureau.receipts.wants(row.schema),
            deadline=deadline,
            default_deadline=self._bureau.receipt_deadline,
            now=now,
        )
