"""Key lookup: the interface the envelope code uses to learn other principals' keys.

The envelope code never trusts a key that arrives with a message: it asks a
:class:`KeyDirectory` for the sender's signing key and checks every
recipient's encryption key id, as of the time the message says it was created.
:class:`StaticDirectory` is the simplest directory: a fixed set of public
identities whose keys are valid at every time.  The signed, versioned
directory with validity windows and revocation implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .errors import BindingMismatch, UnknownKey, UsageError
from .identity import EncryptionPublicKey, PublicIdentity, SigningPublicKey

__all__ = ["KeyDirectory", "StaticDirectory"]


class KeyDirectory(Protocol):
    """Answers "which key did this principal hold at that time?"; every miss raises."""

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        """The signing key ``key_id`` of ``principal``, valid at ``at``.

        Raises :class:`UnknownKey` if there is none, and :class:`BindingMismatch`
        if the key belongs to another principal.
        """
        ...

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        """Raise unless ``key_id`` is an encryption key of ``principal`` valid at ``at``."""
        ...

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        """The encryption key to seal to ``principal`` at ``at``."""
        ...


class StaticDirectory:
    """A fixed set of identities; keys never expire.  Duplicate keys are refused."""

    def __init__(self, identities: Iterable[PublicIdentity]) -> None:
        self._identities: dict[str, PublicIdentity] = {}
        self._owner: dict[bytes, str] = {}
        for identity in identities:
            if identity.principal in self._identities:
                raise UsageError(f"principal {identity.principal} listed twice")
            for key_id in (identity.signing_key.key_id, identity.encryption_key.key_id):
                if key_id in self._owner:
                    raise UsageError(f"a key of {identity.principal} is already listed")
                self._owner[key_id] = identity.principal
            self._identities[identity.principal] = identity

    def identity(self, principal: str) -> PublicIdentity:
        try:
            return self._identities[principal]
        except KeyError:
            raise UnknownKey(f"principal {principal} is not in the directory") from None

    def _check_owner(self, principal: str, key_id: bytes) -> None:
        owner = self._owner.get(key_id)
        if owner is None:
            raise UnknownKey(f"key id {key_id.hex()} is not in the directory")
        if owner != principal:
            raise BindingMismatch(f"key id {key_id.hex()} belongs to {owner}, not {principal}")

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        self._check_owner(principal, key_id)
        key = self.identity(principal).signing_key
        if key.key_id != key_id:
            raise BindingMismatch(f"key id {key_id.hex()} is not a signing key of {principal}")
        return key

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        self._check_owner(principal, key_id)
        if self.identity(principal).encryption_key.key_id != key_id:
            raise BindingMismatch(f"key id {key_id.hex()} is not an encryption key of {principal}")

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        return self.identity(principal).encryption_key
