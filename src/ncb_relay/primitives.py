"""The one module that touches the cryptographic libraries.

Everything else in ncb_relay calls these wrappers, which check lengths before
calling libsodium (through PyNaCl) or :mod:`hashlib`, translate every foreign
error into an :mod:`ncb_relay.errors` class, and never return a bool from a
verification: a failed check raises.

BLAKE2b is taken from :mod:`hashlib` (the same algorithm and personalisation
parameter as libsodium's, and several times faster from Python than PyNaCl's
binding for short inputs).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash.argon2id

from .errors import BadSignature, DecryptionFailed, InvalidPeerKey, UsageError

__all__ = [
    "AEAD_KEY_BYTES",
    "AEAD_NONCE_BYTES",
    "AEAD_TAG_BYTES",
    "ARGON2ID_SALT_BYTES",
    "HASH_BYTES",
    "PUBLIC_KEY_BYTES",
    "SECRETBOX_KEY_BYTES",
    "SECRETBOX_NONCE_BYTES",
    "SECRETBOX_TAG_BYTES",
    "SECRET_KEY_BYTES",
    "SIGNATURE_BYTES",
    "RandomSource",
    "aead_decrypt",
    "aead_encrypt",
    "argon2id",
    "blake2b",
    "constant_time_equal",
    "ed25519_check_public_key",
    "ed25519_keypair",
    "ed25519_public_key_to_x25519",
    "ed25519_sign",
    "ed25519_verify",
    "secretbox_decrypt",
    "secretbox_encrypt",
    "sha256",
    "x25519",
    "x25519_check_public_key",
    "x25519_public_key",
]

RandomSource = Callable[[int], bytes]
"""A source of randomness: called with a byte count, returns that many bytes.

Production code passes :func:`os.urandom`; test vectors pass recorded values.
"""

HASH_BYTES = 32
PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 32
SIGNATURE_BYTES = 64
AEAD_KEY_BYTES = 32
AEAD_NONCE_BYTES = 24
AEAD_TAG_BYTES = 16
PERSONALISATION_BYTES = 16
ARGON2ID_SALT_BYTES = 16
SECRETBOX_KEY_BYTES = 32
SECRETBOX_NONCE_BYTES = 24
SECRETBOX_TAG_BYTES = 16

# Encodings of X25519 points of small order (libsodium's list): a shared secret
# computed with any of them is predictable, so they are refused up front.
# Bit 255 is masked before comparison, as X25519 itself ignores it.
_X25519_SMALL_ORDER = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def _require_length(name: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise UsageError(f"{name} must be {length} bytes, got {len(value)}")


def blake2b(data: bytes, *, person: bytes, key: bytes = b"", size: int = HASH_BYTES) -> bytes:
    """BLAKE2b with a personalisation string (zero-padded to 16 bytes) and optional key."""
    if len(person) > PERSONALISATION_BYTES:
        raise UsageError("personalisation is at most 16 bytes")
    return hashlib.blake2b(data, digest_size=size, key=key, person=person).digest()


def sha256(data: bytes) -> bytes:
    """SHA-256 (FIPS 180-4), for the transparency log's RFC 9162 Merkle tree and note key ids."""
    return hashlib.sha256(data).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return hmac.compare_digest(a, b)


# --- Ed25519 ---------------------------------------------------------------------


def ed25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """The public key and libsodium's 64-byte secret key for a 32-byte Ed25519 seed."""
    _require_length("Ed25519 seed", seed, SECRET_KEY_BYTES)
    public, secret = sodium.crypto_sign_seed_keypair(seed)
    return bytes(public), bytes(secret)


def ed25519_sign(secret: bytes, message: bytes) -> bytes:
    """A detached Ed25519 signature (RFC 8032) of ``message`` by a 64-byte secret key."""
    _require_length("Ed25519 secret key", secret, 2 * SECRET_KEY_BYTES)
    return bytes(sodium.crypto_sign(message, secret)[:SIGNATURE_BYTES])


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify a detached Ed25519 signature; raise :class:`BadSignature` if it fails.

    libsodium rejects non-canonical ``S``, non-canonical and small-order ``R``
    and public keys of small order, so signatures are not malleable.
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        raise BadSignature("signature or public key has the wrong length")
    try:
        sodium.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError) as exc:
        raise BadSignature("signature does not verify") from exc


