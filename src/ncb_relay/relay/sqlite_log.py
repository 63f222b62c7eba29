"""The relay's Merkle log in its SQLite store (spec/log.md; schema version 3).

Theory of operation.  The log lives in the mailbox store's own file and
transactions, so an envelope is in the log exactly when it is accepted
(LOG-1): :func:`~ncb_relay.relay.sqlite_store.accept` calls
:meth:`SqliteLog.append` inside the accepting job.  Three tables hold it:

- ``log_entries`` (idx, kind, entry): the 32-byte entry of every leaf, with its
  kind (0: an envelope's message hash, 1: a directory version's hash).  The
  leaf hash, ``SHA-256(0x00 || entry)``, is recomputed when read.
- ``log_nodes`` (level, idx, hash): the root of every perfect subtree of level
  1 and above, written once when its last leaf arrives and never changed; a
  proof reads O(log n) of them (:func:`ncb_relay.merkle.inclusion_proof`).
- ``log_checkpoints`` (size, note): every checkpoint the relay signed, and
  ``log_cosignatures``, the witness cosignature lines collected for each.

The tree's right edge (:class:`~ncb_relay.merkle.CompactTree`) is kept in
memory.  Jobs append to a *working* copy, and their rows wait in memory; each
job marks the working tree before it runs and a job that is rolled back to its
savepoint resets it (and drops its rows) to the mark.  The rows of the whole
batch are written with one statement per table when the batch seals, and
proofs read the nodes of the open transaction and a bounded cache of recent
ones before the tables.  After the last job of a batch the store signs one checkpoint for the
new size (:meth:`SqliteLog.seal`, batched signing, LOG-11) in the same
transaction, and only when the transaction has committed does the working tree
become the committed one; if the transaction fails, the working tree is reset
to the committed one.  On open the tree is rebuilt from every entry, each
stored node is compared with the recomputed one and the root with the latest
signed checkpoint's, so a restart rebuilds exactly the tree that was signed and
a damaged table stops the relay instead of feeding bureaus bad proofs (one pass
over the log at start).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from .. import merkle
from ..checkpoint import Checkpoint, parse_note
from ..errors import LimitExceeded, NcbRelayError, StorageError, UsageError
from .storage import DIRECTORY_ENTRY, KIND_NAMES, LogEntry

__all__ = ["CheckpointSigner", "SqliteLog", "node_reader"]

MAX_COSIGNATURES = 31  # a note carries at most 32 signature lines (LOG-8), one is the log's
MAX_PAGE_BYTES = 256 * 1024  # signed notes in one page of checkpoints
MAX_CACHED_NODES = 1 << 16  # about 6 MiB of recent perfect subtree roots, for proofs

CheckpointSigner = Callable[[int, bytes], bytes]
"""Signs the checkpoint of a tree (size, root) and returns the signed note (LOG-8)."""

INSERT_ENTRY = "INSERT INTO log_entries (idx, kind, entry) VALUES (?, ?, ?)"
INSERT_NODE = "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)"
ENTRY = "SELECT entry FROM log_entries WHERE idx = ?"
NODE = "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?"
ALL_ENTRIES = "SELECT idx, entry FROM log_entries ORDER BY idx"
LEVEL_NODES = "SELECT idx, hash FROM log_nodes WHERE level = ? ORDER BY idx"
FIND_DIRECTORY = (
    "SELECT idx FROM log_entries INDEXED BY log_directories WHERE kind = 1 AND entry = ?"
)
INSERT_CHECKPOINT = "INSERT INTO log_checkpoints (size, note) VALUES (?, ?)"
LATEST = "SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1"
LATEST_WITH = (  # one index seek per count: never a scan over the cosigned checkpoints
    "SELECT max(size) FROM log_checkpoints INDEXED BY log_checkpoints_cosigned WHERE cosigned = ?"
)
CHECKPOINT = "SELECT note FROM log_checkpoints WHERE size = ?"
CHECKPOINT_ROW = "SELECT size, note FROM log_checkpoints WHERE size = ?"
CHECKPOINTS = (
    "SELECT size, note, cosigned FROM log_checkpoints WHERE size > ? ORDER BY size LIMIT ?"
)
ENTRIES = "SELECT idx, kind, entry FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?"
COSIGNATURES = "SELECT line FROM log_cosignatures WHERE size = ? ORDER BY witness"
UPSERT_COSIGNATURE = (
    "INSERT INTO log_cosignatures (size, witness, line) VALUES (?, ?, ?)"
    " ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line"
)
COUNT_COSIGNATURES = (
    "UPDATE log_checkpoints SET cosigned ="
    " (SELECT count(*) FROM log_cosignatures WHERE size = ?) WHERE size = ?"
)


@dataclass(frozen=True, slots=True)
class _Mark:
    size: int
    edge: tuple[bytes, ...]
    entries: int = 0  # pending rows of the open transaction, at the mark
    nodes: int = 0


def _tree(mark: _Mark) -> merkle.CompactTree:
    return merkle.CompactTree.restore(mark.size, mark.edge)


def node_reader(connection: sqlite3.Connection) -> merkle.NodeReader:
    """Reads perfect subtree roots from the tables (level 0: the leaf hash of the entry)."""

    def node(level: int, index: int) -> bytes:
        if level == 0:
            row = connection.execute(ENTRY, (index,)).fetchone()
            if row is None:
                raise StorageError(f"the log has lost its entry {index}")
            return merkle.leaf_hash(bytes(row[0]))
        row = connection.execute(NODE, (level, index)).fetchone()
        if row is None:
            raise StorageError(f"the log has lost its node ({level}, {index})")
        return bytes(row[0])

    return node


def _text_of(note: bytes) -> Checkpoint:
    try:
        return Checkpoint.parse(parse_note(note).text)
    except NcbRelayError as exc:
        raise StorageError(f"the log holds a damaged checkpoint: {exc.message}") from exc


class SqliteLog:
    """The log's in-memory right edge over one connection (see the module docstring).

    Used only from the store's writer thread, like the connection itself.
    """

    def __init__(self, connection: sqlite3.Connection, signer: CheckpointSigner | None) -> None:
        self._connection = connection
        self._signer = signer
        self._signed_size = -1
        self._latest_note: bytes | None = None
        self._pending_note: bytes | None = None
        # rows appended in the open transaction, written at once by seal(), and their nodes
        self._pending_entries: list[tuple[int, int, bytes]] = []
        self._pending_nodes: list[tuple[int, int, bytes]] = []
        self._pending: dict[tuple[int, int], bytes] = {}
        self._cache: dict[tuple[int, int], bytes] = {}  # committed nodes read or written lately
        self._stored = node_reader(connection)
        latest = connection.execute(LATEST).fetchone()
        checkpoint = None if latest is None else _text_of(bytes(latest[1]))
        if checkpoint is not None and checkpoint.size != latest[0]:
            raise StorageError("the log holds a checkpoint under another size")
        tree = self._replay(checkpoint)
        self._committed = _Mark(tree.size, tree.edge)
        self._working = _tree(self._committed)
        if checkpoint is not None:
            self._signed_size, self._latest_note = checkpoint.size, bytes(latest[1])

    def _replay(self, checkpoint: Checkpoint | None) -> merkle.CompactTree:
        """Rebuild the tree from every entry, checking every stored node and the last root.

        One pass over the log at start: a relay never serves proofs from tables
        that do not lead to what it signed.  The nodes of each level complete
        in index order as the leaves are appended, so each level is read by
        one sequential scan beside the entries' (a node missing, changed or
        out of place is a mismatch) rather than by a look-up per node.
        """
        tree = merkle.CompactTree()
        if checkpoint is not None and checkpoint.size == 0:
            signed_root: bytes | None = tree.root()
        else:
            signed_root = None
        levels: dict[int, sqlite3.Cursor] = {}
        for index, entry in self._connection.execute(ALL_ENTRIES):
            if index != tree.size or len(entry) != merkle.HASH_BYTES:
                raise StorageError("the log's entries have a gap or a damaged entry")
            for level, node_index, value in tree.append(merkle.leaf_hash(bytes(entry)))[1:]:
                nodes = levels.get(level)
                if nodes is None:
                    nodes = levels[level] = self._connection.execute(LEVEL_NODES, (level,))
                row = nodes.fetchone()
                if row is None or row[0] != node_index or bytes(row[1]) != value:
                    raise StorageError("the log's stored tree is damaged")
            if checkpoint is not None and tree.size == checkpoint.size:
                signed_root = tree.root()
        if checkpoint is not None and (signed_root is None or signed_root != checkpoint.root):
            raise StorageError("the log's tables do not match its last signed checkpoint")
        return tree

    # -- the working tree, inside the writer's transaction

    @property
    def size(self) -> int:
        """The working size: committed leaves plus those appended in the open transaction."""
        return self._working.size

    def mark(self) -> _Mark:
        return _Mark(
            self._working.size,
            self._working.edge,
            len(self._pending_entries),
            len(self._pending_nodes),
        )

    def reset(self, mark: _Mark) -> None:
        """Back to ``mark`` (a job rolled back to its savepoint): its appends are forgotten."""
        self._working = _tree(mark)
        del self._pending_entries[mark.entries :]
        del self._pending_nodes[mark.nodes :]
        self._pending = {(0, i): merkle.leaf_hash(e) for i, _, e in self._pending_entries}
        self._pending.update(((level, i), h) for level, i, h in self._pending_nodes)

    def append(self, kind: int, entry: bytes) -> int:
        """Append ``entry`` as the next leaf (in the open transaction); return its index.

        The rows are written by :meth:`seal`, once per transaction, with one
        statement for the entries and one for the nodes.
        """
        if kind not in KIND_NAMES or len(entry) != merkle.HASH_BYTES:
            raise UsageError("a log entry is a known kind and 32 bytes")
        index = self._working.size
        completed = self._working.append(merkle.leaf_hash(entry))
        self._pending_entries.append((index, kind, entry))
        self._pending_nodes.extend(completed[1:])
        for level, node_index, value in completed:
            self._pending[(level, node_index)] = value
        return index

    def find_directory(self, digest: bytes) -> int | None:
        for index, kind, entry in self._pending_entries:
            if kind == DIRECTORY_ENTRY and entry == digest:
                return index
        row = self._connection.execute(FIND_DIRECTORY, (digest,)).fetchone()
        return None if row is None else int(row[0])

    def _node(self, level: int, index: int) -> bytes:
        """A perfect subtree root: appended in this transaction, cached, or read from the tables."""
        key = (level, index)
        value = self._pending.get(key) or self._cache.get(key)
        if value is None:
            value = self._stored(level, index)
            self._remember(key, value)
        return value

    def _remember(self, key: tuple[int, int], value: bytes) -> None:
        if len(self._cache) >= MAX_CACHED_NODES:
            self._cache.clear()  # crude but bounded; the next proofs read the tables again
        self._cache[key] = value

    def _flush(self) -> None:
        if self._pending_entries:
            self._connection.executemany(INSERT_ENTRY, self._pending_entries)
        if self._pending_nodes:
            self._connection.executemany(INSERT_NODE, self._pending_nodes)

    def seal(self) -> tuple[int, bytes] | None:
        """Sign one checkpoint for the working tree if it grew (LOG-11).

        Returns the size and note of the latest checkpoint, the new one or the
        one signed before; ``None`` if the relay never signed one.
        """
        self._flush()
        size = self._working.size
        self._pending_note = None
        if self._signer is not None and size > self._signed_size:
            note = self._signer(size, self._working.root())
            self._connection.execute(INSERT_CHECKPOINT, (size, note))
            self._pending_note = note
            return size, note
        if self._latest_note is None:
            return None
        return self._signed_size, self._latest_note

    def committed(self) -> None:
        """The transaction committed: the working tree and any new checkpoint are durable."""
        self._committed = _Mark(self._working.size, self._working.edge)
        note = self._pending_note
        if note is not None:
            self._latest_note, self._signed_size = note, self._committed.size
        self._pending_note = None
        for key, value in self._pending.items():
            self._remember(key, value)
        self._forget_pending()

    def rolled_back(self) -> None:
        """The transaction failed: forget everything appended in it."""
        self._working = _tree(self._committed)
        self._pending_note = None
        self._forget_pending()

    def _forget_pending(self) -> None:
        self._pending_entries.clear()
        self._pending_nodes.clear()
        self._pending.clear()

    # -- reads (any time on the writer thread)

    def signed_size(self) -> int:
        """The size of the latest checkpoint signed in a committed transaction (-1: none)."""
        return self._signed_size

    def inclusion(self, index: int, size: int) -> list[bytes]:
        if not 0 <= index < size <= self._working.size:
            raise UsageError("the index must be below the size, and the size within the log")
        return merkle.inclusion_proof(index, size, self._node)

    def consistency(self, old: int, new: int) -> list[bytes]:
        if not 0 <= old <= new <= self._working.size:
            raise UsageError("the sizes must not decrease and must be within the log")
        return merkle.consistency_proof(old, new, self._node)

    def _with_cosignatures(self, size: int, note: bytes) -> bytes:
        lines = [bytes(row[0]) for row in self._connection.execute(COSIGNATURES, (size,))]
        return note + b"".join(lines)

    def latest(self, cosigned: int = 0) -> bytes | None:
        """The latest signed checkpoint with its cosignatures (with at least ``cosigned``)."""
        if cosigned:
            sizes = [
                self._connection.execute(LATEST_WITH, (count,)).fetchone()[0]
                for count in range(cosigned, MAX_COSIGNATURES + 1)
            ]
            found = [int(size) for size in sizes if size is not None]
            if not found:
                return None
            row = self._connection.execute(CHECKPOINT_ROW, (max(found),)).fetchone()
        else:
            row = self._connection.execute(LATEST).fetchone()
        return None if row is None else self._with_cosignatures(int(row[0]), bytes(row[1]))

    def checkpoints(self, after: int, limit: int, max_bytes: int = MAX_PAGE_BYTES) -> list[bytes]:
        """Up to ``limit`` checkpoints above ``after``: at least one, then ``max_bytes`` at most."""
        notes: list[bytes] = []
        total = 0
        for size, note, cosigned in self._connection.execute(CHECKPOINTS, (after, limit)):
            full = self._with_cosignatures(int(size), bytes(note)) if cosigned else bytes(note)
            total += len(full)
            if notes and total > max_bytes:
                break
            notes.append(full)
        return notes

    def entries(self, start: int, limit: int) -> list[LogEntry]:
        rows = self._connection.execute(ENTRIES, (start, limit)).fetchall()
        return [LogEntry(int(i), KIND_NAMES[int(k)], bytes(e)) for i, k, e in rows]

    def checkpoint_note(self, size: int) -> bytes | None:
        """The relay's own signed note of ``size`` (without cosignatures), if it signed one."""
        row = self._connection.execute(CHECKPOINT, (size,)).fetchone()
        return None if row is None else bytes(row[0])

    def add_cosignature(self, size: int, witness: str, line: bytes) -> None:
        """Keep ``line`` (a verified cosignature line) for the checkpoint of ``size``."""
        if self.checkpoint_note(size) is None:
            raise UsageError("the relay signed no checkpoint of this size")
        held = self._connection.execute(
            "SELECT count(*) FROM log_cosignatures WHERE size = ? AND witness != ?",
            (size, witness),
        ).fetchone()[0]
        if held >= MAX_COSIGNATURES:
            raise LimitExceeded("this checkpoint holds the most cosignatures a note can carry")
        self._connection.execute(UPSERT_COSIGNATURE, (size, witness, line))
        self._connection.execute(COUNT_COSIGNATURES, (size, size))
