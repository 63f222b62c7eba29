"""envelope.json through the adapter: sealing, opening and reply binding (protocol.md)."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, cases, describe, load

ENVELOPE = load("envelope.json")
PRINCIPALS = Principals(ENVELOPE)
DEFAULTS: JSON = ENVELOPE["defaults"]


def limits(case: JSON) -> JSON:
    merged = {**DEFAULTS, **case.get("limits", {})}
    return {
        "maxEnvelopeBytes": merged["maxEnvelopeBytes"],
        "maxRecipients": merged["maxRecipients"],
    }


def receiver(case: JSON, now: int) -> JSON:
    """The receiver's parameters of a request: directory, clock, skew and limits."""
    return {
        "directory": PRINCIPALS.directory,
        "now": now,
        "maxSkew": DEFAULTS["maxSkew"],
        "limits": limits(case),
    }


@pytest.mark.parametrize("case", cases(ENVELOPE, "EnvelopeSeal", "envelope"))
def test_seal(adapter: AdapterProcess, case: JSON) -> None:
    sealed = adapter.call(
        {
            "op": "seal",
            "sender": PRINCIPALS.private(case["sender"]),
            "recipients": [PRINCIPALS.public(r) for r in case["recipients"]],
            "body": case["body"],
            "seq": case["seq"],
            "now": case["created"],
            "ttl": case["ttl"],
            "replyTo": case["replyTo"],
            "random": case["contentKey"] + case["ephemeralSecret"],
        }
    )
    assert "error" not in sealed, f"{describe(case)}: sealing failed: {sealed}"
    assert sealed["messageId"] == case["messageId"], f"{describe(case)}: another message id"
    assert sealed["envelope"] == case["envelope"], f"{describe(case)}: another envelope"
    assert sealed["messageHash"] == case["messageHash"], f"{describe(case)}: another message hash"
    routed = adapter.call(
        {"op": "route", "envelope": case["envelope"], **receiver(case, case["now"])}
    )
    assert routed.get("messageHash") == case["messageHash"], f"{describe(case)}: route: {routed}"
    for recipient in case["recipients"]:
        opened = adapter.call(
            {
                "op": "open",
                "recipient": PRINCIPALS.private(recipient),
                "envelope": case["envelope"],
                **receiver(case, case["now"]),
            }
        )
        assert opened.get("body") == case["body"], f"{describe(case)}: {recipient}: {opened}"
        assert opened["sender"] == case["sender"]
        assert opened["recipients"] == case["recipients"]
        assert (opened["seq"], opened["created"]) == (case["seq"], case["created"])
        assert opened["replyTo"] == case["replyTo"]


@pytest.mark.parametrize("case", cases(ENVELOPE, "EnvelopeOpen", "envelope"))
def test_open(adapter: AdapterProcess, case: JSON) -> None:
    params = receiver(case, case["now"])
    routed = adapter.call({"op": "route", "envelope": case["envelope"], **params})
    assert routed.get("error") == case["routingError"], (
        f"{describe(case)}: the relay's check (OPEN-1 to OPEN-6) gave "
        f"{routed.get('error')!r}, must give {case['routingError']!r}"
    )
    prior = case.get("prior", [])
    opened = adapter.call(
        {
            "op": "open",
            "recipient": PRINCIPALS.private(case["recipient"]),
            "prior": [p["envelope"] for p in prior],
            "envelope": case["envelope"],
            **params,
        }
    )
    for number, (want, got) in enumerate(zip(prior, opened.get("prior", []), strict=False)):
        assert got.get("error") == want.get("error"), f"{describe(case)}: prior #{number}: {got}"
    assert len(opened.get("prior", [])) == len(prior), f"{describe(case)}: prior results missing"
    if case["result"] == "valid":
        assert "error" not in opened, f"{describe(case)}: refused with {opened['error']!r}"
        assert opened["body"] == case["body"], f"{describe(case)}: another body"
    else:
        assert "body" not in opened, f"{describe(case)}: accepted, must be {case['error']!r}"
        assert opened.get("error") == case["error"], (
            f"{describe(case)}: refused with {opened.get('error')!r}, must be {case['error']!r}"
        )


@pytest.mark.parametrize("case", cases(ENVELOPE, "ReplyBinding", "envelope"))
def test_reply_binding(adapter: AdapterProcess, case: JSON) -> None:
    checked = adapter.call(
        {
            "op": "check-reply",
            "request": case["request"],
            "response": case["response"],
            "recipient": PRINCIPALS.private(case["responseOpenedBy"]),
            **receiver(case, case["now"]),
        }
    )
    if case["result"] == "valid":
        assert "error" not in checked, f"{describe(case)}: refused with {checked['error']!r}"
        assert checked["requestMessageHash"] == case["requestMessageHash"]
    else:
        assert checked.get("error") == case["error"], (
            f"{describe(case)}: gave {checked.get('error')!r}, must be {case['error']!r}"
        )
