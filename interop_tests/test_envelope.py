"""envelope.json through the adapter: sealing, opening and reply binding (protocol.md)."""

from __future__ import annotations

import pytest

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, cases, describe, group, load

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


M1 = group(ENVELOPE, "EnvelopeSeal")[0]  # M1, created at `now`, to MA.ncb-rabat and XP.interpol-gs


@pytest.mark.req("FRESH-3", "FRESH-1")
def test_max_skew_is_300_by_default_and_at_most_900(adapter: AdapterProcess) -> None:
    def open_m1(now: int, **skew: int) -> JSON:
        return adapter.call(
            {
                "op": "open",
                "recipient": PRINCIPALS.private(M1["recipients"][0]),
                "envelope": M1["envelope"],
                "directory": PRINCIPALS.directory,
                "now": now,
                **({"maxSkew": skew["maxSkew"]} if skew else {}),
            }
        )

    created = M1["created"]
    for now, skew, error in (
        (created - 300, {}, None),
        (created - 301, {}, "future-dated"),
        (created - 900, {"maxSkew": 900}, None),
        (created - 901, {"maxSkew": 900}, "future-dated"),
    ):
        got = open_m1(now, **skew)
        where = f"M1 created at {created}, opened at {now} with {skew or 'the default max_skew'}"
        assert got.get("error") == error, f"{where}: gave {got.get('error')!r}, must be {error!r}"
    got = open_m1(created, maxSkew=901)
    assert got.get("error") == "usage", (
        f"a max_skew of 901 s must be refused as a local fault (usage), gave {got}"
    )


#: KEY-4's seven encodings of small-order points, and one of them with bit 255 set
SMALL_ORDER_KEYS = (
    "00" * 32,
    "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff" * 30 + "7f",
    "ed" + "ff" * 30 + "7f",
    "ee" + "ff" * 30 + "7f",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
)


@pytest.mark.req("KEY-5", "KEY-4")
@pytest.mark.parametrize("key", SMALL_ORDER_KEYS)
def test_seal_refuses_a_recipient_key_of_small_order(adapter: AdapterProcess, key: str) -> None:
    """The X25519 secret shared with a small-order key is all zero: the sender refuses it."""
    victim, other = (PRINCIPALS.public(r) for r in M1["recipients"])
    sealed = adapter.call(
        {
            "op": "seal",
            "sender": PRINCIPALS.private(M1["sender"]),
            "recipients": [{**victim, "encryptionPublicKey": key}, other],
            "body": M1["body"],
            "seq": M1["seq"],
            "now": M1["created"],
            "ttl": M1["ttl"],
            "replyTo": None,
            "random": M1["contentKey"] + M1["ephemeralSecret"],
        }
    )
    assert sealed.get("error") == "invalid-peer-key", (
        f"sealing to {victim['id']} with the encryption key {key}: gave {sealed}, "
        "must be invalid-peer-key"
    )


@pytest.mark.req("ENV-10")
@pytest.mark.parametrize("case", cases(ENVELOPE, "EnvelopeSeal", "envelope"))
def test_the_header_is_public_and_the_body_is_not(adapter: AdapterProcess, case: JSON) -> None:
    """With no private key the header's routing fields are read; a non-recipient reads no body."""
    params = receiver(case, case["now"])
    routed = adapter.call({"op": "route", "envelope": case["envelope"], **params})
    got = {k: routed.get(k) for k in ("sender", "recipients", "messageId", "messageHash")}
    assert got == {k: case[k] for k in got}, f"{describe(case)}: the relay's view: {routed}"
    outsider = next(p["id"] for p in ENVELOPE["principals"] if p["id"] not in case["recipients"])
    opened = adapter.call(
        {
            "op": "open",
            "recipient": PRINCIPALS.private(outsider),
            "envelope": case["envelope"],
            **params,
        }
    )
    assert "body" not in opened, f"{describe(case)}: {outsider}, not a recipient, read the body"
    assert opened.get("error") == "decryption-failed", f"{describe(case)}: {outsider}: {opened}"
