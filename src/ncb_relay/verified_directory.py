"""Verifying a signed directory, and looking keys up in it (spec/directory.md, "Verification").

Theory of operation.  :func:`verify_directory` checks a directory version in
a fixed order (DIR-8): the signed file's encoding; a threshold of distinct
root signatures over the exact document bytes, by the roots of one trust
anchor in the verifier's :class:`~ncb_relay.anchor.AnchorChain`, checked
before the document itself is decoded, so that an unsigned document costs a
hash and a few signature checks; then the document's encoding, the anchor it
names (the one whose roots signed, in force at the version's issue time), its
own consistency and key endorsements, the link to the version the verifier
held before (rollback, fork, chain, and the endorsers of the keys each
version adds), and finally freshness.  Expiry is not a cliff: a version past
``expires`` stays usable for the policy's grace period, flagged ``in_grace``
so the caller can warn, and is refused (``directory-expired``) after it.

A :class:`VerifiedDirectory` answers the envelope code's key questions
(:class:`~ncb_relay.directory.KeyDirectory`) as of a message's ``created``
time.  It does so for *live delivery*: a key that the directory lists as
revoked, or a principal that is now suspended or revoked, is refused whatever
``created`` says, because whoever stole a key can date a forgery before the
revocation (DIR-11).  :attr:`VerifiedDirectory.historical` answers the same
questions for *historical verification* (a court checking a disclosure years
later): there a revocation counts only from its own time, so what was signed
before it still verifies.  Neither view vouches for any time after the
version's expiry plus grace (see :mod:`ncb_relay.directory_keys`).  A
:class:`DirectoryArchive` does historical look-ups across an audited chain of
versions, for encryption keys that later versions dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import primitives
from ._construct import NoPublicConstructor
from ._fields import Fields
from .anchor import AnchorChain, VerifiedAnchor
from .directory_document import (
    DirectoryDocument,
    check_successor,
    decode_value,
    read_header,
)
from .directory_keys import DirectoryKeys
from .entries import PrincipalEntry
from .errors import (
    BrokenChain,
    DirectoryExpired,
    Fork,
    FutureDated,
    InvalidPeerKey,
    Rollback,
    UnknownKey,
    UsageError,
)
from .identity import EncryptionPublicKey, PublicIdentity, SigningPublicKey
from .signatures import DIRECTORY_KIND, SignedDocument, require_threshold

__all__ = [
    "DEFAULT_DIRECTORY_POLICY",
    "DirectoryArchive",
    "DirectoryPolicy",
    "VerifiedDirectory",
    "load_directory",
    "verify_directory",
    "verify_history",
]

DAY = 24 * 3600
MAX_GRACE = 30 * DAY

Freshness = Literal["current", "grace"]


@dataclass(frozen=True, slots=True)
class DirectoryPolicy:
    """How a verifier treats time: the grace after expiry (DIR-10) and clock skew (FRESH-3)."""

    grace: int = 7 * DAY
    max_skew: int = 300

    def __post_init__(self) -> None:
        if type(self.grace) is not int or not 0 <= self.grace <= MAX_GRACE:
            raise UsageError("grace must be between 0 and 30 days, in seconds")
        if type(self.max_skew) is not int or not 0 <= self.max_skew <= 900:
            raise UsageError("max_skew must be between 0 and 900 seconds")


DEFAULT_DIRECTORY_POLICY = DirectoryPolicy()


class VerifiedDirectory(metaclass=NoPublicConstructor):
    """A directory version that passed verification; only this module's functions make one.

    As a :class:`~ncb_relay.directory.KeyDirectory` it gives the live view;
    :attr:`historical` gives the view for verifying old messages.
    """

    __slots__ = (
        "anchor",
        "data",
        "document",
        "hash",
        "historical",
        "in_grace",
        "live",
        "policy",
        "signed",
    )

    def __init__(
        self,
        data: bytes,
        signed: SignedDocument,
        document: DirectoryDocument,
        anchor: VerifiedAnchor,
        *,
        policy: DirectoryPolicy,
        in_grace: bool,
    ) -> None:
        self.signed = signed
        self.data = data
        self.policy = policy
        self.document = document
        self.hash = signed.hash
        self.anchor = anchor
        self.in_grace = in_grace
        until = document.expires + policy.grace
        self.live = DirectoryKeys(document, live=True, vouches_until=until)
        self.historical = DirectoryKeys(document, live=False, vouches_until=until)

    @property
    def serial(self) -> int:
        return self.document.serial

    @property
    def issued(self) -> int:
        return self.document.issued

    @property
    def expires(self) -> int:
        return self.document.expires

    @property
    def signer_ids(self) -> tuple[bytes, ...]:
        return self.signed.signer_ids

    def entry(self, principal: str) -> PrincipalEntry:
        return self.document.entry(principal)

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        return self.live.signing_key(principal, key_id, at)

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        self.live.check_encryption_key(principal, key_id, at)

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        return self.live.encryption_key(principal, at)

    def identity(self, principal: str, at: int) -> PublicIdentity:
        return self.live.identity(principal, at)

    def freshness(self, now: int) -> Freshness:
        """``"current"``, or ``"grace"`` past expiry (warn); raises once the grace has run out.

        Call it whenever the directory is used (DIR-10): a version that was
        current when it was verified expires while it is held.
        """
        return _freshness(self.document, now, self.policy)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.document.to_json(),
            "hash": self.hash.hex(),
            "anchorSerial": self.anchor.serial,
            "signedBy": [key_id.hex() for key_id in self.signer_ids],
            "inGrace": self.in_grace,
        }

    def __repr__(self) -> str:
        return f"VerifiedDirectory(serial={self.serial}, principals={len(self.document.entries)})"


class DirectoryArchive:
    """Historical look-ups across an audited chain of versions (DIR-9), a KeyDirectory.

    Signing keys come from the newest version, which lists every signing key
    ever published and every revocation.  An encryption key that a later
    version dropped once no message sealed to it could still be accepted
    (DIR-7) is checked in the last version that lists it as that principal's
    encryption key.  Build one from :func:`verify_history` (which also makes
    sure no dropped key returned, DIR-16); this is what a court uses to verify
    old messages.
    """

    __slots__ = ("versions",)

    def __init__(self, versions: Sequence[VerifiedDirectory]) -> None:
        chain = tuple(versions)
        if not chain or not all(isinstance(v, VerifiedDirectory) for v in chain):
            raise UsageError("an archive holds verified versions, oldest first")
        for i in range(1, len(chain)):
            if chain[i].serial != chain[i - 1].serial + 1 or (
                chain[i].document.previous != chain[i - 1].hash
            ):
                raise UsageError("the versions must be consecutive; use verify_history")
        self.versions = chain

    @property
    def newest(self) -> VerifiedDirectory:
        return self.versions[-1]

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        return self.newest.historical.signing_key(principal, key_id, at)

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        listing = None  # the newest version that lists the key id at all
        for version in reversed(self.versions):
            owner = version.document.owner(key_id)
            if owner is None:
                continue
            if owner.entry.principal == principal and not owner.is_signing:
                version.historical.check_encryption_key(principal, key_id, at)
                return
            listing = listing or version
        if listing is not None:
            # never listed as principal's encryption key: binding-mismatch, naming its owner
            listing.historical.check_encryption_key(principal, key_id, at)
        raise UnknownKey(f"key id {key_id.hex()} is in no version of the archive")

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        return self.newest.historical.encryption_key(principal, at)


def _freshness(document: DirectoryDocument, now: int, policy: DirectoryPolicy) -> Freshness:
    if document.issued > now + policy.max_skew:
        raise FutureDated(f"directory {document.serial} is issued in the future")
    if now >= document.expires + policy.grace:
        raise DirectoryExpired(
            f"directory {document.serial} expired at {document.expires} and its grace of "
            f"{policy.grace} s is over"
        )
    return "grace" if now >= document.expires else "current"


def _check_signatures(signed: SignedDocument, anchors: AnchorChain) -> frozenset[bytes]:
    """DIR-8 step 2: the root signatures, before the document is decoded; the signers.

    Every signature must be by a root key of an anchor in the chain and verify
    over the document's hash, and the signers must all be roots of one anchor
    whose threshold they meet.  Which anchor the document names is read only
    afterwards (:func:`_check_named_anchor`).
    """
    roots: dict[bytes, SigningPublicKey] = {}
    for verified in anchors.anchors:
        roots.update(verified.anchor.root_keys)
    try:
        signers = signed.verify_signers(roots)
    except UnknownKey as exc:
        raise UnknownKey(f"{exc.message}: no trust anchor in the chain lists it") from exc
    candidates = [v.anchor for v in anchors.anchors if signers <= v.anchor.root_keys.keys()]
    if not candidates:
        raise UnknownKey("the directory's signers are not all roots of one trust anchor")
    if not any(len(signers) >= anchor.threshold for anchor in candidates):
        best = max(candidates, key=lambda anchor: len(signers) - anchor.threshold)
        require_threshold(signers, best.root_keys, best.threshold, "directory")
    return signers


def _check_named_anchor(signers: frozenset[bytes], anchor: VerifiedAnchor, serial: int) -> None:
    """DIR-8 step 4: the anchor the document names is one whose roots signed it."""
    roots = anchor.anchor.root_keys
    for key_id in sorted(signers):
        if key_id not in roots:
            raise UnknownKey(
                f"directory {serial} signed by {key_id.hex()}, not a root key of trust anchor "
                f"{anchor.serial}, the one it names"
            )
    require_threshold(signers, roots, anchor.anchor.threshold, f"directory {serial}")


def _check_roots_unused(document: DirectoryDocument, anchor: VerifiedAnchor) -> None:
    """DIR-4: no root key of the anchor is a principal's key, as such or in X25519 form."""
    for root in anchor.anchor.roots:
        raw = root.key.raw
        if document.owner(root.key_id) is not None or document.owner_of_key(raw) is not None:
            raise InvalidPeerKey(f"root key {root.key_id.hex()} is also a principal's key")
        converted = document.owner_of_key(primitives.ed25519_public_key_to_x25519(raw))
        if converted is not None and not converted.is_signing:
            raise InvalidPeerKey(
                f"root key {root.key_id.hex()} in X25519 form is an encryption key of "
                f"{converted.entry.principal} (KEY-3)"
            )


