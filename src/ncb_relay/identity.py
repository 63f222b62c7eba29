"""Principals, their identifiers and their keys (spec/protocol.md, "Principals and keys").

A principal (a bureau, the coordinator or a relay) is named by a
country-prefixed identifier such as ``KR.ncb-seoul`` and holds two kinds of
key that are never used for each other's job: an Ed25519 key that signs and
X25519 keys that receive.  Keys are named on the wire by a 16-byte key id, a
prefix of a fingerprint that is domain-separated by key type, so a signing key
id can never name an encryption key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from . import primitives
from .errors import InvalidPeerKey, MalformedInput, NcbRelayError, UnknownKey, UsageError
from .primitives import RandomSource

__all__ = [
    "KEY_ID_BYTES",
    "MAX_PRINCIPAL_ID_BYTES",
    "EncryptionKeyPair",
    "EncryptionPublicKey",
    "PrivateIdentity",
    "PublicIdentity",
    "Signer",
    "SigningKeyPair",
    "SigningPublicKey",
    "check_principal_id",
    "fingerprint_text",
]

KEY_ID_BYTES = 16
MAX_PRINCIPAL_ID_BYTES = 64

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_PRINCIPAL_ID = re.compile(rf"[A-Z]{{2}}\.{_LABEL}(?:\.{_LABEL})*")

_PERSON_SIGNING_FP = b"NCBR1 fp sign"
_PERSON_ENCRYPTION_FP = b"NCBR1 fp encrypt"


def check_principal_id(value: object, *, error: type[NcbRelayError] = MalformedInput) -> str:
    """Return ``value`` if it is a valid principal id (ID-1), else raise ``error``.

    Grammar: two upper-case ASCII letters (an ISO 3166-1 alpha-2 code, or a
    user-assigned code for an international body), a dot, then one or more
    dot-separated labels of lower-case letters, digits and inner hyphens; at
    most 64 bytes in all.
    """
    if not isinstance(value, str):
        raise error("principal id must be a text string")
    if len(value) > MAX_PRINCIPAL_ID_BYTES or not _PRINCIPAL_ID.fullmatch(value):
        raise error(f"invalid principal id {value[:MAX_PRINCIPAL_ID_BYTES]!r}")
    return value


def _fingerprint(raw: bytes, person: bytes) -> bytes:
    return primitives.blake2b(raw, person=person)


def fingerprint_text(fingerprint: bytes) -> str:
    """A fingerprint for people to compare: hex in groups of four."""
    h = fingerprint.hex()
    return " ".join(h[i : i + 4] for i in range(0, len(h), 4))


@dataclass(frozen=True, slots=True)
class SigningPublicKey:
    """An Ed25519 public key; building one checks that it is a valid, prime-order point."""

    raw: bytes
    fingerprint: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes):
            raise UsageError("key must be bytes")
        primitives.ed25519_check_public_key(self.raw)
        object.__setattr__(self, "fingerprint", _fingerprint(self.raw, _PERSON_SIGNING_FP))

    @property
    def key_id(self) -> bytes:
        return self.fingerprint[:KEY_ID_BYTES]

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise :class:`~ncb_relay.errors.BadSignature` unless the signature verifies."""
        primitives.ed25519_verify(self.raw, message, signature)


@dataclass(frozen=True, slots=True)
class EncryptionPublicKey:
    """An X25519 public key; building one refuses small-order points."""

    raw: bytes
    fingerprint: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes):
            raise UsageError("key must be bytes")
        primitives.x25519_check_public_key(self.raw)
        object.__setattr__(self, "fingerprint", _fingerprint(self.raw, _PERSON_ENCRYPTION_FP))

    @property
    def key_id(self) -> bytes:
        return self.fingerprint[:KEY_ID_BYTES]


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with one Ed25519 key: an in-memory key pair or an HSM (KS-17).

    Protocol code uses nothing else.  ``public_key`` names the key (its key id
    goes into headers); ``sign`` returns the 64-byte PureEdDSA (RFC 8032)
    signature of exactly the bytes given, and when a device cannot sign it
    raises an :class:`~ncb_relay.errors.NcbRelayError` translated from the
    device's own error.
    """

    @property
    def public_key(self) -> SigningPublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


class SigningKeyPair:
    """An Ed25519 key pair held in memory.  The secret never appears in ``repr``."""

    __slots__ = ("_secret", "_seed", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != primitives.SECRET_KEY_BYTES:
            raise UsageError("an Ed25519 seed is 32 bytes")
        public, self._secret = primitives.ed25519_keypair(seed)
        self._seed = seed
        self.public_key = SigningPublicKey(public)

    @classmethod
    def generate(cls, rng: RandomSource) -> SigningKeyPair:
        return cls(rng(primitives.SECRET_KEY_BYTES))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed (for keystores; handle with care)."""
        return self._seed

    def sign(self, message: bytes) -> bytes:
        return primitives.ed25519_sign(self._secret, message)

    def __repr__(self) -> str:
        return f"SigningKeyPair(key_id={self.public_key.key_id.hex()})"


