"""Principal ids, keys and the primitive wrappers (ID-1, KEY-1 .. KEY-5)."""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import pytest

from fixtures import PRINCIPALS, identity, seeded_rng
from ncb_relay import (
    BadSignature,
    DecryptionFailed,
    EncryptionKeyPair,
    EncryptionPublicKey,
    InvalidPeerKey,
    MalformedInput,
    PrivateIdentity,
    PublicIdentity,
    Signer,
    SigningKeyPair,
    SigningPublicKey,
    StaticDirectory,
    UnknownKey,
    UsageError,
    check_principal_id,
    primitives,
)
from ncb_relay.errors import BindingMismatch
from ncb_relay.identity import fingerprint_text

# --- ID-1 principal ids -------------------------------------------------------------------

VALID_IDS = [
    "KR.ncb-seoul",
    "MA.ncb-rabat",
    "XP.interpol-gs",
    "FR.a",
    "DE.0",
    "US.a.b.c",
    "GB.a-b",
    "ZZ.x1--2.y-3",
    "JP.9a9",
    "AA." + "a" * 61,  # exactly 64 bytes
    "BR." + ".".join(["ab"] * 20) + ".a",  # 64 bytes of labels
]

INVALID_IDS: list[Any] = [
    "",
    "KR",
    "KR.",
    ".KR.a",
    "kr.ncb",
    "Kr.ncb",
    "K.ncb",
    "KRX.ncb",
    "K1.ncb",
    "KR.Ncb",
    "KR.ncB",
    "KR.-a",
    "KR.a-",
    "KR.-",
    "KR.a..b",
    "KR.a.",
    "KR..a",
    "KR-a",
    "KR:a",
    "KR_a",
    "KR.a b",
    "KR.a_b",
    "KR.a/b",
    " KR.a",
    "KR.a ",
    "KR.ncb\n",
    "\nKR.ncb",
    "KR.a\x00",
    "KR.ncb-s\u00e9oul",  # not ASCII
    "\uff2bR.a",  # fullwidth K
    "KR.\uff41",  # fullwidth a
    "KR.\u0663",  # Arabic-Indic digit three (a Unicode digit, not [0-9])
    "\u212aR.a",  # Kelvin sign, folds to K under case-insensitive matching
    "AA." + "a" * 62,  # 65 bytes
    "AA." + "a" * 1000,
    b"KR.ncb-seoul",
    None,
    1,
    ["KR.ncb-seoul"],
]


@pytest.mark.req("ID-1")
@pytest.mark.parametrize("value", VALID_IDS)
def test_valid_principal_ids(value: str) -> None:
    assert len(value.encode("ascii")) <= 64
    assert check_principal_id(value) == value
    assert check_principal_id(value, error=UsageError) == value


@pytest.mark.req("ID-1")
@pytest.mark.parametrize("value", INVALID_IDS, ids=repr)
def test_invalid_principal_ids(value: Any) -> None:
    with pytest.raises(MalformedInput):
        check_principal_id(value)
    with pytest.raises(UsageError):
        check_principal_id(value, error=UsageError)


@pytest.mark.req("ID-1")
@pytest.mark.parametrize("value", [*INVALID_IDS[:12], "AA." + "a" * 62], ids=repr)
def test_identities_refuse_invalid_principal_ids(value: str) -> None:
    alice = identity("KR.ncb-seoul")
    with pytest.raises(UsageError):
        PrivateIdentity(value, alice.signer, alice.encryption_keys)
    with pytest.raises(UsageError):
        PublicIdentity(value, alice.public.signing_key, alice.public.encryption_key)


# --- KEY-1 key types ----------------------------------------------------------------------


@pytest.mark.req("KEY-1")
def test_signing_keys_are_ed25519() -> None:
    seed = bytes(range(32))
    pair = SigningKeyPair(seed)
    public, secret = sodium.crypto_sign_seed_keypair(seed)
    assert pair.public_key.raw == public
    assert pair.seed == seed
    message = b"a message"
    signature = pair.sign(message)
    assert signature == sodium.crypto_sign(message, secret)[:64]
    pair.public_key.verify(message, signature)
    with pytest.raises(BadSignature):
        pair.public_key.verify(message + b"!", signature)
    assert isinstance(pair, Signer)


