"""The inbox: the bureau's mailbox at its relay, and the checks a message passes there.

The inbox loop long-polls the relay's mailbox, then acknowledges what it took.
Each envelope is checked before anything else sees it: structure and size,
then the journal (a copy already handed over is only acknowledged again;
another message under a known id is a replay), then
:func:`~ncb_relay.open_envelope` (outer and inner signatures against the
directory as of the message's creation, recipient binding, freshness, the
replay guard), then the body (:func:`~ncb_relay.messages.read_message`; a
forward through :func:`~ncb_relay.messages.verify_forward`), then its
conversation (:mod:`.routing`: a reply must be bound to a request this bureau
follows, or it waits, parked, for the forward that names it; each sender may
park at most ``max_parked_per_sender``), then, for a delivery receipt, the
journal again (:mod:`.receipts`).

A message that fails a check for good is kept in the journal's ``refused``
table as evidence, acknowledged so it cannot block the mailbox, and never
reaches a handler.  A message that fails only because of this bureau's own
state (a sender's key not in its directory yet, an expired directory, a full
replay guard or parking space, a key id of its own it does not hold) is
*deferred*: not acknowledged, so the relay delivers it again after its lease
and it is checked again then, up to :data:`MAX_DEFERRALS` deliveries.

A message that passes is journaled (with the delivery receipt owed for it)
and handed over (:mod:`.handover`), unless it is parked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Protocol

import anyio

from .. import primitives
from ..client import RelayClient
from ..envelope import VerifiedEnvelope, open_envelope
from ..errors import (
    DecryptionFailed,
    DirectoryExpired,
    LimitExceeded,
    NcbRelayError,
    ProtocolError,
    Replay,
    UnknownKey,
)
from ..freshness import ReplayGuard
from ..header import DEFAULT_LIMITS, parse_envelope
from ..identity import PrivateIdentity
from ..messages import AssistanceRequest, BodyRegistry, Delivery, Message, read_message
from ..verified_directory import VerifiedDirectory
from .composer import Composer
from .directory_keeper import DirectoryKeeper
from .handover import Handover
from .incoming import Incoming
from .receipts import ReceiptBook
from .routing import ParkingFull, Router
from .store import BureauStore, Direction, JournalRow, RowState

__all__ = ["MAX_DEFERRALS", "Inbox", "Outcome", "Recipient"]

log = logging.getLogger("ncb_relay.bureau")

DIRECTORY_REFRESH = 3600.0
IDLE_PAUSE = 0.5  # seconds between fetches that bring nothing new and come back at once
MAX_DEFERRALS = 5  # deliveries of one message deferred before it is refused for good


class Recipient(Protocol):
    """The bureau whose mailbox an :class:`Inbox` serves, read at each use (a ``Bureau``)."""

    identity: PrivateIdentity
    relay: RelayClient
    store: BureauStore
    directory: DirectoryKeeper
    router: Router
    coordinator: str
    registry: BodyRegistry
    batch_size: int  # messages asked for in one fetch
    poll_wait: int  # seconds the relay may hold a fetch open
    deferrals: int  # messages left at the relay, to be checked again (counted here)


class Outcome(Enum):
    HANDED_OVER = "handed-over"  # new, verified, recorded, handed over (or parked)
    KNOWN = "known"  # a copy of a message in the journal: acknowledged again
    REFUSED = "refused"  # failed a check for good: kept as evidence, acknowledged
    DEFERRED = "deferred"  # failed because of this bureau's own state: not acknowledged


class _Defer(Exception):
    """This bureau cannot take the message now (its parking space or replay guard is full)."""


class Inbox:
    """Fetches, checks, journals and hands over the messages of ``bureau``'s mailbox."""

    def __init__(
        self,
        bureau: Recipient,
        *,
        composer: Composer,
        handover: Handover,
        receipts: ReceiptBook,
        guard: ReplayGuard,
        clock: Callable[[], int],
        notify: Callable[[], None],
        stopping: Callable[[], bool],
        refresh_directory: Callable[[], Awaitable[None]],
        refresh_for_unknown_key: Callable[[], Awaitable[bool]],
    ) -> None:
        self._bureau = bureau
        self._fetch_scope: anyio.CancelScope | None = None
        self._composer = composer
        self._handover = handover
        self._receipts = receipts
        self._guard = guard
        self._clock = clock
        self._notify = notify
        self._stopping = stopping
        self._refresh_directory = refresh_directory
        self._refresh_for_unknown_key = refresh_for_unknown_key

    def stop_waiting(self) -> None:
        """Cut a fetch in progress (a long-poll) short."""
        if self._fetch_scope is not None:
            self._fetch_scope.cancel()

    async def run(self) -> None:
        """Fetch, check and acknowledge the mailbox's messages until the bureau stops."""
        cursor, delay = 0, 1.0
        last_refresh = anyio.current_time()
        directory = self._bureau.directory
        while not self._stopping():
            if directory.anchors is not None and (
                anyio.current_time() - last_refresh > DIRECTORY_REFRESH or not directory.usable()
            ):
                last_refresh = anyio.current_time()
                await self._refresh_directory()
            if not directory.usable():
                await anyio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self._fetch_scope = anyio.CancelScope()
            batch = None
            asked = anyio.current_time()
            with self._fetch_scope:
                try:
                    batch = await self._bureau.relay.fetch(
                        after=cursor, limit=self._bureau.batch_size, wait=self._bureau.poll_wait
                    )
                except NcbRelayError as exc:
                    log.warning("fetch-failed", extra={"code": exc.code})
            self._fetch_scope = None
            if batch is None:
                if not self._stopping():
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            done, new, taken = [], 0, 0
            for delivery in batch.messages:
                if self._stopping():
                    break
                outcome, _ = await self.take(delivery.envelope, attempt=delivery.attempt)
                taken += 1
                if outcome is Outcome.DEFERRED:
                    continue  # not acknowledged: the relay delivers it again after its lease
                new += outcome is Outcome.HANDED_OVER
                done.append(delivery.message_id)
            if done:
                try:
                    await self._bureau.relay.acknowledge(done)
                except NcbRelayError as exc:  # they come again, and are known copies then
                    log.warning("acknowledge-failed", extra={"code": exc.code})
            cursor = batch.cursor if taken == len(batch.messages) else 0
            quick = anyio.current_time() - asked < IDLE_PAUSE
            if not new and quick and len(batch.messages) < self._bureau.batch_size:
                await anyio.sleep(IDLE_PAUSE)  # a relay answering at once with nothing new

    async def take(self, envelope: bytes, *, attempt: int = 1) -> tuple[Outcome, Incoming | None]:
        """Check one envelope, journal it and hand it over; what came of it."""
        outcome = await self._check_and_hand_over(envelope, attempt)
        if isinstance(outcome, Incoming):
            return Outcome.HANDED_OVER, outcome
        return outcome, None

    async def _check_and_hand_over(self, envelope: bytes, attempt: int) -> Outcome | Incoming:
        """The incoming message handed over (or parked), or why not."""
        now = self._clock()
        try:
            parsed = parse_envelope(envelope, DEFAULT_LIMITS)
        except ProtocolError as exc:
            self._refuse(envelope, None, exc, now)
            return Outcome.REFUSED
        header = parsed.header
        held = self._bureau.store.lookup(header.message_id)
        if held is not None:
            if primitives.constant_time_equal(held.envelope, envelope):
                return Outcome.KNOWN  # a copy of a message handed over before
            self._refuse(envelope, header.sender, Replay("a known message id, other bytes"), now)
            return Outcome.REFUSED
        self._guard.prune(now)
        message: Message | None = None
        try:
            if len(self._guard) >= self._guard.max_entries:
                raise _Defer("the replay guard is full")
            message = await self._open_checked(envelope, now)
            incoming, applied = self.route(message)
            delivered = self._receipts.check(message)
        except (_Defer, ParkingFull, ProtocolError) as exc:
            ours = not isinstance(exc, ProtocolError) or self._is_our_state(
                exc, header.sender_key_id
            )
            if ours and attempt < MAX_DEFERRALS:
                if message is not None:  # opened, so in the replay guard: it comes again
                    self._guard.forget(header.sender, header.message_id, header.seq)
                self._bureau.deferrals += 1
                why = exc.code if isinstance(exc, ProtocolError) else str(exc)
                log.warning("message-deferred", extra={"code": why, "sender": header.sender})
                return Outcome.DEFERRED
            refusal = exc if isinstance(exc, ProtocolError) else LimitExceeded(str(exc))
            self._refuse(envelope, header.sender, refusal, now)
            return Outcome.REFUSED
        parked = self._bureau.router.is_parked(message)
        receipt = None if delivered is not None else self._receipts.owed_for(message, now)
        self._bureau.store.record_received(
            _received_row(message, envelope, at=now, refers_to=_refers_to(incoming), parked=parked),
            receipt=None if receipt is None else receipt.row,
            seq=self._composer.seq,
            delivered=delivered,
        )
        self._notify()
        if receipt is not None:  # sent beside the handler, whatever it does (MSG-13)
            self._receipts.owe(receipt.sealed)
        if not parked:
            await self._handover.hand_over(incoming)
        await self._handover.hand_over_all(applied)
        return incoming

    def _is_our_state(self, exc: ProtocolError, sender_key_id: bytes) -> bool:
        """Whether a refusal may come from this bureau's own state rather than the message.

        An unknown key counts only when the directory version held does not
        list the sender's key id at all (a bureau or key newer than it); a key
        it lists as revoked, suspended or outside its window is refused for
        good (DIR-11), and so is anything with fixed keys, which never change.
        """
        if isinstance(exc, DirectoryExpired):
            return True
        if isinstance(exc, DecryptionFailed):
            return exc.reason == "no-such-key"  # sealed to a key of ours not loaded (yet)
        if isinstance(exc, UnknownKey):
            keys = self._bureau.directory.keys
            unlisted = isinstance(keys, VerifiedDirectory) and not keys.document.owner(
                sender_key_id
            )
            return unlisted
        return False

    async def _open_checked(self, envelope: bytes, now: int) -> Message:
        """Open and read an envelope; on an unknown key, refresh the directory once and retry."""
        try:
            return self._open(envelope, now)
        except UnknownKey:
            if not await self._refresh_for_unknown_key():
                raise
        return self._open(envelope, now)

    def _open(self, envelope: bytes, now: int) -> Message:
        verified = open_envelope(
            envelope,
            recipient=self._bureau.identity,
            directory=self._bureau.directory.keys,
            now=now,
            replay=self._guard,
        )
        return self.read(verified)

    def read(self, verified: VerifiedEnvelope) -> Message:
        """The message of an opened envelope, its body read and checked."""
        return read_message(
            verified, coordinator=self._bureau.coordinator, registry=self._bureau.registry
        )

    def _refuse(self, envelope: bytes, sender: str | None, exc: NcbRelayError, now: int) -> None:
        log.warning("message-refused", extra={"code": exc.code, "sender": sender})
        self._bureau.store.record_refused(
            at=now, sender=sender, code=exc.code, reason=exc.message, envelope=envelope
        )

    def route(self, message: Message) -> tuple[Incoming, tuple[Delivery, ...]]:
        """What a verified message means here (:mod:`.routing`); a ProtocolError refuses it.

        Returns its :class:`Incoming` and the deliveries of replies that were
        parked waiting for it (a request or forward they name).
        """
        routed = self._bureau.router.route(message, historical=self._bureau.directory.historical)
        incoming = self._handover.incoming(
            message,
            routed.body,
            forwarded=routed.forwarded,
            conversation=routed.conversation,
            step=routed.step,
        )
        incoming.copy = routed.copy
        return incoming, routed.applied


def _refers_to(incoming: Incoming) -> bytes | None:
    if incoming.forwarded is not None:
        return incoming.forwarded.original_hash
    if incoming.conversation is not None:
        return incoming.conversation.request_hash
    if isinstance(incoming.body, AssistanceRequest):
        return None
    return incoming.message.reply_to


def _received_row(
    message: Message, data: bytes, *, at: int, refers_to: bytes | None, parked: bool
) -> JournalRow:
    envelope = message.envelope
    return JournalRow(
        pos=0,
        direction=Direction.IN,
        message_id=envelope.message_id,
        message_hash=envelope.message_hash,
        sender=envelope.sender,
        recipients=envelope.recipients,
        schema=message.body.schema_id,
        created=envelope.created,
        at=at,
        reply_to=envelope.reply_to,
        refers_to=refers_to,
        envelope=data,
        body=None,
        state=RowState.PENDING,
        detail="parked" if parked else None,
    )
