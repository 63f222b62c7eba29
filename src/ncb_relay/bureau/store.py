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

The relay's log (:mod:`ncb_relay.bureau.log_keeper`) has tables of its own
(:mod:`.log_tables`), created if missing when a file is opened (older files
gain them, and older versions of this library ignore them).

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
from collections.abc import Sequence
from pathlib import Path

from ..errors import Replay, StorageError
from .journal_file import JournalFile, translated
from .journal_row import COLUMNS, Direction, JournalRow, RowState, journal_row
from .log_tables import (
    LOG_TABLES,
    MAX_LOG_FORKS,
    MAX_LOG_REFUSALS,
    LogEvidence,
    LogForkRow,
    LogReceiptRow,
    LogRefusalRow,
    LogTables,
)

__all__ = [
    "MAX_LOG_FORKS",
    "MAX_LOG_REFUSALS",
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

MAX_REFUSED = 10_000  # refused messages kept as evidence; the oldest go first
MAX_REFUSED_BYTES = 4 * 1024  # of each refused envelope, the first bytes kept (and a digest)
MAX_CONFLICTS = 100  # refused directory files kept as evidence of a rollback or fork

DELIVERY_TABLES = (
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


class BureauStore:
    """The journal of one bureau (its ``principal``), in one SQLite file."""

    def __init__(self, path: str | Path, *, principal: str) -> None:
        self.path = Path(path)
        self.principal = principal
        self._file = JournalFile(
            self.path,
            principal=principal,
            added=(("the log tables", LOG_TABLES), ("the delivery tables", DELIVERY_TABLES)),
        )
        self._log = LogTables(self._file)

    def close(self) -> None:
        self._file.close()

    @property
    def last_seq(self) -> int:
        """The highest sequence number recorded on a sent message (0 before the first)."""
        with translated("reading"):
            row = self._file.db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        if row is None or type(row[0]) is not int or row[0] < 0:
            raise StorageError(f"{self.path.name}: the sequence counter is corrupt")
        return int(row[0])

    # --- the journal ---------------------------------------------------------------------------

    def lookup(self, message_id: bytes) -> JournalRow | None:
        with translated("reading"):
            row = self._file.db.execute(
                f"SELECT {COLUMNS} FROM journal WHERE message_id = ?",  # noqa: S608 - constant
                (message_id,),
            ).fetchone()
        return None if row is None else journal_row(row)

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
        with translated("reading"):
            found = self._file.db.execute(
                f"SELECT {COLUMNS} FROM journal {where} ORDER BY pos",  # noqa: S608 - only placeholders
                args,
            ).fetchall()
        return [journal_row(r) for r in found]

    def sent_referring_to(self, refers_to: bytes) -> list[JournalRow]:
        """The sent messages recorded with ``refers_to`` (the forwards of one original, ...)."""
        with translated("reading"):
            found = self._file.db.execute(
                f"SELECT {COLUMNS} FROM journal "  # noqa: S608 - constant
                "WHERE direction = 'out' AND refers_to = ? ORDER BY pos",
                (refers_to,),
            ).fetchall()
        return [journal_row(r) for r in found]

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
        with translated("recording a received message"), self._file.transaction() as db:
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
        with translated("recording sent messages"), self._file.transaction() as db:
            for row in rows:
                self._insert(db, row)
            db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'seq'", (seq,))
            if handled is not None:
                db.execute(
                    "UPDATE journal SET state = ?, detail = ? WHERE message_id = ?",
                    (handled_state.value, detail, handled),
                )

    def mark(self, message_id: bytes, state: RowState, detail: str | None = None) -> None:
        with translated("updating a message's state"), self._file.transaction() as db:
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
        with translated("recording a refused message"), self._file.transaction() as db:
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
        with translated("reading"):
            found = self._file.db.execute(
                "SELECT at, sender, code, reason FROM refused ORDER BY pos"
            ).fetchall()
        return [(int(a), s, str(c), str(r)) for a, s, c, r in found]

    # --- the directory -------------------------------------------------------------------------

    def record_directory_conflict(self, *, at: int, code: str, data: bytes) -> None:
        """Keep a directory file refused as a rollback or fork: with the held one, the evidence."""
        with translated("recording a directory conflict"), self._file.transaction() as db:
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
        with translated("reading"):
            found = self._file.db.execute(
                "SELECT at, code, data FROM directory_conflicts ORDER BY pos"
            ).fetchall()
        return [(int(a), str(c), bytes(d)) for a, c, d in found]

    def latest_directory(self) -> bytes | None:
        """The signed directory file accepted last (DIR-12: kept across restarts)."""
        with translated("reading"):
            row = self._file.db.execute(
                "SELECT data FROM directories ORDER BY serial DESC LIMIT 1"
            ).fetchone()
        return None if row is None else bytes(row[0])

    def directories(self) -> list[bytes]:
        """Every directory file accepted, oldest first."""
        with translated("reading"):
            found = self._file.db.execute("SELECT data FROM directories ORDER BY serial").fetchall()
        return [bytes(r[0]) for r in found]

    def save_directory(self, serial: int, data: bytes) -> None:
        with translated("saving the directory"), self._file.transaction() as db:
            db.execute("INSERT OR IGNORE INTO directories VALUES (?, ?)", (serial, data))

    # --- the relay's log (.log_tables) ---------------------------------------------------------

    def log_checkpoint(self, origin: str) -> bytes | None:
        """The latest verified checkpoint of the log ``origin`` (its signed note), if any."""
        return self._log.checkpoint(origin)

    def log_observed(self, origin: str) -> bytes | None:
        """The largest checkpoint of ``origin`` verified by its key and proven consistent."""
        return self._log.observed(origin)

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
        self._log.save_checkpoint(origin, size, note, observed=observed)

    def save_log_observed(self, origin: str, size: int, note: bytes) -> None:
        """Keep ``note`` as the checkpoint observed of ``origin`` (never one smaller)."""
        self._log.save_observed(origin, size, note)

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
        self._log.record_acceptance(
            receipt, detail=detail, checkpoint=checkpoint, observed=observed
        )

    def log_receipt(self, message_id: bytes) -> LogReceiptRow | None:
        """The verified evidence kept for an accepted message."""
        return self._log.receipt(message_id)

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
        self._log.record_refusal(LogRefusalRow(at, origin, message_id, code, reason, evidence))

    def log_refusals(self) -> list[LogRefusalRow]:
        """The evidence kept that did not verify, oldest first."""
        return self._log.refusals()

    def record_log_fork(self, fork: LogForkRow) -> None:
        """Keep both signed checkpoints of a fork (see :meth:`.LogTables.record_fork`)."""
        self._log.record_fork(fork)

    def log_forks(self) -> list[LogForkRow]:
        """Every fork seen, oldest first."""
        return self._log.forks()

    # --- delivery evidence ---------------------------------------------------------------------

    def delivery_receipts(
        self, message_id: bytes | None = None
    ) -> list[tuple[bytes, str, bytes, int, int]]:
        """The receipts recorded (of one sent message, or all): (message id, recipient,
        receipt id, received_at, at), in the order they were recorded."""
        where = "" if message_id is None else "WHERE message_id = ?"
        args = () if message_id is None else (message_id,)
        with translated("reading"):
            found = self._file.db.execute(
                "SELECT message_id, recipient, receipt_id, received_at, at "  # noqa: S608 - constant
                f"FROM delivery_receipts {where} ORDER BY at, recipient",
                args,
            ).fetchall()
        return [(bytes(m), str(r), bytes(i), int(t), int(a)) for m, r, i, t, a in found]

    def set_receipt_deadline(self, message_id: bytes, deadline: int) -> None:
        """The time by which every recipient of a sent message should have receipted it."""
        with translated("setting a receipt deadline"), self._file.transaction() as db:
            db.execute(
                "INSERT INTO receipt_deadlines VALUES (?, ?) ON CONFLICT (message_id) "
                "DO UPDATE SET deadline = excluded.deadline",
                (message_id, deadline),
            )

    def receipt_deadlines(self) -> dict[bytes, int]:
        """The receipt deadlines the sender set, by message id."""
        with translated("reading"):
            found = self._file.db.execute(
                "SELECT message_id, deadline FROM receipt_deadlines"
            ).fetchall()
        return {bytes(m): int(d) for m, d in found}
