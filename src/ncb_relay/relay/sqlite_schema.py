"""The SQLite store's schema, its migrations, and how a database file is opened.

Theory of operation.  A store file is marked as ours by SQLite's
``application_id`` header field and carries a one-row ``schema_version``
table.  :data:`MIGRATIONS` is the list of schema changes in order; version
``n`` means the first ``n`` have been applied.  Opening a file applies the
missing ones, each in its own ``BEGIN IMMEDIATE`` transaction that re-reads
the version first (so two processes opening one file at once do not apply a
migration twice).  A file whose version is higher than ``len(MIGRATIONS)`` was
written by a newer ncb_relay and is refused rather than guessed at; so is a
database that belongs to something else.  A migration is only ever appended,
never edited once released.

Every connection runs in WAL mode (readers never block the writer, and a
commit appends to the log instead of rewriting pages), with
``synchronous=FULL`` (a commit returns only after the log is fsynced, so a
committed envelope survives power loss, not only a crash of the process) and
with foreign keys enforced.

Tables (version 1).  ``mailboxes`` holds each mailbox's last position, and
keeps it after the mailbox empties, so positions never go back.  ``messages``
holds one row per accepted envelope: its routing facts, a digest of its bytes
for the dedupe rule, and the bytes themselves until every recipient has
acknowledged (then ``data`` is NULL and the row stays, for dedupe, until the
message expires).  ``deliveries`` holds one row per recipient copy, keyed by
(mailbox, position), with its lease.  The indexes and the queries that use
them are listed in :mod:`ncb_relay.relay.sqlite_store`.

Version 2 adds the quota counters, kept by every write in the same
transaction: ``messages.size`` (the envelope's bytes), ``mailboxes.waiting``
(the copies in the mailbox) and ``senders`` (per sender, the messages whose
bytes are still held, i.e. not yet acknowledged by every recipient nor
purged, and their total size).

Version 3 adds the Merkle log (spec/log.md; :mod:`ncb_relay.relay.sqlite_log`):
``log_entries``, ``log_nodes``, ``log_checkpoints`` and ``log_cosignatures``,
and ``messages.log_index``, the leaf of each message accepted since (messages
accepted before the upgrade have none).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..errors import StorageError

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "migrate",
    "open_database",
    "schema_version",
    "translate",
]

APPLICATION_ID = 0x4E434252  # "NCBR"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: mailboxes, messages and deliveries
    (
        """CREATE TABLE mailboxes (
            mailbox TEXT PRIMARY KEY,
            last_position INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            message_id BLOB NOT NULL,
            sender TEXT NOT NULL,
            message_hash BLOB NOT NULL,
            data_digest BLOB NOT NULL,
            expires INTEGER NOT NULL,
            accepted_at INTEGER NOT NULL,
            data BLOB
        )""",
        "CREATE UNIQUE INDEX messages_by_id ON messages (message_id)",
        "CREATE INDEX messages_by_expiry ON messages (expires)",
        """CREATE TABLE deliveries (
            mailbox TEXT NOT NULL REFERENCES mailboxes (mailbox),
            position INTEGER NOT NULL,
            message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            expires INTEGER NOT NULL,
            lease_until INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (mailbox, position)
        ) WITHOUT ROWID""",
        "CREATE INDEX deliveries_by_message ON deliveries (message, mailbox)",
        """CREATE INDEX deliveries_fresh ON deliveries (mailbox, position, expires, lease_until)
            WHERE lease_until IS NULL""",
        """CREATE INDEX deliveries_leased ON deliveries (mailbox, lease_until, position, expires)
            WHERE lease_until IS NOT NULL""",
    ),
    # 2: the quota counters (API-22): each message's size, each mailbox's waiting copies,
    # each sender's held messages and bytes; filled from the rows already held
    (
        "ALTER TABLE messages ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        "UPDATE messages SET size = length(data) WHERE data IS NOT NULL",
        "ALTER TABLE mailboxes ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0",
        """UPDATE mailboxes SET waiting =
            (SELECT count(*) FROM deliveries AS d WHERE d.mailbox = mailboxes.mailbox)""",
        """CREATE TABLE senders (
            sender TEXT PRIMARY KEY,
            messages INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """INSERT INTO senders (sender, messages, bytes)
            SELECT sender, count(*), sum(size) FROM messages WHERE data IS NOT NULL
            GROUP BY sender""",
    ),
    # 3: the Merkle log (LOG-1): entries, perfect subtree roots, signed checkpoints and the
    # witness cosignatures collected for them; each message's leaf index
    (
        """CREATE TABLE log_entries (
            idx INTEGER PRIMARY KEY,
            kind INTEGER NOT NULL,
            entry BLOB NOT NULL
        )""",
        "CREATE INDEX log_directories ON log_entries (entry) WHERE kind = 1",
        """CREATE TABLE log_nodes (
            level INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (level, idx)
        ) WITHOUT ROWID""",
        """CREATE TABLE log_checkpoints (
            size INTEGER PRIMARY KEY,
            note BLOB NOT NULL,
            cosigned INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX log_checkpoints_cosigned ON log_checkpoints (cosigned, size)",
        """CREATE TABLE log_cosignatures (
            size INTEGER NOT NULL REFERENCES log_checkpoints (size),
            witness TEXT NOT NULL,
            line BLOB NOT NULL,
            PRIMARY KEY (size, witness)
        ) WITHOUT ROWID""",
        "ALTER TABLE messages ADD COLUMN log_index INTEGER",
    ),
)


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn any sqlite3 error inside the block into a :class:`StorageError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"{what}: {exc}") from exc


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _pragma(connection: sqlite3.Connection, statement: str) -> object:
    row = connection.execute(f"PRAGMA {statement}").fetchone()
    return None if row is None else row[0]


def schema_version(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    if row is None or type(row[0]) is not int:
        raise StorageError("the store's schema_version table is damaged")
    return int(row[0])


def _configure(connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    mode = _pragma(connection, "journal_mode = WAL")
    if not isinstance(mode, str) or mode.lower() != "wal":
        raise StorageError(f"the store needs WAL journaling, and this file is in {mode!r} mode")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    if _pragma(connection, "synchronous") != 2 or _pragma(connection, "foreign_keys") != 1:
        raise StorageError("SQLite refused synchronous=FULL or foreign keys")


def _is_ours(connection: sqlite3.Connection) -> bool:
    """True for our store, False for an empty file; refuse anything else, changing nothing."""
    application_id = _pragma(connection, "application_id")
    if application_id == APPLICATION_ID:
        return True
    (tables,) = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if application_id != 0 or tables:
        raise StorageError("this database is not an ncb_relay store")
    return False


def _bootstrap(connection: sqlite3.Connection) -> None:
    """Mark a fresh file as ours at version 0."""
    if _is_ours(connection):
        return
    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    connection.execute(
        "CREATE TABLE schema_version"
        " (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL)"
    )
    connection.execute("INSERT INTO schema_version (one, version) VALUES (1, 0)")


def migrate(
    connection: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS
) -> int:
    """Bring the schema up to ``len(migrations)``; return the version found before."""
    with _transaction(connection):
        _bootstrap(connection)
        found = schema_version(connection)
    if found > len(migrations):
        raise StorageError(
            f"the store's schema version {found} is newer than this ncb_relay "
            f"supports ({len(migrations)}): upgrade ncb_relay"
        )
    for number in range(found + 1, len(migrations) + 1):
        with _transaction(connection):
            if schema_version(connection) >= number:  # another process got there first
                continue
            for statement in migrations[number - 1]:
                connection.execute(statement)
            connection.execute("UPDATE schema_version SET version = ?", (number,))
    return found


def open_database(
    path: str | os.PathLike[str],
    *,
    busy_timeout_ms: int = 5000,
    migrations: Sequence[Sequence[str]] = MIGRATIONS,
) -> sqlite3.Connection:
    """Open (creating if needed), configure and migrate the store at ``path``.

    The connection is in autocommit mode (transactions are explicit) and may
    move between threads; its user must never use it from two at once.
    """
    with translate("cannot open the store"):
        connection = sqlite3.connect(os.fspath(path), isolation_level=None, check_same_thread=False)
    try:
        with translate("cannot open the store"):
            _is_ours(connection)  # before anything writes to someone else's file
            _configure(connection, busy_timeout_ms)
            migrate(connection, migrations)
    except BaseException:
        connection.close()
        raise
    return connection
