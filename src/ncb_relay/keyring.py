"""A principal's private keys, and the passphrase-locked bytes that hold them (spec/keystore.md).

Theory of operation.  A :class:`Keyring` is what a principal must keep secret:
its Ed25519 signing seed and its X25519 encryption secrets, each encryption key
with the validity window the directory gives it.  :func:`lock_keyring` turns a
keyring into the bytes of a keystore file and :func:`unlock_keyring` turns them
back.  Neither touches a file, a clock or the system's randomness (``rng`` and
``now`` are parameters); :mod:`ncb_relay.keystore` is the adapter that reads
and writes files.

The bytes are a fixed 62-byte header and a secretbox.  The header holds the
format version, the Argon2id costs, the salt, the nonce and the length of the
box.  Argon2id turns the passphrase and the salt into a key that keys a BLAKE2b
hash of the whole header; that hash is the secretbox key.  Changing any header
byte therefore changes the key, and the box no longer opens.

Unlocking first checks everything that needs no passphrase (size, magic,
version, the costs against :class:`KdfBounds`, the box length) and reports a
failure there as corrupt or unsupported.  The bounds are checked before
Argon2id runs, so a hostile file cannot make the reader spend more memory or
time than the bounds allow.  Everything that depends on the passphrase fails
with one :class:`~ncb_relay.errors.KeystoreLocked`: a wrong passphrase and an
altered file cannot be told apart.  Python cannot wipe ``bytes``, so secrets
live in memory until they are garbage-collected.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from . import codec, primitives
from .codec import CodecLimits, Value
from .errors import (
    DecryptionFailed,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreLocked,
    KeystoreUnsupported,
    NcbRelayError,
    UsageError,
)
from .header import MAX_TIME, MAX_TTL
from .identity import EncryptionKeyPair, PrivateIdentity, SigningKeyPair, check_principal_id
from .primitives import RandomSource

__all__ = [
    "DEFAULT_KDF",
    "DEFAULT_KDF_BOUNDS",
    "DEFAULT_RETENTION",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "LABEL",
    "MAGIC",
    "MAX_ENCRYPTION_KEYS",
    "MAX_KEYSTORE_BYTES",
    "PERSON_KEYSTORE",
    "HeldEncryptionKey",
    "KdfBounds",
    "KdfParameters",
    "Keyring",
    "KeystoreHeader",
    "lock_keyring",
    "parse_keystore_header",
    "unlock_keyring",
]

MAGIC = b"NCBRKEYS"
FORMAT_VERSION = 1
LABEL = "ncb_relay keystore"
HEADER_BYTES = 62
MAX_KEYSTORE_BYTES = 64 * 1024
MAX_ENCRYPTION_KEYS = 256
PERSON_KEYSTORE = b"NCBR1 keystore"

DEFAULT_RETENTION = MAX_TTL + 900
"""Seconds an encryption key is kept after its window ends (KS-12).

A message sealed to a key is created inside the key's window and lives at most
``MAX_TTL`` seconds; recipients accept it for up to 900 more (the largest
``max_skew`` FRESH-3 allows).  After that no acceptable message needs the key.
"""

_UINT32 = 2**32 - 1
_DOCUMENT_LIMITS = CodecLimits(
    max_bytes=MAX_KEYSTORE_BYTES,
    max_str_bytes=256,
    max_bin_bytes=64,
    max_array_items=MAX_ENCRYPTION_KEYS,
    max_map_items=8,
    max_depth=4,
)


def _is_int(value: object) -> TypeGuard[int]:
    return type(value) is int


@dataclass(frozen=True, slots=True)
class KdfParameters:
    """Argon2id costs: ``ops`` passes over ``mem_kib`` KiB of memory, one lane."""

    ops: int
    mem_kib: int

    def __post_init__(self) -> None:
        if not (_is_int(self.ops) and _is_int(self.mem_kib)):
            raise UsageError("Argon2id costs are integers")
        if not 1 <= self.ops <= _UINT32 or not 8 <= self.mem_kib <= _UINT32:
            raise UsageError("Argon2id needs 1 <= ops < 2**32 and 8 <= mem_kib < 2**32")


DEFAULT_KDF = KdfParameters(ops=3, mem_kib=256 * 1024)
"""libsodium's ``OPSLIMIT_MODERATE`` / ``MEMLIMIT_MODERATE``: 3 passes over 256 MiB."""


