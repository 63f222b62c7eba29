"""Submitting recorded messages, and what each relay answer does to a message's state.

A message is recorded ``queued`` before it is first submitted.  Then:

- an acceptance makes it ``accepted``;
- an unknown outcome (:class:`~ncb_relay.errors.SubmissionUnknown`) makes it
  ``unknown``: the relay may hold it.  From then on it never goes back to
  ``queued`` and is never ``failed``: a later "unreachable" or refusal keeps
  it ``unknown`` (a relay checks freshness before dedupe, so a resubmission
  after expiry is refused even if the first copy was accepted), with the
  answer in ``detail``;
- an unreachable relay keeps a ``queued`` message ``queued``;
- a refusal makes a ``queued`` message ``failed`` and raises the refusal.

:meth:`Outbox.flush` resubmits the identical bytes of every ``queued`` and
``unknown`` message that has not expired; a ``queued`` one that expired
unsent is ``failed`` (``expired-unsent``); an ``unknown`` one that expired
stays ``unknown`` for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from ..client import Acceptance, RelayClient
from ..envelope import SealedEnvelope
from ..errors import NcbRelayError, RelayUnavailable, SubmissionUnknown
from .outgoing import Outgoing
from .store import BureauStore, Direction, RowState

__all__ = ["Outbox"]

log = logging.getLogger("ncb_relay.bureau")


class Outbox:
    """The bureau's submissions to its relay, and their states in the journal."""

    def __init__(
        self,
        store: BureauStore,
        relay: RelayClient,
        *,
        clock: Callable[[], int],
        notify: Callable[[], None],
    ) -> None:
        self._store = store
        self._relay = relay
        self._clock = clock
        self._notify = notify
        self._in_flight: set[bytes] = set()
        self.wake: anyio.Event | None = None

    def _wake(self) -> None:
        if self.wake is not None:
            self.wake.set()

    def _state(self, message_id: bytes) -> RowState:
        row = self._store.lookup(message_id)
        return row.state if row is not None else RowState.QUEUED

    async def submit(self, sealed: SealedEnvelope) -> Outgoing:
        """Submit one recorded message; return its new state (a refusal of a queued one raises).

        A message already being submitted by another task is not submitted
        again: its state as recorded now is returned.  Each answer is applied
        to the state recorded when it arrives (the store is only touched
        between awaits), so concurrent submissions never downgrade it.
        """
        message_id = sealed.message_id
        if message_id in self._in_flight:
            return Outgoing(sealed, self._state(message_id), detail="being submitted")
        self._in_flight.add(message_id)
        try:
            acceptance: Acceptance = await self._relay.submit(sealed.data)
        except SubmissionUnknown as exc:
            if self._state(message_id) is not RowState.ACCEPTED:
                self._store.mark(message_id, RowState.UNKNOWN, exc.code)
            self._wake()
            return Outgoing(sealed, self._state(message_id), detail=exc.code)
        except RelayUnavailable as exc:
            state = self._state(message_id)  # queued stays queued, unknown stays unknown
            if state is not RowState.ACCEPTED:
                self._store.mark(message_id, state, exc.code)
            self._wake()
            return Outgoing(sealed, state, detail=exc.code)
        except NcbRelayError as exc:
            log.warning("submission-refused", extra={"code": exc.code})
            before = self._state(message_id)
            if before is RowState.ACCEPTED:
                return Outgoing(sealed, before, detail=exc.code)
            if before is RowState.UNKNOWN:  # the first copy may have been accepted
                self._store.mark(
                    message_id, RowState.UNKNOWN, f"refused on resubmission: {exc.code}"
                )
                return Outgoing(sealed, RowState.UNKNOWN, detail=exc.code)
            self._store.mark(message_id, RowState.FAILED, exc.code)
            raise
        finally:
            self._in_flight.discard(message_id)
        self._store.mark(message_id, RowState.ACCEPTED, f"accepted at {acceptance.accepted_at}")
        self._notify()
        return Outgoing(sealed, RowState.ACCEPTED, acceptance=acceptance)

    async def flush(self) -> list[Outgoing]:
        """Submit every recorded message not yet accepted (queued or unknown), oldest first."""
        done = []
        now = self._clock()
        for row in self._store.rows(
            direction=Direction.OUT, states=(RowState.QUEUED, RowState.UNKNOWN)
        ):
            if row.message_id in self._in_flight:
                continue
            sealed = SealedEnvelope.from_bytes(row.envelope)
            if now >= sealed.header.expires:
                if self._state(row.message_id) is RowState.QUEUED:  # as recorded now
                    self._store.mark(row.message_id, RowState.FAILED, "expired-unsent")
                    done.append(Outgoing(sealed, RowState.FAILED, detail="expired-unsent"))
                continue  # an unknown one that expired stays unknown, not resubmitted
            try:
                done.append(await self.submit(sealed))
            except NcbRelayError as exc:
                done.append(Outgoing(sealed, RowState.FAILED, detail=exc.code))
        return done
