"""A sent message as its sender follows it: sealed, recorded, submitted, accepted or not."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..client import Acceptance
from ..envelope import SealedEnvelope
from ..messages import Body, encode_body
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

    ``state`` is ``accepted`` (with the relay's ``acceptance``), ``unknown``
    (the relay may hold it; the bureau resubmits the identical bytes until it
    knows), ``queued`` (the relay could not be reached; it will be submitted)
    or ``failed`` (the relay refused it; ``detail`` is the refusal's code).
    """

    sealed: SealedEnvelope
    state: RowState
    acceptance: Acceptance | None = None
    detail: str | None = None

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
