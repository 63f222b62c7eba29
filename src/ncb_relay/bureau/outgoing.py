"""A sent message as its sender follows it: sealed, recorded, submitted, accepted or not."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..client import Acceptance
from ..envelope import SealedEnvelope
from ..messages import Body, encode_body
from ..receipt import VerifiedReceipt
from .store import Direction, JournalRow, RowState

__all__ = ["Draft", "Outgoing"]


@dataclass(frozen=True, slots=True)
class Draft:
    """A sealed message not recorded yet, with the journal row it will become."""

    sealed: SealedEnvelope
    body: Body = field(repr=False)
    row: JournalRow = field(repr=False)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What became of a submission.

    ``state`` is ``accepted`` (with the relay's ``acceptance`` and its
    ``receipt``, verified: the envelope is in the relay's log), ``unknown``
    (the relay may hold it; the bureau resubmits the identical bytes until it
    knows; also when the relay's evidence did not verify, ``detail`` then
    says so), ``queued`` (the relay could not be reached; it will be
    submitted) or ``failed`` (the relay refused it; ``detail`` is the
    refusal's code).

    ``witnessed`` (for an accepted message) says whether the checkpoint the
    bureau holds with its required witness cosignatures includes the
    envelope's entry; with a witness threshold it is often ``False`` at
    acceptance and becomes true later (``Bureau.log.witnessed(message_id)``,
    after ``Bureau.refresh_log``).  Without a threshold it is always ``True``.
    """

    sealed: SealedEnvelope
    state: RowState
    acceptance: Acceptance | None = None
    detail: str | None = None
    receipt: VerifiedReceipt | None = None
    witnessed: bool | None = None

    @property
    def log_index(self) -> int | None:
        """The envelope's index in the relay's log, once its receipt verified."""
        return None if self.receipt is None else self.receipt.log_index

    @property
    def checkpoint_size(self) -> int | None:
        """The size of the verified checkpoint whose tree includes the envelope."""
        return None if self.receipt is None else self.receipt.checkpoint.size

    @property
    def message_id(self) -> bytes:
        return self.sealed.message_id

    @property
    def message_hash(self) -> bytes:
        return self.sealed.message_hash


def sent_row(sealed: SealedEnvelope, body: Body, *, at: int, refers_to: bytes | None) -> JournalRow:
    """The journal row of a message this bureau sealed, with its encoded body."""
    header = sealed.header
    return JournalRow(
        pos=0,
        direction=Direction.OUT,
        message_id=sealed.message_id,
        message_hash=sealed.message_hash,
        sender=header.sender,
        recipients=tuple(r.principal for r in header.recipients),
        schema=body.schema_id,
        created=header.created,
        at=at,
        reply_to=header.reply_to,
        refers_to=refers_to,
        envelope=sealed.data,
        body=encode_body(body),
        state=RowState.QUEUED,
        detail=None,
    )
