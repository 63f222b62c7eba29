"""The relay's mailbox store: the interface every storage backend implements.

Theory of operation.  The relay keeps one copy of each accepted envelope and,
for each of its recipients, a *delivery*: the envelope's place in that
recipient's mailbox.  Each mailbox numbers its deliveries 1, 2, 3, ... in the
order the store accepted them, with no gaps; the numbers never go back (not
when the mailbox empties, not across a restart), and a position never becomes
visible after a higher one of the same mailbox.  A backend therefore takes
positions from a per-mailbox counter updated inside the accepting transaction,
not from a sequence, whose numbers can commit out of order.  Positions are
per mailbox on purpose: a bureau that sees its own learns nothing about
anybody else's traffic.

``accept`` stores an envelope for all of its recipients in one transaction and
returns only once that transaction is durable.  A message id names one
message for as long as the store holds it: an identical resubmission (same
sender, same bytes) returns the original :class:`Acceptance` and changes
nothing, and the same id with other bytes, or from another sender, raises
:class:`~ncb_relay.errors.Replay` (a conflict).  Ids are unique store-wide, not
only per sender, so that an acknowledgement by id can never remove a copy of
someone else's message that reuses the id.  The store remembers an id after
every recipient has acknowledged it, until the message expires and is purged.

``accept`` takes an optional :class:`Quota`.  With one, a submission that is
not a resubmission is refused with :class:`~ncb_relay.errors.LimitExceeded`,
storing nothing, when it would take its sender past ``sender_messages`` or
``sender_bytes`` held (messages not yet acknowledged by every recipient, and
not expired at ``now``, with their envelope bytes), or any recipient's mailbox
past ``mailbox_messages`` copies waiting (not expired at ``now``).  The check
and the insert are one atomic step: concurrent submissions never overshoot a
quota.  An identical resubmission is answered as before, whatever the quota.
A backend keeps counters for this (no scan of a sender's or a mailbox's
messages per submission); expired messages stop counting at ``now`` even if
not yet purged (a backend may purge them while it checks).

``fetch`` hands out, in position order, the mailbox's deliveries that were
never handed out and lie after the caller's cursor, together with every
delivery whose lease has run out (wherever it lies), and leases them until
``now + lease``.  A leased delivery is not handed out again until its lease
ends; one that is never acknowledged comes back after it, so delivery is at
least once, and a client that always passes its latest cursor still sees
every redelivery.  Expired messages are never handed out.  The batch's cursor
is the highest position in it, or the caller's cursor if that is higher; a
client passes back only cursors it was given.

``acknowledge`` deletes the caller's own copies of the named messages.  It
answers the same (nothing) for an id that is unknown, already acknowledged or
addressed to someone else, and then changes nothing, so it reveals nothing.
``purge_expired`` removes messages whose expiry time has passed, delivered or
not.  ``queue_depth`` counts the copies waiting in a mailbox.

Every method that depends on the time takes ``now`` (whole seconds since the
Unix epoch, as in the core); a store never reads a clock.  Every failure is an
:class:`~ncb_relay.errors.NcbRelayError`: ``UsageError`` for bad arguments,
``Replay`` for a conflicting submission, ``StorageError`` when the store
cannot do its work (an I/O error, a full disk, a corrupt or too new database,
a closed store).  Cancelling a call does not withdraw it: the operation may
still commit, which a retry then sees through the dedupe rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from ..envelope import RoutedEnvelope
from ..errors import UsageError
from ..header import MAX_TIME, MAX_TTL
from ..identity import check_principal_id
from ..primitives import HASH_BYTES

__all__ = [
    "DIRECTORY_ENTRY",
    "ENVELOPE_ENTRY",
    "KIND_NAMES",
    "MAX_FETCH",
    "MAX_PURGE",
    "Acceptance",
    "Batch",
    "Consistency",
    "Delivery",
    "LogEntry",
    "MailboxStore",
    "Purge",
    "Quota",
    "StoreFactory",
    "Submission",
    "check_fetch",
    "check_id",
    "check_int",
    "check_mailbox",
    "check_message_ids",
    "check_now",
    "check_purge",
    "check_quota",
]

MAX_FETCH = 1000  # deliveries in one batch; a server sets its own, smaller limit
MAX_PURGE = 100_000  # messages removed by one purge call, so one call never holds the store long


def check_int(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise UsageError(f"{name} must be an int between {low} and {high}")
    return value


def check_id(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise UsageError(f"{name} must be {HASH_BYTES} bytes")
    return value


def check_now(now: object) -> int:
    """``now`` as a store takes it: whole seconds in the core's time range."""
    return check_int("now", now, 0, MAX_TIME)


