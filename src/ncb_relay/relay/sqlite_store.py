"""The embedded mailbox store: SQLite in WAL mode with group commit.

Theory of operation.  One connection does all the work.  Every call becomes a
job for :class:`~ncb_relay.relay.group_commit.GroupCommitter`, whose writer
runs concurrent jobs in one ``BEGIN IMMEDIATE`` transaction, each inside its
own savepoint, and commits once (:func:`execute_batch`): with
``synchronous=FULL`` that is one fsync for the whole batch, and no caller
hears back before it.  ``accept`` therefore returns only for envelopes that
are durable.  Reads go through the same queue; they are cheap, and one
connection used by one thread at a time needs no locking of its own.  A job
that raises a library error (``Replay``) rolls back its savepoint only; if the
transaction itself fails, every job in it fails with ``StorageError``, and no
sqlite3 exception ever leaves the store.

Queries and the indexes they use (``tests/test_relay_storage.py`` checks each
plan with ``EXPLAIN QUERY PLAN`` and counts SQLite VM steps, so that neither
fetch nor purge does more work as other messages pile up):

- dedupe look-up and acknowledge: ``messages_by_id`` (unique on message_id);
  acknowledge then deletes through ``deliveries_by_message`` (message, mailbox).
- accept: the ``mailboxes`` primary key for the next position; inserts.
- fetch, new deliveries: ``deliveries_fresh``, a partial covering index on
  (mailbox, position, ...) of the copies never handed out; a seek to the
  cursor, then at most ``limit`` steps (plus expired copies not yet purged).
- fetch, redeliveries: ``deliveries_leased``, a partial covering index on
  (mailbox, lease_until, ...) of the copies handed out before; a range scan
  over this mailbox's expired leases only, sorted by position.  Neither part
  steps over messages that are merely stored or currently leased, and
  ``INDEXED BY`` pins both plans.
- purge: ``messages_by_expiry`` for the oldest expired messages, then
  ``deliveries_by_message`` for their copies.
- queue depth: a count over the primary-key range of one mailbox.
- quotas (API-22): the ``senders`` and ``mailboxes`` primary keys, one row
  each per submission; every write keeps their counters in the same
  transaction (accept adds, an acknowledgement that drops a message's bytes
  and a purge take away).  Only a submission that the counters refuse pays
  more: it first purges what has expired (as :func:`purge_expired`, at most
  ``MAX_PURGE`` messages), keeps that purge even if it is still refused, and
  checks again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from functools import partial

import anyio

from ..errors import LimitExceeded, NcbRelayError, Replay, StorageError, UsageError
from ..merkle import MAX_TREE_SIZE
from .group_commit import CommitStatistics, GroupCommitter, Job, fail_all
from .sqlite_log import MAX_COSIGNATURES, CheckpointSigner, SqliteLog
from .sqlite_schema import open_database, translate
from .storage import (
    DIRECTORY_ENTRY,
    ENVELOPE_ENTRY,
    MAX_FETCH,
    MAX_PURGE,
    Acceptance,
    Batch,
    Consistency,
    Delivery,
    LogEntry,
    Purge,
    Quota,
    Submission,
    check_fetch,
    check_id,
    check_int,
    check_mailbox,
    check_message_ids,
    check_now,
    check_purge,
    check_quota,
)

__all__ = ["SqliteMailboxStore", "execute_batch", "open_sqlite_store"]

DEDUPE = (
    "SELECT sender, message_hash, data_digest, accepted_at, log_index"
    " FROM messages WHERE message_id = ?"
)
INSERT_MESSAGE = (
    "INSERT INTO messages"
    " (message_id, sender, message_hash, data_digest, expires, accepted_at, data, size, log_index)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
NEXT_POSITION = (
    "INSERT INTO mailboxes (mailbox, last_position, waiting) VALUES (?, 1, 1)"
    " ON CONFLICT (mailbox) DO UPDATE"
    " SET last_position = last_position + 1, waiting = waiting + 1"
    " RETURNING last_position"
)
SENDER_HELD = "SELECT messages, bytes FROM senders WHERE sender = ?"
MAILBOX_WAITING = "SELECT waiting FROM mailboxes WHERE mailbox = ?"
HOLD = (
    "INSERT INTO senders (sender, messages, bytes) VALUES (?, 1, ?)"
    " ON CONFLICT (sender) DO UPDATE"
    " SET messages = messages + 1, bytes = bytes + excluded.bytes"
)
RELEASE = "UPDATE senders SET messages = messages - 1, bytes = bytes - ? WHERE sender = ?"
LEAVE = "UPDATE mailboxes SET waiting = waiting - 1 WHERE mailbox = ?"
INSERT_DELIVERY = "INSERT INTO deliveries (mailbox, position, message, expires) VALUES (?, ?, ?, ?)"
FETCH = """
WITH chosen (position) AS (
    SELECT position FROM (
        SELECT position FROM deliveries INDEXED BY deliveries_fresh
        WHERE mailbox = :mailbox AND lease_until IS NULL AND position > :after
          AND expires > :now
        ORDER BY position LIMIT :limit)
    UNION
    SELECT position FROM (
        SELECT position FROM deliveries INDEXED BY deliveries_leased
        WHERE mailbox = :mailbox AND lease_until IS NOT NULL
          AND lease_until <= :now AND expires > :now
        ORDER BY position LIMIT :limit)
)
SELECT d.position, d.attempts, m.sender, m.message_id, m.message_hash, m.accepted_at,
       m.expires, m.data
