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

The relay's log (:mod:`ncb_relay.bureau.log_keeper`) has tables of its own,
created if missing when a file is opened (older files gain them, and older
versions of this library ignore them): ``log_checkpoint`` holds the latest
checkpoint of each log verified with the witness cosignatures required (its
exact signed note), ``log_observed`` the largest one verified by the log's key
and proven consistent (LOG-12), ``log_receipts`` the
verified evidence of each accepted message (receipt, checkpoint, inclusion
proof, log index), written in the same transaction that marks it
``accepted``; ``log_forks`` keeps both signed notes of each contradiction
seen, with the proof and the reason (each pair of tree heads once, at most
``MAX_LOG_FORKS`` a log: the first, and every fork of two roots for one size,
which proves itself; ``log_fork_heads`` indexes them), and ``log_refusals`` the exact evidence
that did not verify, of an acceptance or a checkpoint fetched (the newest 1,000).

Delivery evidence (:mod:`ncb_relay.bureau.delivery`) has tables of its own,
created the same way: ``delivery_receipts`` names, for each sent message and
recipient, the verified delivery receipt that recipient sent (its journal row
holds the signed envelope), written in the transaction that journals the
receipt; ``receipt_deadlines`` the deadlines the sender set.  A delivery
receipt this bureau owes for a message it received is journaled (``queued``)
in the transaction that journals that message, so a crash cannot lose it.

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

from ..checkpoint import Checkpoint, parse_note
from ..errors import NcbRelayError, Replay, StorageError, UsageError

__all__ = [
    "MAX_REFUSED",
    "BureauStore",
    "Direction",
    "JournalRow",
    "LogEvidence",
    "LogForkRow",
    "LogReceiptRow",
    "LogRefusalRow",
    "RowState",
]

APPLICATION_ID = 0x4E434242  # "NCBB"
SCHEMA_VERSION = 1
MAX_REFUSED = 10_000  # refused messages kept as evidence; the oldest go first
MAX_REFUSED_BYTES = 4 * 1024  # of each refused envelope, the first bytes kept (and a digest)
MAX_CONFLICTS = 100  # refused directory files kept as evidence of a rollback or fork
MAX_LOG_REFUSALS = 1000  # acceptances whose evidence did not verify, kept as evidence
MAX_LOG_FORKS = 256  # forks of one log kept as evidence (the first and self-proving ones stay)

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


