"""The directory document: one signed version of the list of principals (spec/directory.md).

Theory of operation.  A version is a canonical msgpack map: a serial that
only increases, issue and expiry times, the hash of the version before it
(so the versions form a chain anyone can audit), the hash of the trust anchor
whose roots sign it, and one entry per principal.  Because entries keep
every signing key and revocation (see :mod:`ncb_relay.entries`), each version
answers the "as of" questions about signatures by itself; the chain exists so
that nobody, not even a threshold of root keys, can rewrite the past
unnoticed: a successor may add principals, keys and status changes and may
close or revoke keys, but it may not drop (except encryption keys past their
retention), reopen or backdate anything (:func:`check_successor`, DIR-7).

Building a document checks that it is consistent (DIR-4, DIR-5): entries
sorted and unique, no key listed twice anywhere (under one principal or two,
as signing or encryption key), no encryption key that is some signing key in
X25519 form (KEY-3), and no revocation or status change dated after the
version's own issue time.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, field, replace
from typing import Any

from . import codec, primitives
from ._fields import Fields, check_time, strictly_increasing
from .codec import CodecLimits, Value
from .entries import KEY_RETENTION, EncryptionKeyRecord, PrincipalEntry, SigningKeyRecord
from .errors import (
    BrokenChain,
    InvalidPeerKey,
    MalformedInput,
    UnknownKey,
    UnsupportedVersion,
    UsageError,
)
from .signatures import DIRECTORY_KIND, SignedDocument

__all__ = [
    "DIRECTORY_VERSION",
    "MAX_PRINCIPALS",
    "MAX_VALIDITY",
    "DirectoryDocument",
    "KeyOwner",
    "check_successor",
    "prunable",
]

DIRECTORY_VERSION = 1
MAX_PRINCIPALS = 4096
MAX_VALIDITY = 90 * 24 * 3600
HASH_BYTES = 32

DOCUMENT_LIMITS = CodecLimits(
    max_bytes=DIRECTORY_KIND.max_bytes,
    max_str_bytes=256,
    max_bin_bytes=64,
    max_array_items=MAX_PRINCIPALS,
    max_map_items=16,
    max_depth=6,
)


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Where a key id is listed: the entry and the record (signing or encryption)."""

    entry: PrincipalEntry
    record: SigningKeyRecord | EncryptionKeyRecord

    @property
    def is_signing(self) -> bool:
        return isinstance(self.record, SigningKeyRecord)


def _index(
    entries: tuple[PrincipalEntry, ...],
) -> tuple[dict[bytes, KeyOwner], dict[bytes, KeyOwner]]:
    """Key id to owner and key bytes to owner; raises on a key listed twice or a KEY-3
    violation across entries."""
    owners: dict[bytes, KeyOwner] = {}
    raw_seen: dict[bytes, KeyOwner] = {}
    converted: dict[bytes, str] = {}
    for entry in entries:
        for record in entry.all_keys():
            raw = record.key.raw
            if raw in raw_seen or record.key_id in owners:
                earlier = raw_seen.get(raw) or owners[record.key_id]
                raise InvalidPeerKey(
                    f"key {record.key_id.hex()} of {entry.principal} is already listed "
                    f"for {earlier.entry.principal} (DIR-4)"
                )
            owner = KeyOwner(entry, record)
            raw_seen[raw] = owner
            owners[record.key_id] = owner
            if isinstance(record, SigningKeyRecord):
                converted[primitives.ed25519_public_key_to_x25519(raw)] = entry.principal
    for entry in entries:
        for enc in entry.encryption_keys:
            if enc.key.raw in converted:
                raise InvalidPeerKey(
                    f"encryption key {enc.key_id.hex()} of {entry.principal} is the signing key "
                    f"of {converted[enc.key.raw]} in X25519 form (KEY-3)"
                )
    return owners, raw_seen