@pytest.mark.req("KEY-1")
def test_encryption_keys_are_x25519() -> None:
    ours, theirs = EncryptionKeyPair(bytes([1] * 32)), EncryptionKeyPair(bytes([2] * 32))
    assert ours.public_key.raw == sodium.crypto_scalarmult_base(bytes([1] * 32))
    assert ours.secret == bytes([1] * 32)
    shared = ours.exchange(theirs.public_key.raw)
    assert shared == theirs.exchange(ours.public_key.raw)
    assert shared == sodium.crypto_scalarmult(bytes([1] * 32), theirs.public_key.raw)
    assert not isinstance(ours, Signer)  # it cannot sign


@pytest.mark.req("KEY-1")
@pytest.mark.parametrize("principal", [f"XX.swap-{i}" for i in range(40)])
def test_public_identity_refuses_keys_in_each_others_place(principal: str) -> None:
    """A signing key object is never accepted where an encryption key belongs, and the reverse."""
    keys = identity(principal).public
    with pytest.raises(UsageError):
        PublicIdentity(principal, keys.encryption_key, keys.signing_key)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        PublicIdentity(principal, keys.signing_key, keys.signing_key)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        PublicIdentity(principal, keys.encryption_key, keys.encryption_key)  # type: ignore[arg-type]


@pytest.mark.req("KEY-1")
def test_private_identity_refuses_keys_in_each_others_place() -> None:
    me = identity("KR.ncb-seoul")
    signer = me.signer
    assert isinstance(signer, SigningKeyPair)
    with pytest.raises(UsageError):
        PrivateIdentity(me.principal, signer, [signer])  # type: ignore[list-item]
    with pytest.raises(UsageError):
        PrivateIdentity(me.principal, me.encryption_keys[0], [signer])  # type: ignore[arg-type,list-item]
    with pytest.raises(UsageError):
        PrivateIdentity(me.principal, signer, [me.encryption_keys[0].public_key])  # type: ignore[list-item]


@pytest.mark.req("KEY-1")
def test_private_identity_accepts_any_signer() -> None:
    """A signer that holds its key elsewhere (an HSM) only needs public_key and sign."""
    inner = SigningKeyPair(bytes([7] * 32))

    class Hsm:
        @property
        def public_key(self) -> SigningPublicKey:
            return inner.public_key

        def sign(self, message: bytes) -> bytes:
            return inner.sign(message)

    hsm = Hsm()
    me = PrivateIdentity("KR.ncb-seoul", hsm, [EncryptionKeyPair(bytes([8] * 32))])
    assert me.signer is hsm
    assert me.public.signing_key == inner.public_key


# --- KEY-2 fingerprints and key ids ---------------------------------------------------------