FROM chosen
JOIN deliveries AS d ON d.mailbox = :mailbox AND d.position = chosen.position
JOIN messages AS m ON m.id = d.message
ORDER BY d.position LIMIT :limit
"""
LEASE = (
    "UPDATE deliveries SET lease_until = ?, attempts = attempts + 1"
    " WHERE mailbox = ? AND position = ?"
)
MESSAGE_ROW = "SELECT id FROM messages WHERE message_id = ?"
ACKNOWLEDGE = "DELETE FROM deliveries WHERE message = ? AND mailbox = ?"
DROP_BYTES = (
    "UPDATE messages SET data = NULL"
    " WHERE id = ? AND data IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message = ?)"
    " RETURNING sender, size"
)
EXPIRED = (
    "SELECT id, sender, size, data IS NOT NULL FROM messages"
    " WHERE expires <= ? ORDER BY expires LIMIT ?"
)
PURGE_DELIVERIES = "DELETE FROM deliveries WHERE message = ? RETURNING mailbox"
PURGE_MESSAGE = "DELETE FROM messages WHERE id = ?"
QUEUE_DEPTH = "SELECT count(*) FROM deliveries WHERE mailbox = ?"
QUEUE_DEPTHS = "SELECT mailbox, count(*) FROM deliveries GROUP BY mailbox"


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _over_quota(connection: sqlite3.Connection, submission: Submission, quota: Quota) -> bool:
    """Whether ``submission`` would take its sender or a recipient's mailbox past ``quota``."""
    if quota.sender_messages is not None or quota.sender_bytes is not None:
        row = connection.execute(SENDER_HELD, (submission.sender,)).fetchone()
        messages, held = row if row is not None else (0, 0)
        if quota.sender_messages is not None and messages + 1 > quota.sender_messages:
            return True
        if quota.sender_bytes is not None and held + len(submission.data) > quota.sender_bytes:
            return True
    if quota.mailbox_messages is not None:
        for mailbox in submission.recipients:
            row = connection.execute(MAILBOX_WAITING, (mailbox,)).fetchone()
            if row is not None and row[0] + 1 > quota.mailbox_messages:
                return True
    return False


