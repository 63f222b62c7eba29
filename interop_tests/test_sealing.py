"""The sender's own refusals: bodies and forwards a receiver would refuse are never sealed.

``seal-message`` gets each body of ``messages.json``'s BodyContext group in the
envelope context of its case: one a receiver refuses by MSG-6, MSG-7 or MSG-12
must not be sealed (``usage``, MSG-11), any other is sealed byte for byte as the
reference seals it.  ``seal-forward`` gets the original (and the permission)
carried in each forward of the Forward group, to the same recipients at the same
time: a forward a receiver refuses by FWD-2 to FWD-4 must not be sealed (FWD-5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from ncb_relay import (
    NcbRelayError,
    ReplayGuard,
    open_envelope,
)
from ncb_relay.envelope import SealedEnvelope
from ncb_relay.messages import Forward, OpaqueBody, decode_body, seal_forward, seal_message

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, describe, group, load

MESSAGES = load("messages.json")
PRINCIPALS = Principals(MESSAGES)
COORDINATOR: str = MESSAGES["coordinator"]
TTL = 86_400
SEQ = 7
#: the envelope rules a sender applies before sealing (MSG-11); MSG-9 is the receiver's alone
SENDER_RULES = {"MSG-6", "MSG-7", "MSG-12"}


def randomness(label: str) -> bytes:
    """64 fixed bytes for one seal: the content key, then the ephemeral secret (SEAL-1)."""
    return hashlib.sha512(f"ncbr conformance sealing {label}".encode()).digest()


identity = PRINCIPALS.identity
public = PRINCIPALS.public_identity
DIRECTORY = PRINCIPALS.static_directory()


def drawn(data: bytes) -> Callable[[int], bytes]:
    queue = bytearray(data)

    def draw(n: int) -> bytes:
        out = bytes(queue[:n])
        del queue[:n]
        return out

    return draw


def sealed_json(sealed: SealedEnvelope) -> JSON:
    return {
        "envelope": sealed.data.hex(),
        "messageId": sealed.message_id.hex(),
        "messageHash": sealed.message_hash.hex(),
    }


def context_cases() -> list[object]:
    return [
        pytest.param(c, id=f"messages:tc{c['tcId']}", marks=pytest.mark.req("MSG-11"))
        for c in group(MESSAGES, "BodyContext")
        if c["result"] == "valid" or SENDER_RULES & set(c["requirements"])
    ]


def recipient_of(case: JSON) -> str:
    """Someone other than the sender to address the body to."""
    others = [str(p["id"]) for p in PRINCIPALS.directory if p["id"] != case["sender"]]
    return others[0]


@pytest.mark.parametrize("case", context_cases())
def test_a_body_a_receiver_would_refuse_is_not_sealed(adapter: AdapterProcess, case: JSON) -> None:
    to = recipient_of(case)
    random = randomness(f"message {case['tcId']}")
    got = adapter.call(
        {
            "op": "seal-message",
            "sender": PRINCIPALS.private(case["sender"]),
            "recipients": [PRINCIPALS.public(to)],
            "body": case["body"],
            "seq": SEQ,
            "now": case["created"],
            "ttl": TTL,
            "replyTo": case["replyTo"],
            "random": random.hex(),
        }
    )
    if case["result"] == "invalid":
        assert got.get("error") == "usage", (
            f"{describe(case)}: a receiver refuses it with {case['error']!r}, so the sender must "
            f"refuse to seal it (usage); got {got}"
        )
        return
    body = decode_body(bytes.fromhex(case["body"]))
    assert not isinstance(body, OpaqueBody)
    want = seal_message(
        body,
        sender=identity(case["sender"]),
        recipients=[public(to)],
        now=case["created"],
        seq=SEQ,
        ttl=TTL,
        reply_to=None if case["replyTo"] is None else bytes.fromhex(case["replyTo"]),
        rng=drawn(random),
    )
    assert got == sealed_json(want), f"{describe(case)}: not sealed as the reference seals it"


@pytest.mark.req("MSG-11")
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=f"messages:tc{c['tcId']}")
        for c in group(MESSAGES, "BodyDecode")
        if c["result"] == "invalid"
    ],
)
def test_a_body_that_does_not_decode_is_not_sealed(adapter: AdapterProcess, case: JSON) -> None:
    got = adapter.call(
        {
            "op": "seal-message",
            "sender": PRINCIPALS.private(COORDINATOR),
            "recipients": [PRINCIPALS.public("KR.ncb-seoul")],
            "body": case["body"],
            "seq": SEQ,
            "now": MESSAGES["now"],
            "ttl": TTL,
            "replyTo": None,
            "random": randomness(f"undecodable {case['tcId']}").hex(),
        }
    )
    assert got.get("error") == case["error"], f"{describe(case)}: sealed or refused as {got}"


# --- FWD-5: the forwards of the Forward group, sealed again by their forwarder ---------------


def carried(case: JSON) -> tuple[str, tuple[str, ...], int, bytes, bytes | None]:
    """The forward's sender, recipients and time, and the original and permission it carries."""
    forward = open_envelope(
        bytes.fromhex(case["envelope"]),
        recipient=identity(case["recipient"]),
        directory=DIRECTORY,
        now=case["now"],
        replay=ReplayGuard(),
    )
    body = decode_body(forward.body)
    assert isinstance(body, Forward)
    permission = None if body.permission is None else body.permission.to_disclosure().envelope
    original = body.original.to_disclosure().envelope
    return forward.sender, forward.recipients, forward.created, original, permission