@dataclass(frozen=True, slots=True)
class DirectoryDocument:
    """One version of the directory, unsigned (DIR-2); entries are kept sorted by id."""

    serial: int
    issued: int
    expires: int
    previous: bytes | None
    anchor: bytes
    entries: tuple[PrincipalEntry, ...] = ()
    _owners: dict[bytes, KeyOwner] = field(init=False, repr=False, compare=False)
    _raw_owners: dict[bytes, KeyOwner] = field(init=False, repr=False, compare=False)
    _by_id: dict[str, PrincipalEntry] = field(init=False, repr=False, compare=False)
    _cache: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.serial) is not int or self.serial < 1:
            raise UsageError("a directory serial is a positive integer")
        check_time(self.issued, "issued", UsageError)
        check_time(self.expires, "expires", UsageError)
        if not self.issued < self.expires <= self.issued + MAX_VALIDITY:
            raise UsageError("expires must be after issued, by at most 90 days")
        if (self.previous is None) != (self.serial == 1):
            raise UsageError("the previous version's hash is given exactly when serial > 1")
        for name, value in (("previous", self.previous), ("anchor", self.anchor)):
            if value is not None and (not isinstance(value, bytes) or len(value) != HASH_BYTES):
                raise UsageError(f"{name} is a 32-byte hash")
        if not all(isinstance(e, PrincipalEntry) for e in self.entries):
            raise UsageError("entries are PrincipalEntry objects")
        entries = tuple(sorted(self.entries, key=lambda e: e.principal.encode("ascii")))
        if len(entries) > MAX_PRINCIPALS:
            raise UsageError(f"at most {MAX_PRINCIPALS} principals")
        ids = [e.principal for e in entries]
        if len(set(ids)) != len(ids):
            raise UsageError("a principal is listed twice")
        for entry in entries:
            if entry.status[-1].since > self.issued or any(
                k.revoked is not None and k.revoked > self.issued for k in entry.all_keys()
            ):
                raise UsageError(
                    f"{entry.principal}: a status change or revocation is dated after issue"
                )
        object.__setattr__(self, "entries", entries)
        owners, raw_owners = _index(entries)
        object.__setattr__(self, "_owners", owners)
        object.__setattr__(self, "_raw_owners", raw_owners)
        object.__setattr__(self, "_by_id", {e.principal: e for e in entries})
        object.__setattr__(self, "_cache", {})

    # --- reading -------------------------------------------------------------------

    def entry(self, principal: str) -> PrincipalEntry:
        """The entry of ``principal``; :class:`UnknownKey` if it is not listed."""
        try:
            return self._by_id[principal]
        except KeyError:
            raise UnknownKey(f"principal {principal} is not in the directory") from None

    def owner(self, key_id: bytes) -> KeyOwner | None:
        return self._owners.get(key_id)

    def owner_of_key(self, raw: bytes) -> KeyOwner | None:
        """Where the key with these 32 bytes is listed, as signing or encryption key."""
        return self._raw_owners.get(raw)

    @property
    def listed_keys(self) -> Set[bytes]:
        """The 32 bytes of every key this version lists (DIR-16 remembers them)."""
        return self._raw_owners.keys()

    @property
    def principals(self) -> tuple[str, ...]:
        return tuple(e.principal for e in self.entries)

    # --- encoding ------------------------------------------------------------------

    def to_value(self) -> Value:
        return {
            "anchor": self.anchor,
            "entries": [e.to_value() for e in self.entries],
            "expires": self.expires,
            "issued": self.issued,
            "previous": self.previous,
            "serial": self.serial,
            "type": DIRECTORY_KIND.type,
            "version": DIRECTORY_VERSION,
        }

    def encode(self) -> bytes:
        if "encoded" not in self._cache:
            self._cache["encoded"] = codec.encode(self.to_value(), limits=DOCUMENT_LIMITS)
        return self._cache["encoded"]

    @property
    def hash(self) -> bytes:
        return DIRECTORY_KIND.hash(self.encode())

    def draft(self) -> SignedDocument:
        """The encoded version with no signatures yet, for root key holders to sign."""
        return SignedDocument(DIRECTORY_KIND, self.encode())

    @classmethod
    def decode(cls, document: bytes) -> DirectoryDocument:
        return cls.from_value(decode_value(document))

    @classmethod
    def from_value(cls, value: Value) -> DirectoryDocument:
        """Build from a decoded document (see :func:`decode_value`); raise on any other shape."""
        fields = Fields(value, "directory")
        read_header(fields)
        entries = [PrincipalEntry.from_value(item) for item in fields.array("entries")]
        ids = [e.principal.encode("ascii") for e in entries]
        if not strictly_increasing(ids):
            raise MalformedInput("directory entries must be sorted by id, each id once")
        try:
            document = cls(
                fields.uint("serial"),
                fields.time("issued"),
                fields.time("expires"),
                fields.optional_bin("previous", HASH_BYTES),
                fields.bin("anchor", HASH_BYTES),
                tuple(entries),
            )
        except UsageError as exc:
            raise MalformedInput(f"directory: {exc.message}") from exc
        fields.done()
        return document

    # --- building the next version -------------------------------------------------

    def with_entry(self, entry: PrincipalEntry) -> DirectoryDocument:
        """This version with ``entry`` added, or replacing the entry with the same id."""
        others = tuple(e for e in self.entries if e.principal != entry.principal)
        return replace(self, entries=(*others, entry))

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "issued": self.issued,
            "expires": self.expires,
            "previous": self.previous.hex() if self.previous else None,
            "anchor": self.anchor.hex(),
            "hash": self.hash.hex(),
            "entries": [e.to_json() for e in self.entries],
        }


def decode_value(document: bytes) -> Value:
    """Decode document bytes under the directory's limits (CODEC-7), checking only the header."""
    value = codec.decode(document, limits=DOCUMENT_LIMITS)
    read_header(Fields(value, "directory"))
    return value


def read_header(fields: Fields) -> tuple[bytes, int]:
    """Check type and version (first, ENV-3 style); return the anchor hash and serial."""
    if fields.text("type") != DIRECTORY_KIND.type:
        raise MalformedInput("not a directory document")
    if fields.uint("version") != DIRECTORY_VERSION:
        raise UnsupportedVersion("directory version is not 1")
    return fields.bin("anchor", HASH_BYTES), fields.uint("serial")