def _authenticate(data: bytes, anchors: AnchorChain, policy: DirectoryPolicy) -> VerifiedDirectory:
    """DIR-8 steps 1 to 6: everything but the link to earlier versions and freshness."""
    if not isinstance(anchors, AnchorChain):
        raise UsageError("anchors must be an AnchorChain")
    signed = SignedDocument.decode(DIRECTORY_KIND, data)
    signers = _check_signatures(signed, anchors)
    value = decode_value(signed.document)
    anchor_hash, serial = read_header(Fields(value, "directory"))
    anchor = anchors.find(anchor_hash)
    _check_named_anchor(signers, anchor, serial)
    document = DirectoryDocument.from_value(value)
    _check_roots_unused(document, anchor)
    successor = anchors.next_after(anchor)
    if document.issued < anchor.issued or (
        successor is not None and document.issued >= successor.issued
    ):
        raise BrokenChain(
            f"directory {serial} is issued outside the time of trust anchor {anchor.serial}"
        )
    return VerifiedDirectory._create(data, signed, document, anchor, policy=policy, in_grace=False)


def _link(chain: Sequence[VerifiedDirectory]) -> None:
    """DIR-8 step 7 along consecutive versions, remembering every key listed (DIR-16)."""
    listed: set[bytes] = set()
    for i in range(1, len(chain)):
        old, new = chain[i - 1], chain[i]
        if new.anchor.serial < old.anchor.serial:
            raise BrokenChain(f"directory {new.serial} goes back to an older trust anchor")
        check_successor(old.document, old.hash, new.document, listed_before=listed)
        listed.update(old.document.listed_keys)


