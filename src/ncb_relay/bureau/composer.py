"""This bureau's messages before they are submitted: sealed, recorded, applied to its conversations.

A message is sealed with the next sequence number, taken only once the
message is sealed (a refusal leaves no gap); it is recorded in the journal
with its body, in one transaction with the counter (and, for the replies a
handler queued, with the handled message's outcome); then what it changes
in the conversations this bureau follows is applied: a request starts one, a
forward or a withdrawal moves one.  A forward may bind replies that were
parked waiting for it: :meth:`Composer.record` returns their deliveries, for
the bureau to hand over.  Submitting is :mod:`.outbox`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from .. import primitives
from ..envelope import SealedEnvelope, VerifiedEnvelope
from ..errors import InvalidTransition, UsageError
from ..identity import PrivateIdentity
from ..messages import (
    AssistanceRequest,
    Body,
    BodyRegistry,
    Conversation,
    Delivery,
    Forward,
    SealedForward,
    Withdrawal,
    seal_forward,
    seal_message,
)
from ..messages.conversations import Conversations
from ..messages.request_states import RequestEvent, next_state
from .directory_keeper import DirectoryKeeper
from .incoming import Incoming
from .outgoing import Draft, Outgoing, sent_row
from .store import BureauStore, RowState

__all__ = ["Composer", "Sender"]


class Sender(Protocol):
    """The bureau whose messages a :class:`Composer` seals, read at each use (a ``Bureau``)."""

    identity: PrivateIdentity
    store: BureauStore
    directory: DirectoryKeeper
    conversations: Conversations
    coordinator: str
    registry: BodyRegistry
    ttl: int  # seconds a sealed message lives


class Composer:
    """Seals and records the messages of ``bureau``; ``seq`` is the last sequence number used."""

    def __init__(
        self,
        bureau: Sender,
        *,
        clock: Callable[[], int],
        rng: primitives.RandomSource,
        notify: Callable[[], None],
    ) -> None:
        self.seq = 0
        self._bureau = bureau
        self._clock = clock
        self._rng = rng
        self._notify = notify

    def draft(
        self,
        body: Body,
        to: Iterable[str],
        *,
        reply_to: bytes | None = None,
        refers_to: bytes | None = None,
    ) -> Draft:
        if not isinstance(body, Body):
            raise UsageError("a bureau sends a typed Body")
        names = list(dict.fromkeys(to))
        if not names:
            raise UsageError("a message needs at least one recipient")
        now = self._clock()
        recipients = [self._bureau.directory.identity(name, now) for name in names]
        seq = self.seq + 1  # taken only once the message is sealed: no gap for a refusal
        sealed = seal_message(
            body,
            sender=self._bureau.identity,
            recipients=recipients,
            now=now,
            seq=seq,
            rng=self._rng,
            ttl=self._bureau.ttl,
            reply_to=reply_to,
        )
        self.seq = seq
        return Draft(sealed, body, sent_row(sealed, body, at=now, refers_to=refers_to))

    def reply_draft(self, incoming: Incoming, body: Body, to: Iterable[str] | None) -> Draft:
        """A reply to ``incoming``, by default to everyone on a request but this bureau, else
        to its sender only (a reply to a diffusion does not go to every bureau it reached)."""
        handle = incoming.handle
        if to is not None:
            targets = list(to)
        elif isinstance(incoming.body, AssistanceRequest):
            targets = _reply_targets(handle, self._bureau.identity.principal)
        else:
            targets = [handle.sender]
        return self.draft(
            body, targets, reply_to=handle.message_hash, refers_to=self._request_of(handle)
        )

    def _request_of(self, handle: VerifiedEnvelope) -> bytes:
        """The request a reply to ``handle`` belongs to (the original of a forward)."""
        row = self._bureau.store.lookup(handle.message_id)
        if row is not None and row.refers_to is not None:
            return row.refers_to
        return handle.message_hash

    def recorded_forward(self, incoming: Incoming, names: Sequence[str]) -> Outgoing | None:
        """The forward of ``incoming`` to ``names`` recorded before and not refused, if any."""
        for row in self._bureau.store.sent_referring_to(incoming.message.message_hash):
            if (
                row.schema == Forward.schema_id
                and set(row.recipients) == set(names)
                and row.state is not RowState.FAILED
            ):
                return Outgoing(
                    SealedEnvelope.from_bytes(row.envelope), row.state, detail=row.detail
                )
        return None

    def forward_draft(
        self,
        incoming: Incoming,
        names: Sequence[str],
        *,
        permission: Incoming | None,
        note: str | None,
    ) -> Draft:
        """A forward of ``incoming`` to ``names``, with its provenance."""
        now = self._clock()
        seq = self.seq + 1
        forward = seal_forward(
            incoming.message.envelope,
            sender=self._bureau.identity,
            recipients=[self._bureau.directory.identity(name, now) for name in names],
            now=now,
            seq=seq,
            rng=self._rng,
            coordinator=self._bureau.coordinator,
            permission=permission.message.envelope if permission is not None else None,
            note=note,
            ttl=self._bureau.ttl,
            registry=self._bureau.registry,
        )
        self.seq = seq
        row = sent_row(forward.sealed, forward.body, at=now, refers_to=forward.original_hash)
        return Draft(forward.sealed, forward.body, row)

    def check_withdrawal(self, conversation: Conversation) -> None:
        """Refuse, before anything is sealed, a withdrawal the state table would refuse."""
        if conversation.requester != self._bureau.identity.principal:
            raise UsageError("only the requester withdraws a request")
        try:
            next_state(conversation.state, RequestEvent.WITHDRAW)
        except InvalidTransition as exc:
            raise UsageError(f"not withdrawn: the request is {conversation.state}") from exc

    def record(self, drafts: Sequence[Draft], **handled: Any) -> list[Delivery]:
        """Record ``drafts`` (and ``handled``, see ``BureauStore.record_sent``), then apply them.

        Returns the deliveries of the parked replies they bound.
        """
        self._bureau.store.record_sent([d.row for d in drafts], seq=self.seq, **handled)
        bound: list[Delivery] = []
        for draft in drafts:
            bound.extend(self.apply_sent(draft.sealed, draft.body, draft.row.refers_to))
        return bound

    def apply_sent(
        self, sealed: SealedEnvelope, body: Body, refers_to: bytes | None
    ) -> tuple[Delivery, ...]:
        """What a sent message changes in the conversations this bureau follows."""
        conversations = self._bureau.conversations
        deliveries: tuple[Delivery, ...] = ()
        if isinstance(body, AssistanceRequest):
            _, deliveries = conversations.start(sealed, body)
        elif isinstance(body, Forward) and refers_to in conversations:
            assert refers_to is not None
            deliveries = conversations.add_forward(SealedForward(sealed, body, refers_to))
        elif isinstance(body, Withdrawal) and sealed.header.reply_to in conversations:
            assert sealed.header.reply_to is not None
            conversations.get(sealed.header.reply_to).withdraw(sealed, body)
        self._notify()
        return deliveries


def _reply_targets(handle: VerifiedEnvelope, own: str) -> list[str]:
    return [handle.sender, *(r for r in handle.recipients if r not in (own, handle.sender))]