def accept(
    connection: sqlite3.Connection,
    log: SqliteLog,
    submission: Submission,
    now: int,
    quota: Quota | None = None,
    *,
    known: int | None = None,
) -> Acceptance | None:
    """Store ``submission`` and log it; ``None`` if ``quota`` refuses it (only a purge is kept)."""
    found = connection.execute(DEDUPE, (submission.message_id,)).fetchone()
    digest = _digest(submission.data)
    if found is not None:
        sender, message_hash, data_digest, accepted_at, log_index = found
        if sender == submission.sender and data_digest == digest:
            return Acceptance(
                sender, submission.message_id, message_hash, accepted_at, log_index, known=known
            )
        raise Replay("this message id is already held for another message")
    if quota is not None and _over_quota(connection, submission, quota):
        purge_expired(connection, now, MAX_PURGE)  # expired messages do not count
        if _over_quota(connection, submission, quota):
            return None
    log_index = log.append(ENVELOPE_ENTRY, submission.message_hash)
    cursor = connection.execute(
        INSERT_MESSAGE,
        (
            submission.message_id,
            submission.sender,
            submission.message_hash,
            digest,
            submission.expires,
            now,
            submission.data,
            len(submission.data),
            log_index,
        ),
    )
    connection.execute(HOLD, (submission.sender, len(submission.data)))
    message = cursor.lastrowid
    for mailbox in submission.recipients:
        (position,) = connection.execute(NEXT_POSITION, (mailbox,)).fetchone()
        connection.execute(INSERT_DELIVERY, (mailbox, position, message, submission.expires))
    return Acceptance(
        submission.sender,
        submission.message_id,
        submission.message_hash,
        now,
        log_index,
        known=known,
    )


def fetch(
    connection: sqlite3.Connection, mailbox: str, *, after: int, limit: int, lease: int, now: int
) -> Batch:
    rows = connection.execute(
        FETCH, {"mailbox": mailbox, "after": after, "now": now, "limit": limit}
    ).fetchall()
    connection.executemany(LEASE, [(now + lease, mailbox, row[0]) for row in rows])
    deliveries = []
    for position, attempts, sender, message_id, message_hash, accepted_at, expires, data in rows:
        if data is None:
            raise StorageError("a queued message has lost its bytes")
        deliveries.append(
            Delivery(
                position, sender, message_id, message_hash, accepted_at, expires, attempts + 1, data
            )
        )
    cursor = max([after, *(delivery.position for delivery in deliveries)])
    return Batch(tuple(deliveries), cursor)


def acknowledge(connection: sqlite3.Connection, mailbox: str, message_ids: Sequence[bytes]) -> None:
    for message_id in message_ids:
        row = connection.execute(MESSAGE_ROW, (message_id,)).fetchone()
        if row is None:
            continue
        if connection.execute(ACKNOWLEDGE, (row[0], mailbox)).rowcount:
            connection.execute(LEAVE, (mailbox,))
            dropped = connection.execute(DROP_BYTES, (row[0], row[0])).fetchone()
            if dropped is not None:
                sender, size = dropped
                connection.execute(RELEASE, (size, sender))


def purge_expired(connection: sqlite3.Connection, now: int, limit: int) -> Purge:
    expired = connection.execute(EXPIRED, (now, limit)).fetchall()
    undelivered = 0
    for message, sender, size, held in expired:
        mailboxes = connection.execute(PURGE_DELIVERIES, (message,)).fetchall()
        undelivered += len(mailboxes)
        connection.executemany(LEAVE, mailboxes)
        if held:
            connection.execute(RELEASE, (size, sender))
    connection.executemany(PURGE_MESSAGE, [(row[0],) for row in expired])
    return Purge(len(expired), undelivered)


def queue_depth(connection: sqlite3.Connection, mailbox: str) -> int:
    (count,) = connection.execute(QUEUE_DEPTH, (mailbox,)).fetchone()
    return int(count)


def queue_depths(connection: sqlite3.Connection) -> dict[str, int]:
    return {mailbox: int(count) for mailbox, count in connection.execute(QUEUE_DEPTHS)}


def _with_evidence(log: SqliteLog, batch: Sequence[Job], sealed: tuple[int, bytes]) -> None:
    """Give every acceptance in ``batch`` the checkpoint ``sealed`` and its inclusion proof."""
    size, note = sealed
    for job in batch:
        acceptance = job.result
        index = acceptance.log_index if isinstance(acceptance, Acceptance) else None
        if isinstance(acceptance, Acceptance) and index is not None and index < size:
            proof = tuple(log.inclusion(index, size))
            consistency = None
            if acceptance.known is not None and acceptance.known <= log.size:
                old, new = sorted((acceptance.known, size))
                consistency = Consistency(old, new, tuple(log.consistency(old, new)))
            job.result = replace(
                acceptance, checkpoint=note, inclusion=proof, consistency=consistency
            )


