"""Wake-ups for long-polls, and the cap on them (API-8, API-9).

Theory of operation.  Each mailbox that someone waits on has one
:class:`anyio.Event`.  A waiting fetch takes the mailbox's current event
*before* it reads the store, so a message accepted between the read and the
wait still sets the event it waits on; after the store has durably accepted a
message, :meth:`MailboxSignals.notify` sets each recipient's event and drops
it, so the next waiter gets a fresh one.  Events exist only while someone
waits, so memory is bounded by the waiters, and the waiters by the per-bureau
cap.  Everything here runs on the event loop's thread; no lock is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import anyio

__all__ = ["LongPollLimit", "MailboxSignals"]


class LongPollLimit(Exception):
    """The bureau already has as many waiting fetches as the relay allows."""


class MailboxSignals:
    def __init__(self, *, max_waiters: int) -> None:
        self.max_waiters = max_waiters
        self._events: dict[str, anyio.Event] = {}
        self._waiters: dict[str, int] = {}

    def waiters(self, mailbox: str) -> int:
        return self._waiters.get(mailbox, 0)

    @contextmanager
    def waiting(self, mailbox: str) -> Iterator[None]:
        """Count one waiting fetch of ``mailbox``; raise :class:`LongPollLimit` past the cap."""
        count = self._waiters.get(mailbox, 0)
        if count >= self.max_waiters:
            raise LongPollLimit(mailbox)
        self._waiters[mailbox] = count + 1
        try:
            yield
        finally:
            left = self._waiters[mailbox] - 1
            if left:
                self._waiters[mailbox] = left
            else:
                del self._waiters[mailbox]
                self._events.pop(mailbox, None)

    def current(self, mailbox: str) -> anyio.Event:
        """The event the next message for ``mailbox`` sets (take it before reading the store)."""
        event = self._events.get(mailbox)
        if event is None:
            event = self._events[mailbox] = anyio.Event()
        return event

    def notify(self, mailboxes: Iterable[str]) -> None:
        """Wake every fetch waiting on one of ``mailboxes``; call after the store accepted."""
        for mailbox in mailboxes:
            event = self._events.pop(mailbox, None)
            if event is not None:
                event.set()