def reference_forward(
    forwarder: str,
    recipients: tuple[str, ...],
    now: int,
    original: bytes,
    permission: bytes | None,
    random: bytes,
) -> JSON:
    """What the reference does with the same request: the sealed forward, or its refusal."""
    guard = ReplayGuard()
    try:
        opened = [
            None
            if data is None
            else open_envelope(
                data, recipient=identity(forwarder), directory=DIRECTORY, now=now, replay=guard
            )
            for data in (original, permission)
        ]
        assert opened[0] is not None
        made = seal_forward(
            opened[0],
            sender=identity(forwarder),
            recipients=[public(r) for r in recipients],
            now=now,
            seq=SEQ,
            ttl=TTL,
            rng=drawn(random),
            coordinator=COORDINATOR,
            permission=opened[1],
        )
    except NcbRelayError as exc:
        return {"error": exc.wire_code}
    return sealed_json(made.sealed)


def forward_cases() -> list[object]:
    return [
        pytest.param(c, id=f"messages:tc{c['tcId']}", marks=pytest.mark.req("FWD-5"))
        for c in group(MESSAGES, "Forward")
    ]


@pytest.mark.parametrize("case", forward_cases())
def test_a_forward_a_receiver_would_refuse_is_not_sealed(
    adapter: AdapterProcess, case: JSON
) -> None:
    forwarder, recipients, now, original, permission = carried(case)
    random = randomness(f"forward {case['tcId']}")
    got = adapter.call(
        {
            "op": "seal-forward",
            "sender": PRINCIPALS.private(forwarder),
            "original": original.hex(),
            "permission": None if permission is None else permission.hex(),
            "recipients": [PRINCIPALS.public(r) for r in recipients],
            "seq": SEQ,
            "now": now,
            "ttl": TTL,
            "random": random.hex(),
            "directory": PRINCIPALS.directory,
            "coordinator": COORDINATOR,
        }
    )
    want = reference_forward(forwarder, recipients, now, original, permission, random)
    # The receiver's verdict on the vector's forward, for the rules a sender applies too:
    # FWD-2 (a forwarder that was not a recipient cannot even open the original), FWD-3, FWD-4.
    # A forward refused only by FWD-1 (a wrong content key carried) is sealed right here.
    if case["result"] == "valid" or case["requirements"] == ["FWD-1"]:
        assert "envelope" in want, describe(case)
    elif "FWD-2" in case["requirements"]:
        assert want == {"error": "decryption-failed"}, describe(case)
    else:
        assert want == {"error": case["error"]}, describe(case)
    assert got == want, f"{describe(case)}: got {got}, must be {want.get('error', 'sealed')}"