def ed25519_check_public_key(public_key: bytes) -> None:
    """Raise :class:`InvalidPeerKey` unless this is a canonical point of prime order."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InvalidPeerKey("Ed25519 public key must be 32 bytes")
    if not sodium.crypto_core_ed25519_is_valid_point(public_key):
        raise InvalidPeerKey("Ed25519 public key is not a valid point of prime order")


def ed25519_public_key_to_x25519(public_key: bytes) -> bytes:
    """The X25519 key birationally equivalent to an Ed25519 key (for key-usage checks)."""
    try:
        return bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(public_key))
    except (nacl.exceptions.CryptoError, nacl.exceptions.TypeError) as exc:
        raise InvalidPeerKey("Ed25519 public key cannot be converted") from exc


# --- X25519 ----------------------------------------------------------------------


def x25519_public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret scalar (RFC 7748 clamping applies)."""
    _require_length("X25519 secret", secret, SECRET_KEY_BYTES)
    return bytes(sodium.crypto_scalarmult_base(secret))


def x25519_check_public_key(public_key: bytes) -> None:
    """Raise :class:`InvalidPeerKey` for a wrong length or a small-order point."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InvalidPeerKey("X25519 public key must be 32 bytes")
    masked = public_key[:31] + bytes([public_key[31] & 0x7F])
    if masked in _X25519_SMALL_ORDER:
        raise InvalidPeerKey("X25519 public key has small order")


def x25519(secret: bytes, public_key: bytes) -> bytes:
    """X25519 (RFC 7748); raise :class:`InvalidPeerKey` if the result is all zero."""
    _require_length("X25519 secret", secret, SECRET_KEY_BYTES)
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InvalidPeerKey("X25519 public key must be 32 bytes")
    try:
        shared = bytes(sodium.crypto_scalarmult(secret, public_key))
    except nacl.exceptions.CryptoError as exc:  # libsodium refuses an all-zero result
        raise InvalidPeerKey("X25519 public key has small order") from exc
    return shared


# --- XChaCha20-Poly1305 ----------------------------------------------------------


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): ciphertext followed by the 16-byte tag."""
    _require_length("AEAD key", key, AEAD_KEY_BYTES)
    _require_length("AEAD nonce", nonce, AEAD_NONCE_BYTES)
    return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key))


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate; raise :class:`DecryptionFailed` and release nothing on failure."""
    if len(key) != AEAD_KEY_BYTES or len(nonce) != AEAD_NONCE_BYTES:
        raise DecryptionFailed("aead-parameters")
    if len(ciphertext) < AEAD_TAG_BYTES:
        raise DecryptionFailed("aead-truncated")
    try:
        return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key))
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("aead") from exc


# --- Argon2id and XSalsa20-Poly1305 (keystores) -------------------------------------


def argon2id(passphrase: bytes, salt: bytes, *, ops: int, mem_kib: int, size: int = 32) -> bytes:
    """Argon2id version 1.3 (RFC 9106) with one lane, ``ops`` passes over ``mem_kib`` KiB.

    This is libsodium's ``crypto_pwhash`` with ``ALG_ARGON2ID13``, ``opslimit = ops`` and
    ``memlimit = mem_kib * 1024``.  Raises :class:`UsageError` for parameters libsodium
    refuses or memory it cannot allocate.
    """
    _require_length("Argon2id salt", salt, ARGON2ID_SALT_BYTES)
    try:
        return bytes(
            nacl.pwhash.argon2id.kdf(size, passphrase, salt, opslimit=ops, memlimit=mem_kib * 1024)
        )
    except (nacl.exceptions.CryptoError, MemoryError) as exc:
        raise UsageError("Argon2id cannot run with these parameters") from exc


def secretbox_encrypt(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """XSalsa20-Poly1305 (NaCl ``crypto_secretbox``): the 16-byte tag, then the ciphertext."""
    _require_length("secretbox key", key, SECRETBOX_KEY_BYTES)
    _require_length("secretbox nonce", nonce, SECRETBOX_NONCE_BYTES)
    return bytes(sodium.crypto_secretbox_easy(plaintext, nonce, key))


def secretbox_decrypt(key: bytes, nonce: bytes, boxed: bytes) -> bytes:
    """Authenticate and decrypt ``tag || ciphertext``; raise :class:`DecryptionFailed` if forged."""
    _require_length("secretbox key", key, SECRETBOX_KEY_BYTES)
    _require_length("secretbox nonce", nonce, SECRETBOX_NONCE_BYTES)
    if len(boxed) < SECRETBOX_TAG_BYTES:
        raise DecryptionFailed("secretbox-truncated")
    try:
        return bytes(sodium.crypto_secretbox_open_easy(boxed, nonce, key))
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("secretbox") from exc
