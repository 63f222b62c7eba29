"""Documents signed by a threshold of root keys (spec/directory.md, "Signed documents").

Theory of operation.  A trust anchor and a directory version are each a
canonical msgpack map, encoded once; the encoded bytes are what is signed,
hashed and stored, and they are never re-encoded (CODEC-8).  A
:class:`SignedDocument` carries those bytes and a list of root signatures,
each naming the root key by its key id (KEY-2).  Every signature covers
``label || BLAKE2b-256(document, person)``, where the label and the
personalisation depend on the kind of document, so a signature on a directory
can never pass for one on a trust anchor, an envelope or a key endorsement.

Signatures are collected one root key at a time: each holder of a root key
calls :meth:`SignedDocument.sign` on the same document (or signs a copy, and
the copies are combined with :meth:`SignedDocument.merge`), until the
threshold of the trust anchor is met.  Checking is strict: every listed
signature must come from a known root key and verify; a bad signature is an
error even if the others would reach the threshold, so a signed file never
carries garbage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import codec, primitives
from ._fields import strictly_increasing
from .codec import CodecLimits, Value
from .errors import (
    BadSignature,
    BelowThreshold,
    LimitExceeded,
    MalformedInput,
    UnknownKey,
    UsageError,
)
from .identity import KEY_ID_BYTES, Signer, SigningPublicKey

__all__ = [
    "ANCHOR_KIND",
    "DIRECTORY_KIND",
    "MAX_SIGNATURES",
    "DocumentKind",
    "RootSignature",
    "SignedDocument",
]

MAX_SIGNATURES = 64


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """What a signed document is: its type tag, signature label, hash personalisation, limits."""

    type: str
    label: bytes
    person: bytes
    max_bytes: int

    def hash(self, document: bytes) -> bytes:
        """The document's name: what signatures cover and what later versions link to."""
        return primitives.blake2b(document, person=self.person)

    def signed_message(self, document: bytes) -> bytes:
        return self.label + self.hash(document)

    @property
    def outer_limits(self) -> CodecLimits:
        return CodecLimits(
            max_bytes=self.max_bytes + 8 * 1024,
            max_str_bytes=64,
            max_bin_bytes=self.max_bytes,
            max_array_items=MAX_SIGNATURES,
            max_map_items=2,
            max_depth=3,
        )


ANCHOR_KIND = DocumentKind(
    "trust-anchor", b"NCBR/1 trust anchor signature\x00", b"NCBR1 anchor", 64 * 1024
)
DIRECTORY_KIND = DocumentKind(
    "directory", b"NCBR/1 directory signature\x00", b"NCBR1 directory", 16 * 1024 * 1024
)