def _same_or_closed(old: int | None, new: int | None) -> bool:
    """A time that may be set once and then only moved earlier (a closing window)."""
    return old is None or (new is not None and new <= old)


def check_successor(
    old: DirectoryDocument,
    old_hash: bytes,
    new: DirectoryDocument,
    *,
    listed_before: Set[bytes] = frozenset(),
) -> None:
    """Raise unless ``new`` may follow ``old`` (DIR-6, DIR-7, DIR-15, DIR-16).

    :class:`BrokenChain` for a broken link, a rewritten past, or a key that
    ``new`` adds although ``old`` or an earlier version listed it (a dropped
    key never returns, DIR-16): ``listed_before`` holds the 32-byte keys of
    the versions before ``old`` that the caller checked (see
    :attr:`DirectoryDocument.listed_keys`).  :class:`~ncb_relay.errors.BadSignature` for a key
    ``new`` adds whose endorser is revoked or outside its window when the new
    key starts (DIR-15).
    """
    if new.serial != old.serial + 1:
        raise BrokenChain(f"version {new.serial} does not follow version {old.serial}")
    if new.previous != old_hash:
        raise BrokenChain(f"version {new.serial} does not name version {old.serial} as previous")
    if new.issued < old.issued:
        raise BrokenChain(f"version {new.serial} is issued before version {old.serial}")
    added: list[tuple[PrincipalEntry, SigningKeyRecord | EncryptionKeyRecord]] = []
    for entry in old.entries:
        try:
            after = new.entry(entry.principal)
        except UnknownKey:
            raise BrokenChain(f"version {new.serial} drops {entry.principal}") from None
        added += [(after, r) for r in _check_entry_successor(entry, after, new.issued)]
    known = set(old.principals)
    for entry in new.entries:
        if entry.principal not in known:
            for kind, records in (
                ("signing", entry.signing_keys),
                ("encryption", entry.encryption_keys),
            ):
                added += [
                    (entry, r)
                    for r in _check_records(kind, entry.principal, (), records, new.issued)
                ]
    for entry, record in added:
        if old.owner_of_key(record.key.raw) is not None or record.key.raw in listed_before:
            raise BrokenChain(
                f"{entry.principal}: key {record.key_id.hex()} was listed before; "
                "a dropped key never returns (DIR-16)"
            )
    for entry, record in added:
        entry.check_new_key(record)


def _check_entry_successor(
    old: PrincipalEntry, new: PrincipalEntry, issued: int
) -> list[SigningKeyRecord | EncryptionKeyRecord]:
    """Check one principal's entry against the one before; return the keys it adds."""
    who = old.principal
    if new.role != old.role:
        raise BrokenChain(f"{who}: the role cannot change")
    if new.status[: len(old.status)] != old.status:
        raise BrokenChain(f"{who}: the status history was rewritten")
    for change in new.status[len(old.status) :]:
        if change.state == "active" and change.since < issued:
            raise BrokenChain(f"{who}: reinstated with effect before the version's issue time")
    return [
        *_check_records("signing", who, old.signing_keys, new.signing_keys, issued),
        *_check_records("encryption", who, old.encryption_keys, new.encryption_keys, issued),
    ]


def prunable(record: SigningKeyRecord | EncryptionKeyRecord, issued: int) -> bool:
    """Whether a version issued at ``issued`` may drop ``record`` (DIR-7): an encryption
    key whose window closed at least :data:`~ncb_relay.entries.KEY_RETENTION` earlier,
    so that no message sealed to it can still be accepted.  Signing keys are never dropped.
    """
    return isinstance(record, EncryptionKeyRecord) and record.not_after + KEY_RETENTION <= issued


def _check_records(
    kind: str,
    who: str,
    before: Sequence[SigningKeyRecord | EncryptionKeyRecord],
    after: Sequence[SigningKeyRecord | EncryptionKeyRecord],
    issued: int,
) -> list[SigningKeyRecord | EncryptionKeyRecord]:
    """Check one kind of keys against the version before; return the keys added."""
    listed = {record.key_id: record for record in after}
    known = set()
    for a in before:
        known.add(a.key_id)
        b = listed.get(a.key_id)
        if b is None:
            if not prunable(a, issued):
                raise BrokenChain(f"{who}: {kind} key {a.key_id.hex()} was dropped")
            continue
        if (a.key, a.not_before, a.endorsement) != (b.key, b.not_before, b.endorsement):
            raise BrokenChain(f"{who}: {kind} key {a.key_id.hex()} was replaced or changed")
        if not _same_or_closed(a.not_after, b.not_after):
            raise BrokenChain(f"{who}: {kind} key {a.key_id.hex()} had its window extended")
        if a.revoked is not None and b.revoked != a.revoked:
            raise BrokenChain(f"{who}: {kind} key {a.key_id.hex()} had its revocation changed")
    added = [record for record in after if record.key_id not in known]
    for record in added:
        if record.not_before < issued:
            raise BrokenChain(
                f"{who}: key {record.key_id.hex()} is valid before the version "
                "that publishes it (DIR-7)"
            )
    return added
