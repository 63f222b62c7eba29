"""Re-verify spec/vectors/directory.json from the JSON alone, and check it is up to date."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import (
    AnchorChain,
    DirectoryKeys,
    DirectoryPolicy,
    EncryptionKeyPair,
    NcbRelayError,
    SigningKeyPair,
    load_directory,
    verify_directory,
)

JSON = dict[str, Any]
VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
DOC: JSON = json.loads((VECTORS / "directory.json").read_text(encoding="utf-8"))
FILES = {name: bytes.fromhex(data) for name, data in DOC["signedFiles"].items()}


def group(kind: str) -> list[JSON]:
    for g in DOC["testGroups"]:
        if g["type"] == kind:
            tests: list[JSON] = g["tests"]
            return tests
    raise KeyError(kind)


def params(kind: str) -> list[Any]:
    return [
        pytest.param(case, id=f"tc{case['tcId']}", marks=pytest.mark.req(*case["requirements"]))
        for case in group(kind)
    ]


def outcome(run: Callable[[], JSON]) -> JSON:
    try:
        return {"result": "valid", **run()}
    except NcbRelayError as error:
        return {"result": "invalid", "error": error.code}


def chain_of(names: list[str]) -> AnchorChain:
    chain = AnchorChain.trust(FILES[names[0]])
    for name in names[1:]:
        chain = chain.extend(FILES[name])
    return chain


def expect(case: JSON, got: JSON) -> None:
    if case["result"] == "invalid":
        assert got == {"result": "invalid", "error": case["error"]}, case["comment"]
    else:
        assert got["result"] == "valid", (case["comment"], got)
        for name, value in got.items():
            assert case[name] == value, (case["comment"], name)


@pytest.mark.req("ANCHOR-1", "ANCHOR-2", "ANCHOR-3", "ANCHOR-4", "ANCHOR-5", "ROT-7", "DIR-14")
@pytest.mark.parametrize("case", params("AnchorChain"))
def test_anchor_chain(case: JSON) -> None:
    def run() -> JSON:
        chain = chain_of(case["anchors"])
        return {"currentSerial": chain.current.serial, "fingerprint": chain.fingerprint.hex()}

    expect(case, outcome(run))


@pytest.mark.req(
    "DIR-1", "DIR-2", "DIR-3", "DIR-4", "DIR-5", "DIR-6", "DIR-7", "DIR-8", "DIR-10", "DIR-12",
    "DIR-14", "DIR-15", "DIR-16", "ANCHOR-6", "KEY-3", "KEY-4", "ROT-2", "ROT-3", "ROT-4", "ROT-5",
    "ROT-6", "ROT-7", "ROT-8",
)  # fmt: skip
@pytest.mark.parametrize("case", params("DirectoryVerify"))
def test_directory_verify(case: JSON) -> None:
    def run() -> JSON:
        chain = chain_of(case["anchors"])
        policy = DirectoryPolicy(grace=case["grace"], max_skew=case["maxSkew"])
        previous = None
        if case["previous"] is not None:
            previous = load_directory(FILES[case["previous"]], anchors=chain, policy=policy)
        verified = verify_directory(
            FILES[case["directory"]],
            anchors=chain,
            now=case["now"],
            previous=previous,
            intermediates=[FILES[name] for name in case["intermediates"]],
            policy=policy,
        )
        return {
            "serial": verified.serial,
            "hash": verified.hash.hex(),
            "inGrace": verified.in_grace,
        }

    expect(case, outcome(run))


@pytest.mark.req("DIR-9", "DIR-10", "DIR-11", "DIR-13", "ROT-2", "ROT-5", "ROT-6")
@pytest.mark.parametrize("case", params("KeyLookup"))
def test_key_lookup(case: JSON) -> None:
    chain = chain_of(case["anchors"])
    verified = load_directory(
        FILES[case["directory"]], anchors=chain, policy=DirectoryPolicy(grace=case["grace"])
    )
    view: DirectoryKeys = verified.live if case["view"] == "live" else verified.historical
    key_id = bytes.fromhex(case.get("keyId", ""))

    def run() -> JSON:
        if case["lookup"] == "signingKey":
            return {"key": view.signing_key(case["principal"], key_id, case["at"]).raw.hex()}
        if case["lookup"] == "checkEncryptionKey":
            view.check_encryption_key(case["principal"], key_id, case["at"])
            return {}
        assert case["lookup"] == "encryptionKeyFor"
        return {"key": view.encryption_key(case["principal"], case["at"]).raw.hex()}

    expect(case, outcome(run))


def declared(test: Callable[..., None]) -> set[str]:
    marks = getattr(test, "pytestmark", [])
    return {rid for mark in marks if mark.name == "req" for rid in mark.args}


def test_the_file_is_well_formed() -> None:
    cases = [case for g in DOC["testGroups"] for case in g["tests"]]
    assert [c["tcId"] for c in cases] == list(range(1, len(cases) + 1))
    assert DOC["numberOfTests"] == len(cases)
    for case in cases:
        assert case["result"] in {"valid", "invalid"}
        assert ("error" in case) == (case["result"] == "invalid")
        assert set(case["flags"]) <= set(DOC["notes"])
        assert case["requirements"]
    for kind, test in (
        ("AnchorChain", test_anchor_chain),
        ("DirectoryVerify", test_directory_verify),
        ("KeyLookup", test_key_lookup),
    ):
        for case in group(kind):
            assert set(case["requirements"]) <= declared(test), (kind, case["tcId"])
    errors = {c["error"] for c in cases if c["result"] == "invalid"}
    assert errors >= {
        "below-threshold",
        "directory-expired",
        "rollback",
        "fork",
        "broken-chain",
        "invalid-peer-key",
        "bad-signature",
        "unknown-key",
        "binding-mismatch",
    }


def test_the_published_keys_match_their_seeds() -> None:
    for root in DOC["roots"]:
        pair = SigningKeyPair(bytes.fromhex(root["seed"]))
        assert pair.public_key.raw.hex() == root["publicKey"]
        assert pair.public_key.key_id.hex() == root["keyId"]
    for key in DOC["keys"]:
        if "seed" in key:
            public = SigningKeyPair(bytes.fromhex(key["seed"])).public_key
        else:
            public = EncryptionKeyPair(bytes.fromhex(key["secret"])).public_key  # type: ignore[assignment]
        assert public.raw.hex() == key["publicKey"]
        assert public.key_id.hex() == key["keyId"]


@pytest.mark.req("DIR-1")
def test_the_file_is_what_the_cases_module_builds() -> None:
    if str(VECTORS) not in sys.path:
        sys.path.insert(0, str(VECTORS))
    module = importlib.import_module("cases_directory")
    built = module.build()
    assert list(built) == ["directory.json"]
    text = json.dumps(built["directory.json"], indent=2, ensure_ascii=False) + "\n"
    on_disk = (VECTORS / "directory.json").read_text(encoding="utf-8")
    assert text == on_disk, "regenerate: python spec/vectors/generate.py"