def check_mailbox(mailbox: object) -> str:
    """A mailbox is named by its owner's principal id (ID-1)."""
    return check_principal_id(mailbox, error=UsageError)


def check_message_ids(message_ids: Sequence[bytes]) -> tuple[bytes, ...]:
    if isinstance(message_ids, bytes | str):
        raise UsageError("message_ids is a sequence of message ids")
    ids = tuple(message_ids)
    for message_id in ids:
        check_id("a message id", message_id)
    return ids


def check_fetch(mailbox: str, after: int, limit: int, lease: int, now: int) -> None:
    """The argument checks of :meth:`MailboxStore.fetch`, shared by every backend."""
    check_mailbox(mailbox)
    check_int("after", after, 0, 2**63 - 1)
    check_int("limit", limit, 1, MAX_FETCH)
    check_int("lease", lease, 1, MAX_TTL)
    check_now(now)


def check_purge(now: int, limit: int) -> None:
    check_now(now)
    check_int("limit", limit, 1, MAX_PURGE)


@dataclass(frozen=True, slots=True)
class Submission:
    """What a store keeps of an envelope: its routing facts and its exact bytes."""

    sender: str
    message_id: bytes
    message_hash: bytes
    recipients: tuple[str, ...]
    expires: int
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_principal_id(self.sender, error=UsageError)
        check_id("message_id", self.message_id)
        check_id("message_hash", self.message_hash)
        if not isinstance(self.recipients, tuple) or not self.recipients:
            raise UsageError("recipients is a non-empty tuple of principal ids")
        for recipient in self.recipients:
            check_principal_id(recipient, error=UsageError)
        if len(set(self.recipients)) != len(self.recipients):
            raise UsageError("a recipient is listed twice")
        check_int("expires", self.expires, 0, MAX_TIME)
        if not isinstance(self.data, bytes) or not self.data:
            raise UsageError("data is the envelope's bytes")

    @classmethod
    def from_routed(cls, routed: RoutedEnvelope) -> Submission:
        """The submission for an envelope that :func:`~ncb_relay.verify_routing` accepted."""
        return cls(
            sender=routed.sender,
            message_id=routed.message_id,
            message_hash=routed.message_hash,
            recipients=routed.recipients,
            expires=routed.header.expires,
            data=routed.data,
        )


@dataclass(frozen=True, slots=True)
class Quota:
    """What one submission may not take past (``None``: no limit); see :meth:`MailboxStore.accept`.

    ``sender_messages`` and ``sender_bytes`` bound what the sender holds at the
    relay awaiting delivery; ``mailbox_messages`` bounds the copies waiting in
    each recipient's mailbox.
    """

    sender_messages: int | None = None
    sender_bytes: int | None = None
    mailbox_messages: int | None = None

    def __post_init__(self) -> None:
        for name in ("sender_messages", "sender_bytes", "mailbox_messages"):
            value = getattr(self, name)
            if value is not None:
                check_int(name, value, 1, 2**62)


def check_quota(quota: object) -> Quota | None:
    if quota is not None and not isinstance(quota, Quota):
        raise UsageError("quota must be a Quota or None")
    return quota


