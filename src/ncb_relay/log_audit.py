"""An auditor that replays a relay's whole log and checks every claim the relay makes about it.

Theory of operation
-------------------
The auditor is sans-IO: an adapter fetches pages of the relay's log entries
and of its signed checkpoints and feeds them in, in any interleaving, in
increasing index and size.  The auditor rebuilds the tree with
:class:`~ncb_relay.merkle.CompactTree` and keeps every perfect subtree root the
appends complete (one hash array per level, ``2n`` hashes in all), so that it
can compute the root at any size and every proof itself.

Each checkpoint's log signature is verified once, with the log's key (any of
``log_keys``: a relay that rotated its signing key signed older checkpoints
with an older one); each witness cosignature is verified apart, once, so a bad
cosignature is reported without losing the checkpoint or the other
cosignatures.  A cosignature counts only if its key may cosign at the time it
states (``witness_valid_at``: the adapter says which keys were valid when, from
the directory).  Sizes must grow strictly from one checkpoint to the next, and
the root of each must equal the root of the replayed entries at its size
(checked as soon as the replay reaches it).  Of a checkpoint the auditor keeps
only its size and root, never the note: what it holds grows with the entries
replayed (``2n`` hashes), not with what the relay pads its notes with.

The adapter verifies the relay's latest checkpoint first
(:meth:`LogAuditor.verify_latest`) and pages only up to its verified size: an
unsigned claim of a huge log makes the audit fetch nothing.

The adapter then asks :meth:`LogAuditor.proof_requests` which proofs to fetch:
inclusion proofs for the first and the last entry and a sample drawn with the
injected ``rng``, each against a checkpoint that covers it, and the consistency
proof between each pair of consecutive checkpoints, or a sample of pairs (the
first and last always) when there are more than ``sample``.  A proof served is
first verified against the signed roots (``proof-invalid``), then compared with
the one computed locally (``proof-differs``: the relay's proofs agree with its
signatures but not with the entries it serves).

Nothing raises for the relay's faults: each one is a :class:`Problem` with a
stable code in the :class:`AuditReport`.  An entry that is not the next one
(missing, repeated, out of order) or is not well-formed stops the replay, since
no later root could match; the checkpoints beyond it are then reported as
``checkpoint-unchecked`` once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import merkle, primitives
from .checkpoint import (
    Checkpoint,
    LogKey,
    NoteSignature,
    VerifiedCheckpoint,
    WitnessKey,
    cosigned_message,
    parse_note,
    verify_checkpoint,
)
from .errors import (
    BadSignature,
    InvalidProof,
    NcbRelayError,
    ProtocolError,
    UnknownKey,
    UsageError,
)

__all__ = [
    "ENTRY_KINDS",
    "MAX_PROBLEMS",
    "PROBLEM_CODES",
    "AuditReport",
    "LogAuditor",
    "Problem",
    "ProofRequests",
    "ServedEntry",
]

ENTRY_KINDS = ("envelope", "directory")
MAX_PROBLEMS = 1000  # problems kept in a report; the rest are only counted
_ED25519_BYTES = 64
_MAX_TIMESTAMP = 2**63 - 1  # LOG-10

PROBLEM_CODES: dict[str, str] = {
    "entry-order": "an entry is not the next one (missing, repeated or out of order)",
    "entry-invalid": "an entry of an unknown kind, or whose hash is not 32 bytes",
    "entries-short": "fewer entries served than the latest checkpoint covers",
    "checkpoint-invalid": "a checkpoint whose log signature or format does not verify",
    "checkpoint-order": "a checkpoint not larger than the one before it",
    "checkpoint-root": "a checkpoint's root differs from the root of the entries served",
    "checkpoint-unchecked": "checkpoints beyond the point where the replay stopped",
    "latest-differs": "the latest checkpoint served is not the one of its size in the list",
    "witness-invalid": "a witness cosignature that does not verify",
    "witness-not-valid": "a cosignature by a witness key not valid at its time",
    "witness-threshold": "fewer witness cosignatures than required",
    "proof-invalid": "a proof served that does not verify against the signed roots",
    "proof-differs": "a proof served that verifies but differs from the one computed",
    "fetch-failed": "the relay did not answer a request of the audit",
    "no-checkpoint": "the relay has no signed checkpoint",
}


@dataclass(frozen=True, slots=True)
class ServedEntry:
    """One log entry as the relay serves it: its index, its kind and its 32-byte hash."""

    index: int
    kind: str
    hash: bytes


def _claimed_size(note: bytes) -> int | None:
    """The size a note that did not verify claims, if its text parses (LOG-31: where)."""
    try:
        return Checkpoint.parse(parse_note(note).text).size
    except NcbRelayError:
        return None


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault found: a code of :data:`PROBLEM_CODES`, what was wrong and where."""

    code: str
    message: str
    index: int | None = None  # the entry concerned
    size: int | None = None  # the checkpoint (tree size) concerned
    error: str | None = None  # the library error code behind it, if any

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"code": self.code, "message": self.message}
        for name in ("index", "size", "error"):
            value = getattr(self, name)
            if value is not None:
                shown[name] = value
        return shown

    def line(self) -> str:
        where = "".join(
            f" {name} {value}"
            for name, value in (("index", self.index), ("size", self.size))
            if value is not None
        )
        error = f" ({self.error})" if self.error else ""
        return f"{self.code}{where}: {self.message}{error}"


