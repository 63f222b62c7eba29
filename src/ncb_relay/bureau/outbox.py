"""Submitting recorded messages, and what each relay answer does to a message's state.

A message is recorded ``queued`` before it is first submitted.  Then:

- an acceptance whose evidence verifies (:mod:`ncb_relay.bureau.log_keeper`:
  the relay's signed receipt, its checkpoint consistent with the one held,
  the envelope's inclusion in it) makes it ``accepted``, in the same
  transaction that keeps the evidence;
- an acceptance whose evidence does not verify (a forged receipt, a receipt
  for another message, a proof that fails, a fork of the log) makes it
  ``unknown`` with the detail ``the relay's receipt did not verify: <code>``;
  the evidence is kept (``Bureau.log.problems``, ``Bureau.log.forks``) and
  the message is resubmitted like any unknown one, so an honest answer
  later still makes it ``accepted``.  Evidence that could not be checked
  yet (the relay unreachable for a proof, the relay's key not in the
  directory) makes it ``unknown`` with ``the relay's receipt is not
  verified yet: <code>``;
- an unknown outcome (:class:`~ncb_relay.errors.SubmissionUnknown`) makes it
  ``unknown``: the relay may hold it.  From then on it never goes back to
  ``queued`` and is never ``failed``: a later "unreachable" or refusal keeps
  it ``unknown`` (a relay checks freshness before dedupe, so a resubmission
  after expiry is refused even if the first copy was accepted), with the
  answer in ``detail``;
- an unreachable relay keeps a ``queued`` message ``queued``;
- once the relay has answered ``202``, the verification is finished even if
  the bureau is stopping (for at most ``VERIFY_GRACE`` seconds; past that the
  message is ``unknown``), so a message the relay holds is not left ``queued``;
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
from .log_keeper import LogKeeper
from .outgoing import Outgoing
from .store import BureauStore, Direction, RowState

__all__ = ["Outbox"]

log = logging.getLogger("ncb_relay.bureau")

VERIFY_GRACE = 10.0  # seconds a stopping bureau still gives an acceptance's verification


class Outbox:
    """The bureau's submissions to its relay, and their states in the journal."""

    def __init__(
        self,
        store: BureauStore,
        relay: RelayClient,
        *,
        log: LogKeeper,
        clock: Callable[[], int],
        notify: Callable[[], None],
    ) -> None:
        self._store = store
        self._relay = relay
        self._log = log
        self._clock = clock
        self._notify = notify
        self._in_flight: set[bytes] = set()
        self._order = anyio.Lock()
        self.wake: anyio.Event | None = None

    def _wake(self) -> None:
        if self.wake is not None:
            self.wake.set()

    def _state(self, message_id: bytes) -> RowState:
        row = self._store.lookup(message_id)
        return row.state if row is not None else RowState.QUEUED

    async def submit(self, sealed: SealedEnvelope) -> Outgoing:
        """Submit one recorded message; return its new state (a refusal of a queued one raises).

        A message already being submitted (or its acceptance verified) by
        another task is not submitted again: its state as recorded now is
        returned.  Each answer is applied to the state recorded when it
        arrives (the store is only touched between awaits), so concurrent
        submissions never downgrade it.
        """
        message_id = sealed.message_id
        if message_id in self._in_flight:
            return Outgoing(sealed, self._state(message_id), detail="being submitted")
        self._in_flight.add(message_id)
        try:
            # one submission at a time, in the order they were asked for: a message never
            # overtakes one asked for before it (a handler's replies reach the relay in order
            # even while the outbox task flushes)
            async with self._order:
                if self._state(message_id) is RowState.ACCEPTED:  # by the task ahead of us
                    return Outgoing(sealed, RowState.ACCEPTED)
                return await self._submit(sealed)
        finally:
            self._in_flight.discard(message_id)

    async def _submit(self, sealed: SealedEnvelope) -> Outgoing:
        message_id = sealed.message_id
        try:
            acceptance: Acceptance = await self._relay.submit(
                sealed.data, known=self._log.known_size()
            )
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
        # the relay holds it now: finish the verification even if the bureau is stopping
        with anyio.CancelScope(deadline=anyio.current_time() + VERIFY_GRACE, shield=True):
            return await self._verify(sealed, acceptance)
        return self._unverified(sealed, "the relay's receipt is not verified yet: timeout")

    async def _verify(self, sealed: SealedEnvelope, acceptance: Acceptance) -> Outgoing:
        """Make the message ``accepted`` if the relay's evidence verifies, else ``unknown``."""
        try:
            verified = await self._log.verify_acceptance(sealed, acceptance, self._relay)
        except NcbRelayError as exc:  # kept as evidence by the keeper if it is the relay's fault
            log.warning("acceptance-unverified", extra={"code": exc.code})
            return self._unverified(sealed, self._log.detail(exc))
        self._log.record_accepted(verified, detail=f"accepted at {acceptance.accepted_at}")
        self._notify()
        witnessed = self._log.witnessed(sealed.message_id)
        return Outgoing(
            sealed, RowState.ACCEPTED, acceptance=acceptance, receipt=verified, witnessed=witnessed
        )

    def _unverified(self, sealed: SealedEnvelope, detail: str) -> Outgoing:
        """An acceptance not verified: the message is ``unknown`` (unless accepted before)."""
        state = self._state(sealed.message_id)
        if state is not RowState.ACCEPTED:
            state = RowState.UNKNOWN
            self._store.mark(sealed.message_id, state, detail)
        self._notify()
        return Outgoing(sealed, state, detail=detail)

    async def run(self, *, stopping: Callable[[], bool], interval: Callable[[], float]) -> None:
        """The outbox task: :meth:`flush` every ``interval()`` seconds, or once woken, until
        ``stopping()``."""
        while not stopping():
            await self.flush()
            self.wake = anyio.Event()
            with anyio.move_on_after(interval()):
                await self.wake.wait()

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
