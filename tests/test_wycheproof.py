"""Project Wycheproof vectors through ncb_relay's own primitive wrappers (KEY-1, KEY-4, KEY-5).

The vectors are not part of this repository.  Point ``NCB_RELAY_WYCHEPROOF_DIR``
at a directory holding ``ed25519_test.json``, ``x25519_test.json`` and
``xchacha20_poly1305_test.json`` (Project Wycheproof, ``testvectors_v1``).  If
the variable is unset the tests are skipped; if it is set, the files must be
there and every case runs.

What each verdict means here:

* Ed25519 (``ed25519_verify``, ``SigningPublicKey``): ``valid`` verifies and the
  key passes the KEY-4 point check; ``invalid`` raises :class:`BadSignature`.
  libsodium is stricter than RFC 8032 in two ways (it refuses public keys and
  ``R`` values of small order, and non-canonical encodings); in the vectors
  this was run against (C2SP/wycheproof commit dac1dd4, 151 cases) every such
  case is already marked ``invalid``, so :data:`ED25519_STRICTER` is empty.  A
  ``valid`` case that we refuse must be listed there with its reason, never skipped.
* X25519 (``x25519_check_public_key``, ``x25519``): ``valid`` gives exactly the
  expected shared secret.  ``acceptable`` cases are decided by one rule:
  public keys of small order (flag ``LowOrderPublic``, whose shared secret is
  all zero) are refused with :class:`InvalidPeerKey` by both wrappers (KEY-4,
  KEY-5); all others (twist points, non-canonical u >= p, bit 255 set) are
  accepted with the exact result, as RFC 7748 section 5 prescribes.
* XChaCha20-Poly1305 (``aead_encrypt``, ``aead_decrypt``): ``valid`` encrypts
  to exactly ``ct || tag`` and decrypts back.  ``invalid`` with a modified tag:
  ``aead_decrypt`` raises :class:`DecryptionFailed`.  ``invalid`` with a nonce
  of the wrong size: ``aead_encrypt`` raises :class:`UsageError` (our own
  caller's mistake) and ``aead_decrypt`` raises :class:`DecryptionFailed`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import (
    BadSignature,
    DecryptionFailed,
    EncryptionKeyPair,
    EncryptionPublicKey,
    InvalidPeerKey,
    SigningPublicKey,
    UsageError,
)
from ncb_relay import primitives as prim

ENV = "NCB_RELAY_WYCHEPROOF_DIR"
DIRECTORY = os.environ.get(ENV)

# tcId -> why libsodium refuses a case Wycheproof calls valid (none in commit dac1dd4)
ED25519_STRICTER: dict[int, str] = {}


def _cases(file: str) -> list[Any]:
    """One pytest.param per test case, each with the group it belongs to."""
    stem = file.removesuffix(".json")
    if not DIRECTORY:
        reason = f"{ENV} is not set; point it at Project Wycheproof's testvectors_v1"
        return [pytest.param(None, None, id=f"{stem}-unavailable", marks=pytest.mark.skip(reason))]
    path = Path(DIRECTORY) / file
    if not path.is_file():
        return [pytest.param(None, str(path), id=f"{stem}-missing")]
    suite = json.loads(path.read_text())
    params = [
        pytest.param(group, test, id=f"{stem}-{test['tcId']}")
        for group in suite["testGroups"]
        for test in group["tests"]
    ]
    if len(params) != suite["numberOfTests"]:
        return [pytest.param(None, f"{path}: numberOfTests does not match", id=f"{stem}-count")]
    return params


def _require(group: dict[str, Any] | None, test: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fail (not skip) when the variable is set but the file is missing or unreadable."""
    if group is None:
        pytest.fail(f"{ENV} is set but the vectors are unusable: {test}")
    assert isinstance(test, dict)
    assert test["result"] in ("valid", "invalid", "acceptable")
    return group, test


def _hex(test: dict[str, Any], key: str) -> bytes:
    return bytes.fromhex(test[key])


# --- Ed25519 ------------------------------------------------------------------------------