@dataclass(frozen=True, slots=True)
class KdfBounds:
    """The Argon2id costs a reader accepts; anything outside is refused before any work."""

    min_ops: int = 2
    min_mem_kib: int = 64 * 1024
    max_ops: int = 16
    max_mem_kib: int = 2 * 1024 * 1024

    def __post_init__(self) -> None:
        KdfParameters(self.min_ops, self.min_mem_kib)
        KdfParameters(self.max_ops, self.max_mem_kib)
        if self.min_ops > self.max_ops or self.min_mem_kib > self.max_mem_kib:
            raise UsageError("KDF bounds: a minimum exceeds its maximum")

    def accepts(self, kdf: KdfParameters) -> bool:
        return (
            self.min_ops <= kdf.ops <= self.max_ops
            and self.min_mem_kib <= kdf.mem_kib <= self.max_mem_kib
        )


DEFAULT_KDF_BOUNDS = KdfBounds()
"""At least libsodium's interactive costs (2 passes, 64 MiB); at most 16 passes, 2 GiB."""


@dataclass(frozen=True, slots=True, eq=False)
class HeldEncryptionKey:
    """An X25519 key pair and its validity window ``[not_before, not_after)``."""

    key_pair: EncryptionKeyPair
    not_before: int
    not_after: int

    def __post_init__(self) -> None:
        if not isinstance(self.key_pair, EncryptionKeyPair):
            raise UsageError("key_pair must be an EncryptionKeyPair")
        if not (_is_int(self.not_before) and _is_int(self.not_after)):
            raise UsageError("a validity window is two integer times")
        if not 0 <= self.not_before < self.not_after <= MAX_TIME:
            raise UsageError("a validity window needs 0 <= not_before < not_after <= 2**40")

    @property
    def key_id(self) -> bytes:
        return self.key_pair.public_key.key_id

    def expired(self, now: int, retention: int = DEFAULT_RETENTION) -> bool:
        """True once ``retention`` seconds have passed since the window ended (KS-12)."""
        return now >= self.not_after + retention


def _window_order(key: HeldEncryptionKey) -> tuple[int, int, bytes]:
    return (key.not_before, key.not_after, key.key_id)


