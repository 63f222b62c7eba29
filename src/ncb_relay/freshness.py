"""Freshness and replay checks, as plain data structures with ``now`` passed in.

Theory of operation.  Every envelope carries its creation and expiry times
(whole seconds since the Unix epoch, UTC), signed by its sender.  A recipient
accepts it only inside ``[created - max_skew, expires + max_skew)`` by its own
clock, so two clocks may disagree by up to ``max_skew`` seconds.  Inside that
window a :class:`ReplayGuard` remembers every accepted ``(sender, message id)``
and every ``(sender, sequence number)``; after the window an entry can be
forgotten, because the freshness check alone then refuses the message.  The
validity window is at most :data:`~ncb_relay.header.MAX_TTL`, so the guard's
memory is bounded by the traffic of that window, and by ``max_entries``: a full
guard refuses new messages instead of forgetting live entries, since
forgetting would open a replay.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from .errors import FutureDated, LimitExceeded, Replay, StaleMessage, UsageError

__all__ = ["DEFAULT_POLICY", "FreshnessPolicy", "ReplayGuard"]


@dataclass(frozen=True, slots=True)
class FreshnessPolicy:
    """How far a peer's clock may differ from ours, in seconds (FRESH-3: at most 900)."""

    max_skew: int = 300

    def __post_init__(self) -> None:
        if not 0 <= self.max_skew <= 900:
            raise UsageError("max_skew must be between 0 and 900 seconds")

    def check(self, created: int, expires: int, now: int) -> None:
        """Raise :class:`FutureDated` or :class:`StaleMessage` outside the window."""
        if created > now + self.max_skew:
            raise FutureDated(f"created {created - now} s in the future")
        if now >= expires + self.max_skew:
            raise StaleMessage(f"expired {now - expires} s ago")

    def forget_after(self, expires: int) -> int:
        """The first time at which the freshness check alone refuses the message."""
        return expires + self.max_skew


DEFAULT_POLICY = FreshnessPolicy()


class ReplayGuard:
    """Remembers accepted messages for as long as they could still pass the freshness check."""

    def __init__(
        self, *, policy: FreshnessPolicy = DEFAULT_POLICY, max_entries: int = 1_000_000
    ) -> None:
        if max_entries < 1:
            raise UsageError("max_entries must be positive")
        self.policy = policy
        self.max_entries = max_entries
        self._ids: dict[tuple[str, bytes], int] = {}
        self._seqs: dict[tuple[str, int], bytes] = {}
        self._expiry: list[tuple[int, str, bytes, int]] = []

    def __len__(self) -> int:
        return len(self._ids)

    def check(self, sender: str, message_id: bytes, seq: int) -> None:
        """Raise :class:`Replay` if this message, or another with its sequence number, was seen."""
        if (sender, message_id) in self._ids:
            raise Replay(f"message {message_id.hex()} from {sender} was already accepted")
        seen = self._seqs.get((sender, seq))
        if seen is not None and seen != message_id:
            raise Replay(f"sequence number {seq} from {sender} was already used")

    def record(self, sender: str, message_id: bytes, seq: int, expires: int, now: int) -> None:
        """Remember an accepted message; forget entries whose window has closed."""
        self.check(sender, message_id, seq)
        self.prune(now)
        if len(self._ids) >= self.max_entries:
            raise LimitExceeded("replay guard is full of live entries")
        forget = self.policy.forget_after(expires)
        self._ids[(sender, message_id)] = forget
        self._seqs[(sender, seq)] = message_id
        heapq.heappush(self._expiry, (forget, sender, message_id, seq))

    def forget(self, sender: str, message_id: bytes, seq: int) -> None:
        """Forget a message recorded by a receiver that then could not take it.

        Only for the receiver's own reasons (a bureau whose parking space is
        full defers a message it opened, and is given it again later); never
        for a message refused for what it is.  The heap entry stays and is
        dropped when its window closes.
        """
        if self._ids.pop((sender, message_id), None) is not None and (
            self._seqs.get((sender, seq)) == message_id
        ):
            del self._seqs[(sender, seq)]

    def prune(self, now: int) -> None:
        """Forget every entry that the freshness check would refuse at ``now``."""
        while self._expiry and self._expiry[0][0] <= now:
            _, sender, message_id, seq = heapq.heappop(self._expiry)
            self._ids.pop((sender, message_id), None)
            if self._seqs.get((sender, seq)) == message_id:
                del self._seqs[(sender, seq)]
