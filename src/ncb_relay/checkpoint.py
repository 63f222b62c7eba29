"""Signed checkpoints of the relay's log, and a client's view of the log (spec/log.md).

Theory of operation
-------------------
A checkpoint is a C2SP signed note (c2sp.org/signed-note) whose text is the
C2SP checkpoint body (c2sp.org/tlog-checkpoint): the log's origin, the tree
size and the base64 root hash, one per line, then optional extension lines.
The log signs the exact text with Ed25519 (signature type 0x01); witnesses add
timestamped cosignatures (type 0x04, c2sp.org/tlog-cosignature) over
``cosignature/v1``, a time line and the same text.  A signature line names its
key by a name and a 4-byte key id; a verifier checks every line whose name and
id match a key it knows and ignores the others, as the note format requires.

The text never contains a NUL byte, while every other message an ncb_relay key
signs starts with a label that ends in one (spec/protocol.md), so a checkpoint
signature can never be taken for another kind of signature, nor the reverse.

:func:`verify_checkpoint` is the only way to get a :class:`VerifiedCheckpoint`.
A :class:`LogView` holds two checkpoints of one log (LOG-12): the largest it
has verified by the log's key and proven consistent (:attr:`LogView.observed`),
against which every later checkpoint is checked in both directions, and the
largest that also had the witness cosignatures required (:attr:`LogView.latest`).
Without a witness threshold they are the same.  A checkpoint that contradicts
the one observed raises :class:`~ncb_relay.errors.LogFork` carrying both signed
notes, and the view keeps them in :attr:`LogView.forks` (a bounded set:
the first fork and every fork that proves itself are kept).
:meth:`LogView.check` also takes an older checkpoint, such as the one a relay
returns with a receipt, when a consistency proof joins it to the one observed
(LOG-12, LOG-18).  A log may have several keys over time (its signing key is
rotated in the directory): a view verifies new checkpoints with the keys
current now and the checkpoints it holds with any key listed for the log.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from . import merkle, primitives
from ._construct import NoPublicConstructor
from .errors import (
    BadSignature,
    BelowThreshold,
    BindingMismatch,
    InvalidProof,
    LimitExceeded,
    LogFork,
    MalformedInput,
    UnknownKey,
    UsageError,
)
from .identity import Signer, SigningPublicKey

__all__ = [
    "COSIGNATURE_HEADER",
    "LOG_SIGNATURE_TYPE",
    "WITNESS_SIGNATURE_TYPE",
    "Checkpoint",
    "CheckpointLimits",
    "LogKey",
    "LogView",
    "NoteSignature",
    "SignedNote",
    "VerifiedCheckpoint",
    "WitnessKey",
    "cosign_checkpoint",
    "cosigned_message",
    "note_key_id",
    "parse_note",
    "sign_checkpoint",
    "verify_checkpoint",
]

LOG_SIGNATURE_TYPE = 0x01  # Ed25519 over the note text (signed-note)
WITNESS_SIGNATURE_TYPE = 0x04  # timestamped Ed25519 cosignature (tlog-cosignature)
COSIGNATURE_HEADER = b"cosignature/v1\n"
_DASH = "\u2014 "
_MAX_TIMESTAMP = 2**63 - 1
_ED25519_BYTES = primitives.SIGNATURE_BYTES
_LINE_CONTROL = re.compile("[\x00-\x1f\x7f]")  # LOG-6: no control character in a line
_NOTE_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # LOG-8: none but the newline


@dataclass(frozen=True, slots=True)
class CheckpointLimits:
    """Bounds checked before anything is decoded (LOG-8)."""

    max_bytes: int = 16 * 1024
    max_signatures: int = 32
    max_origin_bytes: int = 256
    max_name_bytes: int = 256
    max_extension_lines: int = 8
    max_line_bytes: int = 1024


DEFAULT_LIMITS = CheckpointLimits()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict standard base64 with padding: exactly one encoding per byte string."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise MalformedInput(f"{what} is not standard base64") from exc
    if _b64(data) != text:
        raise MalformedInput(f"{what} is not in canonical base64")
    return data


def _check_line(line: str, what: str, limit: int) -> None:
    if not line:
        raise MalformedInput(f"{what} is empty")
    try:
        encoded = line.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise MalformedInput(f"{what} is not UTF-8 text") from exc
    if len(encoded) > limit:
        raise LimitExceeded(f"{what} is too long")
    if _LINE_CONTROL.search(line):
        raise MalformedInput(f"{what} contains a control character")


def _check_name(name: str, what: str, limit: int) -> None:
    _check_line(name, what, limit)
    if any(ch.isspace() or ch == "+" for ch in name):
        raise MalformedInput(f"{what} contains a space or '+'")


def note_key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` (signed-note key ids)."""
    return primitives.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key)[
        :4
    ]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size and root, and opaque extension lines (LOG-6)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            _check_name(self.origin, "the origin", DEFAULT_LIMITS.max_origin_bytes)
            for line in self.extensions:
                _check_line(line, "an extension line", DEFAULT_LIMITS.max_line_bytes)
        except (MalformedInput, LimitExceeded) as exc:
            raise UsageError(exc.message) from None
        if len(self.extensions) > DEFAULT_LIMITS.max_extension_lines:
            raise UsageError("too many extension lines")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise UsageError("the size is an integer")
        if not 0 <= self.size <= merkle.MAX_TREE_SIZE:
            raise UsageError("the size must be from 0 to 2**63 - 1")
        if not isinstance(self.root, bytes) or len(self.root) != merkle.HASH_BYTES:
            raise UsageError("the root is a 32-byte hash")
        if self.size == 0 and self.root != merkle.EMPTY_ROOT:
            raise UsageError("an empty tree has the root SHA-256('')")

    def text(self) -> bytes:
        """The note text: every line ended by a newline."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, text: bytes, limits: CheckpointLimits = DEFAULT_LIMITS) -> Checkpoint:
        """Parse a note text strictly; raise MalformedInput or LimitExceeded."""
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedInput("the checkpoint is not UTF-8") from exc
        if not decoded.endswith("\n"):
            raise MalformedInput("the checkpoint text does not end in a newline")
        lines = decoded[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedInput("a checkpoint has an origin, a size and a root")
        origin, size_text, root_text, *extensions = lines
        _check_name(origin, "the origin", limits.max_origin_bytes)
        if len(extensions) > limits.max_extension_lines:
            raise LimitExceeded("too many extension lines")
        for line in extensions:
            _check_line(line, "an extension line", limits.max_line_bytes)
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text != "0" and size_text.startswith("0"))
            or len(size_text) > 19
        ):
            raise MalformedInput("the size is not a decimal number without leading zeros")
        size = int(size_text)
        if size > merkle.MAX_TREE_SIZE:
            raise MalformedInput("the size is above 2**63 - 1")
        root = _unb64(root_text, "the root hash")
        if len(root) != merkle.HASH_BYTES:
            raise MalformedInput("the root hash is not 32 bytes")
        if size == 0 and root != merkle.EMPTY_ROOT:
            raise MalformedInput("an empty tree has the root SHA-256('')")
        return cls(origin, size, root, tuple(extensions))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: a key name, a 4-byte key id and the signature that follows it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> bytes:
        return f"{_DASH}{self.name} {_b64(self.key_id + self.signature)}\n".encode()


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A parsed, unverified signed note: its text and its signature lines."""

    text: bytes
    signatures: tuple[NoteSignature, ...]

    @property
    def data(self) -> bytes:
        return self.text + b"\n" + b"".join(s.line() for s in self.signatures)