def verify_directory(
    data: bytes,
    *,
    anchors: AnchorChain,
    now: int,
    previous: VerifiedDirectory | None = None,
    intermediates: Sequence[bytes] = (),
    policy: DirectoryPolicy = DEFAULT_DIRECTORY_POLICY,
) -> VerifiedDirectory:
    """Verify a directory version for use now; raise a ProtocolError subclass on any failure.

    ``previous`` is the version the caller accepted before (or None the first
    time).  A lower serial is a ``rollback``; the same serial with other bytes
    is a ``fork``; a higher one must extend ``previous`` through every version
    between them, given in ``intermediates`` in order (``broken-chain``
    otherwise).  The result's ``in_grace`` is set when ``now`` is past expiry
    but within ``policy.grace``.
    """
    verified = _authenticate(data, anchors, policy)
    if previous is not None:
        if verified.serial < previous.serial:
            raise Rollback(
                f"directory {verified.serial} is older than version {previous.serial}, held"
            )
        if verified.serial == previous.serial and verified.hash != previous.hash:
            raise Fork(f"a different directory {verified.serial} is already held")
        if verified.serial > previous.serial:
            between = [_authenticate(item, anchors, policy) for item in intermediates]
            chain = [previous, *between, verified]
            for i in range(1, len(chain)):
                old, new = chain[i - 1], chain[i]
                if new.serial <= old.serial:
                    raise BrokenChain("intermediate versions must be given in increasing order")
                if new.serial != old.serial + 1:
                    raise BrokenChain(
                        f"directory versions {old.serial + 1}..{new.serial - 1} are missing"
                    )
            _link(chain)
    elif intermediates:
        raise UsageError("intermediates need a previous version")
    state = _freshness(verified.document, now, policy)
    return VerifiedDirectory._create(
        data,
        verified.signed,
        verified.document,
        verified.anchor,
        policy=policy,
        in_grace=state == "grace",
    )


def load_directory(
    data: bytes, *, anchors: AnchorChain, policy: DirectoryPolicy = DEFAULT_DIRECTORY_POLICY
) -> VerifiedDirectory:
    """Verify a stored or archived version without judging its freshness (DIR-12).

    For the copy a verifier kept from its last update (to check the next one
    against) and for verifying old messages with the directory of their time.
    """
    return _authenticate(data, anchors, policy)


def verify_history(
    versions: Sequence[bytes],
    *,
    anchors: AnchorChain,
    policy: DirectoryPolicy = DEFAULT_DIRECTORY_POLICY,
) -> tuple[VerifiedDirectory, ...]:
    """Audit consecutive versions, oldest first: each is verified and must extend the one before."""
    chain = tuple(_authenticate(item, anchors, policy) for item in versions)
    if not chain:
        raise UsageError("no versions to audit")
    _link(chain)
    return chain