class EncryptionKeyPair:
    """An X25519 key pair held in memory.  The secret never appears in ``repr``."""

    __slots__ = ("_secret", "public_key")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != primitives.SECRET_KEY_BYTES:
            raise UsageError("an X25519 secret is 32 bytes")
        self._secret = secret
        self.public_key = EncryptionPublicKey(primitives.x25519_public_key(secret))

    @classmethod
    def generate(cls, rng: RandomSource) -> EncryptionKeyPair:
        return cls(rng(primitives.SECRET_KEY_BYTES))

    @property
    def secret(self) -> bytes:
        """The 32-byte secret scalar (for keystores; handle with care)."""
        return self._secret

    def exchange(self, peer: bytes) -> bytes:
        """X25519 with a peer's public key; raises InvalidPeerKey on a small-order peer."""
        return primitives.x25519(self._secret, peer)

    def __repr__(self) -> str:
        return f"EncryptionKeyPair(key_id={self.public_key.key_id.hex()})"


def _check_key_usage(signing: SigningPublicKey, encryption: Iterable[EncryptionPublicKey]) -> None:
    converted = primitives.ed25519_public_key_to_x25519(signing.raw)
    for key in encryption:
        if primitives.constant_time_equal(key.raw, converted):
            raise InvalidPeerKey("encryption key is the signing key converted (KEY-3)")


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What others know of a principal: its id, signing key and current encryption key."""

    principal: str
    signing_key: SigningPublicKey
    encryption_key: EncryptionPublicKey

    def __post_init__(self) -> None:
        check_principal_id(self.principal, error=UsageError)
        if not isinstance(self.signing_key, SigningPublicKey) or not isinstance(
            self.encryption_key, EncryptionPublicKey
        ):
            raise UsageError("a signing key and an encryption key are needed, in that order")
        _check_key_usage(self.signing_key, (self.encryption_key,))


class PrivateIdentity:
    """A principal's own keys: one signer and one or more encryption key pairs.

    The last encryption key pair is the current one (published); earlier ones
    are kept only while messages sealed to them may still arrive.
    """

    __slots__ = ("_by_key_id", "encryption_keys", "principal", "signer")

    def __init__(
        self, principal: str, signer: Signer, encryption_keys: Iterable[EncryptionKeyPair]
    ) -> None:
        self.principal = check_principal_id(principal, error=UsageError)
        self.signer = signer
        self.encryption_keys = tuple(encryption_keys)
        if not self.encryption_keys:
            raise UsageError("a principal needs at least one encryption key")
        if not isinstance(signer, Signer) or not isinstance(signer.public_key, SigningPublicKey):
            raise UsageError("signer must sign with an Ed25519 key")
        if not all(isinstance(k, EncryptionKeyPair) for k in self.encryption_keys):
            raise UsageError("encryption keys must be EncryptionKeyPair objects")
        _check_key_usage(signer.public_key, (k.public_key for k in self.encryption_keys))
        self._by_key_id = {k.public_key.key_id: k for k in self.encryption_keys}

    @classmethod
    def generate(cls, principal: str, rng: RandomSource) -> PrivateIdentity:
        return cls(principal, SigningKeyPair.generate(rng), [EncryptionKeyPair.generate(rng)])

    @property
    def public(self) -> PublicIdentity:
        return PublicIdentity(
            self.principal, self.signer.public_key, self.encryption_keys[-1].public_key
        )

    def encryption_key(self, key_id: bytes) -> EncryptionKeyPair:
        """The key pair with this id; raises :class:`UnknownKey` if it is not held."""
        try:
            return self._by_key_id[key_id]
        except KeyError:
            raise UnknownKey("no encryption key with that id is held") from None

    def __repr__(self) -> str:
        return f"PrivateIdentity({self.principal!r})"
