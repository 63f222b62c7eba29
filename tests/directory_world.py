"""A small deterministic world for the directory tests: root keys, an anchor, principals.

Every key comes from a fixed seed, and time is a fixed ``T0`` plus offsets, so
the tests never read the clock or the system's randomness.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fixtures import NOW, seeded_rng
from ncb_relay import (
    AnchorChain,
    DirectoryDocument,
    EncryptionKeyPair,
    EncryptionKeySchedule,
    PrincipalEntry,
    PrivateIdentity,
    RootKey,
    SignedDocument,
    SigningKeyPair,
    TrustAnchor,
    VerifiedDirectory,
    codec,
    endorse_signing_key,
    load_directory,
)
from ncb_relay.codec import Value
from ncb_relay.entries import Role
from ncb_relay.lifecycle import new_directory, new_principal, next_version, rotate_signing_key
from ncb_relay.signatures import DIRECTORY_KIND

DAY = 24 * 3600
T0 = NOW  # the genesis directory's issue time
SCHEDULE = EncryptionKeySchedule()
BUREAUS = ("KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris")
COORDINATOR = "XP.interpol-gs"
RELAY = "XP.relay-lyon"  # listed with role relay: its signing key signs its log (spec/log.md)


def signing_key(label: str) -> SigningKeyPair:
    return SigningKeyPair(seeded_rng(f"sign {label}".encode())(32))


def encryption_key(label: str) -> EncryptionKeyPair:
    return EncryptionKeyPair(seeded_rng(f"encrypt {label}".encode())(32))


ROOTS = tuple(signing_key(f"root {i}") for i in range(1, 7))


def make_anchor(
    roots: Sequence[SigningKeyPair],
    threshold: int,
    *,
    issued: int = T0 - DAY,
    serial: int = 1,
    previous: bytes | None = None,
) -> TrustAnchor:
    named = tuple(RootKey(f"root holder {i}", r.public_key) for i, r in enumerate(roots))
    return TrustAnchor(serial, issued, previous, named, threshold)


def sign_with(draft: SignedDocument, signers: Iterable[SigningKeyPair]) -> bytes:
    for signer in signers:
        draft = draft.sign(signer)
    return draft.encode()


ANCHOR = make_anchor(ROOTS[:3], 2)
ANCHOR_FILE = sign_with(ANCHOR.draft(), ROOTS[:2])
CHAIN = AnchorChain.trust(ANCHOR_FILE)


@dataclass
class Member:
    """One principal's private keys, as the principal holds them."""

    principal: str
    signer: SigningKeyPair
    encryption: list[EncryptionKeyPair] = field(default_factory=list)

    @property
    def identity(self) -> PrivateIdentity:
        return PrivateIdentity(self.principal, self.signer, self.encryption)


def member(principal: str, generation: int = 0) -> Member:
    return Member(
        principal,
        signing_key(f"{principal} {generation}"),
        [encryption_key(f"{principal} {generation}")],
    )


def entry_for(m: Member, since: int, role: Role = "bureau") -> PrincipalEntry:
    key = m.encryption[-1].public_key
    return new_principal(
        m.principal,
        name=f"NCB {m.principal[3:]}",
        role=role,
        signing_key=m.signer.public_key,
        encryption_key=SCHEDULE.record(m.signer, m.principal, key, since),
        since=since,
    )


def _role(principal: str) -> Role:
    return (
        "coordinator" if principal == COORDINATOR else "relay" if principal == RELAY else "bureau"
    )


def genesis(
    principals: Sequence[str] = (*BUREAUS, COORDINATOR, RELAY), *, issued: int = T0
) -> tuple[DirectoryDocument, dict[str, Member]]:
    members = {p: member(p) for p in principals}
    entries = [entry_for(m, issued, _role(p)) for p, m in members.items()]
    return new_directory(anchor=ANCHOR.hash, issued=issued, entries=entries), members


def signed(document: DirectoryDocument, *signers: SigningKeyPair) -> bytes:
    return sign_with(document.draft(), signers or ROOTS[:2])


def loaded(document: DirectoryDocument, chain: AnchorChain = CHAIN) -> VerifiedDirectory:
    return load_directory(signed(document), anchors=chain)


def rotated(
    document: DirectoryDocument, m: Member, generation: int, *, issued: int
) -> tuple[DirectoryDocument, Member]:
    """The next version, with ``m``'s signing key rotated (endorsed by the old key)."""
    new = member(m.principal, generation)
    draft = next_version(document, issued=issued)
    endorsement = endorse_signing_key(m.signer, m.principal, new.signer.public_key, issued)
    draft = rotate_signing_key(
        draft, m.principal, key=new.signer.public_key, endorsement=endorsement
    )
    return draft, Member(m.principal, new.signer, m.encryption)


def sign_value(value: Value, *signers: SigningKeyPair) -> bytes:
    """Sign an arbitrary document value, bypassing every check (for hostile documents)."""
    return sign_with(SignedDocument(DIRECTORY_KIND, codec.encode(value)), signers or ROOTS[:2])


def mutable(document: DirectoryDocument) -> dict[str, Value]:
    value = document.to_value()
    assert isinstance(value, dict)
    return value
