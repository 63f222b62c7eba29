"""The bureau's SQLite file itself: its pragmas, its tables, its owner and its transactions.

A file is a bureau store when it carries :data:`APPLICATION_ID` and
:data:`SCHEMA_VERSION` and names its principal in ``meta``; an empty file
becomes one.  The tables of later additions (the relay's log, delivery
evidence) are created if missing each time a file is opened, so older files
gain them and older versions of this library ignore them.  Every SQLite error
is translated into :class:`~ncb_relay.errors.StorageError` by
:func:`translated`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import StorageError, UsageError

__all__ = ["APPLICATION_ID", "JOURNAL_TABLES", "SCHEMA_VERSION", "JournalFile", "translated"]

APPLICATION_ID = 0x4E434242  # "NCBB"
SCHEMA_VERSION = 1

JOURNAL_TABLES = (
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE journal (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        message_id BLOB NOT NULL UNIQUE,
        message_hash BLOB NOT NULL,
        sender TEXT NOT NULL,
        recipients TEXT NOT NULL,
        schema TEXT NOT NULL,
        created INTEGER NOT NULL,
        at INTEGER NOT NULL,
        reply_to BLOB,
        refers_to BLOB,
        envelope BLOB NOT NULL,
        body BLOB,
        state TEXT NOT NULL,
        detail TEXT
    )""",
    "CREATE INDEX journal_by_state ON journal (direction, state)",
    """CREATE TABLE refused (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        sender TEXT,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        digest BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        envelope BLOB NOT NULL
    )""",
    """CREATE TABLE directory_conflicts (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        code TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    """CREATE TABLE directories (
        serial INTEGER PRIMARY KEY,
        data BLOB NOT NULL
    )""",
)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Raise a SQLite error met while doing ``what`` as a :class:`StorageError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"bureau store: {what} failed ({type(exc).__name__}: {exc})") from exc


class JournalFile:
    """One bureau store file of ``principal``, open in exclusive locking mode.

    ``added`` are the later tables, each a name (for errors) and its
    ``CREATE TABLE IF NOT EXISTS`` statements, made in a transaction of their own.
    """

    def __init__(
        self,
        path: Path,
        *,
        principal: str,
        added: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> None:
        self.path = path
        self.principal = principal
        with translated(f"opening {self.path.name}"):
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._prepare()
            for name, statements in added:
                with translated(f"preparing {name}"), self.transaction() as db:
                    for statement in statements:
                        db.execute(statement)
        except BaseException:
            self.db.close()
            raise

    def _prepare(self) -> None:
        db = self.db
        with translated("preparing the file"):
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if application_id == 0 and version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise StorageError(f"{self.path.name} is not a bureau store")
                with self.transaction():
                    for statement in JOURNAL_TABLES:
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO meta VALUES ('principal', ?), ('seq', 0)",
                        (self.principal.encode(),),
                    )
                    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                return
        if application_id != APPLICATION_ID:
            raise StorageError(f"{self.path.name} is not a bureau store")
        if version != SCHEMA_VERSION:
            raise StorageError(f"{self.path.name} has schema {version}; this version reads 1")
        owner = self.meta("principal")
        if owner is None or owner != self.principal.encode():
            raise UsageError(f"{self.path.name} is the store of another principal")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on return, rolled back on any error."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # also when COMMIT itself failed (a full disk)
                db.execute("ROLLBACK")
            raise

    def meta(self, key: str) -> bytes | None:
        with translated("reading"):
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0]) if isinstance(row[0], bytes) else row[0]

    def close(self) -> None:
        self.db.close()
