"""A bureau's own SQLite file: the messages it sent and received, its counters, its directory.

Theory of operation.  The file is a *journal*: one row per message, in the
order the bureau handled them, sent (``out``) or received (``in``).  The
conversation state of :mod:`ncb_relay.messages` is never stored as such; it is
rebuilt at start by replaying the journal through the same core code that
built it the first time, so the stored facts and the state cannot disagree.

A received message is written once, verified, in one transaction with its
place in the journal; that row *is* the seen-message record and the hand-over
to the application (its ``state`` starts ``pending``).  The application's
handler runs after the commit; when it returns, one transaction marks the row
``handled`` and records the replies the handler queued, with the new sequence
counter.  A crash in between leaves the row ``pending`` and its replies
unrecorded: the handler runs again after a restart, and nothing it sent the
first time was ever submitted.

A sent message is recorded (``queued``) with its sealed bytes and its body
before it is submitted; its state then follows the relay's answer:
``accepted`` (with the acceptance), ``unknown`` (may have been accepted: it is
resubmitted with the identical bytes), ``failed`` (refused, with the code).

A message with no handler registered is ``unhandled`` (handed over at the
next start if a handler is registered then); one whose handler raised is
``failed`` (``Bureau.retry_failed`` hands it over again).

A refused incoming message (it failed verification) is kept in ``refused``
as evidence: its first 4 KiB, its size and its digest (the same bytes refused
again are kept once), the newest 10,000; it never enters the journal.  A
directory file refused as a rollback or a fork is kept in
``directory_conflicts``: with the version held, the proof of the relay's
misbehaviour.

Every connection uses WAL and ``synchronous=FULL`` and holds the file in
exclusive locking mode: one process, one bureau, one file.  Each method is
one short transaction; the store is used from one thread at a time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ..errors import Replay, StorageError, UsageError

__all__ = [
    "MAX_REFUSED",
    "BureauStore",
    "Direction",
    "JournalRow",
    "RowState",
]

APPLICATION_ID = 0x4E434242  # "NCBB"
SCHEMA_VERSION = 1
MAX_REFUSED = 10_000  # refused messages kept as evidence; the oldest go first
MAX_REFUSED_BYTES = 4 * 1024  # of each refused envelope, the first bytes kept (and a digest)
MAX_CONFLICTS = 100  # refused directory files kept as evidence of a rollback or fork

_SCHEMA = (
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


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class RowState(StrEnum):
    """Where a journal row stands: ``in`` pending, handled, unhandled, failed; ``out`` the rest."""

    PENDING = "pending"  # received, verified, stored; its handler has not finished
    HANDLED = "handled"  # its handler returned (or it needed none: a reply, a copy)
    UNHANDLED = "unhandled"  # stored; no handler was registered for it (handed over at start)
    FAILED = "failed"  # in: its handler raised; out: the relay refused it
    QUEUED = "queued"  # sealed and recorded, not yet accepted by the relay
    UNKNOWN = "unknown"  # submitted; the relay may have accepted it
    ACCEPTED = "accepted"  # the relay accepted it


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One message of the journal, as stored."""

    pos: int
    direction: Direction
    message_id: bytes
    message_hash: bytes
    sender: str
    recipients: tuple[str, ...]
    schema: str
    created: int
    at: int
    reply_to: bytes | None
    refers_to: bytes | None  # the request a forward carries (out), or the handle answered (in)
    envelope: bytes = field(repr=False)
    body: bytes | None = field(repr=False)  # out: the encoded body (not openable by its sender)
    state: RowState
    detail: str | None


_COLUMNS = (
    "pos, direction, message_id, message_hash, sender, recipients, schema, created, at, "
    "reply_to, refers_to, envelope, body, state, detail"
)


def _row(values: Sequence[object]) -> JournalRow:
    try:
        return _convert(values)
    except (TypeError, ValueError, AssertionError) as exc:
        raise StorageError(
            f"bureau store: a journal row is corrupt ({type(exc).__name__})"
        ) from exc


