"""Keystores: the locked format (ncb_relay.keyring) and the files (ncb_relay.keystore).

Argon2id runs with the least costs libsodium allows (``LOW``), passed explicitly,
with bounds (``LOW_BOUNDS``) that accept them; separate tests check that the
defaults are the documented ones and that the default bounds refuse ``LOW``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack
import nacl.bindings as sodium
import nacl.pwhash.argon2id
import nacl.secret
import nacl.signing
import pytest

import ncb_relay.primitives
from fixtures import NOW, seeded_rng
from ncb_relay import (
    DEFAULT_KDF,
    DEFAULT_KDF_BOUNDS,
    DEFAULT_RETENTION,
    MAX_TTL,
    EncryptionKeyPair,
    HeldEncryptionKey,
    KdfBounds,
    KdfParameters,
    Keyring,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreLocked,
    KeystoreUnsupported,
    PrivateIdentity,
    ReplayGuard,
    Signer,
    SigningKeyPair,
    SigningPublicKey,
    StaticDirectory,
    UsageError,
    codec,
    lock_keyring,
    open_envelope,
    seal,
    unlock_keyring,
)
from ncb_relay import keystore as ks
from ncb_relay.keyring import HEADER_BYTES, MAX_KEYSTORE_BYTES, parse_keystore_header

ROOT = Path(__file__).resolve().parent.parent
LOW = KdfParameters(ops=1, mem_kib=8)
LOW_BOUNDS = KdfBounds(min_ops=1, min_mem_kib=8, max_ops=4, max_mem_kib=1024)
PASSPHRASE = "correct horse battery staple"
DAY = 86_400


def rng(label: str) -> Callable[[int], bytes]:
    return seeded_rng(label.encode())


def held(label: str, not_before: int, not_after: int) -> HeldEncryptionKey:
    return HeldEncryptionKey(EncryptionKeyPair.generate(rng(label)), not_before, not_after)


def make_keyring(*windows: tuple[int, int], principal: str = "KR.ncb-seoul") -> Keyring:
    windows = windows or ((NOW - DAY, NOW + 90 * DAY),)
    keys = [held(f"{principal} enc {i}", nb, na) for i, (nb, na) in enumerate(windows)]
    return Keyring(principal, SigningKeyPair.generate(rng(f"{principal} sign")), keys)


def lock(keyring: Keyring, passphrase: str | bytes = PASSPHRASE, label: str = "salt") -> bytes:
    return lock_keyring(keyring, passphrase, rng=rng(label), kdf=LOW, bounds=LOW_BOUNDS)


def unlock(data: bytes, passphrase: str | bytes = PASSPHRASE) -> Keyring:
    return unlock_keyring(data, passphrase, bounds=LOW_BOUNDS)


def secrets_of(keyring: Keyring) -> list[bytes]:
    return [keyring.signing.seed, *(k.key_pair.secret for k in keyring.encryption_keys)]


def same(a: Keyring, b: Keyring) -> bool:
    return (
        a.principal == b.principal
        and secrets_of(a) == secrets_of(b)
        and [(k.not_before, k.not_after) for k in a.encryption_keys]
        == [(k.not_before, k.not_after) for k in b.encryption_keys]
    )


def flip(data: bytes, index: int, bit: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def fragments(secrets: list[bytes]) -> list[str]:
    """Every 8-byte window of every secret, as hex and as a bytes literal."""
    out: set[str] = set()
    for secret in secrets:
        for i in range(len(secret) - 7):
            window = secret[i : i + 8]
            out.update([window.hex(), window.hex().upper(), repr(window)[2:-1]])
    return sorted(out)


def leaks(error: BaseException, needles: list[str]) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        todo += [current.__cause__, current.__context__]
    return [n for n in needles for t in texts if n in t]


# --- the format (pure) ------------------------------------------------------------------


@pytest.mark.req("KS-1", "KS-6", "KS-7")
def test_round_trip() -> None:
    keyring = make_keyring((NOW - 50 * DAY, NOW + DAY), (NOW - DAY, NOW + 90 * DAY))
    back = unlock(lock(keyring))
    assert same(back, keyring)
    assert back.identity.encryption_keys[-1].secret == keyring.encryption_keys[-1].key_pair.secret
    assert back.signing.public_key == keyring.signing.public_key


@pytest.mark.req("KS-7", "KS-17")
def test_an_unlocked_keyring_opens_messages_sealed_to_it() -> None:
    keyring = make_keyring()
    sender = PrivateIdentity.generate("MA.ncb-rabat", rng("sender"))
    directory = StaticDirectory([sender.public, keyring.identity.public])
    sealed = seal(
        b"hello", sender=sender, recipients=[keyring.identity.public], now=NOW, seq=1, rng=rng("m")
    )
    recipient = unlock(lock(keyring)).identity
    opened = open_envelope(
        sealed.data, recipient=recipient, directory=directory, now=NOW, replay=ReplayGuard()
    )
    assert opened.body == b"hello"


@pytest.mark.req("KS-1", "KS-2", "KS-3", "KS-4", "KS-5", "KS-6")
def test_layout_matches_an_independent_reading() -> None:
    """Parse and decrypt with PyNaCl, hashlib and msgpack directly, as spec/keystore.md says."""
    keyring = make_keyring((NOW - 50 * DAY, NOW + DAY), (NOW - DAY, NOW + 90 * DAY))
    draws: list[int] = []
    source = rng("layout")

    def recording(n: int) -> bytes:
        draws.append(n)
        return source(n)

    data = lock_keyring(keyring, PASSPHRASE, rng=recording, kdf=LOW, bounds=LOW_BOUNDS)
    assert draws == [16, 24]
    again = rng("layout")
    salt, nonce = again(16), again(24)
    header = data[:62]
    assert header[:8] == b"NCBRKEYS"
    assert int.from_bytes(header[8:10], "big") == 1
    assert int.from_bytes(header[10:14], "big") == LOW.ops
    assert int.from_bytes(header[14:18], "big") == LOW.mem_kib
    assert header[18:34] == salt
    assert header[34:58] == nonce
    assert int.from_bytes(header[58:62], "big") == len(data) - 62
    stretched = nacl.pwhash.argon2id.kdf(
        32, PASSPHRASE.encode(), salt, opslimit=LOW.ops, memlimit=LOW.mem_kib * 1024
    )
    key = hashlib.blake2b(header, digest_size=32, key=stretched, person=b"NCBR1 keystore").digest()
    document = nacl.secret.SecretBox(key).decrypt(data[62:], nonce)
    value = msgpack.unpackb(document)
    assert list(value) == ["encryption", "label", "principal", "signing", "version"]
    assert value["label"] == "ncb_relay keystore"
    assert value["version"] == 1
    assert value["principal"] == "KR.ncb-seoul"
    assert value["signing"] == {
        "key_id": keyring.signing.public_key.key_id,
        "seed": keyring.signing.seed,
    }
    assert value["encryption"] == [
        {
            "key_id": k.key_id,
            "not_after": k.not_after,
            "not_before": k.not_before,
            "secret": k.key_pair.secret,
        }
        for k in keyring.encryption_keys
    ]
    assert codec.encode(value) == document


@pytest.mark.req("KS-3")
def test_every_lock_draws_a_fresh_salt_and_nonce() -> None:
    keyring = make_keyring()
    a = lock_keyring(keyring, PASSPHRASE, rng=os.urandom, kdf=LOW, bounds=LOW_BOUNDS)
    b = lock_keyring(keyring, PASSPHRASE, rng=os.urandom, kdf=LOW, bounds=LOW_BOUNDS)
    assert a[18:34] != b[18:34]
    assert a[34:58] != b[34:58]
    assert a[62:] != b[62:]
    with pytest.raises(UsageError):
        lock_keyring(keyring, PASSPHRASE, rng=lambda n: bytes(n - 1), kdf=LOW, bounds=LOW_BOUNDS)


@pytest.mark.req("KS-4")
def test_text_passphrases_are_nfc_normalised() -> None:
    keyring = make_keyring()
    composed = "Überprüfung öffentlicher Schlüssel"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    data = lock(keyring, decomposed)
    assert same(unlock(data, composed), keyring)
    assert same(unlock(data, composed.encode("utf-8")), keyring)
    with pytest.raises(KeystoreLocked):
        unlock(data, decomposed.encode("utf-8"))  # bytes are taken as they are


@pytest.mark.req("KS-4")
@pytest.mark.parametrize("bad", ["", b"", "\ud800", 42])
def test_empty_or_invalid_passphrases_are_refused(bad: Any) -> None:
    keyring = make_keyring()
    with pytest.raises(UsageError):
        lock(keyring, bad)
    with pytest.raises(UsageError):
        unlock(lock(keyring), bad)


@pytest.mark.req("KS-11")
def test_wrong_passphrase_and_tampered_file_give_the_same_error() -> None:
    data = lock(make_keyring())
    with pytest.raises(KeystoreLocked) as wrong:
        unlock(data, "correct horse battery stapler")
    with pytest.raises(KeystoreLocked) as tampered:
        unlock(flip(data, len(data) - 1, 0))
    assert str(wrong.value) == str(tampered.value)
    assert wrong.value.code == tampered.value.code == "keystore-locked"
    assert wrong.value.__cause__ is tampered.value.__cause__ is None


def _region(index: int) -> str:
    for name, end in (("magic", 8), ("version", 10), ("costs", 18), ("salt+nonce", 58)):
        if index < end:
            return name
    return "length" if index < HEADER_BYTES else "box"


EXPECTED_BY_REGION: dict[str, tuple[type[KeystoreError], ...]] = {
    "magic": (KeystoreCorrupt,),
    "version": (KeystoreUnsupported,),
    # a changed cost is either outside the bounds or changes the key
    "costs": (KeystoreUnsupported, KeystoreLocked),
    "salt+nonce": (KeystoreLocked,),
    "length": (KeystoreCorrupt,),
    "box": (KeystoreLocked,),
}


@pytest.mark.req("KS-2", "KS-5", "KS-9", "KS-10", "KS-11")
def test_every_single_bit_flip_is_refused_with_a_typed_error() -> None:
    keyring = make_keyring()
    data = lock(keyring)
    needles = [*fragments(secrets_of(keyring)), PASSPHRASE, "horse battery"]
    seen: dict[str, set[type[KeystoreError]]] = {}
    for index in range(len(data)):
        for bit in range(8):
            with pytest.raises(KeystoreError) as caught:
                unlock(flip(data, index, bit))
            region = _region(index)
            assert type(caught.value) in EXPECTED_BY_REGION[region], (index, bit, caught.value)
            assert not leaks(caught.value, needles), (index, bit)
            seen.setdefault(region, set()).add(type(caught.value))
    assert set(seen) == set(EXPECTED_BY_REGION)
    assert seen["costs"] == {KeystoreUnsupported, KeystoreLocked}


@pytest.mark.req("KS-10")
def test_truncated_and_extended_files_are_corrupt() -> None:
    data = lock(make_keyring())
    for cut in range(len(data)):
        with pytest.raises(KeystoreCorrupt):
            unlock(data[:cut])
    for extra in (b"\x00", b"\x00" * 100):
        with pytest.raises(KeystoreCorrupt, match="after its box"):
            unlock(data + extra)


@pytest.mark.req("KS-8")
def test_oversized_input_is_refused_before_any_work() -> None:
    data = lock(make_keyring())
    padded = (
        data[:58] + (MAX_KEYSTORE_BYTES - 62 + 1).to_bytes(4, "big") + bytes(MAX_KEYSTORE_BYTES)
    )
    with pytest.raises(KeystoreCorrupt, match="exceeds"):
        unlock(padded[: MAX_KEYSTORE_BYTES + 1])
    with pytest.raises(KeystoreCorrupt, match="exceeds"):
        unlock_keyring(data, PASSPHRASE, bounds=LOW_BOUNDS, max_bytes=len(data) - 1)


@pytest.mark.req("KS-16")
def test_defaults_are_the_documented_ones() -> None:
    moderate = (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE)
    assert (DEFAULT_KDF.ops, DEFAULT_KDF.mem_kib) == (3, 262_144)
    assert (DEFAULT_KDF.ops, DEFAULT_KDF.mem_kib * 1024) == moderate
    bounds = DEFAULT_KDF_BOUNDS
    assert (bounds.min_ops, bounds.min_mem_kib) == (2, 65_536)
    assert (bounds.max_ops, bounds.max_mem_kib) == (16, 2_097_152)
    assert DEFAULT_KDF_BOUNDS.accepts(DEFAULT_KDF)
    assert DEFAULT_RETENTION == MAX_TTL + 900 == 2_592_900
    spec = (ROOT / "spec" / "keystore.md").read_text(encoding="utf-8")
    row = r"^\| (default costs|minimum accepted|maximum accepted) \| (\d+) \| (\d+) "
    rows = {name: (int(t), int(m)) for name, t, m in re.findall(row, spec, re.M)}
    assert rows == {
        "default costs": (DEFAULT_KDF.ops, DEFAULT_KDF.mem_kib),
        "minimum accepted": (bounds.min_ops, bounds.min_mem_kib),
        "maximum accepted": (bounds.max_ops, bounds.max_mem_kib),
    }
    assert "`MAX_TTL + 900 = 2,592,900` seconds" in spec


@pytest.mark.req("KS-9", "KS-16")
def test_costs_outside_the_bounds_are_refused_on_load_before_argon2id() -> None:
    keyring = make_keyring()
    data = lock(keyring)
    with pytest.raises(KeystoreUnsupported, match="outside the accepted bounds"):
        unlock_keyring(data, PASSPHRASE)  # the default bounds refuse the test costs
    for ops, mem_kib in ((0, 8), (1, 0), (1, 7), (5, 8), (1, 1025), (2**32 - 1, 2**32 - 1)):
        hostile = data[:10] + ops.to_bytes(4, "big") + mem_kib.to_bytes(4, "big") + data[18:]
        with pytest.raises(KeystoreUnsupported):
            unlock(hostile)
        with pytest.raises(KeystoreUnsupported):
            parse_keystore_header(hostile, bounds=LOW_BOUNDS)


@pytest.mark.req("KS-9")
def test_a_writer_never_writes_costs_its_bounds_refuse() -> None:
    keyring = make_keyring()
    with pytest.raises(UsageError):
        lock_keyring(keyring, PASSPHRASE, rng=rng("x"), kdf=LOW)
    with pytest.raises(UsageError):
        lock_keyring(keyring, PASSPHRASE, rng=rng("x"), kdf=KdfParameters(5, 8), bounds=LOW_BOUNDS)
    for bad in ((0, 8), (1, 7), (True, 8), (1, 2**32)):
        with pytest.raises(UsageError):
            KdfParameters(*bad)
    with pytest.raises(UsageError):
        KdfBounds(min_ops=4, max_ops=2)


@pytest.mark.req("KS-2")
def test_other_magic_and_versions_are_refused() -> None:
    data = lock(make_keyring())
    with pytest.raises(KeystoreCorrupt, match="magic"):
        unlock(b"NCBRKEYZ" + data[8:])
    with pytest.raises(KeystoreCorrupt, match="magic"):
        unlock(b"NCB")
    for version in (0, 2, 0xFFFF):
        with pytest.raises(KeystoreUnsupported, match="version"):
            unlock(data[:8] + version.to_bytes(2, "big") + data[10:])


def _authentic(doc: Any, passphrase: str = PASSPHRASE) -> bytes:
    """A file whose box holds ``doc`` (bytes, or a value to encode), under the right key."""
    plaintext = doc if isinstance(doc, bytes) else msgpack.packb(doc)
    template = lock(make_keyring(), passphrase)
    header = template[:58] + (16 + len(plaintext)).to_bytes(4, "big")
    salt, nonce = header[18:34], header[34:58]
    stretched = nacl.pwhash.argon2id.kdf(32, passphrase.encode(), salt, opslimit=1, memlimit=8192)
    key = hashlib.blake2b(header, digest_size=32, key=stretched, person=b"NCBR1 keystore").digest()
    return header + nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext


def _document(keyring: Keyring) -> dict[str, Any]:
    data = lock(keyring)
    value: dict[str, Any] = msgpack.unpackb(
        nacl.secret.SecretBox(_key_of(data)).decrypt(data[62:], data[34:58])
    )
    return value


def _key_of(data: bytes) -> bytes:
    stretched = nacl.pwhash.argon2id.kdf(
        32, PASSPHRASE.encode(), data[18:34], opslimit=1, memlimit=8192
    )
    return hashlib.blake2b(
        data[:62], digest_size=32, key=stretched, person=b"NCBR1 keystore"
    ).digest()


def _bad_documents() -> Iterator[tuple[str, Any]]:
    keyring = make_keyring((NOW - 50 * DAY, NOW + DAY), (NOW - DAY, NOW + 90 * DAY))
    doc = _document(keyring)
    enc = doc["encryption"]
    signing = doc["signing"]
    converted = bytes(
        sodium.crypto_sign_ed25519_sk_to_curve25519(
            sodium.crypto_sign_seed_keypair(signing["seed"])[1]
        )
    )
    yield "label", {**doc, "label": "ncb_relay keystorE"}
    yield "version", {**doc, "version": 2}
    yield "extra field", {**doc, "zz": 1}
    yield "missing field", {k: v for k, v in doc.items() if k != "label"}
    yield "principal", {**doc, "principal": "kr.ncb-seoul"}
    yield "principal type", {**doc, "principal": b"KR.ncb-seoul"}
    yield "signing key id", {**doc, "signing": {**signing, "key_id": bytes(16)}}
    yield "short seed", {**doc, "signing": {**signing, "seed": bytes(31)}}
    yield (
        "encryption key id",
        {**doc, "encryption": [{**enc[0], "key_id": enc[1]["key_id"]}, enc[1]]},
    )
    yield "short secret", {**doc, "encryption": [{**enc[0], "secret": bytes(31)}, enc[1]]}
    yield "not sorted", {**doc, "encryption": enc[::-1]}
    yield "duplicate", {**doc, "encryption": [enc[0], enc[0]]}
    yield "no keys", {**doc, "encryption": []}
    yield "keys not a list", {**doc, "encryption": enc[0]}
    yield "empty window", {**doc, "encryption": [{**enc[0], "not_after": enc[0]["not_before"]}]}
    yield "window type", {**doc, "encryption": [{**enc[0], "not_before": True}, enc[1]]}
    yield "beyond 2**40", {**doc, "encryption": [{**enc[0], "not_after": 2**40 + 1}]}
    yield (
        "KEY-3",
        {
            **doc,
            "encryption": [
                {
                    **enc[0],
                    "secret": converted,
                    "key_id": EncryptionKeyPair(converted).public_key.key_id,
                }
            ],
        },
    )
    yield "not canonical", msgpack.packb(doc) + b"\xc0"
    yield "not a map", msgpack.packb([1, 2])
    yield "not msgpack", b"\xc1"


@pytest.mark.req("KS-6", "KS-7", "KS-11")
@pytest.mark.parametrize(("name", "doc"), list(_bad_documents()), ids=lambda v: str(v)[:20])
def test_authentic_but_invalid_contents_are_corrupt(name: str, doc: Any) -> None:
    with pytest.raises(KeystoreCorrupt, match="keystore"):
        unlock(_authentic(doc))


def test_the_independent_builder_builds_valid_files() -> None:
    """Control for the test above: the same construction with a valid document unlocks."""
    keyring = make_keyring((NOW - 50 * DAY, NOW + DAY), (NOW - DAY, NOW + 90 * DAY))
    assert same(unlock(_authentic(_document(keyring))), keyring)


@pytest.mark.req("KS-7")
def test_keyrings_validate_and_sort_their_keys() -> None:
    a = held("a", NOW, NOW + 10)
    b = held("b", NOW - 5, NOW + 100)
    c = held("c", NOW - 5, NOW + 50)
    signing = SigningKeyPair.generate(rng("s"))
    keyring = Keyring("KR.ncb-seoul", signing, [a, b, c])
    assert keyring.encryption_keys == (c, b, a)
    assert keyring.identity.public.encryption_key == a.key_pair.public_key
    with pytest.raises(UsageError, match="twice"):
        Keyring("KR.ncb-seoul", signing, [a, a])
    with pytest.raises(UsageError):
        Keyring("KR.ncb-seoul", signing, [])
    with pytest.raises(UsageError):
        Keyring("not an id", signing, [a])
    with pytest.raises(UsageError):
        Keyring("KR.ncb-seoul", signing, [a.key_pair])  # type: ignore[list-item]
    with pytest.raises(UsageError):
        Keyring("KR.ncb-seoul", object(), [a])  # type: ignore[arg-type]
    for nb, na in ((NOW, NOW), (NOW, NOW - 1), (-1, 5), (0, 2**40 + 1)):
        with pytest.raises(UsageError):
            HeldEncryptionKey(a.key_pair, nb, na)
    with pytest.raises(UsageError):
        HeldEncryptionKey(a.key_pair, True, 5)
    with pytest.raises(UsageError):
        HeldEncryptionKey(signing, 0, 5)  # type: ignore[arg-type]
    grown = keyring.with_encryption_key(held("d", NOW + 5, NOW + 500))
    assert len(grown.encryption_keys) == 4
    assert len(keyring.encryption_keys) == 3


@pytest.mark.req("KS-7", "KS-8")
def test_the_largest_keyring_fits_and_one_more_key_is_refused() -> None:
    principal = "XP." + "a" * 61
    signing = SigningKeyPair.generate(rng("big"))
    keys = [held(f"big {i}", NOW + i, NOW + i + 1) for i in range(257)]
    keyring = Keyring(principal, signing, keys[:256])
    data = lock(keyring)
    # spec/keystore.md, "Size of a file": +1 for an id over 31 bytes, +2 for 16 keys or more
    assert len(data) == 78 + 131 + len(principal) + 1 + 2 + 98 * 256 <= MAX_KEYSTORE_BYTES
    assert same(unlock(data), keyring)
    with pytest.raises(UsageError):
        Keyring(principal, signing, keys)


def test_generate_and_argument_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = Keyring.generate("KR.ncb-seoul", rng("gen"), not_before=NOW, not_after=NOW + DAY)
    assert len(keyring.encryption_keys) == 1
    assert keyring.encryption_keys[0].not_before == NOW
    with pytest.raises(UsageError):
        lock_keyring(keyring.identity, PASSPHRASE, rng=rng("x"), kdf=LOW, bounds=LOW_BOUNDS)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        parse_keystore_header(bytearray(lock(keyring)), bounds=LOW_BOUNDS)  # type: ignore[arg-type]

    def no_memory(*args: Any, **kwargs: Any) -> bytes:
        raise UsageError("Argon2id cannot run with these parameters")

    data = lock(keyring)
    monkeypatch.setattr(ncb_relay.primitives, "argon2id", no_memory)
    with pytest.raises(KeystoreError, match="Argon2id could not run") as caught:
        unlock(data)
    assert type(caught.value) is KeystoreError


@pytest.mark.req("KS-11")
def test_reprs_and_errors_show_no_secrets() -> None:
    keyring = make_keyring()
    needles = fragments(secrets_of(keyring))
    texts = [repr(keyring), str(keyring), repr(keyring.encryption_keys), repr(keyring.signing)]
    assert keyring.principal in texts[0]
    assert keyring.encryption_keys[0].key_id.hex() in texts[0]
    assert not [n for n in needles for t in texts if n in t]
    data = lock(keyring)
    attempts: list[Callable[[], object]] = [
        lambda: unlock(data, "Tr0ub4dor&3"),
        lambda: unlock(data[:-1]),
        lambda: unlock_keyring(data, PASSPHRASE),
        lambda: unlock(data[:8] + b"\x00\x02" + data[10:]),
    ]
    for attempt in attempts:
        with pytest.raises(KeystoreError) as caught:
            attempt()
        assert not leaks(caught.value, [*needles, PASSPHRASE, "Tr0ub4dor"])


# --- expired encryption keys (pure) ----------------------------------------------------


@pytest.mark.req("KS-12")
def test_keys_are_dropped_once_their_retention_has_run_out() -> None:
    old = held("old", NOW - 200 * DAY, NOW - 100 * DAY)
    mid = held("mid", NOW - 107 * DAY, NOW - 10 * DAY)
    cur = held("cur", NOW - 17 * DAY, NOW + 80 * DAY)
    keyring = Keyring("KR.ncb-seoul", SigningKeyPair.generate(rng("s")), [cur, old, mid])
    assert keyring.expired_keys(NOW) == (old,)
    assert keyring.without_expired(NOW).encryption_keys == (mid, cur)
    edge = mid.not_after + DEFAULT_RETENTION
    assert keyring.without_expired(edge - 1).encryption_keys == (mid, cur)
    assert keyring.without_expired(edge).encryption_keys == (cur,)
    assert keyring.without_expired(NOW, retention=0).encryption_keys == (cur,)
    assert keyring.without_expired(NOW, retention=10**9).encryption_keys == (old, mid, cur)
    assert keyring.without_expired(edge).signing is keyring.signing
    with pytest.raises(UsageError, match="rotate"):
        keyring.without_expired(cur.not_after + DEFAULT_RETENTION)
    for now, retention in ((-1, 0), (NOW, -1), (True, 0)):
        with pytest.raises(UsageError):
            keyring.without_expired(now, retention)


# --- the Signer interface --------------------------------------------------------------


class DeviceSigner:
    """Stands in for an HSM: the private key stays in a separate object; only sign() crosses."""

    def __init__(self, seed: bytes) -> None:
        self._device = nacl.signing.SigningKey(seed)
        self.requests: list[bytes] = []

    @property
    def public_key(self) -> SigningPublicKey:
        return SigningPublicKey(bytes(self._device.verify_key))

    def sign(self, message: bytes) -> bytes:
        self.requests.append(message)
        return bytes(self._device.sign(message).signature)


@pytest.mark.req("KS-17")
def test_protocol_code_signs_only_through_the_signer_interface() -> None:
    seed = rng("device")(32)
    device = DeviceSigner(seed)
    assert isinstance(device, Signer)
    assert not isinstance(device, SigningKeyPair)
    encryption = EncryptionKeyPair.generate(rng("device enc"))
    sender = PrivateIdentity("KR.ncb-seoul", device, [encryption])
    recipient = PrivateIdentity.generate("MA.ncb-rabat", rng("recipient"))
    directory = StaticDirectory([sender.public, recipient.public])
    sealed = seal(
        b"signed in the device",
        sender=sender,
        recipients=[recipient.public],
        now=NOW,
        seq=7,
        rng=rng("message"),
    )
    assert len(device.requests) == 2  # the inner and the outer signature
    opened = open_envelope(
        sealed.data, recipient=recipient, directory=directory, now=NOW, replay=ReplayGuard()
    )
    assert opened.body == b"signed in the device"
    # Ed25519 is deterministic: the in-memory key gives the very same envelope
    in_memory = PrivateIdentity("KR.ncb-seoul", SigningKeyPair(seed), [encryption])
    again = seal(
        b"signed in the device",
        sender=in_memory,
        recipients=[recipient.public],
        now=NOW,
        seq=7,
        rng=rng("message"),
    )
    assert again.data == sealed.data


# --- files (the adapter) ----------------------------------------------------------------


def write(path: Path, keyring: Keyring, **kw: Any) -> None:
    ks.write_keystore(path, keyring, PASSPHRASE, kdf=LOW, bounds=LOW_BOUNDS, **kw)


def read(path: Path, passphrase: str = PASSPHRASE) -> Keyring:
    return ks.read_keystore(path, passphrase, bounds=LOW_BOUNDS)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.req("KS-1", "KS-14")
def test_file_round_trip_with_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    keyring = make_keyring()
    for i, mask in enumerate((0o000, 0o022, 0o077, 0o777)):
        path = tmp_path / f"keys-{i}.ncbk"
        previous = os.umask(mask)
        try:
            write(path, keyring)
        finally:
            os.umask(previous)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert same(read(path), keyring)
        assert parse_keystore_header(path.read_bytes(), bounds=LOW_BOUNDS).kdf == LOW
    assert all(not name.startswith(".") for name in files_in(tmp_path))


@pytest.mark.req("KS-14")
def test_no_overwrite_without_permission(tmp_path: Path) -> None:
    path = tmp_path / "keys.ncbk"
    first, second = make_keyring(), make_keyring(principal="MA.ncb-rabat")
    write(path, first)
    before = path.read_bytes()
    with pytest.raises(KeystoreExists) as caught:
        write(path, second)
    assert caught.value.code == "keystore-exists"
    assert path.read_bytes() == before
    write(path, second, overwrite=True)
    assert same(read(path), second)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert files_in(tmp_path) == ["keys.ncbk"]


@pytest.mark.req("KS-14")
@pytest.mark.parametrize("step", ["replace", "fsync", "link"])
def test_a_failure_between_write_and_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = tmp_path / "keys.ncbk"
    old = make_keyring()
    if step != "link":
        write(path, old)
    before = path.read_bytes() if path.exists() else None

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError(5, "simulated crash")

    monkeypatch.setattr(os, step, crash)
    with pytest.raises(KeystoreError, match="simulated crash"):
        write(path, make_keyring(principal="MA.ncb-rabat"), overwrite=step != "link")
    monkeypatch.undo()
    if before is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == before
        assert same(read(path), old)
    assert files_in(tmp_path) == ([] if before is None else ["keys.ncbk"])


CRASHING_WRITER = """
import os, sys
from ncb_relay import KdfBounds, KdfParameters, Keyring
from ncb_relay import keystore
path, passphrase = sys.argv[1], sys.argv[2]
keyring = Keyring.generate("MA.ncb-rabat", os.urandom, not_before=0, not_after=10)
os.replace = lambda *a: os._exit(3)  # the process dies between fsync and rename
keystore.write_keystore(path, keyring, passphrase, kdf=KdfParameters(1, 8),
                        bounds=KdfBounds(1, 8, 4, 1024), overwrite=True)