_LOG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS log_checkpoint (
        origin TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        note BLOB NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS log_observed (
        origin TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        note BLOB NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS log_fork_heads (
        pos INTEGER PRIMARY KEY,
        origin TEXT NOT NULL,
        heads BLOB NOT NULL UNIQUE,
        proves INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS log_receipts (
        message_id BLOB PRIMARY KEY,
        log_index INTEGER NOT NULL,
        size INTEGER NOT NULL,
        receipt BLOB NOT NULL,
        checkpoint BLOB NOT NULL,
        inclusion BLOB NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS log_forks (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        origin TEXT NOT NULL,
        reason TEXT NOT NULL,
        held BLOB NOT NULL,
        offered BLOB NOT NULL,
        proof BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS log_refusals (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        origin TEXT NOT NULL,
        message_id BLOB,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        digest BLOB NOT NULL UNIQUE,
        receipt BLOB NOT NULL,
        checkpoint BLOB NOT NULL,
        inclusion BLOB NOT NULL,
        consistency_from INTEGER,
        consistency_to INTEGER,
        consistency BLOB
    )""",
)

_DELIVERY_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS delivery_receipts (
        message_id BLOB NOT NULL,
        recipient TEXT NOT NULL,
        receipt_id BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (message_id, recipient)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS receipt_deadlines (
        message_id BLOB PRIMARY KEY,
        deadline INTEGER NOT NULL
    ) WITHOUT ROWID""",
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


@dataclass(frozen=True, slots=True)
class LogEvidence:
    """A relay's evidence for one acceptance, as it was given (verified or not)."""

    receipt: bytes
    checkpoint: bytes
    inclusion: tuple[bytes, ...]
    consistency: tuple[int, int, tuple[bytes, ...]] | None = None  # (from, to, proof)


@dataclass(frozen=True, slots=True)
class LogReceiptRow:
    """The verified evidence of an accepted message: its entry at ``log_index`` of ``size``."""

    message_id: bytes
    log_index: int
    size: int
    receipt: bytes = field(repr=False)
    checkpoint: bytes = field(repr=False)
    inclusion: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class LogForkRow:
    """Two signed checkpoints of one log that cannot both be true, and how they conflict."""

    at: int
    origin: str
    reason: str
    held: bytes
    offered: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class LogRefusalRow:
    """An acceptance (or a checkpoint, ``message_id`` None) whose evidence did not verify."""

    at: int
    origin: str
    message_id: bytes | None
    code: str
    reason: str
    evidence: LogEvidence = field(repr=False)


def _hashes(data: bytes) -> tuple[bytes, ...]:
    if len(data) % 32:
        raise StorageError("bureau store: a stored proof is corrupt")
    return tuple(data[i : i + 32] for i in range(0, len(data), 32))


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
            with _translated("preparing the log tables"), self._transaction() as db:
                for statement in _LOG_SCHEMA:
                    db.execute(statement)
            with _translated("preparing the delivery tables"), self._transaction() as db:
                for statement in _DELIVERY_SCHEMA:
                    db.execute(statement)
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

    def record_received(
        self,
        row: JournalRow,
        *,
        receipt: JournalRow | None = None,
        seq: int | None = None,
        delivered: tuple[bytes, int] | None = None,
    ) -> None:
        """Write a verified incoming message; :class:`Replay` if its id holds another message.

        In the same transaction: ``receipt``, the delivery receipt owed for it
        (sealed, ``queued``), with the new sequence counter ``seq``; or, for a
        delivery receipt received, ``delivered`` = (the id of the message it
        receipts, the ``received_at`` it states): the first receipt from one
        recipient of one message stands.
        """
        with _translated("recording a received message"), self._transaction() as db:
            held = db.execute(
                "SELECT message_hash FROM journal WHERE message_id = ?", (row.message_id,)
            ).fetchone()
            if held is not None:
                raise Replay(f"message id {row.message_id.hex()} is already in the journal")
            self._insert(db, row)
            if receipt is not None:
                self._insert(db, receipt)
                db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'seq'", (seq or 0,))
            if delivered is not None:
                db.execute(
                    "INSERT OR IGNORE INTO delivery_receipts VALUES (?, ?, ?, ?, ?)",
                    (delivered[0], row.sender, row.message_id, delivered[1], row.at),
                )

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

    # --- the relay's log -----------------------------------------------------------------------

    def log_checkpoint(self, origin: str) -> bytes | None:
        """The latest verified checkpoint of the log ``origin`` (its signed note), if any."""
        with _translated("reading"):
            row = self._db.execute(
                "SELECT note FROM log_checkpoint WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def log_observed(self, origin: str) -> bytes | None:
        """The largest checkpoint of ``origin`` verified by its key and proven consistent."""
        with _translated("reading"):
            row = self._db.execute(
                "SELECT note FROM log_observed WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def save_log_checkpoint(
        self,
        origin: str,
        size: int,
        note: bytes,
        *,
        observed: tuple[int, bytes] | None = None,
    ) -> None:
        """Keep ``note`` as the latest checkpoint of ``origin`` and ``observed`` ``(size,
        note)`` as the one observed (never one smaller than held)."""
        with _translated("saving a checkpoint"), self._transaction() as db:
            self._save_checkpoint(db, "log_checkpoint", origin, size, note)
            if observed is not None:
                self._save_checkpoint(db, "log_observed", origin, *observed)

    def save_log_observed(self, origin: str, size: int, note: bytes) -> None:
        """Keep ``note`` as the checkpoint observed of ``origin`` (never one smaller)."""
        with _translated("saving a checkpoint"), self._transaction() as db:
            self._save_checkpoint(db, "log_observed", origin, size, note)

    @staticmethod
    def _save_checkpoint(
        db: sqlite3.Connection, table: str, origin: str, size: int, note: bytes
    ) -> None:
        assert table in ("log_checkpoint", "log_observed")
        db.execute(
            f"INSERT INTO {table} VALUES (?, ?, ?) ON CONFLICT (origin) DO UPDATE "  # noqa: S608
            "SET size = excluded.size, note = excluded.note WHERE excluded.size >= size",
            (origin, size, note),
        )

    def record_log_acceptance(
        self,
        receipt: LogReceiptRow,
        *,
        detail: str,
        checkpoint: tuple[str, int, bytes] | None = None,
        observed: tuple[str, int, bytes] | None = None,
    ) -> None:
        """In one transaction: keep the verified evidence, mark the message ``accepted``, and
        keep ``checkpoint`` ``(origin, size, note)`` as the latest and ``observed`` as the
        one observed, if given."""
        with _translated("recording an acceptance"), self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO log_receipts VALUES (?, ?, ?, ?, ?, ?)",
                (
                    receipt.message_id,
                    receipt.log_index,
                    receipt.size,
                    receipt.receipt,
                    receipt.checkpoint,
                    b"".join(receipt.inclusion),
                ),
            )
            db.execute(
                "UPDATE journal SET state = ?, detail = ? WHERE message_id = ?",
                (RowState.ACCEPTED.value, detail, receipt.message_id),
            )
            if checkpoint is not None:
                self._save_checkpoint(db, "log_checkpoint", *checkpoint)
            if observed is not None:
                self._save_checkpoint(db, "log_observed", *observed)

    def log_receipt(self, message_id: bytes) -> LogReceiptRow | None:
        """The verified evidence kept for an accepted message."""
        with _translated("reading"):
            row = self._db.execute(
                "SELECT message_id, log_index, size, receipt, checkpoint, inclusion "
                "FROM log_receipts WHERE message_id = ?",
                (message_id,),
            ).fetchone()
        if row is None:
            return None
        mid, index, size, receipt, note, inclusion = row
        return LogReceiptRow(
            bytes(mid), int(index), int(size), bytes(receipt), bytes(note), _hashes(inclusion)
        )

    def record_log_refusal(
        self,
        *,
        at: int,
        origin: str,
        message_id: bytes | None,
        code: str,
        reason: str,
        evidence: LogEvidence,
    ) -> None:
        """Keep evidence that did not verify (the same evidence once), the newest 1,000."""
        consistency = evidence.consistency
        columns = (
            evidence.receipt,
            evidence.checkpoint,
            b"".join(evidence.inclusion),
            None if consistency is None else consistency[0],
            None if consistency is None else consistency[1],
            None if consistency is None else b"".join(consistency[2]),
        )
        digest = hashlib.blake2b(repr((message_id, code, columns)).encode(), digest_size=32)
        with _translated("recording refused evidence"), self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO log_refusals (at, origin, message_id, code, reason, "
                "digest, receipt, checkpoint, inclusion, consistency_from, consistency_to, "
                "consistency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (at, origin, message_id, code, reason[:500], digest.digest(), *columns),
            )
            db.execute(
                "DELETE FROM log_refusals WHERE pos <= (SELECT max(pos) FROM log_refusals) - ?",
                (MAX_LOG_REFUSALS,),
            )

    def log_refusals(self) -> list[LogRefusalRow]:
        """The evidence kept that did not verify, oldest first."""
        with _translated("reading"):
            found = self._db.execute(
                "SELECT at, origin, message_id, code, reason, receipt, checkpoint, inclusion, "
                "consistency_from, consistency_to, consistency FROM log_refusals ORDER BY pos"
            ).fetchall()
        refusals = []
        for at, origin, mid, code, reason, receipt, note, inclusion, old, new, proof in found:
            consistency = None if proof is None else (int(old), int(new), _hashes(proof))
            evidence = LogEvidence(bytes(receipt), bytes(note), _hashes(inclusion), consistency)
            message_id = None if mid is None else bytes(mid)
            refusals.append(
                LogRefusalRow(int(at), str(origin), message_id, str(code), str(reason), evidence)
            )
        return refusals

    def record_log_fork(self, fork: LogForkRow) -> None:
        """Keep both signed checkpoints of a fork: each pair of tree heads (size and root of
        the held and of the offered checkpoint) once, at most :data:`MAX_LOG_FORKS` a log.
        When full, a fork of two roots for one size (it proves itself) replaces the newest
        other fork but the first; any other fork is not kept."""
        (held_size, held_root), offered_head = _head(fork.held), _head(fork.offered)
        heads = hashlib.sha256(
            repr((fork.origin, held_size, held_root, *offered_head)).encode()
        ).digest()
        proves = int(held_size == offered_head[0])
        with _translated("recording a fork"), self._transaction() as db:
            if db.execute("SELECT 1 FROM log_fork_heads WHERE heads = ?", (heads,)).fetchone():
                return
            if db.execute(  # a row of a file written before the heads were indexed
                "SELECT 1 FROM log_forks WHERE origin = ? AND reason = ? AND held = ? "
                "AND offered = ?",
                (fork.origin, fork.reason, fork.held, fork.offered),
            ).fetchone():
                return
            (count,) = db.execute(
                "SELECT count(*) FROM log_forks WHERE origin = ?", (fork.origin,)
            ).fetchone()
            if count >= MAX_LOG_FORKS:
                if not proves:
                    return
                spare = db.execute(
                    "SELECT pos FROM log_fork_heads WHERE origin = ? AND proves = 0 AND pos > "
                    "(SELECT min(pos) FROM log_forks WHERE origin = ?) ORDER BY pos DESC LIMIT 1",
                    (fork.origin, fork.origin),
                ).fetchone()
                if spare is None:
                    return
                db.execute("DELETE FROM log_forks WHERE pos = ?", spare)
                db.execute("DELETE FROM log_fork_heads WHERE pos = ?", spare)
            cursor = db.execute(
                "INSERT INTO log_forks (at, origin, reason, held, offered, proof) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (fork.at, fork.origin, fork.reason, fork.held, fork.offered, b"".join(fork.proof)),
            )
            db.execute(
                "INSERT INTO log_fork_heads VALUES (?, ?, ?, ?)",
                (cursor.lastrowid, fork.origin, heads, proves),
            )

    def log_forks(self) -> list[LogForkRow]:
        """Every fork seen, oldest first."""
        with _translated("reading"):
            found = self._db.execute(
                "SELECT at, origin, reason, held, offered, proof FROM log_forks ORDER BY pos"
            ).fetchall()
        return [
            LogForkRow(int(a), str(o), str(r), bytes(h), bytes(f), _hashes(p))
            for a, o, r, h, f, p in found
        ]

    # --- delivery evidence ---------------------------------------------------------------------

    def delivery_receipts(
        self, message_id: bytes | None = None
    ) -> list[tuple[bytes, str, bytes, int, int]]:
        """The receipts recorded (of one sent message, or all): (message id, recipient,
        receipt id, received_at, at), in the order they were recorded."""
        where = "" if message_id is None else "WHERE message_id = ?"
        args = () if message_id is None else (message_id,)
        with _translated("reading"):
            found = self._db.execute(
                "SELECT message_id, recipient, receipt_id, received_at, at "  # noqa: S608 - constant
                f"FROM delivery_receipts {where} ORDER BY at, recipient",
                args,
            ).fetchall()
        return [(bytes(m), str(r), bytes(i), int(t), int(a)) for m, r, i, t, a in found]

    def set_receipt_deadline(self, message_id: bytes, deadline: int) -> None:
        """The time by which every recipient of a sent message should have receipted it."""
        with _translated("setting a receipt deadline"), self._transaction() as db:
            db.execute(
                "INSERT INTO receipt_deadlines VALUES (?, ?) ON CONFLICT (message_id) "
                "DO UPDATE SET deadline = excluded.deadline",
                (message_id, deadline),
            )

    def receipt_deadlines(self) -> dict[bytes, int]:
        """The receipt deadlines the sender set, by message id."""
        with _translated("reading"):
            found = self._db.execute(
                "SELECT message_id, deadline FROM receipt_deadlines"
            ).fetchall()
        return {bytes(m): int(d) for m, d in found}


def _head(note: bytes) -> tuple[int, bytes]:
    """The size and root a signed note states (verified before it was kept as evidence)."""
    try:
        checkpoint = Checkpoint.parse(parse_note(note).text)
    except NcbRelayError:  # not a checkpoint: its bytes stand for the head
        return (-1, hashlib.sha256(note).digest())
    return (checkpoint.size, checkpoint.root)