def _convert(values: Sequence[object]) -> JournalRow:
    (
        pos,
        direction,
        mid,
        mhash,
        sender,
        rcpts,
        schema,
        created,
        at,
        rt,
        ref,
        env,
        body,
        st,
        det,
    ) = values
    assert isinstance(rcpts, str)
    return JournalRow(
        pos=int(pos),  # type: ignore[call-overload]
        direction=Direction(str(direction)),
        message_id=bytes(mid),  # type: ignore[call-overload]
        message_hash=bytes(mhash),  # type: ignore[call-overload]
        sender=str(sender),
        recipients=tuple(rcpts.split(",")) if rcpts else (),
        schema=str(schema),
        created=int(created),  # type: ignore[call-overload]
        at=int(at),  # type: ignore[call-overload]
        reply_to=None if rt is None else bytes(rt),  # type: ignore[call-overload]
        refers_to=None if ref is None else bytes(ref),  # type: ignore[call-overload]
        envelope=bytes(env),  # type: ignore[call-overload]
        body=None if body is None else bytes(body),  # type: ignore[call-overload]
        state=RowState(str(st)),
        detail=None if det is None else str(det),
    )


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"bureau store: {what} failed ({type(exc).__name__}: {exc})") from exc


class BureauStore:
    """The journal of one bureau (its ``principal``), in one SQLite file."""

    def __init__(self, path: str | Path, *, principal: str) -> None:
        self.path = Path(path)
        self.principal = principal
        with _translated(f"opening {self.path.name}"):
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        db = self._db
        with _translated("preparing the file"):
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if application_id == 0 and version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise StorageError(f"{self.path.name} is not a bureau store")
                with self._transaction():
                    for statement in _SCHEMA:
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
        owner = self._meta("principal")
        if owner is None or owner != self.principal.encode():
            raise UsageError(f"{self.path.name} is the store of another principal")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # also when COMMIT itself failed (a full disk)
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    # --- meta ----------------------------------------------------------------------------------

    def _meta(self, key: str) -> bytes | None:
        with _translated("reading"):
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0]) if isinstance(row[0], bytes) else row[0]

    @property
    def last_seq(self) -> int:
        """The highest sequence number recorded on a sent message (0 before the first)."""
        with _translated("reading"):
            row = self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        if row is None or type(row[0]) is not int or row[0] < 0:
            raise StorageError(f"{self.path.name}: the sequence counter is corrupt")
        return int(row[0])

    # --- the journal ---------------------------------------------------------------------------

    def lookup(self, message_id: bytes) -> JournalRow | None:
        with _translated("reading"):
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM journal WHERE message_id = ?",  # noqa: S608 - constant
                (message_id,),
            ).fetchone()
        return None if row is None else _row(row)

    def rows(
        self, *, direction: Direction | None = None, states: Sequence[RowState] = ()
    ) -> list[JournalRow]:
        """The journal in order, optionally only one direction and some states."""
        clauses, args = [], []
        if direction is not None:
            clauses.append("direction = ?")
            args.append(direction.value)
        if states:
            clauses.append(f"state IN ({', '.join('?' for _ in states)})")
            args.extend(s.value for s in states)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with _translated("reading"):
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM journal {where} ORDER BY pos",  # noqa: S608 - only placeholders
                args,
            ).fetchall()
        return [_row(r) for r in found]

    def sent_referring_to(self, refers_to: bytes) -> list[JournalRow]:
        """The sent messages recorded with ``refers_to`` (the forwards of one original, ...)."""
        with _translated("reading"):
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM journal "  # noqa: S608 - constant
                "WHERE direction = 'out' AND refers_to = ? ORDER BY pos",
                (refers_to,),
            ).fetchall()
        return [_row(r) for r in found]

    def record_received(self, row: JournalRow) -> None:
        """Write a verified incoming message; :class:`Replay` if its id holds another message."""
        with _translated("recording a received message"), self._transaction() as db:
            held = db.execute(
                "SELECT message_hash FROM journal WHERE message_id = ?", (row.message_id,)
            ).fetchone()
            if held is not None:
                raise Replay(f"message id {row.message_id.hex()} is already in the journal")
            self._insert(db, row)

    def record_sent(
        self,
        rows: Sequence[JournalRow],
        *,
        seq: int,
        handled: bytes | None = None,
        handled_state: RowState = RowState.HANDLED,
        detail: str | None = None,
    ) -> None:
        """Record sealed messages, the new sequence counter and (optionally) a handled message."""
        with _translated("recording sent messages"), self._transaction() as db:
            for row in rows:
                self._insert(db, row)
            db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'seq'", (seq,))
            if handled is not None:
                db.execute(
                    "UPDATE journal SET state = ?, detail = ? WHERE message_id = ?",
                    (handled_state.value, detail, handled),
                )

    def mark(self, message_id: bytes, state: RowState, detail: str | None = None) -> None:
        with _translated("updating a message's state"), self._transaction() as db:
            db.execute(
                "UPDATE journal SET state = ?, detail = ? WHERE message_id = ?",
                (state.value, detail, message_id),
            )

    @staticmethod
    def _insert(db: sqlite3.Connection, row: JournalRow) -> None:
        db.execute(
            "INSERT INTO journal (direction, message_id, message_hash, sender, recipients, "
            "schema, created, at, reply_to, refers_to, envelope, body, state, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.direction.value,
                row.message_id,
                row.message_hash,
                row.sender,
                ",".join(row.recipients),
                row.schema,
                row.created,
                row.at,
                row.reply_to,
                row.refers_to,
                row.envelope,
                row.body,
                row.state.value,
                row.detail,
            ),
        )

    # --- refused messages ----------------------------------------------------------------------

    def record_refused(
        self, *, at: int, sender: str | None, code: str, reason: str, envelope: bytes
    ) -> None:
        """Keep a refused envelope (its first bytes) as evidence; forget the oldest past the cap."""
        with _translated("recording a refused message"), self._transaction() as db:
            db.execute(  # the same bytes refused again (a relay repeating them) are kept once
                "INSERT OR IGNORE INTO refused (at, sender, code, reason, digest, size, envelope) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    at,
                    sender,
                    code,
                    reason[:500],
                    hashlib.blake2b(envelope, digest_size=32).digest(),
                    len(envelope),
                    envelope[:MAX_REFUSED_BYTES],
                ),
            )
            db.execute(
                "DELETE FROM refused WHERE pos <= (SELECT max(pos) FROM refused) - ?",
                (MAX_REFUSED,),
            )

    def refused(self) -> list[tuple[int, str | None, str, str]]:
        """The refused messages kept: (time, claimed sender, code, reason), oldest first."""
        with _translated("reading"):
            found = self._db.execute(
                "SELECT at, sender, code, reason FROM refused ORDER BY pos"
            ).fetchall()
        return [(int(a), s, str(c), str(r)) for a, s, c, r in found]

    # --- the directory -------------------------------------------------------------------------

    def record_directory_conflict(self, *, at: int, code: str, data: bytes) -> None:
        """Keep a directory file refused as a rollback or fork: with the held one, the evidence."""
        with _translated("recording a directory conflict"), self._transaction() as db:
            db.execute(
                "INSERT INTO directory_conflicts (at, code, data) VALUES (?, ?, ?)",
                (at, code, data),
            )
            db.execute(
                "DELETE FROM directory_conflicts "
                "WHERE pos <= (SELECT max(pos) FROM directory_conflicts) - ?",
                (MAX_CONFLICTS,),
            )

    def directory_conflicts(self) -> list[tuple[int, str, bytes]]:
        """The refused directory files kept: (time, code, signed file), oldest first."""
        with _translated("reading"):
            found = self._db.execute(
                "SELECT at, code, data FROM directory_conflicts ORDER BY pos"
            ).fetchall()
        return [(int(a), str(c), bytes(d)) for a, c, d in found]

    def latest_directory(self) -> bytes | None:
        """The signed directory file accepted last (DIR-12: kept across restarts)."""
        with _translated("reading"):
            row = self._db.execute(
                "SELECT data FROM directories ORDER BY serial DESC LIMIT 1"
            ).fetchone()
        return None if row is None else bytes(row[0])

    def directories(self) -> list[bytes]:
        """Every directory file accepted, oldest first."""
        with _translated("reading"):
            found = self._db.execute("SELECT data FROM directories ORDER BY serial").fetchall()
        return [bytes(r[0]) for r in found]

    def save_directory(self, serial: int, data: bytes) -> None:
        with _translated("saving the directory"), self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO directories VALUES (?, ?)", (serial, data))
