"""request-auth.json through the adapter: signed relay requests (relay-api.md, AUTH-1..16)."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, cases, describe, load

AUTH = load("request-auth.json")
PRINCIPALS = Principals(AUTH)


@pytest.mark.parametrize("case", cases(AUTH, "RequestSign", "request-auth"))
def test_sign(adapter: AdapterProcess, case: JSON) -> None:
    signed = adapter.call(
        {
            "op": "sign-request",
            "principal": PRINCIPALS.private(case["principal"]),
            **{k: case[k] for k in ("relay", "method", "target", "body", "timestamp", "nonce")},
        }
    )
    assert signed.get("authorization") == case["authorization"], f"{describe(case)}: {signed}"


@pytest.mark.req("AUTH-11")
@pytest.mark.parametrize("case", cases(AUTH, "RequestVerify", "request-auth"))
def test_verify(adapter: AdapterProcess, case: JSON) -> None:
    verified = adapter.call(
        {
            "op": "verify-request",
            "relay": AUTH["relay"],
            "directory": PRINCIPALS.directory,
            "maxSkew": AUTH["maxSkew"],
            **{
                k: case[k]
                for k in ("since", "accepted", "method", "target", "body", "authorization", "now")
            },
        }
    )
    if case["result"] == "invalid":
        assert "principal" not in verified, f"{describe(case)}: accepted, must be {case['error']!r}"
        assert verified.get("error") == case["error"], (
            f"{describe(case)}: refused with {verified.get('error')!r}, must be {case['error']!r}"
        )
        return
    assert "error" not in verified, f"{describe(case)}: refused with {verified['error']!r}"
    assert (verified["principal"], verified["keyId"]) == (case["principal"], case["keyId"])
    assert verified["again"] == "replay", f"{describe(case)}: accepted twice (AUTH-11)"