def _blake2b_person(data: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


@pytest.mark.req("KEY-2")
@pytest.mark.parametrize("principal", PRINCIPALS)
def test_key_ids_are_domain_separated_fingerprints(principal: str) -> None:
    public = identity(principal).public
    signing, encryption = public.signing_key, public.encryption_key
    assert signing.fingerprint == _blake2b_person(signing.raw, b"NCBR1 fp sign")
    assert encryption.fingerprint == _blake2b_person(encryption.raw, b"NCBR1 fp encrypt")
    assert signing.key_id == signing.fingerprint[:16]
    assert encryption.key_id == encryption.fingerprint[:16]
    assert len(signing.key_id) == len(encryption.key_id) == 16


@pytest.mark.req("KEY-2")
def test_the_same_bytes_get_different_ids_as_signing_and_encryption_key() -> None:
    raw = identity("KR.ncb-seoul").public.signing_key.raw
    as_signing, as_encryption = SigningPublicKey(raw), EncryptionPublicKey(raw)
    assert as_signing.key_id != as_encryption.key_id
    assert as_signing.fingerprint != as_encryption.fingerprint


@pytest.mark.req("KEY-2")
def test_fingerprint_text_groups_hex_digits() -> None:
    fingerprint = bytes(range(32))
    text = fingerprint_text(fingerprint)
    assert text.replace(" ", "") == fingerprint.hex()
    assert text.split(" ") == [fingerprint.hex()[i : i + 4] for i in range(0, 64, 4)]


@pytest.mark.req("KEY-2")
def test_static_directory_tells_key_ids_apart() -> None:
    alice, bob = identity("KR.ncb-seoul"), identity("MA.ncb-rabat")
    directory = StaticDirectory([alice.public, bob.public])
    signing, encryption = alice.public.signing_key, alice.public.encryption_key
    assert directory.signing_key(alice.principal, signing.key_id, 0) == signing
    directory.check_encryption_key(alice.principal, encryption.key_id, 0)
    assert directory.encryption_key(alice.principal, 0) == encryption
    with pytest.raises(BindingMismatch):
        directory.signing_key(alice.principal, encryption.key_id, 0)
    with pytest.raises(BindingMismatch):
        directory.check_encryption_key(alice.principal, signing.key_id, 0)
    with pytest.raises(BindingMismatch):
        directory.signing_key(bob.principal, signing.key_id, 0)
    with pytest.raises(UnknownKey):
        directory.signing_key(alice.principal, bytes(16), 0)
    with pytest.raises(UnknownKey):
        directory.encryption_key("FR.ncb-paris", 0)
    with pytest.raises(UsageError):
        StaticDirectory([alice.public, alice.public])
    clone = PublicIdentity("FR.ncb-paris", signing, bob.public.encryption_key)
    with pytest.raises(UsageError):
        StaticDirectory([alice.public, clone])


# --- KEY-3 an encryption key that is the signing key converted -----------------------------


@pytest.mark.req("KEY-3", "KEY-1")
@pytest.mark.parametrize("seed", [bytes([n] * 32) for n in range(5)])
def test_converted_signing_key_is_refused_as_encryption_key(seed: bytes) -> None:
    signer = SigningKeyPair(seed)
    _, secret64 = sodium.crypto_sign_seed_keypair(seed)
    converted = EncryptionKeyPair(sodium.crypto_sign_ed25519_sk_to_curve25519(secret64))
    assert converted.public_key.raw == sodium.crypto_sign_ed25519_pk_to_curve25519(
        signer.public_key.raw
    )
    with pytest.raises(InvalidPeerKey) as info:
        PrivateIdentity("KR.ncb-seoul", signer, [converted])
    assert info.value.code == "invalid-peer-key"
    # also when it hides among rotated keys
    other = EncryptionKeyPair(bytes([9] * 32))
    with pytest.raises(InvalidPeerKey):
        PrivateIdentity("KR.ncb-seoul", signer, [converted, other])
    with pytest.raises(InvalidPeerKey):
        PrivateIdentity("KR.ncb-seoul", signer, [other, converted])
    with pytest.raises(InvalidPeerKey):
        PublicIdentity("KR.ncb-seoul", signer.public_key, converted.public_key)
    # the same keys under different owners are fine
    PrivateIdentity("KR.ncb-seoul", SigningKeyPair(bytes([99] * 32)), [converted])


# --- KEY-4 Ed25519 points ------------------------------------------------------------------

_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P

# Encodings of the eight points of small order (RFC 8032 section 5.1.3 decoding; the
# list libsodium and "Taming the many EdDSAs" use): identity, order 2, 4 and 8.
ED25519_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]

ED25519_NON_CANONICAL = [
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = 2^255 - 1
    "0100000000000000000000000000000000000000000000000000000000000080",  # y = 1, x "negative" 0
]


