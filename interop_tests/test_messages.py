"""messages.json through the adapter: bodies, bodies in their envelope, replies, forwards."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, cases, describe, group, load

MESSAGES = load("messages.json")
PRINCIPALS = Principals(MESSAGES)
COORDINATOR: str = MESSAGES["coordinator"]
#: the invalid-body refusals, each naming its field and reason (MSG-4)
REFUSED = [
    c
    for kind in ("BodyDecode", "BodyContext")
    for c in group(MESSAGES, kind)
    if c["result"] == "invalid" and c["error"] == "invalid-body"
]


def receiver(now: int) -> JSON:
    """The receiver's parameters: the file's five principals and its coordinator."""
    return {"directory": PRINCIPALS.directory, "now": now, "coordinator": COORDINATOR}


def refused(case: JSON, got: JSON) -> None:
    assert "error" in got, f"{describe(case)}: accepted, must be {case['error']!r}"
    assert got["error"] == case["error"], (
        f"{describe(case)}: refused with {got['error']!r}, must be {case['error']!r}"
    )


@pytest.mark.parametrize("case", cases(MESSAGES, "BodyDecode", "messages"))
def test_decode_body(adapter: AdapterProcess, case: JSON) -> None:
    decoded = adapter.call({"op": "decode-body", "body": case["body"]})
    if case["result"] == "invalid":
        refused(case, decoded)
        return
    assert "error" not in decoded, f"{describe(case)}: refused with {decoded}"
    got = (decoded.get("schema"), decoded.get("version"), decoded.get("opaque"))
    assert got == (case["schema"], case["version"], case["opaque"]), describe(case)
    if case["opaque"]:  # MSG-5: delivered with its exact bytes
        assert decoded.get("data") == case["body"], f"{describe(case)}: other bytes delivered"
        return
    assert decoded.get("value") == case["value"], f"{describe(case)}: another content"
    assert decoded.get("encoding") == case["encoding"], f"{describe(case)}: another encoding"


@pytest.mark.parametrize("case", cases(MESSAGES, "BodyContext", "messages"))
def test_check_body(adapter: AdapterProcess, case: JSON) -> None:
    checked = adapter.call(
        {
            "op": "check-body",
            "body": case["body"],
            "sender": case["sender"],
            "created": case["created"],
            "replyTo": case["replyTo"],
            "coordinator": COORDINATOR,
        }
    )
    if case["result"] == "invalid":
        refused(case, checked)
    else:
        assert "error" not in checked, f"{describe(case)}: refused with {checked}"


@pytest.mark.req("MSG-4")
@pytest.mark.parametrize("case", [pytest.param(c, id=f"messages:tc{c['tcId']}") for c in REFUSED])
def test_a_refused_body_names_field_and_reason(adapter: AdapterProcess, case: JSON) -> None:
    op = "check-body" if "sender" in case else "decode-body"
    request = {"op": op, "body": case["body"]}
    if op == "check-body":
        request.update(
            sender=case["sender"],
            created=case["created"],
            replyTo=case["replyTo"],
            coordinator=COORDINATOR,
        )
    got = adapter.call(request)
    assert (got.get("field"), got.get("reason")) == (case["field"], case["reason"]), (
        f"{describe(case)}: named {got.get('field')!r} ({got.get('reason')!r}), "
        f"the fault is {case['field']!r} ({case['reason']!r})"
    )


@pytest.mark.parametrize("case", cases(MESSAGES, "ReplyBinding", "messages"))
def test_follow_conversation(adapter: AdapterProcess, case: JSON) -> None:
    followed = adapter.call(
        {
            "op": "follow-conversation",
            "observer": PRINCIPALS.private(case["observer"]),
            "request": case["request"],
            "replies": [{"envelope": r["envelope"], "now": r["now"]} for r in case["replies"]],
            **receiver(case["now"]),
        }
    )
    assert "error" not in followed, f"{describe(case)}: the request was refused: {followed}"
    got = followed.get("replies", [])
    assert len(got) == len(case["replies"]), f"{describe(case)}: reply results missing"
    for number, (want, reply) in enumerate(zip(case["replies"], got, strict=True)):
        if want["result"] == "valid":
            assert reply == {"state": want["state"]}, f"{describe(case)}: reply #{number}: {reply}"
        else:
            assert reply.get("error") == want["error"], (
                f"{describe(case)}: reply #{number} gave {reply}, must be {want['error']!r}"
            )


@pytest.mark.parametrize("case", cases(MESSAGES, "Forward", "messages"))
def test_verify_forward(adapter: AdapterProcess, case: JSON) -> None:
    verified = adapter.call(
        {
            "op": "verify-forward",
            "recipient": PRINCIPALS.private(case["recipient"]),
            "envelope": case["envelope"],
            **receiver(case["now"]),
        }
    )
    if case["result"] == "invalid":
        refused(case, verified)
        return
    assert "error" not in verified, f"{describe(case)}: refused with {verified}"
    keys = ("author", "forwarder", "originalSchema", "originalHandling", "permission")
    assert {k: verified.get(k) for k in keys} == {k: case[k] for k in keys}, describe(case)
