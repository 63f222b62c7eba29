"""Key look-ups in a verified directory version, for live delivery or historical verification.

Theory of operation.  A :class:`DirectoryKeys` answers the three questions of
:class:`~ncb_relay.directory.KeyDirectory` from one directory document, as of
a time ``at`` (the message's ``created``): the key must be listed under the
principal as the right kind of key, be inside its window, not be revoked at
``at``, and the principal must have been active at ``at`` (DIR-9).  The *live*
view, used to deliver messages now, refuses in addition every key the
document lists as revoked and every key of a principal that is not active
now, whatever ``at`` says, because a thief can date a forgery back (DIR-11).
No view vouches for a time after the version's expiry plus grace.
"""

from __future__ import annotations

from typing import cast

from .directory_document import DirectoryDocument, KeyOwner
from .entries import EncryptionKeyRecord, PrincipalEntry, SigningKeyRecord
from .errors import BindingMismatch, UnknownKey
from .identity import EncryptionPublicKey, PublicIdentity, SigningPublicKey

__all__ = ["DirectoryKeys"]


class DirectoryKeys:
    """Key look-ups in one verified version, live or historical (a KeyDirectory)."""

    __slots__ = ("document", "live", "vouches_until")

    def __init__(self, document: DirectoryDocument, *, live: bool, vouches_until: int) -> None:
        self.document = document
        self.live = live
        self.vouches_until = vouches_until

    def _refusal(
        self, entry: PrincipalEntry, record: SigningKeyRecord | EncryptionKeyRecord, at: int
    ) -> str | None:
        """Why the key may not be used for a message created at ``at`` (None if it may)."""
        if at > self.vouches_until:
            return (
                f"directory {self.document.serial} vouches for nothing after {self.vouches_until}"
            )
        if not record.in_window(at):
            return f"it is not valid at {at}"
        if record.revoked is not None and (self.live or at >= record.revoked):
            return f"it was revoked from {record.revoked}"
        state = entry.state_at(at)
        if state != "active":
            return f"{entry.principal} was {state or 'not listed'} at {at}"
        if self.live and entry.current_state != "active":
            return f"{entry.principal} is {entry.current_state}"
        return None

    def _owned(self, principal: str, key_id: bytes, signing: bool, at: int) -> KeyOwner:
        kind, article = ("signing", "a") if signing else ("encryption", "an")
        owner = self.document.owner(key_id)
        if owner is None:
            raise UnknownKey(f"key id {key_id.hex()} is not in the directory")
        if owner.entry.principal != principal:
            raise BindingMismatch(
                f"key id {key_id.hex()} belongs to {owner.entry.principal}, not {principal}"
            )
        if owner.is_signing != signing:
            raise BindingMismatch(
                f"key id {key_id.hex()} is not {article} {kind} key of {principal}"
            )
        reason = self._refusal(owner.entry, owner.record, at)
        if reason is not None:
            raise UnknownKey(f"{kind} key {key_id.hex()} of {principal}: {reason}")
        return owner

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        # _owned checked that the record is a signing key record
        return cast(SigningPublicKey, self._owned(principal, key_id, True, at).record.key)

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        self._owned(principal, key_id, False, at)

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        """The newest encryption key of ``principal`` usable at ``at`` (the one to seal to)."""
        entry = self.document.entry(principal)
        for record in reversed(entry.encryption_keys):
            if self._refusal(entry, record, at) is None:
                return record.key
        raise UnknownKey(f"{principal} has no encryption key usable at {at}")

    def current_signing_key(self, principal: str, at: int) -> SigningPublicKey:
        """The newest signing key of ``principal`` usable at ``at``."""
        entry = self.document.entry(principal)
        for record in reversed(entry.signing_keys):
            if self._refusal(entry, record, at) is None:
                return record.key
        raise UnknownKey(f"{principal} has no signing key usable at {at}")

    def identity(self, principal: str, at: int) -> PublicIdentity:
        """``principal``'s keys to seal to at ``at``, for :func:`ncb_relay.seal`."""
        return PublicIdentity(
            principal,
            self.current_signing_key(principal, at),
            self.encryption_key(principal, at),
        )
