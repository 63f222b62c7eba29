"""One row of a bureau's journal: which way its message went, where it stands, how it is stored.

The journal itself, and what each state means across a crash, is
:mod:`ncb_relay.bureau.store`; here is only the row, and the conversion of
the columns SQLite gives back, which refuses anything a journal cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import StorageError

__all__ = ["COLUMNS", "Direction", "JournalRow", "RowState", "journal_row"]


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class RowState(StrEnum):
    """Where a journal row stands: ``in`` pending, handled, unhandled, failed; ``out`` the rest."""

    PENDING = "pending"  # received, verified, stored; its handler has not finished
    HANDLED = "handled"  # its handler returned (or it needed none: a reply, a copy)
    UNHANDLED = "unhandled"  # stored; no handler was registered for it (handed over at start)
    FAILED = "failed"  # in: its handler raised; out: the relay refused it
    QUEUED = "queued"  # sealed and recorded, not yet accepted by the relay
    UNKNOWN = "unknown"  # submitted; the relay may have accepted it
    ACCEPTED = "accepted"  # the relay accepted it


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One message of the journal, as stored."""

    pos: int
    direction: Direction
    message_id: bytes
    message_hash: bytes
    sender: str
    recipients: tuple[str, ...]
    schema: str
    created: int
    at: int
    reply_to: bytes | None
    refers_to: bytes | None  # the request a forward carries (out), or the handle answered (in)
    envelope: bytes = field(repr=False)
    body: bytes | None = field(repr=False)  # out: the encoded body (not openable by its sender)
    state: RowState
    detail: str | None


COLUMNS = (
    "pos, direction, message_id, message_hash, sender, recipients, schema, created, at, "
    "reply_to, refers_to, envelope, body, state, detail"
)


def journal_row(values: Sequence[object]) -> JournalRow:
    """The row of the :data:`COLUMNS` read back; :class:`StorageError` if they are corrupt."""
    try:
        return _convert(values)
    except (TypeError, ValueError, AssertionError) as exc:
        raise StorageError(
            f"bureau store: a journal row is corrupt ({type(exc).__name__})"
        ) from exc


def _convert(values: Sequence[object]) -> JournalRow:
    (
        pos,
        direction,
        mid,
        mhash,
        sender,
        rcpts,
        schema,
        created,
        at,
        rt,
        ref,
        env,
        body,
        st,
        det,
    ) = values
    assert isinstance(rcpts, str)
    return JournalRow(
        pos=int(pos),  # type: ignore[call-overload]
        direction=Direction(str(direction)),
        message_id=bytes(mid),  # type: ignore[call-overload]
        message_hash=bytes(mhash),  # type: ignore[call-overload]
        sender=str(sender),
        recipients=tuple(rcpts.split(",")) if rcpts else (),
        schema=str(schema),
        created=int(created),  # type: ignore[call-overload]
        at=int(at),  # type: ignore[call-overload]
        reply_to=None if rt is None else bytes(rt),  # type: ignore[call-overload]
        refers_to=None if ref is None else bytes(ref),  # type: ignore[call-overload]
        envelope=bytes(env),  # type: ignore[call-overload]
        body=None if body is None else bytes(body),  # type: ignore[call-overload]
        state=RowState(str(st)),
        detail=None if det is None else str(det),
    )