"""


@pytest.mark.req("KS-14")
def test_a_process_killed_before_the_rename_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.ncbk"
    old = make_keyring()
    write(path, old)
    before = path.read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(path), PASSPHRASE], check=False
    )
    assert done.returncode == 3
    assert path.read_bytes() == before
    assert same(read(path), old)
    leftovers = [name for name in files_in(tmp_path) if name != "keys.ncbk"]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".keys.ncbk.")


@pytest.mark.req("KS-14")
def test_a_file_that_appears_after_the_check_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.ncbk"
    write(path, make_keyring())
    before = path.read_bytes()
    monkeypatch.setattr(ks, "_check_target", lambda path, *, overwrite: None)  # lose the race
    with pytest.raises(KeystoreExists):
        write(path, make_keyring(principal="MA.ncb-rabat"))
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["keys.ncbk"]
    with pytest.raises(KeystoreError, match="cannot write keystore"):
        write(tmp_path / "no-such-directory" / "keys.ncbk", make_keyring())


@pytest.mark.req("KS-15")
def test_symbolic_links_at_the_target_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.ncbk"
    keyring = make_keyring()
    write(real, keyring)
    before = real.read_bytes()
    link = tmp_path / "link.ncbk"
    link.symlink_to(real)
    with pytest.raises(KeystoreError, match="symbolic link"):
        read(link)
    for overwrite in (False, True):
        with pytest.raises(KeystoreError, match="symbolic link"):
            write(link, make_keyring(principal="MA.ncb-rabat"), overwrite=overwrite)
    assert real.read_bytes() == before
    assert link.is_symlink()
    dangling = tmp_path / "dangling.ncbk"
    dangling.symlink_to(tmp_path / "nowhere.ncbk")
    for overwrite in (False, True):
        with pytest.raises(KeystoreError, match="symbolic link"):
            write(dangling, keyring, overwrite=overwrite)
    assert not (tmp_path / "nowhere.ncbk").exists()
    with pytest.raises(KeystoreError, match="symbolic link"):
        ks.remove_expired_keys(link, PASSPHRASE, now=NOW, bounds=LOW_BOUNDS)


@pytest.mark.req("KS-8", "KS-15")
def test_special_missing_and_oversized_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(KeystoreError, match="not a regular file"):
        read(fifo)  # and does not block
    with pytest.raises(KeystoreError, match="not a regular file"):
        read(tmp_path)
    with pytest.raises(KeystoreError) as caught:
        read(tmp_path / "missing.ncbk")
    assert type(caught.value) is KeystoreError
    assert caught.value.code == "keystore"
    big = tmp_path / "big.ncbk"
    with big.open("wb") as file:
        file.write(lock(make_keyring()))
        file.truncate(2**30)  # sparse: refused from its size, never read
    with pytest.raises(KeystoreCorrupt, match="exceeds"):
        read(big)
    write(tmp_path / "dir-target", make_keyring())
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(KeystoreError, match="not a regular file"):
        write(tmp_path / "a-directory", make_keyring(), overwrite=True)


@pytest.mark.req("KS-12", "KS-13", "KS-14")
def test_removing_expired_keys_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.ncbk"
    keyring = make_keyring(
        (NOW - 200 * DAY, NOW - 100 * DAY),
        (NOW - 107 * DAY, NOW - 10 * DAY),
        (NOW - 17 * DAY, NOW + 80 * DAY),
    )
    old_key = keyring.encryption_keys[0]
    write(path, keyring)
    before = path.read_bytes()
    inode = path.stat().st_ino

    nothing = ks.remove_expired_keys(path, PASSPHRASE, now=NOW - 80 * DAY, bounds=LOW_BOUNDS)
    assert nothing == ()
    assert path.read_bytes() == before
    assert path.stat().st_ino == inode

    removed = ks.remove_expired_keys(path, PASSPHRASE, now=NOW, bounds=LOW_BOUNDS)
    assert removed == (old_key.key_id,)
    after = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert files_in(tmp_path) == ["keys.ncbk"]
    assert same(read(path), keyring.without_expired(NOW))
    # a fresh salt and nonce, the same costs, and nothing of the old box
    assert after[18:34] != before[18:34]
    assert after[34:58] != before[34:58]
    assert after[10:18] == before[10:18]
    assert not any(before[i : i + 16] in after for i in range(HEADER_BYTES, len(before) - 15))
    document = nacl.secret.SecretBox(_key_of(after)).decrypt(after[62:], after[34:58])
    assert old_key.key_pair.secret not in document
    assert old_key.key_id not in document

    raised = ks.remove_expired_keys(
        path,
        PASSPHRASE,
        now=NOW + 20 * DAY + 901,
        kdf=KdfParameters(2, 16),
        bounds=LOW_BOUNDS,
    )
    assert len(raised) == 1
    assert parse_keystore_header(path.read_bytes(), bounds=LOW_BOUNDS).kdf == KdfParameters(2, 16)

    last = path.read_bytes()
    with pytest.raises(UsageError, match="rotate"):
        ks.remove_expired_keys(path, PASSPHRASE, now=NOW + 200 * DAY, bounds=LOW_BOUNDS)
    with pytest.raises(KeystoreLocked):
        ks.remove_expired_keys(path, "wrong", now=NOW + 200 * DAY, bounds=LOW_BOUNDS)
    assert path.read_bytes() == last


# --- the published vectors (spec/vectors/keystore.json) -----------------------------------

VECTORS = ROOT / "spec" / "vectors"


def _vector_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "keystore.json").read_text(encoding="utf-8"))
    return data


def _bounds(doc: dict[str, Any]) -> KdfBounds:
    return KdfBounds(doc["minOps"], doc["minMemKib"], doc["maxOps"], doc["maxMemKib"])


def _group(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return next(g["tests"] for g in doc["testGroups"] if g["type"] == kind)


def _recorded(*values: bytes) -> Callable[[int], bytes]:
    queue = list(values)
    return lambda n: queue.pop(0)


def _vector_keyring(doc: dict[str, Any]) -> Keyring:
    k = doc["keyring"]
    keys = [
        HeldEncryptionKey(
            EncryptionKeyPair(bytes.fromhex(e["secret"])), e["notBefore"], e["notAfter"]
        )
        for e in k["encryptionKeys"]
    ]
    keyring = Keyring(k["principal"], SigningKeyPair(bytes.fromhex(k["signingSeed"])), keys)
    assert keyring.signing.public_key.raw.hex() == k["signingPublicKey"]
    assert [e.key_pair.public_key.raw.hex() for e in keyring.encryption_keys] == [
        e["publicKey"] for e in k["encryptionKeys"]
    ]
    return keyring


@pytest.mark.req("KS-1", "KS-3", "KS-4", "KS-5", "KS-6", "KS-7")
def test_vectors_lock() -> None:
    doc = _vector_file()
    bounds = _bounds(doc["bounds"])
    keyring = _vector_keyring(doc)
    for test in _group(doc, "KeystoreLock"):
        salt, nonce = bytes.fromhex(test["salt"]), bytes.fromhex(test["nonce"])
        kdf = KdfParameters(test["kdf"]["ops"], test["kdf"]["memKib"])
        data = lock_keyring(
            keyring, test["passphrase"], rng=_recorded(salt, nonce), kdf=kdf, bounds=bounds
        )
        assert data.hex() == test["file"]
        assert data[:62].hex() == test["header"]
        assert (
            unicodedata.normalize("NFC", test["passphrase"]).encode().hex()
            == test["passphraseUtf8"]
        )
        stretched = nacl.pwhash.argon2id.kdf(
            32,
            bytes.fromhex(test["passphraseUtf8"]),
            salt,
            opslimit=kdf.ops,
            memlimit=kdf.mem_kib * 1024,
        )
        assert stretched.hex() == test["argon2id"]
        key = hashlib.blake2b(data[:62], digest_size=32, key=stretched, person=b"NCBR1 keystore")
        assert key.hexdigest() == test["boxKey"]
        assert (
            nacl.secret.SecretBox(key.digest()).decrypt(data[62:], nonce).hex() == test["document"]
        )
        spec = (ROOT / "spec" / "keystore.md").read_text(encoding="utf-8")
        example = "".join(re.findall(r"^([0-9a-f]+) +\S", spec.split("## Example")[1], re.M))
        assert example == test["header"]


@pytest.mark.req("KS-2", "KS-4", "KS-5", "KS-6", "KS-7", "KS-9", "KS-10", "KS-11", "KS-16")
def test_vectors_unlock() -> None:
    doc = _vector_file()
    default = _bounds(doc["bounds"])
    errors: set[str] = set()
    for test in _group(doc, "KeystoreUnlock"):
        bounds = _bounds(test["bounds"]) if "bounds" in test else default
        data = bytes.fromhex(test["file"])
        if test["result"] == "valid":
            keyring = unlock_keyring(data, test["passphrase"], bounds=bounds)
            assert [k.key_id.hex() for k in keyring.encryption_keys] == test["keyIds"]
            continue
        with pytest.raises(KeystoreError) as caught:
            unlock_keyring(data, test["passphrase"], bounds=bounds)
        assert caught.value.code == test["error"], test["comment"]
        errors.add(test["error"])
    assert errors == {"keystore-locked", "keystore-corrupt", "keystore-unsupported"}


@pytest.mark.req("KS-12", "KS-13")
def test_vectors_prune() -> None:
    doc = _vector_file()
    bounds = _bounds(doc["bounds"])
    for test in _group(doc, "KeystorePrune"):
        data = bytes.fromhex(test["file"])
        keyring = unlock_keyring(data, test["passphrase"], bounds=bounds)
        removed = keyring.expired_keys(test["now"], test["retention"])
        kept = keyring.without_expired(test["now"], test["retention"])
        assert [k.key_id.hex() for k in removed] == test["removedKeyIds"]
        assert [k.key_id.hex() for k in kept.encryption_keys] == test["keptKeyIds"]
        kdf = parse_keystore_header(data, bounds=bounds).kdf
        salt, nonce = bytes.fromhex(test["salt"]), bytes.fromhex(test["nonce"])
        new = lock_keyring(
            kept, test["passphrase"], rng=_recorded(salt, nonce), kdf=kdf, bounds=bounds
        )
        assert new.hex() == test["result"]


def _load_cases() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cases_keystore", VECTORS / "cases_keystore.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_file_is_what_the_case_module_builds() -> None:
    built = _load_cases().build()
    assert set(built) == {"keystore.json"}
    assert built["keystore.json"] == _vector_file()
