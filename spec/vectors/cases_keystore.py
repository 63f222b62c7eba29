"""keystore.json: the keystore file format (spec/keystore.md, KS-1 .. KS-13).

Everything is fixed: the passphrase, the keys (BLAKE2b of a label), the salt and
nonce (recorded randomness) and the Argon2id costs.  The costs are the least
libsodium allows (1 pass over 8 KiB) so that the vectors are cheap to check; the
file states the bounds a verifier must use, since the default bounds refuse such
low costs (KS-9), and one case checks exactly that.

Each case states its expected outcome here; :func:`build` runs the library on
every case and raises if the library disagrees, so a wrong vector cannot be
written.  Authentic boxes with bad contents are built from the library's pieces
(the header, the box key and the canonical codec), never by patching it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from ncb_relay import codec, primitives
from ncb_relay.codec import Value
from ncb_relay.errors import NcbRelayError
from ncb_relay.identity import EncryptionKeyPair, SigningKeyPair
from ncb_relay.keyring import (
    DEFAULT_KDF_BOUNDS,
    DEFAULT_RETENTION,
    FORMAT_VERSION,
    HEADER_BYTES,
    LABEL,
    MAX_KEYSTORE_BYTES,
    PERSON_KEYSTORE,
    HeldEncryptionKey,
    KdfBounds,
    KdfParameters,
    Keyring,
    KeystoreHeader,
    lock_keyring,
    unlock_keyring,
)

JSON = dict[str, Any]

GENERATOR = "spec/vectors/generate.py"
ALGORITHM = "NCBR-KEYSTORE-1: ARGON2ID13-BLAKE2B-XSALSA20POLY1305"
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
DAY = 86_400
PERSON_TV = b"NCBR1 tv keys"
PRINCIPAL = "KR.ncb-seoul"
# "Überprüfung 7 öffentlicher Schlüssel" in decomposed form (NFD): KS-4 says NFC is hashed
PASSPHRASE = unicodedata.normalize("NFD", "Überprüfung 7 öffentlicher Schlüssel")
KDF = KdfParameters(ops=1, mem_kib=8)
BOUNDS = KdfBounds(min_ops=1, min_mem_kib=8, max_ops=4, max_mem_kib=1024)

NOTES: JSON = {
    "Valid": "A well-formed keystore that unlocks with the passphrase given.",
    "Nfc": "The passphrase is given decomposed (NFD); the NFC form is hashed (KS-4).",
    "WrongPassphrase": "The passphrase is not the one the file was locked with (KS-11).",
    "BitFlip": "One bit of the file changed; the box no longer opens (KS-5, KS-11).",
    "HeaderBound": "A header field changed to another acceptable value; the header is hashed "
    "into the box key, so the box no longer opens (KS-5).",
    "Magic": "Not the keystore magic (KS-2).",
    "Version": "A format version other than 1 (KS-2).",
    "Costs": "Argon2id costs outside the verifier's bounds, refused before Argon2id runs (KS-9).",
    "Length": "The file length disagrees with the box length, or the box is shorter than its "
    "tag (KS-10).",
    "AuthenticBadContents": "The box opens (built with the right key) but the document inside "
    "breaks KS-6 or KS-7.",
    "Prune": "Removing the encryption keys whose retention has run out (KS-12, KS-13).",
}


def derive(label: str, size: int = 32) -> bytes:
    return primitives.blake2b(label.encode("utf-8"), person=PERSON_TV)[:size]


def recorded(*values: bytes) -> Callable[[int], bytes]:
    queue = list(values)

    def rng(n: int) -> bytes:
        value = queue.pop(0)
        if len(value) != n:
            raise AssertionError(f"recorded value has {len(value)} bytes, {n} requested")
        return value

    return rng


SIGNING = SigningKeyPair(derive("signing seed"))
WINDOWS = (
    ("encryption key 1", NOW - 200 * DAY, NOW - 100 * DAY),
    ("encryption key 2", NOW - 107 * DAY, NOW - 10 * DAY),
    ("encryption key 3", NOW - 17 * DAY, NOW + 80 * DAY),
)
HELD = tuple(
    HeldEncryptionKey(EncryptionKeyPair(derive(label)), nb, na) for label, nb, na in WINDOWS
)
KEYRING = Keyring(PRINCIPAL, SIGNING, HELD)
SALT = derive("salt", 16)
NONCE = derive("nonce", 24)
FILE = lock_keyring(KEYRING, PASSPHRASE, rng=recorded(SALT, NONCE), kdf=KDF, bounds=BOUNDS)


def passphrase_bytes(text: str) -> bytes:
    return unicodedata.normalize("NFC", text).encode("utf-8")


def header_of(data: bytes) -> KeystoreHeader:
    return KeystoreHeader(
        int.from_bytes(data[8:10], "big"),
        KdfParameters(int.from_bytes(data[10:14], "big"), int.from_bytes(data[14:18], "big")),
        data[18:34],
        data[34:58],
        int.from_bytes(data[58:62], "big"),
    )


def box_key(header: KeystoreHeader, passphrase: str = PASSPHRASE) -> tuple[bytes, bytes]:
    """(Argon2id output, secretbox key) for ``header`` (KS-3, KS-5)."""
    stretched = primitives.argon2id(
        passphrase_bytes(passphrase), header.salt, ops=header.kdf.ops, mem_kib=header.kdf.mem_kib
    )
    return stretched, primitives.blake2b(header.encode(), key=stretched, person=PERSON_KEYSTORE)


def document(keyring: Keyring = KEYRING) -> dict[str, Value]:
    return {
        "encryption": [
            {
                "key_id": k.key_id,
                "not_after": k.not_after,
                "not_before": k.not_before,
                "secret": k.key_pair.secret,
            }
            for k in keyring.encryption_keys
        ],
        "label": LABEL,
        "principal": keyring.principal,
        "signing": {"key_id": keyring.signing.public_key.key_id, "seed": keyring.signing.seed},
        "version": FORMAT_VERSION,
    }


def authentic(plaintext: bytes) -> bytes:
    """A file whose box holds ``plaintext``, locked with the right key (like FILE)."""
    header = KeystoreHeader(FORMAT_VERSION, KDF, SALT, NONCE, 16 + len(plaintext))
    _, key = box_key(header)
    return header.encode() + primitives.secretbox_encrypt(key, NONCE, plaintext)


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def with_field(data: bytes, start: int, end: int, value: int) -> bytes:
    return data[:start] + value.to_bytes(end - start, "big") + data[end:]


def bounds_json(bounds: KdfBounds) -> JSON:
    return {
        "minOps": bounds.min_ops,
        "minMemKib": bounds.min_mem_kib,
        "maxOps": bounds.max_ops,
        "maxMemKib": bounds.max_mem_kib,
    }


def keys_json(keyring: Keyring) -> list[JSON]:
    return [
        {
            "keyId": k.key_id.hex(),
            "secret": k.key_pair.secret.hex(),
            "publicKey": k.key_pair.public_key.raw.hex(),
            "notBefore": k.not_before,
            "notAfter": k.not_after,
        }
        for k in keyring.encryption_keys
    ]


def outcome(data: bytes, passphrase: str, bounds: KdfBounds) -> tuple[str | None, list[str]]:
    try:
        keyring = unlock_keyring(data, passphrase, bounds=bounds)
    except NcbRelayError as exc:
        return exc.code, []
    return None, [k.key_id.hex() for k in keyring.encryption_keys]


def lock_group() -> list[JSON]:
    header = header_of(FILE)
    stretched, key = box_key(header)
    doc = codec.encode(document())
    if FILE[HEADER_BYTES:] != primitives.secretbox_encrypt(key, NONCE, doc):
        raise AssertionError("lock_keyring and the piecewise construction differ")
    return [
        {
            "comment": "three encryption keys, NFD passphrase",
            "flags": ["Valid", "Nfc"],
            "requirements": ["KS-1", "KS-2", "KS-3", "KS-4", "KS-5", "KS-6", "KS-7"],
            "passphrase": PASSPHRASE,
            "passphraseUtf8": passphrase_bytes(PASSPHRASE).hex(),
            "kdf": {"ops": KDF.ops, "memKib": KDF.mem_kib},
            "salt": SALT.hex(),
            "nonce": NONCE.hex(),
            "header": FILE[:HEADER_BYTES].hex(),
            "argon2id": stretched.hex(),
            "boxKey": key.hex(),
            "document": doc.hex(),
            "file": FILE.hex(),
            "result": "valid",
        }
    ]


def unlock_group() -> list[JSON]:
    tests: list[JSON] = []

    def case(
        comment: str,
        flags: list[str],
        requirements: list[str],
        data: bytes,
        error: str | None,
        *,
        passphrase: str = PASSPHRASE,
        bounds: KdfBounds | None = None,
    ) -> None:
        got, key_ids = outcome(data, passphrase, bounds or BOUNDS)
        if got != error:
            raise AssertionError(f"keystore.json {comment!r}: expected {error}, library gave {got}")
        test: JSON = {
            "comment": comment,
            "flags": flags,
            "requirements": requirements,
            "file": data.hex(),
            "passphrase": passphrase,
        }
        if bounds is not None:
            test["bounds"] = bounds_json(bounds)
        if error is None:
            test.update(result="valid", keyIds=key_ids)
        else:
            test.update(result="invalid", error=error)
        tests.append(test)

    box = HEADER_BYTES  # offset of the tag
    case("the file of KeystoreLock", ["Valid", "Nfc"], ["KS-4", "KS-11"], FILE, None)
    case(
        "the same passphrase in NFC",
        ["Valid"],
        ["KS-4"],
        FILE,
        None,
        passphrase=unicodedata.normalize("NFC", PASSPHRASE),
    )
    case(
        "wrong passphrase",
        ["WrongPassphrase"],
        ["KS-11"],
        FILE,
        "keystore-locked",
        passphrase="Überprüfung 8 öffentlicher Schlüssel",
    )
    for name, index in (
        ("salt", 18),
        ("nonce", 34),
        ("tag", box),
        ("last ciphertext byte", len(FILE) - 1),
    ):
        case(
            f"one bit of the {name} flipped",
            ["BitFlip"],
            ["KS-5", "KS-11"],
            flip(FILE, index),
            "keystore-locked",
        )
    case(
        "ops 1 changed to 2 (inside the bounds)",
        ["HeaderBound"],
        ["KS-5", "KS-11"],
        with_field(FILE, 10, 14, 2),
        "keystore-locked",
    )
    case("magic NCBRKEYZ", ["Magic"], ["KS-2"], b"NCBRKEYZ" + FILE[8:], "keystore-corrupt")
    case(
        "format version 2",
        ["Version"],
        ["KS-2"],
        with_field(FILE, 8, 10, 2),
        "keystore-unsupported",
    )
    case("ops 0", ["Costs"], ["KS-9"], with_field(FILE, 10, 14, 0), "keystore-unsupported")
    case(
        "memKib 2048, above maxMemKib",
        ["Costs"],
        ["KS-9"],
        with_field(FILE, 14, 18, 2048),
        "keystore-unsupported",
    )
    case(
        "memKib 4294967295, refused without allocating",
        ["Costs"],
        ["KS-9"],
        with_field(FILE, 14, 18, 2**32 - 1),
        "keystore-unsupported",
    )
    case(
        "the valid file, read with the default bounds (ops 2..16, memKib 65536..2097152)",
        ["Costs"],
        ["KS-9", "KS-16"],
        FILE,
        "keystore-unsupported",
        bounds=DEFAULT_KDF_BOUNDS,
    )
    case("truncated by one byte", ["Length"], ["KS-10"], FILE[:-1], "keystore-corrupt")
    case("one trailing zero byte", ["Length"], ["KS-10"], FILE + b"\x00", "keystore-corrupt")
    case("the header alone", ["Length"], ["KS-10"], FILE[:HEADER_BYTES], "keystore-corrupt")
    case("truncated inside the header", ["Length"], ["KS-10"], FILE[:40], "keystore-corrupt")
    case(
        "box length 15, shorter than the tag",
        ["Length"],
        ["KS-10"],
        with_field(FILE, 58, 62, 15)[: HEADER_BYTES + 15],
        "keystore-corrupt",
    )

    doc = document()
    encryption = doc["encryption"]
    assert isinstance(encryption, list)
    first = encryption[0]
    assert isinstance(first, dict)
    bad_id = {**first, "key_id": bytes(16)}
    case(
        "authentic box; an encryption key id that does not match its secret",
        ["AuthenticBadContents"],
        ["KS-7"],
        authentic(codec.encode({**doc, "encryption": [bad_id, *encryption[1:]]})),
        "keystore-corrupt",
    )
    case(
        "authentic box; encryption keys newest first",
        ["AuthenticBadContents"],
        ["KS-7"],
        authentic(codec.encode({**doc, "encryption": encryption[::-1]})),
        "keystore-corrupt",
    )
    case(
        "authentic box; label 'ncb_relay keystor'",
        ["AuthenticBadContents"],
        ["KS-6"],
        authentic(codec.encode({**doc, "label": LABEL[:-1]})),
        "keystore-corrupt",
    )
    case(
        "authentic box; an extra field 'comment'",
        ["AuthenticBadContents"],
        ["KS-6"],
        authentic(codec.encode({**doc, "comment": "x"})),
        "keystore-corrupt",
    )
    canonical = codec.encode(doc)
    case(
        "authentic box; the document with 1 trailing byte (not canonical msgpack)",
        ["AuthenticBadContents"],
        ["KS-6"],
        authentic(canonical + b"\xc0"),
        "keystore-corrupt",
    )
    return tests


def prune_group() -> list[JSON]:
    tests: list[JSON] = []
    k1, k2, _ = KEYRING.encryption_keys
    for label, now in (
        ("key 1 past its retention", NOW),
        ("key 2 one second before the end of its retention", k2.not_after + DEFAULT_RETENTION - 1),
        ("key 2 at the end of its retention", k2.not_after + DEFAULT_RETENTION),
    ):
        removed = KEYRING.expired_keys(now, DEFAULT_RETENTION)
        kept = KEYRING.without_expired(now, DEFAULT_RETENTION)
        salt, nonce = derive(f"prune salt {now}", 16), derive(f"prune nonce {now}", 24)
        new = lock_keyring(kept, PASSPHRASE, rng=recorded(salt, nonce), kdf=KDF, bounds=BOUNDS)
        if FILE[HEADER_BYTES:] in new or SALT in new or NONCE in new:
            raise AssertionError("the rewritten keystore repeats bytes of the old one")
        expected = [k1.key_id] if now < k2.not_after + DEFAULT_RETENTION else [k1.key_id, k2.key_id]
        if [k.key_id for k in removed] != expected:
            raise AssertionError(f"prune {label}: library removed other keys")
        tests.append(
            {
                "comment": label,
                "flags": ["Prune"],
                "requirements": ["KS-12", "KS-13"],
                "file": FILE.hex(),
                "passphrase": PASSPHRASE,
                "now": now,
                "retention": DEFAULT_RETENTION,
                "salt": salt.hex(),
                "nonce": nonce.hex(),
                "removedKeyIds": [k.key_id.hex() for k in removed],
                "keptKeyIds": [k.key_id.hex() for k in kept.encryption_keys],
                "result": new.hex(),
            }
        )
    return tests


def build() -> dict[str, Any]:
    """``{"keystore.json": document}``; raises if the library disagrees with any case."""
    groups = [
        ("KeystoreLock", lock_group()),
        ("KeystoreUnlock", unlock_group()),
        ("KeystorePrune", prune_group()),
    ]
    test_groups = []
    tc = 0
    for kind, tests in groups:
        numbered = []
        for test in tests:
            tc += 1
            numbered.append({"tcId": tc, **test})
        test_groups.append({"type": kind, "tests": numbered})
    doc: JSON = {
        "protocol": "NCBR/1",
        "algorithm": ALGORITHM,
        "generatedBy": GENERATOR,
        "numberOfTests": tc,
        "header": [
            "Keystore files (spec/keystore.md): locking with recorded salt and nonce and every "
            "intermediate value (KeystoreLock), unlocking valid, damaged and hostile files with "
            "the exact error code (KeystoreUnlock), removing expired encryption keys "
            "(KeystorePrune).",
            "Argon2id costs are the least libsodium allows, to keep the vectors cheap; verify "
            "with the 'bounds' of the file unless a test gives its own. The keys are test keys, "
            "published so that every value can be recomputed.",
        ],
        "notes": NOTES,
        "bounds": bounds_json(BOUNDS),
        "maxBytes": MAX_KEYSTORE_BYTES,
        "keyring": {
            "principal": PRINCIPAL,
            "signingSeed": SIGNING.seed.hex(),
            "signingPublicKey": SIGNING.public_key.raw.hex(),
            "signingKeyId": SIGNING.public_key.key_id.hex(),
            "encryptionKeys": keys_json(KEYRING),
        },
        "testGroups": test_groups,
    }
    return {"keystore.json": doc}
