"""Rebuilding a bureau's conversations at start by replaying its journal.

The conversation state is never stored: :class:`JournalReplay` replays the
journal, in order, through the same core code that built it the first time.
Sent requests and forwards are applied from their recorded bodies; received
messages are opened again with the bureau's keys (so the keystore must keep
an encryption key as long as the journal holds messages sealed to it; a row
that no longer opens is logged, and if its handler had not finished it is
marked ``failed``) and routed again.  The received messages whose window is
still open seed the live replay guard.  Messages whose handler had not
finished (and the parked replies bound since, whose handover a crash cut
short) are returned, to be handed over again before the inbox.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from ..envelope import SealedEnvelope, VerifiedEnvelope, open_envelope
from ..errors import NcbRelayError, ProtocolError, StorageError
from ..freshness import ReplayGuard
from ..messages import Body, Disposition
from .composer import Composer
from .directory_keeper import RebuildKeys
from .handover import Handover
from .inbox import Inbox, Recipient
from .incoming import Incoming
from .store import Direction, JournalRow, RowState

__all__ = ["JournalReplay"]

log = logging.getLogger("ncb_relay.bureau")


class JournalReplay:
    """One replay of ``bureau``'s journal into the conversations of its router."""

    def __init__(
        self,
        bureau: Recipient,
        *,
        inbox: Inbox,
        handover: Handover,
        composer: Composer,
        guard: ReplayGuard,
        clock: Callable[[], int],
    ) -> None:
        self._bureau = bureau
        self._inbox = inbox
        self._handover = handover
        self._composer = composer
        self._guard = guard
        self._clock = clock

    def replay(self) -> list[Incoming]:
        """Replay the journal; return the messages whose handler had not finished."""
        keys = RebuildKeys(self._bureau.directory.historical, self._bureau.identity)
        unfinished: dict[bytes, Incoming] = {}
        self._bureau.router.replaying = True
        try:
            for row in self._bureau.store.rows():
                if row.direction is Direction.OUT:
                    self._replay_sent(row)
                else:
                    self._replay_received(row, keys, unfinished)
        finally:
            self._bureau.router.replaying = False
        return list(unfinished.values())

    def _replay_received(
        self, row: JournalRow, keys: RebuildKeys, unfinished: dict[bytes, Incoming]
    ) -> None:
        try:
            verified = open_envelope(
                row.envelope,
                recipient=self._bureau.identity,
                directory=keys,
                now=row.at,
                replay=ReplayGuard(policy=self._guard.policy),
            )
            message = self._inbox.read(verified)
            incoming, applied = self._inbox.route(message)
        except ProtocolError as exc:
            log.error("journal-row-unverifiable", extra={"code": exc.code, "pos": row.pos})
            if row.state in (RowState.PENDING, RowState.UNHANDLED):
                self._bureau.store.mark(row.message_id, RowState.FAILED, "unverifiable")
            return
        self._remember(verified)
        self._handover.received[message.message_id] = incoming
        if row.state not in (RowState.PENDING, RowState.UNHANDLED):
            incoming._seal = None
        elif not self._bureau.router.is_parked(message) and (
            row.state is RowState.PENDING or self._handover.handler_for(incoming) is not None
        ):
            unfinished[message.message_id] = incoming
        for delivery in applied:  # replies parked before, bound now: unfinished if pending
            held = self._bureau.store.lookup(delivery.message.message_id)
            if held is None or held.state is not RowState.PENDING:
                continue
            if delivery.disposition is Disposition.REFUSED:  # the crash came before the mark
                assert delivery.error is not None
                self._bureau.store.mark(held.message_id, RowState.FAILED, delivery.error.code)
            else:
                unfinished[delivery.message.message_id] = self._handover.incoming(
                    delivery.message,
                    delivery.message.body,
                    conversation=delivery.conversation,
                    step=delivery.step,
                )

    def _replay_sent(self, row: JournalRow) -> None:
        if row.body is None:
            raise StorageError(f"bureau store: sent message {row.pos} has no body")
        try:
            body = self._bureau.registry.decode(row.body)
            if isinstance(body, Body):
                self._composer.apply_sent(
                    SealedEnvelope.from_bytes(row.envelope), body, row.refers_to
                )
        except NcbRelayError as exc:  # recorded, but refused by the state table: kept out
            log.error("journal-row-not-applied", extra={"code": exc.code, "pos": row.pos})

    def _remember(self, verified: VerifiedEnvelope) -> None:
        """Seed the live replay guard with a message whose window is still open."""
        now = self._clock()
        if self._guard.policy.forget_after(verified.expires) > now:
            with contextlib.suppress(NcbRelayError):
                self._guard.record(
                    verified.sender, verified.message_id, verified.seq, verified.expires, now
                )