@dataclass(frozen=True, eq=False, init=False, repr=False)
class Keyring:
    """A principal's signing seed and encryption keys, oldest window first (KS-7).

    The keys are sorted on construction; the last one is the current key of
    :attr:`identity`.  ``repr`` shows key ids only.
    """

    principal: str
    signing: SigningKeyPair
    encryption_keys: tuple[HeldEncryptionKey, ...]
    identity: PrivateIdentity

    def __init__(
        self, principal: str, signing: SigningKeyPair, encryption_keys: Iterable[HeldEncryptionKey]
    ) -> None:
        check_principal_id(principal, error=UsageError)
        if not isinstance(signing, SigningKeyPair):
            raise UsageError("a keystore holds an in-memory SigningKeyPair")
        keys = tuple(encryption_keys)
        if not all(isinstance(k, HeldEncryptionKey) for k in keys):
            raise UsageError("encryption keys must be HeldEncryptionKey objects")
        if not 1 <= len(keys) <= MAX_ENCRYPTION_KEYS:
            raise UsageError(f"a keyring holds 1 to {MAX_ENCRYPTION_KEYS} encryption keys")
        if len({k.key_id for k in keys}) != len(keys):
            raise UsageError("an encryption key is listed twice")
        keys = tuple(sorted(keys, key=_window_order))
        identity = PrivateIdentity(principal, signing, [k.key_pair for k in keys])
        object.__setattr__(self, "principal", principal)
        object.__setattr__(self, "signing", signing)
        object.__setattr__(self, "encryption_keys", keys)
        object.__setattr__(self, "identity", identity)

    @classmethod
    def generate(
        cls, principal: str, rng: RandomSource, *, not_before: int, not_after: int
    ) -> Keyring:
        """A new signing key and one encryption key valid over ``[not_before, not_after)``."""
        signing = SigningKeyPair.generate(rng)
        held = HeldEncryptionKey(EncryptionKeyPair.generate(rng), not_before, not_after)
        return cls(principal, signing, [held])

    def with_encryption_key(self, key: HeldEncryptionKey) -> Keyring:
        """This keyring with one more encryption key (a rotation)."""
        return Keyring(self.principal, self.signing, (*self.encryption_keys, key))

    def expired_keys(
        self, now: int, retention: int = DEFAULT_RETENTION
    ) -> tuple[HeldEncryptionKey, ...]:
        """The encryption keys whose window ended at least ``retention`` seconds ago."""
        _check_time_arguments(now, retention)
        return tuple(k for k in self.encryption_keys if k.expired(now, retention))

    def without_expired(self, now: int, retention: int = DEFAULT_RETENTION) -> Keyring:
        """This keyring less its expired encryption keys (KS-12).

        Raises :class:`UsageError` if every key has expired: the principal must
        rotate to a new key first, since an identity needs one.
        """
        _check_time_arguments(now, retention)
        kept = [k for k in self.encryption_keys if not k.expired(now, retention)]
        if not kept:
            raise UsageError("every encryption key has expired: rotate before removing them")
        return Keyring(self.principal, self.signing, kept)

    def __repr__(self) -> str:
        ids = ", ".join(k.key_id.hex() for k in self.encryption_keys)
        return (
            f"Keyring({self.principal!r}, signing={self.signing.public_key.key_id.hex()}, "
            f"encryption=[{ids}])"
        )


def _check_time_arguments(now: int, retention: int) -> None:
    if not (_is_int(now) and _is_int(retention)) or now < 0 or retention < 0:
        raise UsageError("now and retention are non-negative integers (seconds)")


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    """UTF-8 of the NFC form of a text passphrase; bytes pass unchanged (KS-4)."""
    if isinstance(passphrase, str):
        try:
            raw = unicodedata.normalize("NFC", passphrase).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError("a passphrase must be valid Unicode") from exc
    elif isinstance(passphrase, bytes):
        raw = passphrase
    else:
        raise UsageError("a passphrase is str or bytes")
    if not raw:
        raise UsageError("the passphrase is empty")
    return raw


# --- the header ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeystoreHeader:
    """The public part of a keystore file (KS-2): nothing here is secret."""

    version: int
    kdf: KdfParameters
    salt: bytes
    nonce: bytes
    box_length: int

    def encode(self) -> bytes:
        return b"".join(
            [
                MAGIC,
                self.version.to_bytes(2, "big"),
                self.kdf.ops.to_bytes(4, "big"),
                self.kdf.mem_kib.to_bytes(4, "big"),
                self.salt,
                self.nonce,
                self.box_length.to_bytes(4, "big"),
            ]
        )


