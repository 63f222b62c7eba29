"""Acceptance receipts: the relay's signed statement that it logged an envelope (spec/log.md).

Theory of operation
-------------------
When a relay accepts an envelope it appends the envelope's ``message_hash``
(ENV-9) to its log (LOG-1) and answers with a *receipt*: the relay's id, the
envelope's message id and hash, the leaf index and the time of acceptance,
signed with the relay's directory signing key under its own label
(:data:`RECEIPT_LABEL`, LOG-15).  The receipt comes with a checkpoint that the
relay signed with the same key as the log ``<relay id>/log`` (LOG-20) and an
inclusion proof of the leaf in that checkpoint's tree.

:func:`verify_receipt` checks all three together, cheapest first, and raises at
the first failure (LOG-17): the sizes, the receipt's encoding, the relay it
names, its key id, its signature, the message it names, the checkpoint's own
signature, then the inclusion proof.  Only a receipt that passed every step
becomes a :class:`VerifiedReceipt`, which has no public constructor.  Whether
the checkpoint is consistent with the one the client holds is the client's
:class:`~ncb_relay.checkpoint.LogView` business (LOG-18); this module does no
I/O and keeps no state.

The signed bytes start with a label that ends in NUL; a checkpoint's text has
no NUL (LOG-14), so a receipt signature can never pass for a checkpoint
signature, nor the reverse, although both come from one key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import codec, merkle, primitives
from ._construct import NoPublicConstructor
from .checkpoint import DEFAULT_LIMITS, LogKey, VerifiedCheckpoint, verify_checkpoint
from .errors import (
    BindingMismatch,
    InvalidProof,
    LimitExceeded,
    MalformedInput,
    NcbRelayError,
    UnknownKey,
    UsageError,
)
from .header import MAX_TIME
from .identity import KEY_ID_BYTES, Signer, SigningPublicKey, check_principal_id

__all__ = [
    "MAX_RECEIPT_BYTES",
    "RECEIPT_LABEL",
    "Receipt",
    "VerifiedReceipt",
    "log_origin",
    "parse_receipt",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_LABEL = b"NCBR/1 acceptance receipt\x00"
MAX_RECEIPT_BYTES = 512
MESSAGE_ID_BYTES = primitives.HASH_BYTES
MESSAGE_HASH_BYTES = primitives.HASH_BYTES
_FIELDS = 7
# the largest receipt is 237 bytes: a 64-byte id, two hashes, two uint64, a key id, a signature;
# the byte bound caps all work, so the codec's other limits stay at their defaults (CODEC-7)
_LIMITS = codec.CodecLimits(max_bytes=MAX_RECEIPT_BYTES)


def log_origin(relay_id: str) -> str:
    """The name (checkpoints' origin) of the log of relay ``relay_id``: ``<id>/log`` (LOG-20)."""
    check_principal_id(relay_id, error=UsageError)
    return f"{relay_id}/log"


def _uint(value: object, maximum: int, name: str, error: type[NcbRelayError]) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise error(f"{name} must be an integer from 0 to {maximum}")
    return value


def _bin(value: object, size: int, name: str, error: type[NcbRelayError]) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise error(f"{name} must be {size} bytes")
    return value


def _fields(
    value: Sequence[object], error: type[NcbRelayError]
) -> tuple[str, bytes, bytes, int, int]:
    """Check the five stated fields of LOG-15 in order; raise ``error`` at the first bad one."""
    relay, message_id, message_hash, log_index, accepted_at = value
    return (
        check_principal_id(relay, error=error),
        _bin(message_id, MESSAGE_ID_BYTES, "the message id", error),
        _bin(message_hash, MESSAGE_HASH_BYTES, "the message hash", error),
        _uint(log_index, merkle.MAX_TREE_SIZE - 1, "the log index", error),
        _uint(accepted_at, MAX_TIME, "the acceptance time", error),
    )


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a relay states when it accepts an envelope (LOG-15); building one checks every field."""

    relay: str
    message_id: bytes
    message_hash: bytes
    log_index: int
    accepted_at: int

    def __post_init__(self) -> None:
        _fields(list(self.fields()), UsageError)

    def fields(self) -> tuple[str, bytes, bytes, int, int]:
        return (self.relay, self.message_id, self.message_hash, self.log_index, self.accepted_at)

    def signed_bytes(self, key_id: bytes) -> bytes:
        """What the relay signs (LOG-16): the label, then the fields and the key id, encoded."""
        return RECEIPT_LABEL + codec.encode([*self.fields(), key_id])


def sign_receipt(receipt: Receipt, signer: Signer) -> bytes:
    """The receipt's wire bytes, signed by ``signer`` (the relay's directory signing key)."""
    if not isinstance(receipt, Receipt):
        raise UsageError("a receipt is a Receipt")
    key_id = signer.public_key.key_id
    signature = signer.sign(receipt.signed_bytes(key_id))
    return codec.encode([*receipt.fields(), key_id, signature])  # at most 237 bytes


def parse_receipt(data: bytes) -> tuple[Receipt, bytes, bytes]:
    """Decode a receipt's wire bytes (LOG-15): ``(receipt, key_id, signature)``; verify nothing.

    Raises :class:`LimitExceeded` above :data:`MAX_RECEIPT_BYTES` (before decoding) and
    :class:`MalformedInput` for anything but the canonical array of seven fields.
    """
    if not isinstance(data, bytes):
        raise UsageError("a receipt is bytes")
    if len(data) > MAX_RECEIPT_BYTES:
        raise LimitExceeded(f"a receipt of {len(data)} bytes exceeds {MAX_RECEIPT_BYTES}")
    value = codec.decode(data, limits=_LIMITS)
    if not isinstance(value, list) or len(value) != _FIELDS:
        raise MalformedInput(f"a receipt is an array of {_FIELDS} fields")
    fields = _fields(value[:5], MalformedInput)
    key_id = _bin(value[5], KEY_ID_BYTES, "the key id", MalformedInput)
    signature = _bin(value[6], primitives.SIGNATURE_BYTES, "the signature", MalformedInput)
    return Receipt(*fields), key_id, signature


class VerifiedReceipt(metaclass=NoPublicConstructor):
    """A receipt whose signature, message, checkpoint and inclusion proof all verified.

    ``data`` is the receipt's exact bytes, ``checkpoint`` the verified checkpoint
    whose tree includes the entry and ``inclusion`` the proof.  Only
    :func:`verify_receipt` makes one.
    """

    __slots__ = ("checkpoint", "data", "inclusion", "receipt")

    def __init__(
        self,
        receipt: Receipt,
        data: bytes,
        checkpoint: VerifiedCheckpoint,
        inclusion: tuple[bytes, ...],
    ) -> None:
        self.receipt = receipt
        self.data = data
        self.checkpoint = checkpoint
        self.inclusion = inclusion

    @property
    def log_index(self) -> int:
        return self.receipt.log_index

    def __repr__(self) -> str:
        r = self.receipt
        return (
            f"VerifiedReceipt({r.relay!r}, index={r.log_index}, "
            f"message_id={r.message_id.hex()[:16]}, checkpoint size={self.checkpoint.size})"
        )


def _check_arguments(
    receipt: object,
    checkpoint: object,
    inclusion: object,
    *,
    relay_id: object,
    relay_key: object,
    log: object,
    message_id: object,
    message_hash: object,
) -> None:
    if not isinstance(receipt, bytes) or not isinstance(checkpoint, bytes):
        raise UsageError("the receipt and the checkpoint are bytes")
    if isinstance(inclusion, (bytes, str)) or not isinstance(inclusion, Sequence):
        raise UsageError("the inclusion proof is a sequence of hashes")
    if not isinstance(relay_key, SigningPublicKey):
        raise UsageError("the relay's key is a SigningPublicKey")
    if not isinstance(log, LogKey):
        raise UsageError("the log is a LogKey")
    if log.name != log_origin(check_principal_id(relay_id, error=UsageError)):
        raise UsageError("the log's name must be the relay's log origin, <relay id>/log")
    if log.public_key != relay_key:
        raise UsageError("the log's key must be the relay's signing key (LOG-20)")
    _bin(message_id, MESSAGE_ID_BYTES, "the expected message id", UsageError)
    _bin(message_hash, MESSAGE_HASH_BYTES, "the expected message hash", UsageError)


def verify_receipt(
    receipt: bytes,
    checkpoint: bytes,
    inclusion: Sequence[bytes],
    *,
    relay_id: str,
    relay_key: SigningPublicKey,
    log: LogKey,
    message_id: bytes,
    message_hash: bytes,
) -> VerifiedReceipt:
    """Verify a relay's acceptance of the envelope ``message_id`` / ``message_hash`` (LOG-17).

    ``relay_key`` is the relay's signing key from the directory and ``log`` its
    log key (named ``log_origin(relay_id)``, with that same key: LOG-20; another
    key is a :class:`~ncb_relay.errors.UsageError`).  Raises, in this order:
    ``limit-exceeded`` (receipt or checkpoint too large) or ``invalid-proof``
    (more than 64 proof hashes); ``malformed``; ``binding-mismatch`` (another
    relay); ``unknown-key`` (another key id); ``bad-signature``;
    ``binding-mismatch`` (another message); the errors of
    :func:`~ncb_relay.checkpoint.verify_checkpoint` (no witness threshold here);
    ``invalid-proof`` (the index is not below the checkpoint's size, or the
    proof does not lead to its root).
    """
    _check_arguments(
        receipt,
        checkpoint,
        inclusion,
        relay_id=relay_id,
        relay_key=relay_key,
        log=log,
        message_id=message_id,
        message_hash=message_hash,
    )
    # 1. bounds, before any decoding
    if len(receipt) > MAX_RECEIPT_BYTES:
        raise LimitExceeded(f"a receipt of {len(receipt)} bytes exceeds {MAX_RECEIPT_BYTES}")
    if len(checkpoint) > DEFAULT_LIMITS.max_bytes:
        raise LimitExceeded("the checkpoint is too large")
    if len(inclusion) > merkle.MAX_PROOF_HASHES:
        raise InvalidProof("the inclusion proof has too many hashes")
    # 2. decoding
    stated, key_id, signature = parse_receipt(receipt)
    # 3. the relay it names, 4. the key, 5. the signature
    if stated.relay != relay_id:
        raise BindingMismatch("the receipt names another relay")
    if not primitives.constant_time_equal(key_id, relay_key.key_id):
        raise UnknownKey("the receipt is signed with another key than the relay's")
    relay_key.verify(stated.signed_bytes(key_id), signature)
    # 6. the message it names
    if not (
        primitives.constant_time_equal(stated.message_id, message_id)
        and primitives.constant_time_equal(stated.message_hash, message_hash)
    ):
        raise BindingMismatch("the receipt names another message")
    # 7. the checkpoint, by the log's key alone
    verified = verify_checkpoint(checkpoint, log=log)
    # 8. the entry in the checkpoint's tree
    if stated.log_index >= verified.size:
        raise InvalidProof("the receipt's log index is not below the checkpoint's size")
    proof = tuple(inclusion)
    merkle.verify_inclusion(
        merkle.leaf_hash(stated.message_hash), stated.log_index, verified.size, proof, verified.root
    )
    return VerifiedReceipt._create(stated, receipt, verified, proof)
