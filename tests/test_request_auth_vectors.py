"""Re-verify spec/vectors/request-auth.json (spec/relay-api.md, AUTH-1 .. AUTH-16) from the JSON.

Keys come from the published seeds; the signed bytes, the token and the field
are recomputed here from AUTH-2, AUTH-3 and AUTH-5 with the codec and
primitives alone, then compared with the file and with the library.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import (
    EncryptionKeyPair,
    NcbRelayError,
    NonceCache,
    PrivateIdentity,
    RequestVerifier,
    SigningKeyPair,
    StaticDirectory,
    codec,
    primitives,
    sign_request,
)
from ncb_relay.request_auth import (
    MAX_AUTHORIZATION_BYTES,
    PERSON_REQUEST_BODY,
    REQUEST_SIGNATURE_LABEL,
    TOKEN_LIMITS,
)

JSON = dict[str, Any]

FILE = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "request-auth.json"
DOC: JSON = json.loads(FILE.read_text(encoding="utf-8"))
IDENTITIES = {
    p["id"]: PrivateIdentity(
        p["id"],
        SigningKeyPair(bytes.fromhex(p["signingSeed"])),
        [EncryptionKeyPair(bytes.fromhex(p["encryptionSecret"]))],
    )
    for p in DOC["principals"]
}
DIRECTORY = StaticDirectory(
    IDENTITIES[p["id"]].public for p in DOC["principals"] if p["inDirectory"]
)


def group(kind: str) -> list[JSON]:
    return next(g["tests"] for g in DOC["testGroups"] if g["type"] == kind)


def params(kind: str) -> list[Any]:
    return [pytest.param(c, id=f"{c['tcId']}-{c['comment'][:40]}") for c in group(kind)]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_the_file_is_well_formed_and_states_the_constants() -> None:
    ids = [c["tcId"] for g in DOC["testGroups"] for c in g["tests"]]
    assert ids == list(range(1, len(ids) + 1))
    assert DOC["numberOfTests"] == len(ids)
    for g in DOC["testGroups"]:
        for case in g["tests"]:
            assert case["result"] in {"valid", "invalid"}
            assert ("error" in case) == (case["result"] == "invalid")
            assert set(case["flags"]) <= set(DOC["notes"])
    assert bytes.fromhex(DOC["signatureLabel"]) == REQUEST_SIGNATURE_LABEL
    assert DOC["bodyPersonalisation"].encode() == PERSON_REQUEST_BODY
    assert DOC["maxAuthorizationBytes"] == MAX_AUTHORIZATION_BYTES
    limits = DOC["credentialLimits"]
    assert (limits["maxBytes"], limits["maxArrayItems"], limits["maxDepth"]) == (
        TOKEN_LIMITS.max_bytes,
        TOKEN_LIMITS.max_array_items,
        TOKEN_LIMITS.max_depth,
    )
    for p in DOC["principals"]:
        public = IDENTITIES[p["id"]].signer.public_key
        assert public.raw.hex() == p["signingPublicKey"]
        assert public.key_id.hex() == p["signingKeyId"]
    invalid = [c for c in group("RequestVerify") if c["result"] == "invalid"]
    assert len(invalid) >= 30
    assert {c["error"] for c in invalid} == {
        "malformed",
        "limit-exceeded",
        "unsupported-version",
        "binding-mismatch",
        "future-dated",
        "stale",
        "replay",
        "unknown-key",
        "bad-signature",
    }


def declared(test: Callable[..., None]) -> set[str]:
    return {
        rid for mark in getattr(test, "pytestmark", []) if mark.name == "req" for rid in mark.args
    }


def test_requirement_markers_cover_the_cases() -> None:
    for kind, test in (("RequestSign", test_sign), ("RequestVerify", test_verify)):
        for case in group(kind):
            assert case["requirements"], case["tcId"]
            assert set(case["requirements"]) <= declared(test), (kind, case["tcId"])


@pytest.mark.req("AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5")
@pytest.mark.parametrize("case", params("RequestSign"))
def test_sign(case: JSON) -> None:
    identity = IDENTITIES[case["principal"]]
    body, nonce = bytes.fromhex(case["body"]), bytes.fromhex(case["nonce"])
    key_id = identity.signer.public_key.key_id
    body_hash = primitives.blake2b(body, person=DOC["bodyPersonalisation"].encode())
    assert body_hash.hex() == case["bodyHash"]
    fields: list[codec.Value] = [
        case["method"],
        case["target"],
        body_hash,
        case["timestamp"],
        nonce,
        case["relay"],
        case["principal"],
        key_id,
    ]
    signed = bytes.fromhex(DOC["signatureLabel"]) + codec.encode(fields)
    assert signed.hex() == case["signatureInput"]
    signature = identity.signer.sign(signed)
    assert signature.hex() == case["signature"]
    token = codec.encode(
        [case["principal"], key_id, case["relay"], case["timestamp"], nonce, signature]
    )
    assert token.hex() == case["credentials"]
    assert f"NCBR1 {b64url(token)}" == case["authorization"]
    # and the library, given the recorded nonce, produces the same field
    made = sign_request(
        principal=case["principal"],
        signer=identity.signer,
        relay=case["relay"],
        method=case["method"],
        target=case["target"],
        body=body,
        now=case["timestamp"],
        rng=lambda n: nonce,
    )
    assert made.authorization == case["authorization"]


@pytest.mark.req(
    "AUTH-1",
    "AUTH-2",
    "AUTH-6",
    "AUTH-7",
    "AUTH-8",
    "AUTH-9",
    "AUTH-10",
    "AUTH-11",
    "AUTH-12",
    "AUTH-13",
    "AUTH-14",
    "AUTH-15",
    "AUTH-16",
)
@pytest.mark.parametrize("case", params("RequestVerify"))
def test_verify(case: JSON) -> None:
    nonces = NonceCache(since=case["since"], max_skew=DOC["maxSkew"])
    for pair in case["accepted"]:
        nonces.record(
            pair["principal"], bytes.fromhex(pair["nonce"]), pair["timestamp"], pair["now"]
        )
    relay = RequestVerifier(relay=DOC["relay"], directory=DIRECTORY, nonces=nonces)

    def run() -> Any:
        return relay.verify(
            method=case["method"],
            target=case["target"],
            body=bytes.fromhex(case["body"]),
            authorization=case["authorization"],
            now=case["now"],
        )

    if case["result"] == "valid":
        result = run()
        assert result.principal == case["principal"]
        assert result.key_id.hex() == case["keyId"]
        with pytest.raises(NcbRelayError) as replayed:  # AUTH-11: accepted once
            run()
        assert replayed.value.code == "replay"
    else:
        before = len(nonces)
        with pytest.raises(NcbRelayError) as refused:
            run()
        assert refused.value.code == case["error"]
        assert len(nonces) == before  # AUTH-15: a refusal records nothing
