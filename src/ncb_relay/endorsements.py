"""Endorsements: a principal's own signature on the keys the directory lists for it.

The coordinator's root keys sign the directory, but they cannot make these:
a new signing key is endorsed by the principal's previous signing key (ROT-2)
and an encryption key by one of its signing keys (ROT-4).  Each endorsement
signs a fixed layout behind its own label, so it cannot be taken for any other
ncb_relay signature: the label, two 32-byte public keys, 8-byte big-endian
times, then the principal id (the only variable-length part, last).
"""

from __future__ import annotations

from .errors import UsageError
from .identity import EncryptionPublicKey, Signer, SigningPublicKey, check_principal_id

__all__ = [
    "ENCRYPTION_ENDORSEMENT_LABEL",
    "SIGNING_ENDORSEMENT_LABEL",
    "encryption_endorsement_message",
    "endorse_encryption_key",
    "endorse_signing_key",
    "signing_endorsement_message",
]

SIGNING_ENDORSEMENT_LABEL = b"NCBR/1 signing key endorsement\x00"
ENCRYPTION_ENDORSEMENT_LABEL = b"NCBR/1 encryption key endorsement\x00"


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def signing_endorsement_message(
    principal: str, previous: SigningPublicKey, new: SigningPublicKey, not_before: int
) -> bytes:
    """What the previous signing key signs to endorse its successor (ROT-2)."""
    return (
        SIGNING_ENDORSEMENT_LABEL
        + previous.raw
        + new.raw
        + _u64(not_before)
        + principal.encode("ascii")
    )


def encryption_endorsement_message(
    principal: str,
    signing: SigningPublicKey,
    key: EncryptionPublicKey,
    not_before: int,
    not_after: int,
) -> bytes:
    """What the principal's signing key signs to endorse an encryption key (ROT-4)."""
    return (
        ENCRYPTION_ENDORSEMENT_LABEL
        + signing.raw
        + key.raw
        + _u64(not_before)
        + _u64(not_after)
        + principal.encode("ascii")
    )


def endorse_signing_key(
    previous: Signer, principal: str, new: SigningPublicKey, not_before: int
) -> bytes:
    """The endorsement a principal gives its next signing key, made with its current one."""
    check_principal_id(principal, error=UsageError)
    return previous.sign(
        signing_endorsement_message(principal, previous.public_key, new, not_before)
    )


def endorse_encryption_key(
    signer: Signer, principal: str, key: EncryptionPublicKey, not_before: int, not_after: int
) -> bytes:
    """The endorsement a principal gives a new encryption key, made with its signing key."""
    check_principal_id(principal, error=UsageError)
    message = encryption_endorsement_message(
        principal, signer.public_key, key, not_before, not_after
    )
    return signer.sign(message)