def _on_curve(y: int) -> bool:
    """Whether some x satisfies -x^2 + y^2 = 1 + d x^2 y^2 (Euler's criterion on x^2)."""
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    return x2 == 0 or pow(x2, (_P - 1) // 2, _P) == 1


def _not_on_curve() -> list[str]:
    ys = [y for y in range(2, 50) if not _on_curve(y)][:4]
    assert len(ys) == 4
    return [y.to_bytes(32, "little").hex() for y in ys]


def _mixed_order() -> str:
    """A valid public key plus a point of order 8: on the curve, not of prime order."""
    valid = SigningKeyPair(bytes(32)).public_key.raw
    return bytes(sodium.crypto_core_ed25519_add(valid, bytes.fromhex(ED25519_SMALL_ORDER[6]))).hex()


INVALID_ED25519 = (
    [pytest.param(k, id=f"small-order-{i}") for i, k in enumerate(ED25519_SMALL_ORDER)]
    + [pytest.param(k, id=f"non-canonical-{i}") for i, k in enumerate(ED25519_NON_CANONICAL)]
    + [pytest.param(k, id=f"not-on-curve-{i}") for i, k in enumerate(_not_on_curve())]
    + [pytest.param(_mixed_order(), id="mixed-order")]
)


@pytest.mark.req("KEY-4")
@pytest.mark.parametrize("key", INVALID_ED25519)
def test_invalid_ed25519_points_are_refused(key: str) -> None:
    raw = bytes.fromhex(key)
    with pytest.raises(InvalidPeerKey):
        SigningPublicKey(raw)
    with pytest.raises(InvalidPeerKey):
        primitives.ed25519_check_public_key(raw)
    # and libsodium does not verify signatures under them either
    with pytest.raises(BadSignature):
        primitives.ed25519_verify(raw, b"m", bytes(64))


@pytest.mark.req("KEY-4")
def test_not_on_curve_helper_agrees_with_libsodium() -> None:
    """The independent curve check above marks real points as on the curve."""
    raw = SigningKeyPair(bytes(32)).public_key.raw
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    assert _on_curve(y)
    for key in _not_on_curve():
        with pytest.raises(nacl.exceptions.CryptoError):  # libsodium refuses off-curve points
            sodium.crypto_core_ed25519_add(raw, bytes.fromhex(key))


@pytest.mark.req("KEY-4")
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_ed25519_key_of_wrong_length(length: int) -> None:
    with pytest.raises(InvalidPeerKey):
        SigningPublicKey(bytes(length))


@pytest.mark.req("KEY-4")
def test_keys_must_be_bytes() -> None:
    raw = SigningKeyPair(bytes(32)).public_key.raw
    with pytest.raises(UsageError):
        SigningPublicKey(bytearray(raw))  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        EncryptionPublicKey(raw.hex())  # type: ignore[arg-type]
    for bad in (bytes(31), bytes(33), bytearray(32), "a" * 32):
        with pytest.raises(UsageError):
            SigningKeyPair(bad)  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            EncryptionKeyPair(bad)  # type: ignore[arg-type]


# --- KEY-4 / KEY-5 X25519 points --------------------------------------------------------

# The seven small-order encodings of the catalogue (KEY-4), and the same with bit 255 set.
X25519_SMALL_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
X25519_SMALL_ORDER_HIGH_BIT = [
    (bytes.fromhex(k)[:31] + bytes([bytes.fromhex(k)[31] | 0x80])).hex() for k in X25519_SMALL_ORDER
]


@pytest.mark.req("KEY-4", "KEY-5")
@pytest.mark.parametrize("key", X25519_SMALL_ORDER + X25519_SMALL_ORDER_HIGH_BIT)
def test_small_order_x25519_keys_are_refused(key: str) -> None:
    raw = bytes.fromhex(key)
    with pytest.raises(InvalidPeerKey):
        EncryptionPublicKey(raw)
    with pytest.raises(InvalidPeerKey):
        primitives.x25519_check_public_key(raw)
    # KEY-5: the shared secret with any of them is all zero, and X25519 refuses it
    # (x25519 does not consult the list above; libsodium checks the result)
    with pytest.raises(InvalidPeerKey):
        primitives.x25519(bytes(range(32)), raw)
    with pytest.raises(InvalidPeerKey):
        EncryptionKeyPair(bytes(range(32))).exchange(raw)


@pytest.mark.req("KEY-4")
def test_x25519_keys_with_bit_255_set_are_otherwise_accepted() -> None:
    raw = EncryptionKeyPair(bytes([5] * 32)).public_key.raw
    assert raw[31] & 0x80 == 0
    flipped = raw[:31] + bytes([raw[31] | 0x80])
    assert EncryptionPublicKey(flipped).raw == flipped
    secret = bytes([6] * 32)
    assert primitives.x25519(secret, flipped) == primitives.x25519(
        secret, raw
    )  # X25519 ignores bit 255


@pytest.mark.req("KEY-4")
@pytest.mark.parametrize("length", [0, 31, 33])
def test_x25519_key_of_wrong_length(length: int) -> None:
    with pytest.raises(InvalidPeerKey):
        EncryptionPublicKey(bytes(length))
    with pytest.raises(InvalidPeerKey):
        primitives.x25519(bytes(32), bytes(length))


# --- the rest of the identity API ----------------------------------------------------------


@pytest.mark.req("KEY-1")
def test_private_identity_basics() -> None:
    rng = seeded_rng(b"basics")
    me = PrivateIdentity.generate("KR.ncb-seoul", rng)
    assert me.principal == "KR.ncb-seoul"
    assert len(me.encryption_keys) == 1
    public = me.public
    assert public.principal == me.principal
    assert public.signing_key == me.signer.public_key
    assert public.encryption_key == me.encryption_keys[0].public_key
    key = me.encryption_keys[0]
    assert me.encryption_key(key.public_key.key_id) is key
    with pytest.raises(UnknownKey):
        me.encryption_key(me.signer.public_key.key_id)
    with pytest.raises(UnknownKey):
        me.encryption_key(bytes(16))
    with pytest.raises(UsageError):
        PrivateIdentity("KR.ncb-seoul", me.signer, [])
    # deterministic given the rng: signing seed first, then the X25519 secret
    again = seeded_rng(b"basics")
    signer = me.signer
    assert isinstance(signer, SigningKeyPair)
    assert signer.seed == again(32)
    assert key.secret == again(32)


@pytest.mark.req("KEY-1")
def test_rotated_keys_current_is_last() -> None:
    me = identity("KR.ncb-seoul")
    old = me.encryption_keys[0]
    new = EncryptionKeyPair(bytes([3] * 32))
    rotated = PrivateIdentity(me.principal, me.signer, [old, new])
    assert rotated.public.encryption_key == new.public_key
    assert rotated.encryption_key(old.public_key.key_id) is old
    assert rotated.encryption_key(new.public_key.key_id) is new


def _secret_fragments(*secrets: bytes) -> list[str]:
    """Every 8-byte window of each secret, as hex and as a bytes literal body."""
    fragments = []
    for secret in secrets:
        for i in range(len(secret) - 7):
            window = secret[i : i + 8]
            fragments.extend([window.hex(), repr(window)[2:-1]])
        fragments.append(secret.hex())
    return fragments


@pytest.mark.req("ERR-2")
def test_repr_never_shows_secrets() -> None:
    me = identity("KR.ncb-seoul")
    signer = me.signer
    assert isinstance(signer, SigningKeyPair)
    enc = me.encryption_keys[0]
    _, secret64 = sodium.crypto_sign_seed_keypair(signer.seed)
    fragments = _secret_fragments(signer.seed, enc.secret, secret64[:32])
    texts = [repr(x) for x in (signer, enc, me, me.public)] + [
        str(x) for x in (signer, enc, me, me.public)
    ]
    for text in texts:
        for fragment in fragments:
            assert fragment not in text
    assert signer.public_key.key_id.hex() in repr(signer)
    assert enc.public_key.key_id.hex() in repr(enc)
    assert "KR.ncb-seoul" in repr(me)


# --- primitive wrappers: lengths and foreign errors -------------------------------------------


@pytest.mark.req("KEY-1")
def test_blake2b_wrapper() -> None:
    assert (
        primitives.blake2b(b"x", person=b"p")
        == hashlib.blake2b(b"x", digest_size=32, person=b"p").digest()
    )
    keyed = primitives.blake2b(b"", key=b"k" * 32, person=b"NCBR1 commitment")
    expected = hashlib.blake2b(b"", digest_size=32, key=b"k" * 32, person=b"NCBR1 commitment")
    assert keyed == expected.digest()
    with pytest.raises(UsageError):
        primitives.blake2b(b"x", person=b"p" * 17)


@pytest.mark.req("KEY-1")
def test_primitive_wrappers_check_lengths() -> None:
    with pytest.raises(UsageError):
        primitives.ed25519_keypair(bytes(31))
    with pytest.raises(UsageError):
        primitives.ed25519_sign(bytes(32), b"m")
    with pytest.raises(UsageError):
        primitives.x25519_public_key(bytes(31))
    with pytest.raises(UsageError):
        primitives.x25519(bytes(31), EncryptionKeyPair(bytes([1] * 32)).public_key.raw)
    public = SigningKeyPair(bytes(32)).public_key.raw
    for key, signature in ((public[:31], bytes(64)), (public, bytes(63)), (public, bytes(65))):
        with pytest.raises(BadSignature):
            primitives.ed25519_verify(key, b"m", signature)
    with pytest.raises(InvalidPeerKey):
        primitives.ed25519_public_key_to_x25519(bytes.fromhex(ED25519_SMALL_ORDER[0]))
    with pytest.raises(InvalidPeerKey):
        primitives.ed25519_public_key_to_x25519(bytes(31))
    with pytest.raises(InvalidPeerKey):
        primitives.ed25519_check_public_key(bytes(31))


@pytest.mark.req("OPEN-9")
def test_aead_wrappers() -> None:
    key, nonce = bytes([1] * 32), bytes([2] * 24)
    sealed = primitives.aead_encrypt(key, nonce, b"plain", b"aad")
    assert len(sealed) == 5 + 16
    assert primitives.aead_decrypt(key, nonce, sealed, b"aad") == b"plain"
    for bad_key, bad_nonce in ((key[:31], nonce), (key, nonce[:23]), (key, nonce[:12])):
        with pytest.raises(UsageError):
            primitives.aead_encrypt(bad_key, bad_nonce, b"plain", b"aad")
        with pytest.raises(DecryptionFailed) as info:
            primitives.aead_decrypt(bad_key, bad_nonce, sealed, b"aad")
        assert info.value.reason == "aead-parameters"
    with pytest.raises(DecryptionFailed) as info:
        primitives.aead_decrypt(key, nonce, sealed[:15], b"aad")
    assert info.value.reason == "aead-truncated"
    for tampered_aad, tampered in ((b"aad!", sealed), (b"aad", sealed[:-1] + b"\x00")):
        with pytest.raises(DecryptionFailed) as info:
            primitives.aead_decrypt(key, nonce, tampered, tampered_aad)
        assert info.value.reason == "aead"


@pytest.mark.req("KEY-1")
def test_constant_time_equal() -> None:
    assert primitives.constant_time_equal(b"abc", b"abc")
    assert not primitives.constant_time_equal(b"abc", b"abd")
    assert not primitives.constant_time_equal(b"abc", b"ab")


# --- KEY-6: strict Ed25519 verification -------------------------------------------------

_ED25519_L = 2**252 + 27742317777372353535851937790883648493


@pytest.mark.req("KEY-6")
def test_a_signature_with_s_not_reduced_is_refused() -> None:
    """S + L verifies under the lenient equation but is malleable, so it is refused."""
    signer = SigningKeyPair(bytes(range(32)))
    message = b"NCBR/1 strictness"
    signature = signer.sign(message)
    signer.public_key.verify(message, signature)
    s = int.from_bytes(signature[32:], "little") + _ED25519_L
    assert s < 2**256
    with pytest.raises(BadSignature):
        signer.public_key.verify(message, signature[:32] + s.to_bytes(32, "little"))


@pytest.mark.req("KEY-6")
def test_a_signature_with_a_small_order_r_is_refused() -> None:
    """The signer's own key makes R = identity (r = 0), S = k*a: the cofactorless equation holds.

    A lenient verifier accepts this signature; the strict one refuses the small-order R.
    """
    seed = bytes(range(1, 33))
    signer = SigningKeyPair(seed)
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    a = int.from_bytes(digest, "little")
    r_point = (1).to_bytes(32, "little")  # the identity point, of order 1
    message = b"NCBR/1 strictness"
    k = int.from_bytes(hashlib.sha512(r_point + signer.public_key.raw + message).digest(), "little")
    s_value = (k * a) % _ED25519_L
    with pytest.raises(BadSignature):
        signer.public_key.verify(message, r_point + s_value.to_bytes(32, "little"))