@dataclass(frozen=True, slots=True)
class ProofRequests:
    """The proofs to fetch from the relay: ``(index, size)`` and ``(old, new)`` pairs."""

    inclusion: tuple[tuple[int, int], ...]
    consistency: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class AuditReport:
    """What an audit found; ``ok`` when no problem was found."""

    log: str
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    entries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTRY_KINDS, 0))
    checkpoints: int = 0
    checkpoints_checked: int = 0
    inclusion_proofs: int = 0
    consistency_proofs: int = 0
    cosignatures: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problems_omitted: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.problems_omitted

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "ok": self.ok,
            "size": self.size,
            "root": self.root.hex(),
            "entries": dict(self.entries),
            "checkpoints": self.checkpoints,
            "checkpointsChecked": self.checkpoints_checked,
            "inclusionProofs": self.inclusion_proofs,
            "consistencyProofs": self.consistency_proofs,
            "cosignatures": dict(sorted(self.cosignatures.items())),
            "problems": [p.to_json() for p in self.problems],
            "problemsOmitted": self.problems_omitted,
        }

    def text(self) -> str:
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.entries.items())
        lines = [
            f"log {self.log}: {'OK' if self.ok else 'PROBLEMS FOUND'}",
            f"  size        {self.size}",
            f"  root        {self.root.hex()}",
            f"  entries     {sum(self.entries.values())} ({kinds})",
            f"  checkpoints {self.checkpoints_checked} of {self.checkpoints} checked",
            f"  proofs      {self.inclusion_proofs} inclusion, "
            f"{self.consistency_proofs} consistency",
        ]
        for name, count in sorted(self.cosignatures.items()):
            lines.append(f"  witness     {name}: {count} checkpoint{'' if count == 1 else 's'}")
        total = len(self.problems) + self.problems_omitted
        if total:
            lines.append(f"  problems    {total}")
            lines.extend(f"    {p.line()}" for p in self.problems)
            if self.problems_omitted:
                lines.append(f"    ... and {self.problems_omitted} more")
        return "\n".join(lines)


class _Nodes:
    """Every perfect subtree root of the replayed tree, one packed hash array per level."""

    __slots__ = ("levels",)

    def __init__(self) -> None:
        self.levels: list[bytearray] = []

    def add(self, completed: Sequence[tuple[int, int, bytes]]) -> None:
        for level, _index, digest in completed:  # in index order on each level
            if level == len(self.levels):
                self.levels.append(bytearray())
            self.levels[level] += digest

    def node(self, level: int, index: int) -> bytes:
        start = index * merkle.HASH_BYTES
        return bytes(self.levels[level][start : start + merkle.HASH_BYTES])

    def root(self, size: int) -> bytes:
        """The root of the first ``size`` leaves: their perfect subtrees folded from the right."""
        parts, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                parts.append(self.node(level, start >> level))
                start += 1 << level
        if not parts:
            return merkle.EMPTY_ROOT
        root = parts[-1]
        for left in reversed(parts[:-1]):
            root = merkle.node_hash(left, root)
        return root