def execute_batch(connection: sqlite3.Connection, log: SqliteLog, batch: Sequence[Job]) -> None:
    """Run ``batch`` in one transaction, each job in a savepoint; sign the log; commit once."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        for job in batch:
            connection.execute("SAVEPOINT job")
            mark = log.mark()
            try:
                job.result = job.operation()
            except NcbRelayError as exc:
                job.error = exc
                connection.execute("ROLLBACK TO job")
                log.reset(mark)
            except sqlite3.Error as exc:
                job.error = StorageError(f"the store failed: {exc}")
                job.error.__cause__ = exc
                connection.execute("ROLLBACK TO job")
                log.reset(mark)
            connection.execute("RELEASE job")
        sealed = log.seal()
        if sealed is not None:
            _with_evidence(log, batch, sealed)
        connection.execute("COMMIT")
    except Exception as exc:  # sqlite3.Error outside a job, or a bug: never leave it open
        if connection.in_transaction:
            with suppress(sqlite3.Error):  # the failure above is the news; this adds nothing
                connection.execute("ROLLBACK")
        log.rolled_back()
        fail_all(batch, f"the transaction failed: {exc}", exc)
    else:
        log.committed()


class SqliteMailboxStore:
    """A :class:`~ncb_relay.relay.storage.MailboxStore` in one SQLite file.

    Made by :func:`open_sqlite_store`, which owns its writer task and connection.
    """

    def __init__(
        self, connection: sqlite3.Connection, log: SqliteLog, committer: GroupCommitter
    ) -> None:
        self._connection = connection
        self._log = log
        self._committer = committer

    def statistics(self) -> CommitStatistics:
        """How many jobs ran in how many transactions (for tests and metrics)."""
        return self._committer.statistics()

    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        if not isinstance(submission, Submission):
            raise UsageError("accept takes a Submission")
        check_now(now)
        check_quota(quota)
        if known is not None:
            check_int("known", known, 0, MAX_TREE_SIZE)
        operation = partial(
            accept, self._connection, self._log, submission, now, quota, known=known
        )
        acceptance: Acceptance | None = await self._committer.submit(
            operation, size=len(submission.data)
        )
        if acceptance is None:
            raise LimitExceeded("the submission would exceed a quota")
        return acceptance

    async def fetch(
        self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
    ) -> Batch:
        check_fetch(mailbox, after, limit, lease, now)
        operation = partial(
            fetch, self._connection, mailbox, after=after, limit=limit, lease=lease, now=now
        )
        return await self._committer.submit(operation)

    async def acknowledge(self, mailbox: str, message_ids: Sequence[bytes]) -> None:
        check_mailbox(mailbox)
        ids = check_message_ids(message_ids)
        if ids:
            await self._committer.submit(partial(acknowledge, self._connection, mailbox, ids))

    async def purge_expired(self, *, now: int, limit: int = MAX_FETCH) -> Purge:
        check_purge(now, limit)
        return await self._committer.submit(partial(purge_expired, self._connection, now, limit))

    async def queue_depth(self, mailbox: str) -> int:
        check_mailbox(mailbox)
        return await self._committer.submit(partial(queue_depth, self._connection, mailbox))

    async def queue_depths(self) -> Mapping[str, int]:
        return await self._committer.submit(partial(queue_depths, self._connection))

    async def log_size(self) -> int:
        return await self._committer.submit(lambda: self._log.size)

    async def log_checkpoint(self, *, cosigned: int = 0) -> bytes | None:
        check_int("cosigned", cosigned, 0, MAX_COSIGNATURES)
        return await self._committer.submit(partial(self._log.latest, cosigned))

    async def log_checkpoint_note(self, size: int) -> bytes | None:
        check_int("size", size, 0, MAX_TREE_SIZE)
        return await self._committer.submit(partial(self._log.checkpoint_note, size))

    async def log_checkpoints(self, *, after: int, limit: int) -> Sequence[bytes]:
        check_int("after", after, 0, MAX_TREE_SIZE)
        check_int("limit", limit, 1, MAX_FETCH)
        return await self._committer.submit(partial(self._log.checkpoints, after, limit))

    async def log_inclusion(self, index: int, size: int) -> Sequence[bytes]:
        check_int("index", index, 0, MAX_TREE_SIZE)
        check_int("size", size, 1, MAX_TREE_SIZE)
        return await self._committer.submit(partial(self._log.inclusion, index, size))

    async def log_consistency(self, old: int, new: int) -> Sequence[bytes]:
        check_int("old", old, 0, MAX_TREE_SIZE)
        check_int("new", new, 0, MAX_TREE_SIZE)
        return await self._committer.submit(partial(self._log.consistency, old, new))

    async def log_entries(self, *, start: int, limit: int) -> Sequence[LogEntry]:
        check_int("start", start, 0, MAX_TREE_SIZE)
        check_int("limit", limit, 1, MAX_FETCH)
        return await self._committer.submit(partial(self._log.entries, start, limit))

    async def log_directory(self, digest: bytes) -> int:
        check_id("a directory version's hash", digest)

        def operation() -> int:
            found = self._log.find_directory(digest)
            return self._log.append(DIRECTORY_ENTRY, digest) if found is None else found

        return await self._committer.submit(operation)

    async def log_add_cosignature(self, size: int, witness: str, line: bytes) -> None:
        check_int("size", size, 1, MAX_TREE_SIZE)
        if not isinstance(witness, str) or not witness or not isinstance(line, bytes):
            raise UsageError("a cosignature is a witness name and a signature line")
        await self._committer.submit(partial(self._log.add_cosignature, size, witness, line))


@asynccontextmanager
async def open_sqlite_store(
    path: str | os.PathLike[str],
    *,
    max_batch: int = 256,
    max_batch_bytes: int = 32 * 1024 * 1024,
    max_pending: int = 4096,
    busy_timeout_ms: int = 5000,
    checkpoint_signer: CheckpointSigner | None = None,
) -> AsyncIterator[SqliteMailboxStore]:
    """Open the store at ``path`` (created and migrated if needed) for the block.

    ``checkpoint_signer`` signs the log's checkpoints, one per transaction that
    appended to it; without one the log still grows but no checkpoint is
    signed and acceptances carry no evidence.

    ``max_batch`` and ``max_batch_bytes`` bound one transaction (a batch stops
    growing once it holds either); ``max_pending`` bounds the jobs waiting for
    the writer.  Leaving the block finishes every queued job, then closes the
    file; afterwards every call raises :class:`StorageError`.
    """
    for name, value in (
        ("max_batch", max_batch),
        ("max_batch_bytes", max_batch_bytes),
        ("max_pending", max_pending),
        ("busy_timeout_ms", busy_timeout_ms),
    ):
        if type(value) is not int or value < 1:
            raise UsageError(f"{name} must be a positive int")
    limiter = anyio.CapacityLimiter(1)
    opener = partial(open_database, path, busy_timeout_ms=busy_timeout_ms)
    connection = await anyio.to_thread.run_sync(opener, limiter=limiter)
    try:
        with translate("cannot read the store's log"):
            log = await anyio.to_thread.run_sync(
                partial(SqliteLog, connection, checkpoint_signer), limiter=limiter
            )
        committer = GroupCommitter(
            partial(execute_batch, connection, log),
            limiter=limiter,
            max_jobs=max_batch,
            max_bytes=max_batch_bytes,
            max_pending=max_pending,
        )
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            await tasks.start(committer.run)
            try:
                yield SqliteMailboxStore(connection, log, committer)
            except Exception as exc:  # re-raised below as itself, not in an exception group
                failure = exc
            finally:
                committer.close()
        if failure is not None:
            raise failure
    finally:
        with anyio.CancelScope(shield=True), translate("cannot close the store"):
            await anyio.to_thread.run_sync(connection.close, limiter=limiter)
