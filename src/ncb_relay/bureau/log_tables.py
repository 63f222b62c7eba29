"""The relay's log in the bureau's SQLite file: checkpoints held, evidence kept, forks seen.

:class:`~ncb_relay.bureau.log_keeper.LogKeeper` decides what verifies; these
tables keep what it decided, through :class:`~ncb_relay.bureau.store.BureauStore`.
``log_checkpoint`` holds the latest checkpoint of each log verified with the
witness cosignatures required (its exact signed note), ``log_observed`` the
largest one verified by the log's key and proven consistent (LOG-12),
``log_receipts`` the verified evidence of each accepted message (receipt,
checkpoint, inclusion proof, log index), written in the same transaction that
marks it ``accepted``; ``log_forks`` keeps both signed notes of each
contradiction seen, with the proof and the reason (each pair of tree heads
once, at most :data:`MAX_LOG_FORKS` a log: the first, and every fork of two
roots for one size, which proves itself; ``log_fork_heads`` indexes them),
and ``log_refusals`` the exact evidence that did not verify, of an acceptance
or a checkpoint fetched (the newest :data:`MAX_LOG_REFUSALS`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field

from ..checkpoint import Checkpoint, parse_note
from ..errors import NcbRelayError, StorageError
from .journal_file import JournalFile, translated
from .journal_row import RowState

__all__ = [
    "LOG_TABLES",
    "MAX_LOG_FORKS",
    "MAX_LOG_REFUSALS",
    "LogEvidence",
    "LogForkRow",
    "LogReceiptRow",
    "LogRefusalRow",
    "LogTables",
]

MAX_LOG_REFUSALS = 1000  # acceptances whose evidence did not verify, kept as evidence
MAX_LOG_FORKS = 256  # forks of one log kept as evidence (the first and self-proving ones stay)

LOG_TABLES = (
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


class LogTables:
    """The relay-log tables of one open :class:`JournalFile`."""

    def __init__(self, file: JournalFile) -> None:
        self._file = file

    def checkpoint(self, origin: str) -> bytes | None:
        """The latest verified checkpoint of the log ``origin`` (its signed note), if any."""
        with translated("reading"):
            row = self._file.db.execute(
                "SELECT note FROM log_checkpoint WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def observed(self, origin: str) -> bytes | None:
        """The largest checkpoint of ``origin`` verified by its key and proven consistent."""
        with translated("reading"):
            row = self._file.db.execute(
                "SELECT note FROM log_observed WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def save_checkpoint(
        self, origin: str, size: int, note: bytes, *, observed: tuple[int, bytes] | None
    ) -> None:
        """Keep ``note`` as the latest checkpoint of ``origin`` and ``observed`` ``(size,
        note)`` as the one observed (never one smaller than held)."""
        with translated("saving a checkpoint"), self._file.transaction() as db:
            _save_checkpoint(db, "log_checkpoint", origin, size, note)
            if observed is not None:
                _save_checkpoint(db, "log_observed", origin, *observed)

    def save_observed(self, origin: str, size: int, note: bytes) -> None:
        """Keep ``note`` as the checkpoint observed of ``origin`` (never one smaller)."""
        with translated("saving a checkpoint"), self._file.transaction() as db:
            _save_checkpoint(db, "log_observed", origin, size, note)

    def record_acceptance(
        self,
        receipt: LogReceiptRow,
        *,
        detail: str,
        checkpoint: tuple[str, int, bytes] | None,
        observed: tuple[str, int, bytes] | None,
    ) -> None:
        """In one transaction: keep the verified evidence, mark the message ``accepted``, and
        keep ``checkpoint`` ``(origin, size, note)`` as the latest and ``observed`` as the
        one observed, if given."""
        with translated("recording an acceptance"), self._file.transaction() as db:
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
                _save_checkpoint(db, "log_checkpoint", *checkpoint)
            if observed is not None:
                _save_checkpoint(db, "log_observed", *observed)

    def receipt(self, message_id: bytes) -> LogReceiptRow | None:
        """The verified evidence kept for an accepted message."""
        with translated("reading"):
            row = self._file.db.execute(
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

    def record_refusal(self, refusal: LogRefusalRow) -> None:
        """Keep evidence that did not verify (the same evidence once), the newest 1,000."""
        at, origin, message_id, code = refusal.at, refusal.origin, refusal.message_id, refusal.code
        reason, evidence = refusal.reason, refusal.evidence
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
        with translated("recording refused evidence"), self._file.transaction() as db:
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

    def refusals(self) -> list[LogRefusalRow]:
        """The evidence kept that did not verify, oldest first."""
        with translated("reading"):
            found = self._file.db.execute(
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

    def record_fork(self, fork: LogForkRow) -> None:
        """Keep both signed checkpoints of a fork: each pair of tree heads (size and root of
        the held and of the offered checkpoint) once, at most :data:`MAX_LOG_FORKS` a log.
        When full, a fork of two roots for one size (it proves itself) replaces the newest
        other fork but the first; any other fork is not kept."""
        (held_size, held_root), offered_head = _head(fork.held), _head(fork.offered)
        heads = hashlib.sha256(
            repr((fork.origin, held_size, held_root, *offered_head)).encode()
        ).digest()
        proves = int(held_size == offered_head[0])
        with translated("recording a fork"), self._file.transaction() as db:
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

    def forks(self) -> list[LogForkRow]:
        """Every fork seen, oldest first."""
        with translated("reading"):
            found = self._file.db.execute(
                "SELECT at, origin, reason, held, offered, proof FROM log_forks ORDER BY pos"
            ).fetchall()
        return [
            LogForkRow(int(a), str(o), str(r), bytes(h), bytes(f), _hashes(p))
            for a, o, r, h, f, p in found
        ]


def _save_checkpoint(
    db: sqlite3.Connection, table: str, origin: str, size: int, note: bytes
) -> None:
    assert table in ("log_checkpoint", "log_observed")
    db.execute(
        f"INSERT INTO {table} VALUES (?, ?, ?) ON CONFLICT (origin) DO UPDATE "  # noqa: S608
        "SET size = excluded.size, note = excluded.note WHERE excluded.size >= size",
        (origin, size, note),
    )


def _hashes(data: bytes) -> tuple[bytes, ...]:
    if len(data) % 32:
        raise StorageError("bureau store: a stored proof is corrupt")
    return tuple(data[i : i + 32] for i in range(0, len(data), 32))


def _head(note: bytes) -> tuple[int, bytes]:
    """The size and root a signed note states (verified before it was kept as evidence)."""
    try:
        checkpoint = Checkpoint.parse(parse_note(note).text)
    except NcbRelayError:  # not a checkpoint: its bytes stand for the head
        return (-1, hashlib.sha256(note).digest())
    return (checkpoint.size, checkpoint.root)