def parse_keystore_header(
    data: bytes, *, bounds: KdfBounds = DEFAULT_KDF_BOUNDS, max_bytes: int = MAX_KEYSTORE_BYTES
) -> KeystoreHeader:
    """Check what needs no passphrase (KS-8, KS-9, KS-10) and return the header."""
    if not isinstance(data, bytes):
        raise UsageError("a keystore is bytes")
    if len(data) > max_bytes:
        raise KeystoreCorrupt(f"keystore of {len(data)} bytes exceeds {max_bytes}")
    if data[: len(MAGIC)] != MAGIC:
        raise KeystoreCorrupt("not an ncb_relay keystore (wrong magic)")
    if len(data) < HEADER_BYTES:
        raise KeystoreCorrupt("keystore truncated inside its header")
    version = int.from_bytes(data[8:10], "big")
    if version != FORMAT_VERSION:
        raise KeystoreUnsupported(f"keystore format version {version} is not supported")
    ops = int.from_bytes(data[10:14], "big")
    mem_kib = int.from_bytes(data[14:18], "big")
    if not (ops >= 1 and mem_kib >= 8):
        raise KeystoreUnsupported(f"Argon2id costs ops={ops}, mem_kib={mem_kib} are invalid")
    kdf = KdfParameters(ops, mem_kib)
    if not bounds.accepts(kdf):
        raise KeystoreUnsupported(
            f"Argon2id costs ops={ops}, mem_kib={mem_kib} are outside the accepted bounds "
            f"(ops {bounds.min_ops}..{bounds.max_ops}, "
            f"mem_kib {bounds.min_mem_kib}..{bounds.max_mem_kib})"
        )
    box_length = int.from_bytes(data[58:62], "big")
    if box_length < primitives.SECRETBOX_TAG_BYTES:
        raise KeystoreCorrupt("keystore box is shorter than its tag")
    if HEADER_BYTES + box_length > len(data):
        raise KeystoreCorrupt("keystore truncated: the box is shorter than its length says")
    if HEADER_BYTES + box_length < len(data):
        raise KeystoreCorrupt("keystore has bytes after its box")
    return KeystoreHeader(version, kdf, data[18:34], data[34:58], box_length)


def _box_key(passphrase: bytes, header: KeystoreHeader) -> bytes:
    """KS-5: BLAKE2b-256(header, key=Argon2id(passphrase, salt), person="NCBR1 keystore")."""
    try:
        stretched = primitives.argon2id(
            passphrase, header.salt, ops=header.kdf.ops, mem_kib=header.kdf.mem_kib
        )
    except UsageError as exc:
        raise KeystoreError("Argon2id could not run (not enough memory?)") from exc
    return primitives.blake2b(header.encode(), key=stretched, person=PERSON_KEYSTORE)


# --- the document inside the box ---------------------------------------------------------


def _document(keyring: Keyring) -> dict[str, Value]:
    encryption: list[Value] = [
        {
            "key_id": k.key_id,
            "not_after": k.not_after,
            "not_before": k.not_before,
            "secret": k.key_pair.secret,
        }
        for k in keyring.encryption_keys
    ]
    return {
        "encryption": encryption,
        "label": LABEL,
        "principal": keyring.principal,
        "signing": {"key_id": keyring.signing.public_key.key_id, "seed": keyring.signing.seed},
        "version": FORMAT_VERSION,
    }


def _map(value: Value, keys: tuple[str, ...], what: str) -> dict[str, Value]:
    if not isinstance(value, dict) or tuple(value) != keys:
        raise KeystoreCorrupt(f"keystore {what} does not have exactly the fields {keys}")
    return value


