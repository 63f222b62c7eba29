"""Trust anchors: the coordinator's root keys and how they are replaced (spec/directory.md).

Theory of operation.  A trust anchor lists ``n`` root keys (Ed25519) and a
threshold ``k``; a directory version is valid only if ``k`` distinct root keys
of its anchor signed it.  A bureau receives its first anchor out of band and
compares its fingerprint with one read to it by the coordinator; that anchor
is the bureau's root of trust and must carry ``k`` signatures by its own root
keys (proof that the listed keys are held).

The root keys are replaced by a new anchor whose ``previous`` field is the
hash of the anchor it replaces and which carries ``k`` signatures by the old
root keys *and* the new anchor's own threshold of signatures by the new ones.
An :class:`AnchorChain` holds the anchors a verifier has accepted, oldest
first, and only ever grows by one verified successor at a time, so a verifier
follows the rotations from the anchor it received out of band to the newest.
The chain refuses an older anchor (``rollback``), a different anchor with a
serial already held (``fork``) and one that skips a serial or names another
predecessor (``broken-chain``).  Each anchor vouches for the directory
versions issued from its own issue time until the next anchor's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import codec
from ._construct import NoPublicConstructor
from ._fields import Fields, check_text, check_time, strictly_increasing
from .codec import CodecLimits, Value
from .errors import (
    BrokenChain,
    Fork,
    MalformedInput,
    Rollback,
    UnknownKey,
    UnsupportedVersion,
    UsageError,
)
from .identity import SigningPublicKey
from .signatures import ANCHOR_KIND, SignedDocument, require_threshold

__all__ = [
    "ANCHOR_VERSION",
    "MAX_ROOTS",
    "AnchorChain",
    "RootKey",
    "TrustAnchor",
    "VerifiedAnchor",
]

ANCHOR_VERSION = 1
MAX_ROOTS = 32
HASH_BYTES = 32

_LIMITS = CodecLimits(
    max_bytes=ANCHOR_KIND.max_bytes,
    max_str_bytes=256,
    max_bin_bytes=32,
    max_array_items=MAX_ROOTS,
    max_map_items=8,
    max_depth=3,
)


@dataclass(frozen=True, slots=True)
class RootKey:
    """One coordinator root key, with a name that says who holds it."""

    name: str
    key: SigningPublicKey

    def __post_init__(self) -> None:
        check_text(self.name, "a root key's name", UsageError)
        if not isinstance(self.key, SigningPublicKey):
            raise UsageError("a root key is a SigningPublicKey")

    @property
    def key_id(self) -> bytes:
        return self.key.key_id


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """The unsigned content of a trust anchor (ANCHOR-1); roots are kept sorted by key id."""

    serial: int
    issued: int
    previous: bytes | None
    roots: tuple[RootKey, ...]
    threshold: int

    def __post_init__(self) -> None:
        if type(self.serial) is not int or self.serial < 1:
            raise UsageError("an anchor's serial is a positive integer")
        check_time(self.issued, "issued", UsageError)
        if (self.previous is None) != (self.serial == 1):
            raise UsageError("the previous anchor's hash is given exactly when serial > 1")
        if self.previous is not None and (
            not isinstance(self.previous, bytes) or len(self.previous) != HASH_BYTES
        ):
            raise UsageError("previous is a 32-byte hash")
        roots = tuple(sorted(self.roots, key=lambda r: r.key_id))
        if not all(isinstance(r, RootKey) for r in roots) or not 1 <= len(roots) <= MAX_ROOTS:
            raise UsageError(f"an anchor lists 1 to {MAX_ROOTS} RootKey objects")
        if len({r.key_id for r in roots}) != len(roots):
            raise UsageError("a root key is listed twice")
        if type(self.threshold) is not int or not 1 <= self.threshold <= len(roots):
            raise UsageError("the threshold must be between 1 and the number of root keys")
        object.__setattr__(self, "roots", roots)

    @property
    def root_keys(self) -> Mapping[bytes, SigningPublicKey]:
        return {r.key_id: r.key for r in self.roots}

    def to_value(self) -> Value:
        return {
            "issued": self.issued,
            "previous": self.previous,
            "roots": [{"key": r.key.raw, "name": r.name} for r in self.roots],
            "serial": self.serial,
            "threshold": self.threshold,
            "type": ANCHOR_KIND.type,
            "version": ANCHOR_VERSION,
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_value(), limits=_LIMITS)

    @property
    def hash(self) -> bytes:
        return ANCHOR_KIND.hash(self.encode())

    def draft(self) -> SignedDocument:
        """The encoded anchor with no signatures yet, for root key holders to sign."""
        return SignedDocument(ANCHOR_KIND, self.encode())

    def successor(self, *, roots: Iterable[RootKey], threshold: int, issued: int) -> TrustAnchor:
        """The anchor that replaces this one (ROT-7); sign it with both thresholds."""
        if issued <= self.issued:
            raise UsageError("a new anchor is issued after the one it replaces")
        return TrustAnchor(self.serial + 1, issued, self.hash, tuple(roots), threshold)

    @classmethod
    def decode(cls, document: bytes) -> TrustAnchor:
        """Parse anchor bytes; raise :class:`MalformedInput` for every other shape."""
        fields = Fields(codec.decode(document, limits=_LIMITS), "trust anchor")
        if fields.text("type") != ANCHOR_KIND.type:
            raise MalformedInput("not a trust anchor")
        if fields.uint("version") != ANCHOR_VERSION:
            raise UnsupportedVersion("trust anchor version is not 1")
        serial = fields.uint("serial")
        try:
            roots = []
            for item in fields.array("roots"):
                root = Fields(item, "root key")
                roots.append(RootKey(root.text("name"), SigningPublicKey(root.bin("key", 32))))
                root.done()
            ids = [r.key_id for r in roots]
            if not strictly_increasing(ids):
                raise MalformedInput("root keys must be sorted by key id, each key once")
            anchor = cls(
                serial,
                fields.time("issued"),
                fields.optional_bin("previous", HASH_BYTES),
                tuple(roots),
                fields.uint("threshold"),
            )
        except UsageError as exc:
            raise MalformedInput(f"trust anchor: {exc.message}") from exc
        fields.done()
        return anchor

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "issued": self.issued,
            "previous": self.previous.hex() if self.previous else None,
            "threshold": self.threshold,
            "roots": [
                {"name": r.name, "key": r.key.raw.hex(), "keyId": r.key_id.hex()}
                for r in self.roots
            ],
            "hash": self.hash.hex(),
        }


class VerifiedAnchor(metaclass=NoPublicConstructor):
    """A trust anchor whose signatures were checked; only an :class:`AnchorChain` makes one."""

    __slots__ = ("anchor", "hash", "signed")

    def __init__(self, anchor: TrustAnchor, signed: SignedDocument) -> None:
        self.anchor = anchor
        self.signed = signed
        self.hash = signed.hash

    @property
    def serial(self) -> int:
        return self.anchor.serial

    @property
    def issued(self) -> int:
        return self.anchor.issued

    @property
    def data(self) -> bytes:
        return self.signed.encode()

    def __repr__(self) -> str:
        return f"VerifiedAnchor(serial={self.serial}, hash={self.hash.hex()[:16]})"


def _parse(data: bytes) -> tuple[TrustAnchor, SignedDocument]:
    signed = SignedDocument.decode(ANCHOR_KIND, data)
    return TrustAnchor.decode(signed.document), signed


class AnchorChain:
    """The trust anchors a verifier accepted, oldest first; immutable, grows by ``extend``."""

    __slots__ = ("_anchors",)

    def __init__(self, anchors: tuple[VerifiedAnchor, ...]) -> None:
        if not anchors or not all(isinstance(a, VerifiedAnchor) for a in anchors):
            raise UsageError("use AnchorChain.trust to start a chain")
        self._anchors = anchors

    @classmethod
    def trust(cls, data: bytes) -> AnchorChain:
        """Start from an anchor received out of band (ANCHOR-3); it must meet its own threshold.

        Compare :attr:`fingerprint` with the value the coordinator gave out of
        band before relying on the result.  Signatures by other keys (those of
        the previous anchor's roots, on a rotation) are not checked.
        """
        anchor, signed = _parse(data)
        signers = signed.verify_signers(anchor.root_keys, skip_unknown=True)
        require_threshold(signers, anchor.root_keys, anchor.threshold, "trust anchor")
        return cls((VerifiedAnchor._create(anchor, signed),))

    @classmethod
    def load(cls, chain: Iterable[bytes]) -> AnchorChain:
        """Rebuild a chain from stored anchors, oldest first (each one verified again)."""
        items = list(chain)
        if not items:
            raise UsageError("a chain holds at least one anchor")
        result = cls.trust(items[0])
        for data in items[1:]:
            result = result.extend(data)
        return result

    def extend(self, data: bytes) -> AnchorChain:
        """This chain followed by the anchor in ``data``, after ANCHOR-4 and ANCHOR-5.

        An anchor already in the chain (the same bytes) leaves it unchanged.
        """
        anchor, signed = _parse(data)
        current = self.current
        if anchor.serial <= current.serial:
            held = self.by_serial(anchor.serial)
            if held is not None and held.hash == signed.hash:
                return self
            if held is not None:
                raise Fork(f"a different trust anchor with serial {anchor.serial} is held")
            raise Rollback(f"trust anchor {anchor.serial} is older than those held")
        if anchor.serial != current.serial + 1:
            raise BrokenChain(f"trust anchors {current.serial + 1}..{anchor.serial - 1} missing")
        if anchor.previous != current.hash:
            raise BrokenChain(f"trust anchor {anchor.serial} does not name its predecessor")
        if anchor.issued <= current.issued:
            raise BrokenChain(f"trust anchor {anchor.serial} is not issued after the one before")
        old, new = current.anchor.root_keys, anchor.root_keys
        signers = signed.verify_signers({**old, **new})
        require_threshold(signers, old, current.anchor.threshold, "the previous anchor's roots")
        require_threshold(signers, new, anchor.threshold, "the new anchor's own roots")
        return AnchorChain((*self._anchors, VerifiedAnchor._create(anchor, signed)))

    @property
    def anchors(self) -> tuple[VerifiedAnchor, ...]:
        return self._anchors

    @property
    def current(self) -> VerifiedAnchor:
        return self._anchors[-1]

    @property
    def fingerprint(self) -> bytes:
        """The hash of the first anchor: the value to compare out of band."""
        return self._anchors[0].hash

    def by_serial(self, serial: int) -> VerifiedAnchor | None:
        first = self._anchors[0].serial
        if first <= serial <= self.current.serial:
            return self._anchors[serial - first]
        return None

    def find(self, anchor_hash: bytes) -> VerifiedAnchor:
        """The anchor with this hash; :class:`UnknownKey` if the chain does not hold it."""
        for verified in self._anchors:
            if verified.hash == anchor_hash:
                return verified
        raise UnknownKey(f"trust anchor {anchor_hash.hex()} is not in the chain")

    def next_after(self, verified: VerifiedAnchor) -> VerifiedAnchor | None:
        """The anchor that replaced ``verified``, if the chain holds one."""
        return self.by_serial(verified.serial + 1)

    def __len__(self) -> int:
        return len(self._anchors)

    def __repr__(self) -> str:
        return f"AnchorChain(serials={self._anchors[0].serial}..{self.current.serial})"