class LogAuditor:
    """Replays one relay's log, fed entries, checkpoints and proofs; see the module docstring."""

    def __init__(
        self,
        *,
        log_keys: Sequence[LogKey],
        witnesses: Sequence[WitnessKey] = (),
        threshold: int = 0,
        witness_valid_at: Callable[[WitnessKey, int], bool] | None = None,
    ) -> None:
        """``witness_valid_at(key, t)`` says whether ``key`` may cosign at ``t`` (the time a
        cosignature states); without it every key given may cosign at any time."""
        if not log_keys or len({k.name for k in log_keys}) != 1:
            raise UsageError("give the log's key(s), all under the log's name")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise UsageError("the threshold is a non-negative integer")
        if threshold > len({w.public_key for w in witnesses}):
            raise UsageError("the threshold exceeds the number of distinct witness keys")
        self.log_keys = tuple(log_keys)
        self.witnesses = tuple(witnesses)
        self.threshold = threshold
        self._witness_valid_at = witness_valid_at
        self._known = {(w.name, w.key_id): w for w in self.witnesses}
        self.report = AuditReport(log=self.log_keys[0].name)
        self._tree = merkle.CompactTree()
        self._nodes = _Nodes()
        self._stopped: int | None = None  # the index where the replay stopped
        self._sizes: list[int] = []  # of the checkpoints signed by the log, increasing
        self._roots: dict[int, bytes] = {}  # their roots by size
        self._pending: deque[int] = deque()  # sizes beyond the replay so far
        self._last_size = -1

    @property
    def size(self) -> int:
        """The number of entries replayed."""
        return self._tree.size

    @property
    def checkpoints(self) -> tuple[tuple[int, bytes], ...]:
        """The size and root of each checkpoint whose log signature verified, by size."""
        return tuple((size, self._roots[size]) for size in self._sizes)

    def _problem(self, problem: Problem) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(problem)
        else:
            self.report.problems_omitted += 1

    # --- entries ---------------------------------------------------------------------------------

    def add_entries(self, entries: Sequence[ServedEntry]) -> None:
        """Replay a page of entries, which must continue exactly where the last one ended."""
        for entry in entries:
            if self._stopped is not None:
                return
            index = self._tree.size
            if entry.index != index:
                self._stop(
                    Problem(
                        "entry-order",
                        f"entry {entry.index} served where {index} was due",
                        index=index,
                    )
                )
                return
            if (
                entry.kind not in ENTRY_KINDS
                or not isinstance(entry.hash, bytes)
                or len(entry.hash) != merkle.HASH_BYTES
            ):
                self._stop(
                    Problem("entry-invalid", "the entry is not a kind and a hash", index=index)
                )
                return
            self._nodes.add(self._tree.append(merkle.leaf_hash(entry.hash)))
            self.report.entries[entry.kind] += 1
            while self._pending and self._pending[0] <= self._tree.size:
                self._check_root(self._pending.popleft())

    def _stop(self, problem: Problem) -> None:
        self._problem(problem)
        self._stopped = self._tree.size

    # --- checkpoints -----------------------------------------------------------------------------

    def add_checkpoints(self, notes: Sequence[bytes]) -> None:
        """Verify a page of signed checkpoints, in increasing size."""
        for note in notes:
            self.report.checkpoints += 1
            checkpoint = self._verify_log(note)
            if checkpoint is None:
                continue
            size = checkpoint.size
            if size <= self._last_size:
                self._problem(
                    Problem(
                        "checkpoint-order",
                        f"a checkpoint of size {size} after one of size {self._last_size}",
                        size=size,
                    )
                )
                continue
            self._last_size = size
            self._sizes.append(size)
            self._roots[size] = checkpoint.root
            self._count_witnesses(note, size)
            if size <= self._tree.size:
                self._check_root(size)
            else:
                self._pending.append(size)

    def verify_latest(self, note: bytes, *, log_keys: Sequence[LogKey] = ()) -> int | None:
        """The size of the relay's latest checkpoint once its log signature verified.

        ``log_keys`` are the keys valid now (default: the auditor's).  The
        adapter pages up to this size only; None (reported as
        ``checkpoint-invalid``) if the note does not verify.
        """
        if any(key.name != self.log_keys[0].name for key in log_keys):
            raise UsageError("give the log's key(s), all under the log's name")
        checkpoint = self._verify_log(note, log_keys or self.log_keys)
        return None if checkpoint is None else checkpoint.size

    def check_latest(self, note: bytes) -> None:
        """Check that the relay's latest checkpoint is the one of its size in the list it served."""
        latest = self._verify_log(note)
        if latest is None:
            return
        listed = self._roots.get(latest.size)
        if listed is None or listed != latest.root:
            what = (
                "is not in the list" if listed is None else "has another root than the listed one"
            )
            self._problem(
                Problem("latest-differs", f"the latest checkpoint {what}", size=latest.size)
            )

    def _verify_log(
        self, note: bytes, log_keys: Sequence[LogKey] = ()
    ) -> VerifiedCheckpoint | None:
        """The checkpoint, its log signature verified (once, by the first log key that
        signed it); None, reported, if no log key verifies it."""
        failure: NcbRelayError | None = None
        for key in log_keys or self.log_keys:
            try:
                return verify_checkpoint(note, log=key)
            except ProtocolError as exc:
                if failure is None or isinstance(failure, UnknownKey):
                    failure = exc
        assert failure is not None
        self._problem(
            Problem(
                "checkpoint-invalid",
                f"the checkpoint does not verify: {failure.message}",
                size=_claimed_size(note),
                error=failure.code,
            )
        )
        return None

    def _count_witnesses(self, note: bytes, size: int) -> None:
        """Verify each cosignature by a known witness key once, apart from the others."""
        if not self._known:
            return
        parsed = parse_note(note)  # it parsed as the log's signature was verified
        cosigned: set[str] = set()
        keys: set[bytes] = set()
        for line in parsed.signatures:
            witness = self._known.get((line.name, line.key_id))
            if witness is None:
                continue
            problem = self._check_cosignature(parsed.text, line, witness, size)
            if problem is not None:
                self._problem(problem)
                continue
            cosigned.add(witness.name)
            keys.add(witness.public_key.raw)
        for name in cosigned:
            self.report.cosignatures[name] = self.report.cosignatures.get(name, 0) + 1
        if len(keys) < self.threshold:
            self._problem(
                Problem(
                    "witness-threshold",
                    f"{len(keys)} of the {self.threshold} witness cosignatures required",
                    size=size,
                )
            )

    def _check_cosignature(
        self, text: bytes, line: NoteSignature, witness: WitnessKey, size: int
    ) -> Problem | None:
        """None if ``line`` is ``witness``'s valid cosignature of ``text`` (LOG-10), or why not."""
        signature = line.signature
        if len(signature) != 8 + _ED25519_BYTES:
            return _bad_cosignature(witness, size, "a cosignature has the wrong length")
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return _bad_cosignature(witness, size, "a cosignature's time is above 2**63 - 1")
        valid_at = self._witness_valid_at
        if valid_at is not None and not valid_at(witness, timestamp):
            return Problem(
                "witness-not-valid",
                f"{witness.name}'s key may not cosign at {timestamp} (revoked, suspended or "
                "outside its window then)",
                size=size,
            )
        try:
            witness.public_key.verify(cosigned_message(text, timestamp), signature[8:])
        except BadSignature as exc:
            return _bad_cosignature(witness, size, exc.message)
        return None

    def _check_root(self, size: int) -> None:
        self.report.checkpoints_checked += 1
        computed = self._nodes.root(size)
        signed = self._roots[size]
        if not primitives.constant_time_equal(computed, signed):
            self._problem(
                Problem(
                    "checkpoint-root",
                    f"signed root {signed.hex()}, entries give {computed.hex()}",
                    size=size,
                )
            )

    # --- proofs ----------------------------------------------------------------------------------

    def proof_requests(self, rng: primitives.RandomSource, *, sample: int) -> ProofRequests:
        """The proofs to ask the relay for, drawn with ``rng``; call after the replay."""
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
            raise UsageError("the sample is a non-negative integer")
        sizes = [size for size in self._sizes if 0 < size <= self._tree.size]
        if not sizes:
            return ProofRequests((), ())
        last = sizes[-1]
        wanted = {0, last - 1} | {_below(rng, last) for _ in range(sample)}
        inclusion = []
        for index in sorted(wanted):
            first = _first_above(sizes, index)
            inclusion.append((index, sizes[first + _below(rng, len(sizes) - first)]))
        pairs = [(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        if len(pairs) > max(sample, 2):
            chosen = {0, len(pairs) - 1} | {_below(rng, len(pairs)) for _ in range(sample)}
            pairs = [pairs[i] for i in sorted(chosen)]
        return ProofRequests(tuple(inclusion), tuple(pairs))

    def _signed(self, size: int) -> bytes | None:
        """The root the log signed for ``size``, if it signed one."""
        return self._roots.get(size)

    def check_inclusion(self, index: int, size: int, proof: Sequence[bytes]) -> None:
        """Check the relay's inclusion proof of entry ``index`` in its checkpoint of ``size``."""
        root = self._signed(size)
        if root is None or not 0 <= index < size <= self._tree.size:
            raise UsageError("ask only for the proofs proof_requests() names")
        self.report.inclusion_proofs += 1
        leaf = self._nodes.node(0, index)
        try:
            merkle.verify_inclusion(leaf, index, size, proof, root)
        except InvalidProof as exc:
            self._problem(
                Problem("proof-invalid", f"inclusion: {exc.message}", index, size, exc.code)
            )
            return
        if list(proof) != merkle.inclusion_proof(index, size, self._nodes.node):
            self._problem(
                Problem("proof-differs", "the inclusion proof is not the one computed", index, size)
            )

    def check_consistency(self, old: int, new: int, proof: Sequence[bytes]) -> None:
        """Check the relay's consistency proof between its checkpoints of ``old`` and ``new``."""
        before, after = self._signed(old), self._signed(new)
        if before is None or after is None or not old < new <= self._tree.size:
            raise UsageError("ask only for the proofs proof_requests() names")
        self.report.consistency_proofs += 1
        try:
            merkle.verify_consistency(old, new, before, after, proof)
        except InvalidProof as exc:
            self._problem(
                Problem(
                    "proof-invalid", f"consistency from {old}: {exc.message}", None, new, exc.code
                )
            )
            return
        if list(proof) != merkle.consistency_proof(old, new, self._nodes.node):
            self._problem(
                Problem(
                    "proof-differs",
                    f"the consistency proof from {old} is not the one computed",
                    None,
                    new,
                )
            )

    def fetch_failed(self, what: str, error: NcbRelayError) -> None:
        """Record that the relay did not answer a request of the audit (the adapter's report)."""
        self._problem(Problem("fetch-failed", f"{what}: {error.message}", error=error.code))

    # --- the end ---------------------------------------------------------------------------------

    def finish(self) -> AuditReport:
        """The report: what was replayed, and the problems the end of the replay shows."""
        report = self.report
        latest = self._sizes[-1] if self._sizes else None
        if latest is None:
            if self._tree.size:
                self._problem(Problem("no-checkpoint", "the log has entries but no checkpoint"))
        elif self._pending:
            if self._stopped is not None:
                self._problem(
                    Problem(
                        "checkpoint-unchecked",
                        f"{len(self._pending)} checkpoint(s) beyond entry {self._stopped}, "
                        "where the replay stopped",
                        size=self._pending[0],
                    )
                )
            else:
                self._problem(
                    Problem(
                        "entries-short",
                        f"{self._tree.size} entries served, the checkpoint covers {latest}",
                        size=latest,
                    )
                )
            self._pending.clear()
        report.size = self._tree.size
        report.root = self._tree.root()
        return report


def _bad_cosignature(witness: WitnessKey, size: int, why: str) -> Problem:
    return Problem("witness-invalid", f"{witness.name}: {why}", size=size, error=BadSignature.code)


def _below(rng: primitives.RandomSource, bound: int) -> int:
    """A uniform integer in ``[0, bound)`` drawn from ``rng`` (rejection sampling)."""
    if bound <= 1:
        return 0
    bits = (bound - 1).bit_length()
    while True:
        value = int.from_bytes(rng((bits + 7) // 8), "big") >> (-bits % 8)
        if value < bound:
            return value


def _first_above(sizes: Sequence[int], index: int) -> int:
    """The position of the first size above ``index`` in increasing ``sizes`` (one exists)."""
    low, high = 0, len(sizes) - 1
    while low < high:
        middle = (low + high) // 2
        if sizes[middle] > index:
            high = middle
        else:
            low = middle + 1
    return low