def parse_note(data: bytes, limits: CheckpointLimits = DEFAULT_LIMITS) -> SignedNote:
    """Split a signed note into its text and signature lines, checking LOG-8; verify nothing."""
    if not isinstance(data, bytes):
        raise UsageError("a signed note is bytes")
    if len(data) > limits.max_bytes:
        raise LimitExceeded("the signed note is too large")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput("the signed note is not UTF-8") from exc
    if _NOTE_CONTROL.search(decoded):
        raise MalformedInput("the signed note contains a control character")
    split = decoded.rfind("\n\n")
    if split < 0 or not decoded.endswith("\n"):
        raise MalformedInput("no blank line before the signatures")
    text, block = decoded[: split + 1], decoded[split + 2 : -1]
    lines = block.split("\n")
    if len(lines) > limits.max_signatures:
        raise LimitExceeded("too many signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise MalformedInput("a signature line does not start with an em dash and a space")
        parts = line[len(_DASH) :].split(" ")
        if len(parts) != 2:
            raise MalformedInput("a signature line is not a name and a signature")
        name, encoded = parts
        _check_name(name, "a key name", limits.max_name_bytes)
        raw = _unb64(encoded, "a signature")
        if len(raw) < 5:
            raise MalformedInput("a signature is shorter than a key id and one byte")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return SignedNote(text.encode("utf-8"), tuple(signatures))


@dataclass(frozen=True, slots=True)
class _NoteKey:
    """A named Ed25519 key of a signed note; ``signature_type`` says what it signs."""

    name: str
    public_key: SigningPublicKey
    signature_type: ClassVar[int]

    def __post_init__(self) -> None:
        try:
            _check_name(self.name, "a key name", DEFAULT_LIMITS.max_name_bytes)
        except (MalformedInput, LimitExceeded) as exc:
            raise UsageError(exc.message) from None

    @property
    def key_id(self) -> bytes:
        return note_key_id(self.name, self.signature_type, self.public_key.raw)


@dataclass(frozen=True, slots=True)
class LogKey(_NoteKey):
    """The log's name (its origin) and the Ed25519 key that signs its checkpoints."""

    signature_type: ClassVar[int] = LOG_SIGNATURE_TYPE


@dataclass(frozen=True, slots=True)
class WitnessKey(_NoteKey):
    """A witness's name and the Ed25519 key of its timestamped cosignatures."""

    signature_type: ClassVar[int] = WITNESS_SIGNATURE_TYPE


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What a witness signs: ``cosignature/v1``, ``time <timestamp>``, then the note text."""
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode("ascii") + text


def sign_checkpoint(checkpoint: Checkpoint, *, log: LogKey, signer: Signer) -> bytes:
    """The signed note of ``checkpoint``, signed by the log (LOG-8)."""
    if signer.public_key != log.public_key:
        raise UsageError("the signer does not hold the log's key")
    if checkpoint.origin != log.name:
        raise UsageError("the checkpoint's origin must be the log's name")
    text = checkpoint.text()
    line = NoteSignature(log.name, log.key_id, signer.sign(text))
    return SignedNote(text, (line,)).data


def cosign_checkpoint(note: bytes, *, witness: WitnessKey, signer: Signer, now: int) -> bytes:
    """``note`` with a cosignature of ``witness`` at time ``now`` appended (LOG-10).

    A witness calls this only after it has verified the log's signature and the
    consistency of the checkpoint with the latest one it cosigned.
    """
    if signer.public_key != witness.public_key:
        raise UsageError("the signer does not hold the witness's key")
    if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now <= _MAX_TIMESTAMP:
        raise UsageError("the time is an integer from 0 to 2**63 - 1")
    parsed = parse_note(note)
    signature = signer.sign(cosigned_message(parsed.text, now))
    line = NoteSignature(witness.name, witness.key_id, now.to_bytes(8, "big") + signature)
    return SignedNote(parsed.text, (*parsed.signatures, line)).data


class VerifiedCheckpoint(metaclass=NoPublicConstructor):
    """A checkpoint whose log signature (and witness quorum) verified.

    ``data`` is the exact signed note; ``cosigned`` maps each known witness
    whose cosignature verified to its timestamp.  Only :func:`verify_checkpoint`
    makes one.
    """

    __slots__ = ("checkpoint", "cosigned", "data")

    def __init__(self, checkpoint: Checkpoint, data: bytes, cosigned: dict[str, int]) -> None:
        self.checkpoint = checkpoint
        self.data = data
        self.cosigned = dict(cosigned)

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root

    def __repr__(self) -> str:
        return f"VerifiedCheckpoint({self.origin!r}, size={self.size}, root={self.root.hex()[:16]})"


def _distinct_witnesses(witnesses: Iterable[WitnessKey]) -> dict[tuple[str, bytes], WitnessKey]:
    return {(w.name, w.key_id): w for w in witnesses}


def _log_keys(log: LogKey | Sequence[LogKey]) -> tuple[LogKey, ...]:
    """One log's keys: at least one, every one a :class:`LogKey` with the same name."""
    keys = (log,) if isinstance(log, LogKey) else tuple(log)
    if not keys or not all(isinstance(key, LogKey) for key in keys):
        raise UsageError("the log is a LogKey or a non-empty sequence of LogKeys")
    if len({key.name for key in keys}) != 1:
        raise UsageError("the keys of one log all have the log's name")
    return tuple(dict.fromkeys(keys))


def verify_checkpoint(
    data: bytes,
    *,
    log: LogKey | Sequence[LogKey],
    witnesses: Sequence[WitnessKey] = (),
    threshold: int = 0,
    limits: CheckpointLimits = DEFAULT_LIMITS,
) -> VerifiedCheckpoint:
    """Verify a signed checkpoint of ``log`` and at least ``threshold`` distinct witnesses.

    ``log`` is the log's key, or several keys of the one log (a rotated
    signing key): a signature line is checked with the key of its key id, and
    one of them must have signed.

    Raises (LOG-6 to LOG-10): ``malformed`` / ``limit-exceeded`` for the format,
    ``binding-mismatch`` if the origin is not the log's name, ``bad-signature``
    if a signature by a known key fails, ``unknown-key`` if the log did not
    sign, ``below-threshold`` if too few distinct witness keys cosigned.
    """
    _check_threshold(threshold, witnesses)
    verified, count = _verify_counting(data, _log_keys(log), witnesses, limits)
    if count < threshold:
        raise BelowThreshold(f"{count} of the {threshold} witness cosignatures required")
    return verified


def _check_threshold(threshold: int, witnesses: Sequence[WitnessKey]) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise UsageError("the threshold is a non-negative integer")
    known = _distinct_witnesses(witnesses)
    if threshold > len({w.public_key for w in known.values()}):
        raise UsageError("the threshold exceeds the number of distinct witness keys")


def _verify_counting(
    data: bytes,
    logs: tuple[LogKey, ...],
    witnesses: Sequence[WitnessKey],
    limits: CheckpointLimits,
) -> tuple[VerifiedCheckpoint, int]:
    """The checkpoint verified by a key of the log, and how many distinct witness keys cosigned."""
    known = _distinct_witnesses(witnesses)
    log_keys = {(key.name, key.key_id): key for key in logs}
    name = logs[0].name
    note = parse_note(data, limits)
    checkpoint = Checkpoint.parse(note.text, limits)
    if checkpoint.origin != name:
        raise BindingMismatch("the checkpoint's origin is not the log's name")
    log_signed = False
    cosigned: dict[str, int] = {}
    cosigning_keys: set[SigningPublicKey] = set()
    for sig in note.signatures:
        if (sig.name, sig.key_id) in log_keys:
            if len(sig.signature) != _ED25519_BYTES:
                raise BadSignature("the log's signature has the wrong length")
            log_keys[sig.name, sig.key_id].public_key.verify(note.text, sig.signature)
            log_signed = True
        elif (sig.name, sig.key_id) in known:
            witness = known[sig.name, sig.key_id]
            if len(sig.signature) != 8 + _ED25519_BYTES:
                raise BadSignature("a cosignature has the wrong length")
            timestamp = int.from_bytes(sig.signature[:8], "big")
            if timestamp > _MAX_TIMESTAMP:
                raise BadSignature("a cosignature's time is above 2**63 - 1")
            witness.public_key.verify(cosigned_message(note.text, timestamp), sig.signature[8:])
            cosigned[witness.name] = timestamp
            cosigning_keys.add(witness.public_key)
    if not log_signed:
        raise UnknownKey("the checkpoint has no signature by the log's key")
    return VerifiedCheckpoint._create(checkpoint, data, cosigned), len(cosigning_keys)


_ForkKey = tuple[int, bytes, int, bytes]  # held size and root, offered size and root


class LogView:
    """A client's view of one log: the checkpoints it holds, and evidence of forks (LOG-12).

    :attr:`observed` is the largest checkpoint verified by the log's key and
    proven consistent with every one observed before; every checkpoint
    offered later must be consistent with it, larger or smaller.
    :attr:`latest` is the largest that also had ``threshold`` witness
    cosignatures; it only moves forward, is never above :attr:`observed`,
    and is the checkpoint held for witness purposes.  With a threshold of 0
    they are one checkpoint.

    ``log`` is the log's key, or its keys valid now (a rotated signing key):
    offered checkpoints must verify with one of them.  ``held_keys`` are
    further keys of the log (keys listed for it, no longer current) that
    verify only the checkpoints passed in as ``latest`` and ``observed``.
    A client persists both (their ``data``) and passes them back when it
    restarts; a held checkpoint that verifies with none of the keys raises
    (:class:`~ncb_relay.errors.UnknownKey`), the view is never silently empty.

    :attr:`forks` keeps at most :attr:`MAX_FORKS` contradictions, each
    (held size and root, offered size and root) once: the first, and every
    one of two roots for one size (it proves a fork on its own), even when
    full; others are dropped when full.
    """

    MAX_FORKS: ClassVar[int] = 64

    __slots__ = (
        "_forks",
        "_latest",
        "_observed",
        "held_keys",
        "limits",
        "logs",
        "threshold",
        "witnesses",
    )

    def __init__(
        self,
        log: LogKey | Sequence[LogKey],
        *,
        witnesses: Sequence[WitnessKey] = (),
        threshold: int = 0,
        latest: bytes | None = None,
        observed: bytes | None = None,
        held_keys: Sequence[LogKey] = (),
        limits: CheckpointLimits = DEFAULT_LIMITS,
    ) -> None:
        self.logs = _log_keys(log)
        self.held_keys = _log_keys((*self.logs, *held_keys))
        self.witnesses = tuple(witnesses)
        self.threshold = threshold
        self.limits = limits
        self._forks: dict[_ForkKey, LogFork] = {}  # in the order seen
        self._latest = None if latest is None else self._verify_held(latest, threshold)
        self._observed = self._latest if observed is None else self._verify_held(observed, 0)
        if self._latest is not None and self._observed is not None:
            below = self._observed.size < self._latest.size
            if below or (
                self._observed.size == self._latest.size
                and self._observed.root != self._latest.root
            ):
                raise UsageError("the checkpoint observed must extend the latest one")

    @property
    def log(self) -> LogKey:
        """The log's newest key (the first of :attr:`logs`)."""
        return self.logs[0]

    def _verify_held(self, data: bytes, threshold: int) -> VerifiedCheckpoint:
        return verify_checkpoint(
            data,
            log=self.held_keys,
            witnesses=self.witnesses,
            threshold=threshold,
            limits=self.limits,
        )

    def _verify(self, data: bytes) -> VerifiedCheckpoint:
        return verify_checkpoint(
            data,
            log=self.logs,
            witnesses=self.witnesses,
            threshold=self.threshold,
            limits=self.limits,
        )

    @property
    def latest(self) -> VerifiedCheckpoint | None:
        """The largest checkpoint held with the witness cosignatures required."""
        return self._latest

    @property
    def observed(self) -> VerifiedCheckpoint | None:
        """The largest checkpoint verified by the log's key and proven consistent."""
        return self._observed

    @property
    def forks(self) -> tuple[LogFork, ...]:
        """The contradictions kept, each with both signed checkpoints (LOG-13), oldest first."""
        return tuple(self._forks.values())

    def _fork(self, reason: str, offered: VerifiedCheckpoint, proof: Sequence[bytes]) -> LogFork:
        held = self._observed
        assert held is not None
        error = LogFork(
            f"the log {self.log.name} forked: {reason}",
            held=held.data,
            offered=offered.data,
            reason=reason,
            proof=tuple(proof),
        )
        self._keep(error, (held.size, held.root, offered.size, offered.root))
        return error

    def _keep(self, fork: LogFork, key: _ForkKey) -> None:
        """Keep ``fork`` as evidence, once, within :attr:`MAX_FORKS` (see the class)."""
        if key in self._forks:
            return
        if len(self._forks) >= self.MAX_FORKS:
            if key[0] != key[2]:
                return  # not a fork on its own: the evidence kept is enough
            # make room by the newest fork that is not the first and proves nothing alone
            spare = [k for k in list(self._forks)[1:] if k[0] != k[2]]
            if not spare:
                return
            del self._forks[spare[-1]]
        self._forks[key] = fork

    def _witnessed(self, offered: VerifiedCheckpoint, enough: bool) -> None:
        """Make ``offered`` (consistent with the one observed) the latest if it is witnessed
        and larger, or of the same size with more cosignatures."""
        latest = self._latest
        if not enough:
            return
        if (
            latest is None
            or offered.size > latest.size
            or (offered.size == latest.size and len(offered.cosigned) > len(latest.cosigned))
        ):
            self._latest = latest = offered
        observed = self._observed
        if observed is not None and observed.size == latest.size:
            self._observed = latest  # the same tree head, witnessed

    def update(self, data: bytes, proof: Sequence[bytes] = ()) -> VerifiedCheckpoint:
        """Verify ``data`` and, if it extends the checkpoint observed by ``proof``, hold it.

        The forward-only form, for a client that only asks for newer
        checkpoints: the note must meet the witness threshold, ``proof`` runs
        from the size observed to the offered one, and a smaller checkpoint is
        always refused as a fork.  :meth:`check` is the general form, which
        accepts a smaller checkpoint with a proof to the one observed.

        Returns the latest checkpoint after the update.  Raises what
        :func:`verify_checkpoint` raises for a bad note (nothing is recorded),
        and :class:`LogFork` for a validly signed checkpoint that contradicts the
        one observed: smaller, the same size with another root, or not proven
        consistent.  The checkpoints held do not change then.
        """
        offered = self._verify(data)
        held = self._observed
        if held is None:
            self._latest = self._observed = offered
            return offered
        if offered.size < held.size:
            raise self._fork("a smaller tree than the one held", offered, proof)
        if offered.size == held.size:
            if offered.root != held.root:
                raise self._fork("two roots for the same size", offered, proof)
            if proof:
                raise InvalidProof("a checkpoint of the same size needs an empty proof")
            self._witnessed(offered, True)
            assert self._latest is not None
            return self._latest
        try:
            merkle.verify_consistency(held.size, offered.size, held.root, offered.root, proof)
        except InvalidProof as exc:
            raise self._fork("no valid consistency proof", offered, proof) from exc
        self._latest = self._observed = offered
        return offered

    def check(self, data: bytes, proof: Sequence[bytes] = ()) -> VerifiedCheckpoint:
        """Verify ``data`` by the log's key and check it against the checkpoint observed.

        This is LOG-12 and LOG-13 for a checkpoint of any size, such as the one a
        relay returns with a receipt.  The note must verify by a current key of
        the log (witness cosignatures are verified and counted, but no
        threshold applies here), then, with the checkpoint observed:

        - larger: ``proof`` is the consistency proof from the size observed to
          the offered one; the offered checkpoint becomes the one observed;
        - the same size: the roots must be equal and ``proof`` empty;
        - smaller: ``proof`` is the consistency proof from the offered size to
          the one observed.

        With nothing observed, the offered checkpoint becomes the one observed.
        A checkpoint consistent with the one observed is consistent with the
        latest too (both are in the tree observed); it becomes the latest if it
        has the view's witness threshold and is larger (or of the same size
        with more cosignatures).  Returns the offered checkpoint, verified and
        consistent.  Raises what :func:`verify_checkpoint` raises for a bad
        note, :class:`InvalidProof` for a non-empty proof with a checkpoint of
        the size observed (nothing is recorded), and :class:`LogFork` (kept in
        :attr:`forks`) for two roots of one size or a missing or invalid proof.
        """
        if isinstance(proof, (bytes, str)) or not isinstance(proof, Sequence):
            raise UsageError("the proof is a sequence of hashes")
        offered, count = _verify_counting(data, self.logs, self.witnesses, self.limits)
        enough = count >= self.threshold
        held = self._observed
        if held is None:
            self._observed = offered
        elif offered.size == held.size:
            if offered.root != held.root:
                raise self._fork("two roots for the same size", offered, proof)
            if proof:
                raise InvalidProof("a checkpoint of the same size needs an empty proof")
        else:
            older, newer = (offered, held) if offered.size < held.size else (held, offered)
            try:
                merkle.verify_consistency(older.size, newer.size, older.root, newer.root, proof)
            except InvalidProof as exc:
                raise self._fork("no valid consistency proof", offered, proof) from exc
            if newer is offered:
                self._observed = offered
        self._witnessed(offered, enough)
        return offered
