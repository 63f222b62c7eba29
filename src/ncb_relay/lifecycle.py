"""The lifecycle of principals and keys: pure functions from one version to the next.

Theory of operation.  The coordinator never edits a published version.  It
starts a draft with :func:`next_version` (serial + 1, linked to the version
it replaces, with new issue and expiry times), applies changes to the draft
with the functions below, each returning a new document, and then has root
key holders sign the draft (:meth:`DirectoryDocument.draft`).  Every change
is one that :func:`~ncb_relay.directory_document.check_successor` accepts:
keys and principals are added from the draft's issue time on, windows are
closed and keys revoked, and nothing already published is dropped or
reopened.

Key changes that speak for a principal carry the principal's own
endorsement, which the principal makes with its signing key
(:func:`~ncb_relay.entries.endorse_signing_key`,
:func:`~ncb_relay.entries.endorse_encryption_key`) and hands to the
coordinator; the coordinator cannot make them.  :class:`EncryptionKeySchedule`
says when a principal's next encryption key is due and which old private
keys it may delete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from .directory_document import DirectoryDocument, prunable
from .endorsements import endorse_encryption_key
from .entries import (
    KEY_RETENTION,
    EncryptionKeyRecord,
    PrincipalEntry,
    Role,
    SigningKeyRecord,
    State,
    StatusChange,
)
from .errors import UsageError
from .header import MAX_TTL
from .identity import EncryptionPublicKey, Signer, SigningPublicKey

__all__ = [
    "DEFAULT_KEY_RETENTION",
    "DEFAULT_OVERLAP",
    "DEFAULT_VALIDITY",
    "EncryptionKeySchedule",
    "add_encryption_key",
    "add_principal",
    "new_directory",
    "new_principal",
    "next_version",
    "prune_encryption_keys",
    "reenrol",
    "reinstate",
    "revoke_key",
    "revoke_principal",
    "rotate_signing_key",
    "suspend",
]

DAY = 24 * 3600
DEFAULT_VALIDITY = 14 * DAY
DEFAULT_OVERLAP = 7 * DAY


def new_directory(
    *,
    anchor: bytes,
    issued: int,
    validity: int = DEFAULT_VALIDITY,
    entries: Iterable[PrincipalEntry] = (),
) -> DirectoryDocument:
    """Version 1 of a directory, signed under the trust anchor with hash ``anchor``."""
    return DirectoryDocument(1, issued, issued + validity, None, anchor, tuple(entries))


def next_version(
    document: DirectoryDocument,
    *,
    issued: int,
    validity: int = DEFAULT_VALIDITY,
    anchor: bytes | None = None,
) -> DirectoryDocument:
    """A draft of the version after ``document``: same entries, serial + 1, linked to it.

    Pass ``anchor`` (the hash of a new trust anchor) when the root keys were
    rotated; re-issuing with no other change renews the expiry time.
    """
    if issued < document.issued:
        raise UsageError("the next version cannot be issued before the current one")
    return DirectoryDocument(
        document.serial + 1,
        issued,
        issued + validity,
        document.hash,
        document.anchor if anchor is None else anchor,
        document.entries,
    )


def new_principal(
    principal: str,
    *,
    name: str,
    role: Role,
    signing_key: SigningPublicKey,
    encryption_key: EncryptionKeyRecord,
    since: int,
) -> PrincipalEntry:
    """The entry of a principal joining at ``since``, with its first keys."""
    return PrincipalEntry(
        principal,
        name,
        role,
        (StatusChange("active", since),),
        (SigningKeyRecord(signing_key, since),),
        (encryption_key,),
    )


def _entry(document: DirectoryDocument, principal: str) -> PrincipalEntry:
    if principal not in document.principals:
        raise UsageError(f"{principal} is not in the directory")
    return document.entry(principal)


def _not_before(document: DirectoryDocument, not_before: int | None) -> int:
    if not_before is None:
        return document.issued
    if not_before < document.issued:
        raise UsageError("a new key cannot be valid before the version that publishes it")
    return not_before


def add_principal(document: DirectoryDocument, entry: PrincipalEntry) -> DirectoryDocument:
    """``document`` with a new principal (ROT-1)."""
    if entry.principal in document.principals:
        raise UsageError(f"{entry.principal} is already in the directory")
    for record in entry.all_keys():
        _not_before(document, record.not_before)
        entry.check_new_key(record)
    return document.with_entry(entry)


def rotate_signing_key(
    document: DirectoryDocument,
    principal: str,
    *,
    key: SigningPublicKey,
    endorsement: bytes,
    not_before: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
) -> DirectoryDocument:
    """Replace ``principal``'s signing key (ROT-2).

    The new key is valid from ``not_before`` (default: the draft's issue
    time); the old one stays valid for ``overlap`` seconds more (at least one,
    so that it is valid when it endorses the new key, DIR-15), so messages in
    flight still verify.  ``endorsement`` is the old key's signature of the
    new one (:func:`~ncb_relay.entries.endorse_signing_key`); it raises
    :class:`~ncb_relay.errors.BadSignature` if the old key is revoked or
    outside its window at ``not_before``.
    """
    entry = _entry(document, principal)
    start = _not_before(document, not_before)
    if not 1 <= overlap <= MAX_TTL:
        raise UsageError("the overlap is between 1 second and 30 days")
    closed = tuple(
        k
        if k.not_after is not None and k.not_after <= start + overlap
        else replace(k, not_after=start + overlap)
        for k in entry.signing_keys
    )
    new = SigningKeyRecord(key, start, None, endorsement)
    rotated = replace(entry, signing_keys=(*closed, new))
    rotated.check_new_key(new)
    return document.with_entry(rotated)


def reenrol(
    document: DirectoryDocument,
    principal: str,
    *,
    key: SigningPublicKey,
    not_before: int | None = None,
) -> DirectoryDocument:
    """Give a principal whose signing keys are all revoked a new, unendorsed one (ROT-3)."""
    entry = _entry(document, principal)
    if any(k.revoked is None for k in entry.signing_keys):
        raise UsageError("re-enrolment is only for a principal whose signing keys are all revoked")
    new = SigningKeyRecord(key, _not_before(document, not_before))
    return document.with_entry(replace(entry, signing_keys=(*entry.signing_keys, new)))


def add_encryption_key(
    document: DirectoryDocument, principal: str, record: EncryptionKeyRecord
) -> DirectoryDocument:
    """Publish a new, endorsed encryption key of ``principal`` (ROT-4).

    The endorser must be valid and unrevoked at the key's ``not_before``
    (DIR-15; :class:`~ncb_relay.errors.BadSignature` otherwise).
    """
    entry = _entry(document, principal)
    _not_before(document, record.not_before)
    keys = tuple(sorted((*entry.encryption_keys, record), key=lambda k: k.not_before))
    added = replace(entry, encryption_keys=keys)
    added.check_new_key(record)
    return document.with_entry(added)


def _set_state(
    document: DirectoryDocument, principal: str, state: State, since: int | None
) -> DirectoryDocument:
    entry = _entry(document, principal)
    when = document.issued if since is None else since
    if when > document.issued:
        raise UsageError("a status change takes effect at the latest when it is published")
    if entry.current_state == state:
        raise UsageError(f"{principal} is already {state}")
    change = StatusChange(state, when)
    return document.with_entry(replace(entry, status=(*entry.status, change)))


def suspend(
    document: DirectoryDocument, principal: str, *, since: int | None = None
) -> DirectoryDocument:
    """Suspend ``principal`` from ``since`` (default: the draft's issue time) (ROT-5)."""
    return _set_state(document, principal, "suspended", since)


def reinstate(document: DirectoryDocument, principal: str) -> DirectoryDocument:
    """Lift a suspension, from the draft's issue time on (never retroactively, DIR-7)."""
    return _set_state(document, principal, "active", None)


def revoke_principal(
    document: DirectoryDocument, principal: str, *, since: int | None = None
) -> DirectoryDocument:
    """Revoke ``principal`` for good from ``since``, which may be in the past (ROT-5)."""
    return _set_state(document, principal, "revoked", since)


def revoke_key(
    document: DirectoryDocument, principal: str, key_id: bytes, *, at: int | None = None
) -> DirectoryDocument:
    """Revoke one key of ``principal`` from ``at`` (default: the draft's issue time).

    For a stolen key, ``at`` should be the earliest time the key may have
    been in other hands: messages created from then on no longer verify,
    even historically (ROT-6, DIR-11).
    """
    entry = _entry(document, principal)
    when = document.issued if at is None else at
    if when > document.issued:
        raise UsageError("a revocation takes effect at the latest when it is published")
    signing = _revoke_in(entry.signing_keys, key_id, when)
    encryption = _revoke_in(entry.encryption_keys, key_id, when)
    if signing == entry.signing_keys and encryption == entry.encryption_keys:
        raise UsageError(f"{principal} has no key {key_id.hex()}")
    return document.with_entry(replace(entry, signing_keys=signing, encryption_keys=encryption))


def prune_encryption_keys(document: DirectoryDocument) -> DirectoryDocument:
    """``document`` without the encryption keys it may drop (DIR-7).

    Those are the keys whose window closed at least ``KEY_RETENTION`` before
    the draft's issue time: no message sealed to them can still be accepted,
    and their private keys are deleted.  Signing keys are never dropped.  The
    versions that still list a dropped key keep it verifiable historically
    (:class:`~ncb_relay.verified_directory.DirectoryArchive`).
    """
    entries = []
    for entry in document.entries:
        kept = tuple(k for k in entry.encryption_keys if not prunable(k, document.issued))
        entries.append(
            entry if kept == entry.encryption_keys else replace(entry, encryption_keys=kept)
        )
    return replace(document, entries=tuple(entries))


_Record = TypeVar("_Record", SigningKeyRecord, EncryptionKeyRecord)


def _revoke_in(records: tuple[_Record, ...], key_id: bytes, when: int) -> tuple[_Record, ...]:
    out = []
    for record in records:
        if record.key_id != key_id:
            out.append(record)
            continue
        if record.revoked is not None:
            raise UsageError(f"key {key_id.hex()} is already revoked")
        out.append(replace(record, revoked=max(when, record.not_before)))
    return tuple(out)


DEFAULT_KEY_RETENTION = KEY_RETENTION  # the keystore keeps keys as long (spec/keystore.md)


@dataclass(frozen=True, slots=True)
class EncryptionKeySchedule:
    """When encryption keys rotate and when their private halves may be deleted (ROT-8).

    A new key starts every ``period`` seconds and each key stays valid for
    ``overlap`` seconds after its successor starts, so that senders holding
    the previous directory version still seal to a key the recipient holds.
    A private key must be deleted ``KEY_RETENTION`` seconds after its window
    closes, when no message sealed to it can still be accepted, and may be
    deleted as soon as the key is revoked (a live verifier refuses a revoked
    key in any case).
    """

    period: int = 7 * DAY
    overlap: int = DAY

    def __post_init__(self) -> None:
        if type(self.period) is not int or not DAY <= self.period <= 365 * DAY:
            raise UsageError("period is 1 to 365 days, in seconds")
        if type(self.overlap) is not int or not 0 <= self.overlap <= self.period:
            raise UsageError("overlap is between 0 and one period, in seconds")

    def record(
        self, signer: Signer, principal: str, key: EncryptionPublicKey, not_before: int
    ) -> EncryptionKeyRecord:
        """An endorsed record for ``key``, valid for one period plus the overlap."""
        not_after = not_before + self.period + self.overlap
        endorsement = endorse_encryption_key(signer, principal, key, not_before, not_after)
        return EncryptionKeyRecord(key, not_before, not_after, endorsement)

    def next_not_before(self, entry: PrincipalEntry) -> int:
        """When the principal's next encryption key should start."""
        if not entry.encryption_keys:
            return entry.status[0].since
        return entry.encryption_keys[-1].not_before + self.period

    def rotation_due(self, entry: PrincipalEntry, now: int) -> bool:
        """Whether the principal's next encryption key should be published now."""
        return now >= self.next_not_before(entry)

    def retention_end(self, record: EncryptionKeyRecord) -> int:
        """The time from which the private key of ``record`` may be deleted."""
        if record.revoked is not None:
            return record.revoked
        return record.not_after + KEY_RETENTION

    def deletable(self, entry: PrincipalEntry, now: int) -> tuple[bytes, ...]:
        """Key ids of ``entry``'s encryption keys whose private keys may be deleted at ``now``."""
        return tuple(k.key_id for k in entry.encryption_keys if self.retention_end(k) <= now)