@pytest.mark.req("KEY-1", "KEY-4", "KEY-6", "OPEN-6", "OPEN-10")
@pytest.mark.parametrize(("group", "test"), _cases("ed25519_test.json"))
def test_ed25519(group: dict[str, Any] | None, test: Any) -> None:
    group, test = _require(group, test)
    public = bytes.fromhex(group["publicKey"]["pk"])
    message, signature = _hex(test, "msg"), _hex(test, "sig")
    assert test["result"] != "acceptable"  # the Ed25519 file has none; decide if it ever does
    if test["result"] == "valid" and test["tcId"] not in ED25519_STRICTER:
        key = SigningPublicKey(public)  # KEY-4: canonical, prime order
        prim.ed25519_verify(public, message, signature)  # raises if it does not verify
        key.verify(message, signature)
    else:
        with pytest.raises(BadSignature):
            prim.ed25519_verify(public, message, signature)
        try:
            key = SigningPublicKey(public)
        except InvalidPeerKey:
            return  # refused even earlier, when the directory loads the key
        with pytest.raises(BadSignature):
            key.verify(message, signature)


# --- X25519 -------------------------------------------------------------------------------


@pytest.mark.req("KEY-1", "KEY-4", "KEY-5", "SEAL-3", "OPEN-8")
@pytest.mark.parametrize(("group", "test"), _cases("x25519_test.json"))
def test_x25519(group: dict[str, Any] | None, test: Any) -> None:
    group, test = _require(group, test)
    assert group["curve"] == "curve25519"
    public, private, shared = _hex(test, "public"), _hex(test, "private"), _hex(test, "shared")
    refused = test["result"] == "invalid" or (
        test["result"] == "acceptable" and "LowOrderPublic" in test["flags"]
    )
    if refused:
        if test["result"] == "acceptable":
            assert shared == bytes(32)  # why it is refused: the shared secret is all zero
        with pytest.raises(InvalidPeerKey):
            prim.x25519_check_public_key(public)
        with pytest.raises(InvalidPeerKey):
            EncryptionPublicKey(public)
        with pytest.raises(InvalidPeerKey):
            prim.x25519(private, public)
        with pytest.raises(InvalidPeerKey):
            EncryptionKeyPair(private).exchange(public)
    else:
        assert shared != bytes(32)
        prim.x25519_check_public_key(public)
        assert EncryptionPublicKey(public).raw == public
        assert prim.x25519(private, public) == shared
        assert EncryptionKeyPair(private).exchange(public) == shared


# --- XChaCha20-Poly1305 -------------------------------------------------------------------


@pytest.mark.req("SEAL-5", "OPEN-9")
@pytest.mark.parametrize(("group", "test"), _cases("xchacha20_poly1305_test.json"))
def test_xchacha20_poly1305(group: dict[str, Any] | None, test: Any) -> None:
    group, test = _require(group, test)
    key, nonce, aad = _hex(test, "key"), _hex(test, "iv"), _hex(test, "aad")
    message, ciphertext, tag = _hex(test, "msg"), _hex(test, "ct"), _hex(test, "tag")
    assert group["keySize"] == 8 * len(key) == 256
    assert test["result"] != "acceptable"  # the AEAD file has none; decide if it ever does
    if test["result"] == "valid":
        assert prim.aead_encrypt(key, nonce, message, aad) == ciphertext + tag
        assert prim.aead_decrypt(key, nonce, ciphertext + tag, aad) == message
        return
    if len(nonce) != prim.AEAD_NONCE_BYTES:
        assert "InvalidNonceSize" in test["flags"]
        with pytest.raises(UsageError):
            prim.aead_encrypt(key, nonce, message, aad)
        with pytest.raises(DecryptionFailed) as info:
            prim.aead_decrypt(key, nonce, ciphertext + tag, aad)
        assert info.value.reason == "aead-parameters"
        return
    with pytest.raises(DecryptionFailed) as info:
        prim.aead_decrypt(key, nonce, ciphertext + tag, aad)
    assert info.value.reason in ("aead", "aead-truncated")
    assert prim.aead_encrypt(key, nonce, message, aad) != ciphertext + tag


@pytest.mark.req("KEY-1")
def test_the_vectors_are_used_when_configured() -> None:
    """With the variable set, all three files are read and every case is collected."""
    if not DIRECTORY:
        pytest.skip(f"{ENV} is not set")
    counts: dict[str, int] = {}
    for file in ("ed25519_test.json", "x25519_test.json", "xchacha20_poly1305_test.json"):
        path = Path(DIRECTORY) / file
        assert path.is_file(), f"{ENV} is set but {path} is missing"
        counts[file] = json.loads(path.read_text())["numberOfTests"]
        assert len(_cases(file)) == counts[file] > 0
    # ED25519_STRICTER names real valid cases only
    ed = json.loads((Path(DIRECTORY) / "ed25519_test.json").read_text())
    valid = {t["tcId"] for g in ed["testGroups"] for t in g["tests"] if t["result"] == "valid"}
    assert set(ED25519_STRICTER) <= valid