def _bin(value: Value, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise KeystoreCorrupt(f"keystore {what} is not {size} bytes")
    return value


def _held_key(value: Value) -> HeldEncryptionKey:
    entry = _map(value, ("key_id", "not_after", "not_before", "secret"), "encryption key")
    key_id = _bin(entry["key_id"], 16, "encryption key id")
    secret = _bin(entry["secret"], primitives.SECRET_KEY_BYTES, "encryption secret")
    not_before, not_after = entry["not_before"], entry["not_after"]
    if not (_is_int(not_before) and _is_int(not_after)):
        raise KeystoreCorrupt("keystore validity window is not two integers")
    held = HeldEncryptionKey(EncryptionKeyPair(secret), not_before, not_after)
    if not primitives.constant_time_equal(held.key_id, key_id):
        raise KeystoreCorrupt("keystore encryption key id does not match its secret")
    return held


def _keyring(value: Value) -> Keyring:
    """KS-6, KS-7: the document, checked field by field."""
    doc = _map(value, ("encryption", "label", "principal", "signing", "version"), "document")
    if doc["label"] != LABEL or doc["version"] != FORMAT_VERSION:
        raise KeystoreCorrupt("keystore document has the wrong label or version")
    signing_entry = _map(doc["signing"], ("key_id", "seed"), "signing key")
    seed = _bin(signing_entry["seed"], primitives.SECRET_KEY_BYTES, "signing seed")
    signing = SigningKeyPair(seed)
    key_id = _bin(signing_entry["key_id"], 16, "signing key id")
    if not primitives.constant_time_equal(signing.public_key.key_id, key_id):
        raise KeystoreCorrupt("keystore signing key id does not match its seed")
    entries = doc["encryption"]
    if not isinstance(entries, list):
        raise KeystoreCorrupt("keystore encryption keys are not a list")
    keys = [_held_key(entry) for entry in entries]
    principal = doc["principal"]
    if not isinstance(principal, str):
        raise KeystoreCorrupt("keystore principal id is not a text string")
    keyring = Keyring(principal, signing, keys)
    if [k.key_id for k in keyring.encryption_keys] != [k.key_id for k in keys]:
        raise KeystoreCorrupt("keystore encryption keys are not in window order")
    return keyring


# --- lock and unlock --------------------------------------------------------------------


def lock_keyring(
    keyring: Keyring,
    passphrase: str | bytes,
    *,
    rng: RandomSource,
    kdf: KdfParameters = DEFAULT_KDF,
    bounds: KdfBounds = DEFAULT_KDF_BOUNDS,
) -> bytes:
    """The keystore bytes of ``keyring`` under ``passphrase`` (KS-1 .. KS-7).

    ``rng`` is called twice: 16 bytes of salt, then 24 bytes of nonce.  ``kdf``
    must lie inside ``bounds``, so that no file is written that a reader with
    the same bounds would refuse.
    """
    if not isinstance(keyring, Keyring):
        raise UsageError("lock_keyring needs a Keyring")
    if not isinstance(kdf, KdfParameters) or not bounds.accepts(kdf):
        raise UsageError("Argon2id costs are outside the bounds")
    secret = _passphrase_bytes(passphrase)
    salt = rng(primitives.ARGON2ID_SALT_BYTES)
    nonce = rng(primitives.SECRETBOX_NONCE_BYTES)
    if (len(salt), len(nonce)) != (
        primitives.ARGON2ID_SALT_BYTES,
        primitives.SECRETBOX_NONCE_BYTES,
    ):
        raise UsageError("rng returned the wrong number of bytes")
    document = codec.encode(_document(keyring), limits=_DOCUMENT_LIMITS)
    box_length = primitives.SECRETBOX_TAG_BYTES + len(document)
    header = KeystoreHeader(FORMAT_VERSION, kdf, salt, nonce, box_length)
    box = primitives.secretbox_encrypt(_box_key(secret, header), nonce, document)
    return header.encode() + box


def unlock_keyring(
    data: bytes,
    passphrase: str | bytes,
    *,
    bounds: KdfBounds = DEFAULT_KDF_BOUNDS,
    max_bytes: int = MAX_KEYSTORE_BYTES,
) -> Keyring:
    """The keyring in ``data`` (KS-8 .. KS-11).

    Raises :class:`KeystoreCorrupt` or :class:`KeystoreUnsupported` for what
    can be seen without the passphrase, and :class:`KeystoreLocked` for a wrong
    passphrase and an altered file alike.
    """
    secret = _passphrase_bytes(passphrase)
    header = parse_keystore_header(data, bounds=bounds, max_bytes=max_bytes)
    try:
        document = primitives.secretbox_decrypt(
            _box_key(secret, header), header.nonce, data[HEADER_BYTES:]
        )
    except DecryptionFailed:
        raise KeystoreLocked(
            "cannot unlock the keystore: wrong passphrase, or the file was altered"
        ) from None
    try:
        return _keyring(codec.decode(document, limits=_DOCUMENT_LIMITS))
    except KeystoreCorrupt:
        raise
    except NcbRelayError as exc:
        # authentic, but not a document this library writes: a writer's bug
        raise KeystoreCorrupt(f"keystore contents are invalid ({exc.code})") from exc