@dataclass(frozen=True, slots=True)
class Consistency:
    """A consistency proof between two sizes of the log, ``old <= new`` (LOG-4)."""

    old: int
    new: int
    proof: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The store's record that it durably holds a message (returned again for duplicates).

    ``log_index`` is the message's leaf in the log (``None`` only for a message
    accepted before the store had a log).  When the store signs checkpoints,
    ``checkpoint`` is a signed checkpoint that includes that leaf (the one
    signed for the accepting transaction, or the latest for a duplicate) and
    ``inclusion`` the proof of the leaf in it.  ``known`` is the size of the
    checkpoint the submitter holds, as it was passed to ``accept``, and
    ``consistency`` the proof between that size and the checkpoint's, whichever
    is smaller first (``None`` if the log is smaller than ``known``).  The
    evidence is not part of the record's equality: a duplicate's evidence is the
    latest, not the first.
    """

    sender: str
    message_id: bytes
    message_hash: bytes
    accepted_at: int
    log_index: int | None = None
    checkpoint: bytes | None = field(default=None, repr=False, compare=False)
    inclusion: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    known: int | None = field(default=None, repr=False, compare=False)
    consistency: Consistency | None = field(default=None, repr=False, compare=False)


ENVELOPE_ENTRY = 0
DIRECTORY_ENTRY = 1
KIND_NAMES = {ENVELOPE_ENTRY: "envelope", DIRECTORY_ENTRY: "directory"}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf of the log: its index, its kind (``envelope`` or ``directory``) and its entry."""

    index: int
    kind: str
    entry: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed out from a mailbox under a lease.

    ``attempt`` is 1 the first time the mailbox's owner is handed the message
    and grows each time a lease runs out and it is handed out again.
    """

    position: int
    sender: str
    message_id: bytes
    message_hash: bytes
    accepted_at: int
    expires: int
    attempt: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Batch:
    """A fetch's deliveries in position order; pass ``cursor`` as the next ``after``."""

    deliveries: tuple[Delivery, ...]
    cursor: int


@dataclass(frozen=True, slots=True)
class Purge:
    """What a purge removed: expired ``messages``, of which ``undelivered`` copies were unread."""

    messages: int
    undelivered: int


class MailboxStore(Protocol):
    """A relay's durable mailboxes.  See the module docstring for the rules."""

    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        """Store ``submission`` for every recipient and log it; return once it is durable.

        Raises ``Replay`` if the message id is held for other bytes or another
        sender, and ``LimitExceeded`` (storing nothing) if a new message would
        break ``quota``.  ``known`` asks for a consistency proof from the size
        the submitter holds (see :class:`Acceptance`).
        """
        ...

    async def fetch(
        self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
    ) -> Batch:
        """Lease up to ``limit`` deliveries of ``mailbox`` for ``lease`` seconds."""
        ...

    async def acknowledge(self, mailbox: str, message_ids: Sequence[bytes]) -> None:
        """Delete ``mailbox``'s copies of ``message_ids``; other ids are silently ignored."""
        ...

    async def purge_expired(self, *, now: int, limit: int = MAX_FETCH) -> Purge:
        """Remove up to ``limit`` messages whose expiry time is at or before ``now``."""
        ...

    async def queue_depth(self, mailbox: str) -> int:
        """The copies held for ``mailbox`` (leased or not); 0 for an unknown mailbox."""
        ...

    async def queue_depths(self) -> Mapping[str, int]:
        """The queue depth of every mailbox that holds at least one copy."""
        ...

    # The log (spec/log.md).  Sizes and indices refer to leaves; see LogReads.

    async def log_size(self) -> int:
        """The number of leaves in the log (committed)."""
        ...

    async def log_checkpoint(self, *, cosigned: int = 0) -> bytes | None:
        """The latest signed checkpoint with its cosignatures (with at least ``cosigned``)."""
        ...

    async def log_checkpoint_note(self, size: int) -> bytes | None:
        """The relay's own signed checkpoint of ``size``, without cosignatures, if it signed one."""
        ...

    async def log_checkpoints(self, *, after: int, limit: int) -> Sequence[bytes]:
        """Signed checkpoints of sizes above ``after``, smallest first, with cosignatures."""
        ...

    async def log_inclusion(self, index: int, size: int) -> Sequence[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves (LOG-3)."""
        ...

    async def log_consistency(self, old: int, new: int) -> Sequence[bytes]:
        """The consistency proof from ``old`` to ``new`` leaves (LOG-4)."""
        ...

    async def log_entries(self, *, start: int, limit: int) -> Sequence[LogEntry]:
        """Up to ``limit`` entries from index ``start``."""
        ...

    async def log_directory(self, digest: bytes) -> int:
        """The leaf of the directory version ``digest``, appended if it is not logged yet."""
        ...

    async def log_add_cosignature(self, size: int, witness: str, line: bytes) -> None:
        """Keep a verified witness cosignature ``line`` for the checkpoint of ``size``."""
        ...


StoreFactory = Callable[[str], AbstractAsyncContextManager[MailboxStore]]
"""Opens the store called ``name``: the same name reopens the same store (a restart)."""