@dataclass(frozen=True, slots=True)
class RootSignature:
    """One root key's signature: the key's id (KEY-2) and the 64-byte Ed25519 signature."""

    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, bytes) or len(self.key_id) != KEY_ID_BYTES:
            raise UsageError(f"a root key id is {KEY_ID_BYTES} bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise UsageError("a signature is 64 bytes")


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """Document bytes and the root signatures collected on them, sorted by key id."""

    kind: DocumentKind
    document: bytes
    signatures: tuple[RootSignature, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.document, bytes):
            raise UsageError("the document is bytes")
        ordered = tuple(sorted(self.signatures, key=lambda s: s.key_id))
        if len({s.key_id for s in ordered}) != len(ordered):
            raise UsageError("a root key signed twice")
        if len(ordered) > MAX_SIGNATURES:
            raise UsageError(f"at most {MAX_SIGNATURES} signatures")
        object.__setattr__(self, "signatures", ordered)

    @property
    def hash(self) -> bytes:
        return self.kind.hash(self.document)

    @property
    def signer_ids(self) -> tuple[bytes, ...]:
        return tuple(s.key_id for s in self.signatures)

    def sign(self, signer: Signer) -> SignedDocument:
        """This document with one more signature, by ``signer`` (a root key holder)."""
        key_id = signer.public_key.key_id
        if key_id in self.signer_ids:
            raise UsageError(f"root key {key_id.hex()} has already signed")
        signature = signer.sign(self.kind.signed_message(self.document))
        signer.public_key.verify(self.kind.signed_message(self.document), signature)
        return SignedDocument(
            self.kind, self.document, (*self.signatures, RootSignature(key_id, signature))
        )

    def merge(self, other: SignedDocument) -> SignedDocument:
        """The union of the signatures of two copies of the same document."""
        if other.kind != self.kind or other.document != self.document:
            raise UsageError("only copies of the same document can be merged")
        mine = {s.key_id: s for s in self.signatures}
        for s in other.signatures:
            if s.key_id in mine and mine[s.key_id] != s:
                raise UsageError(f"two different signatures by root key {s.key_id.hex()}")
            mine[s.key_id] = s
        return SignedDocument(self.kind, self.document, tuple(mine.values()))

    def encode(self) -> bytes:
        """The signed file, under the same limits as :meth:`decode` (DIR-14).

        Raises :class:`~ncb_relay.errors.LimitExceeded` for a file that a
        reader would refuse.
        """
        if len(self.document) > self.kind.max_bytes:
            raise LimitExceeded(
                f"a {self.kind.type} document is at most {self.kind.max_bytes} bytes"
            )
        signatures: list[Value] = [[s.key_id, s.signature] for s in self.signatures]
        value: Value = {"document": self.document, "signatures": signatures}
        return codec.encode(value, limits=self.kind.outer_limits)

    @classmethod
    def decode(cls, kind: DocumentKind, data: bytes) -> SignedDocument:
        """Parse a signed file (no signature is checked here); raise on any other shape."""
        if not isinstance(data, bytes):
            raise UsageError("a signed document is bytes")
        value = codec.decode(data, limits=kind.outer_limits)
        if not isinstance(value, dict) or set(value) != {"document", "signatures"}:
            raise MalformedInput(f"a signed {kind.type} is a map of document and signatures")
        document, listed = value["document"], value["signatures"]
        if not isinstance(document, bytes) or not isinstance(listed, list):
            raise MalformedInput(f"a signed {kind.type} holds document bytes and an array")
        signatures = []
        for item in listed:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not isinstance(item[0], bytes)
                or len(item[0]) != KEY_ID_BYTES
                or not isinstance(item[1], bytes)
                or len(item[1]) != primitives.SIGNATURE_BYTES
            ):
                raise MalformedInput("a signature is [key id: bin(16), signature: bin(64)]")
            signatures.append(RootSignature(item[0], item[1]))
        ids = [s.key_id for s in signatures]
        if not strictly_increasing(ids):
            raise MalformedInput("signatures must be sorted by key id, each key once")
        return cls(kind, document, tuple(signatures))

    def verify_signers(
        self, roots: Mapping[bytes, SigningPublicKey], *, skip_unknown: bool = False
    ) -> frozenset[bytes]:
        """Check every signature against ``roots`` (key id to key); the ids that signed.

        Raises :class:`UnknownKey` for a signature by a key that is not a root
        here (unless ``skip_unknown``: such signatures are then left out), and
        :class:`~ncb_relay.errors.BadSignature` for one that fails.
        """
        message = self.kind.signed_message(self.document)
        signers = []
        for s in self.signatures:
            key = roots.get(s.key_id)
            if key is None and skip_unknown:
                continue
            if key is None:
                raise UnknownKey(f"{self.kind.type} signed by {s.key_id.hex()}, not a root key")
            try:
                key.verify(message, s.signature)
            except BadSignature as exc:
                raise BadSignature(
                    f"the signature of root key {s.key_id.hex()} on the {self.kind.type} fails"
                ) from exc
            signers.append(s.key_id)
        return frozenset(signers)


def require_threshold(
    signers: Iterable[bytes], roots: Iterable[bytes], threshold: int, what: str
) -> None:
    """Raise :class:`BelowThreshold` unless ``threshold`` distinct ``roots`` are ``signers``."""
    count = len(set(signers) & set(roots))
    if count < threshold:
        raise BelowThreshold(f"{what}: {count} of the required {threshold} root signatures")
