"""keystore.json through the adapter: locking, unlocking and pruning keystore files."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, cases, describe, group, load

KEYSTORE = load("keystore.json")
BOUNDS: JSON = KEYSTORE["bounds"]
KEYRING: JSON = KEYSTORE["keyring"]


@pytest.mark.parametrize("case", cases(KEYSTORE, "KeystoreLock", "keystore"))
def test_lock_keystore(adapter: AdapterProcess, case: JSON) -> None:
    keyring = {
        "principal": KEYRING["principal"],
        "signingSeed": KEYRING["signingSeed"],
        "encryptionKeys": [
            {"secret": e["secret"], "notBefore": e["notBefore"], "notAfter": e["notAfter"]}
            for e in KEYRING["encryptionKeys"]
        ],
    }
    locked = adapter.call(
        {
            "op": "lock-keystore",
            "keyring": keyring,
            "passphrase": case["passphrase"],
            "kdf": case["kdf"],
            "bounds": BOUNDS,
            "random": case["salt"] + case["nonce"],
        }
    )
    assert "error" not in locked, f"{describe(case)}: refused with {locked}"
    assert locked.get("file", "")[:124] == case["header"], f"{describe(case)}: another header"
    assert locked["file"] == case["file"], f"{describe(case)}: another file"


@pytest.mark.parametrize("case", cases(KEYSTORE, "KeystoreUnlock", "keystore"))
def test_unlock_keystore(adapter: AdapterProcess, case: JSON) -> None:
    unlocked = adapter.call(
        {
            "op": "unlock-keystore",
            "file": case["file"],
            "passphrase": case["passphrase"],
            "bounds": case.get("bounds", BOUNDS),
        }
    )
    if case["result"] == "invalid":
        assert unlocked.get("error") == case["error"], (
            f"{describe(case)}: gave {unlocked.get('error')!r}, must be {case['error']!r}"
        )
        return
    assert "error" not in unlocked, f"{describe(case)}: refused with {unlocked}"
    assert unlocked.get("principal") == KEYRING["principal"], describe(case)
    assert unlocked.get("signingPublicKey") == KEYRING["signingPublicKey"], describe(case)
    assert unlocked.get("keyIds") == case["keyIds"], f"{describe(case)}: other keys"


@pytest.mark.parametrize("case", cases(KEYSTORE, "KeystorePrune", "keystore"))
def test_prune_keystore(adapter: AdapterProcess, case: JSON) -> None:
    pruned = adapter.call(
        {
            "op": "prune-keystore",
            "file": case["file"],
            "passphrase": case["passphrase"],
            "bounds": BOUNDS,
            "now": case["now"],
            "retention": case["retention"],
            "random": case["salt"] + case["nonce"],
        }
    )
    assert "error" not in pruned, f"{describe(case)}: refused with {pruned}"
    assert pruned.get("removedKeyIds") == case["removedKeyIds"], describe(case)
    assert pruned.get("keptKeyIds") == case["keptKeyIds"], describe(case)
    assert pruned.get("file") == case["result"], f"{describe(case)}: another file"


def _padded(size: int) -> str:
    """The valid file's header with a box of zero bytes that makes the file ``size`` bytes long.

    The header's box length (bytes 58 to 61) says exactly the bytes that follow, so the file is
    consistent but for its size: KS-10 passes, and the box does not authenticate (KS-11).
    """
    valid = bytes.fromhex(group(KEYSTORE, "KeystoreUnlock")[0]["file"])
    box = size - 62
    return (valid[:58] + box.to_bytes(4, "big") + bytes(box)).hex()


@pytest.mark.req("KS-8", "KS-11")
@pytest.mark.parametrize(
    ("size", "error"), [(65_536, "keystore-locked"), (65_537, "keystore-corrupt")]
)
def test_a_keystore_above_64_kib_is_refused(adapter: AdapterProcess, size: int, error: str) -> None:
    first = group(KEYSTORE, "KeystoreUnlock")[0]
    unlocked = adapter.call(
        {
            "op": "unlock-keystore",
            "file": _padded(size),
            "passphrase": first["passphrase"],
            "bounds": BOUNDS,
        }
    )
    assert unlocked.get("error") == error, (
        f"a consistent file of {size} bytes whose box does not authenticate: gave {unlocked}, "
        f"must be {error!r} (KS-8: at most 65,536 bytes)"
    )
