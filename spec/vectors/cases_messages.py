"""messages.json: message bodies, bodies in their envelope, reply binding and forwards.

Covers spec/messages.md.  Groups:

- ``BodyDecode``: a valid encoding of every built-in body type, opaque bodies of
  unknown schema or version, and invalid bodies with the field and kind of fault;
- ``BodyContext``: a body checked against the envelope facts that carry it
  (sender, ``created``, ``reply_to``);
- ``ReplyBinding``: a request and the replies one party receives, with the state
  after each or the error (built in ``message_exchanges.py``);
- ``Forward``: forwarded messages opened and verified by their recipient (likewise).

Every expected result is checked against the library before the file is written.
"""

from __future__ import annotations

from typing import Any

from message_exchanges import (
    CAST_USED,
    COORDINATOR,
    GS,
    PERSON_TV_MESSAGES,
    RABAT,
    SEOUL,
    binding_cases,
    forward_cases,
    opened,
    refusal,
    reset_sequences,
    sealed,
)
from principals import NOW, Principal, derive, principals_json
from skymanga_bodies import (
    H0,
    acknowledgement,
    delivery_receipt,
    every_body,
    notice,
    request,
    status,
    withdrawal,
)
from vectorfile import JSON, document, typed

from ncb_relay import codec
from ncb_relay.freshness import ReplayGuard
from ncb_relay.messages import (
    Body,
    CarriedDisclosure,
    DeliveryReceipt,
    Forward,
    OpaqueBody,
    Urgency,
    decode_body,
    encode_body,
)
from ncb_relay.messages.message import check_context

NOTES: JSON = {
    "Valid": "A valid body; decoding gives the content shown, and encoding it gives `encoding`.",
    "OmittedOptional": "Optional fields are absent: decoders accept it (MSG-1); the reference "
    "encoder writes every field, so `encoding` differs from `body`.",
    "Opaque": "A (schema, version) the receiver does not know: delivered opaque (MSG-5).",
    "Frame": "The map of schema, version and content is wrong (MSG-1).",
    "NotCanonical": "Not the canonical msgpack encoding (MSG-1, CODEC-6).",
    "UnknownEnumValue": "A value outside a vocabulary (MSG-2).",
    "ExtraField": "A field the body type does not have (MSG-2).",
    "MissingField": "A required field is absent (MSG-2).",
    "WrongType": "A value of the wrong wire type (MSG-2).",
    "OutOfRange": "An integer outside its range (MSG-2).",
    "BadFormat": "A text that does not match its pattern (MSG-2).",
    "OversizedText": "A text longer than its bound (MSG-3).",
    "OversizedList": "A list longer than its bound (MSG-3).",
    "CrossField": "A rule across fields is broken (MSG-10, HAND-2).",
    "DeadlineInThePast": "A forward-looking time not later than the envelope's created (MSG-7).",
    "ReplyWithoutReplyTo": "A reply whose envelope has no reply_to (MSG-6).",
    "NoticeFromBureau": "A notice not sent by the coordinator (MSG-9).",
    "ReceiptNotBound": "A delivery receipt whose envelope's reply_to is not the message hash it "
    "names (MSG-12).",
    "ReceiptAfterItsEnvelope": "A delivery receipt that says it was received after it was sent "
    "(MSG-12).",
    "WrongRequest": "A response bound to another request (CONV-2, BIND-2).",
    "NotARecipient": "A reply from a bureau the request did not reach (CONV-2).",
    "NotAddressedToRequester": "A reply that does not list the requester (CONV-2).",
    "OutOfOrder": "Replies arriving in another order than they were sent (CONV-1).",
    "InvalidTransition": "A reply the state table does not allow (CONV-1).",
    "Withdrawal": "The requester's withdrawal (CONV-3).",
    "ErrorReport": "An error report about the request: bound like a reply, it never moves the "
    "state (CONV-7).",
    "NotAConversationBody": "A body that is neither a reply nor an error report, sent with "
    "reply_to naming the request: refused, never held (CONV-8).",
    "Provenance": "A forward whose original author and forwarder both verify (FWD-1).",
    "H2WithoutPermission": "An H2 original forwarded without the originator's permission (FWD-4).",
    "PermissionNotCovering": "A permission that does not name a new recipient (FWD-4).",
    "PermissionNotFromOriginator": "A permission signed by someone else (FWD-4).",
    "PermissionForAnotherMessage": "A permission for another message hash (FWD-4).",
    "PermissionExpired": "A permission whose valid_until is before the forward (FWD-4).",
    "ForwarderNotRecipient": "The forwarder was not a recipient of the original (FWD-2).",
    "ForwardOfForward": "A forward carrying a forward (FWD-3).",
    "WrongContentKey": "The carried content key does not open the original (FWD-1, DISC-1).",
}


# ---------------------------------------------------------------------------------
# BodyDecode
# ---------------------------------------------------------------------------------

DELETE = object()


def edited(body: Body | bytes, path: tuple[str | int, ...], value: object) -> bytes:
    """The encoding of ``body`` with the value at ``path`` replaced (or deleted)."""
    tree: Any = codec.decode(body if isinstance(body, bytes) else encode_body(body))
    target = tree
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return codec.encode(tree)


def valid_decode(body: bytes, comment: str, flags: list[str], reqs: list[str]) -> JSON:
    decoded = decode_body(body)
    outer: Any = codec.decode(body)
    case: JSON = {
        "comment": comment,
        "flags": flags,
        "requirements": reqs,
        "body": body.hex(),
        "schema": outer["schema"],
        "version": outer["version"],
        "result": "valid",
        "opaque": isinstance(decoded, OpaqueBody),
    }
    if isinstance(decoded, OpaqueBody):
        if decoded.data != body:
            raise AssertionError(f"{comment}: the opaque body lost bytes")
    else:
        case["value"] = typed(outer["content"])
        case["encoding"] = encode_body(decoded).hex()
    return case


Path = tuple[str | int, ...]


def invalid_decode(
    body: bytes, comment: str, *, flags: list[str], reqs: list[str], field: str | None, reason: str
) -> JSON:
    got = refusal(lambda: decode_body(body))
    if got != ("invalid-body", field, reason):
        raise AssertionError(f"{comment}: the library reported {got}")
    return {
        "comment": comment,
        "flags": flags,
        "requirements": reqs,
        "body": body.hex(),
        "result": "invalid",
        "error": "invalid-body",
        "field": field,
        "reason": reason,
    }


def path_text(path: Path) -> str:
    """The field path of MSG-4 for ``path``: ``content.offences[0].category``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def forward_body() -> Forward:
    inner = sealed(request(handling=H0), SEOUL, [GS], label="decode forward original")
    guard = ReplayGuard()
    return Forward(
        handling=H0,
        original=CarriedDisclosure.of(opened(inner.data, GS, NOW, guard).disclose()),
        note="Forwarded at the request of NCB Seoul.",
    )


# "flags | requirements | reason": (comment, dotted path in the request, new value[, field])
INVALID_RUNS: dict[str, list[tuple[Any, ...]]] = {
    "UnknownEnumValue | MSG-2,HAND-1 | not-allowed": [
        ("handling code H4", "content.handling.code", "H4"),
    ],
    "UnknownEnumValue | MSG-2 | not-allowed": [
        ("an offence category outside the vocabulary", "content.offences.0.category", "piracy"),
        ("an urgency level outside the vocabulary", "content.urgency.level", "immediate"),
    ],
    "ExtraField | MSG-2 | unexpected": [
        ("a field the request does not have", "content.priority", "high"),
        ("an extra field in the handling record", "content.handling.colour", "red"),
    ],
    "MissingField | MSG-2 | missing": [
        ("the summary is missing", "content.summary", DELETE),
        ("the handling information is missing", "content.handling", DELETE),
    ],
    "OversizedText | MSG-3 | too-long": [
        ("a summary of 4001 characters (at most 4000)", "content.summary", "x" * 4001),
        ("a case reference of 201 characters (at most 200)", "content.case_reference", "é" * 201),
    ],
    "OversizedList | MSG-3 | too-long": [
        ("nine offences (at most 8)", "content.offences", [{"category": "fraud"}] * 9),
    ],
    "OversizedText | MSG-3 | too-short": [
        ("an empty summary", "content.summary", ""),
    ],
    "WrongType | MSG-2 | wrong-type": [
        ("information accuracy as text", "content.handling.information_accuracy", "2"),
        ("information accuracy as a boolean", "content.handling.information_accuracy", True),
        ("a case reference as bin, not str", "content.case_reference", b"KR-MCST-2027"),
        ("languages as a str, not an array", "content.languages", "ko"),
    ],
    "OutOfRange | MSG-2 | out-of-range": [
        ("information accuracy 5 (1 to 4)", "content.handling.information_accuracy", 5),
    ],
    "BadFormat | MSG-2 | bad-format": [
        ("a country code in lower case", "content.originating_authority.country", "kr"),
        ("a line feed in a label", "content.case_reference", "KR-MCST\n2027"),
    ],
    "CrossField | MSG-10 | invalid": [
        (
            "an IP address with a leading zero",
            "content.subjects.ip_addresses.0.address",
            "192.0.2.044",
        ),
        (
            'offence "other" not named',
            "content.offences.0.category",
            "other",
            "content.offences[0].other",
        ),
        (
            "explicit urgency, no deadline",
            "content.urgency.level",
            "explicit",
            "content.urgency.deadline",
        ),
        ("a requested action listed twice", "content.requested_actions", ["identify", "identify"]),
    ],
    "Frame,ExtraField | MSG-1 | unexpected": [
        ("a fourth key beside content, schema and version", "signature", b"\x00"),
    ],
    "Frame,MissingField | MSG-1 | missing": [("the content is missing", "content", DELETE)],
    "Frame | MSG-1 | bad-format": [("a schema id in upper case", "schema", "NCBR.Assistance")],
    "Frame | MSG-1 | out-of-range": [("schema version 0", "version", 0)],
    "Frame | MSG-1 | wrong-type": [
        ("schema version as text", "version", "1"),
        ("content as an array", "content", [1]),
    ],
}


def decode_cases() -> list[JSON]:
    cases = [
        valid_decode(encode_body(b), f"a valid {b.schema_id} body", ["Valid"], ["MSG-1", "MSG-2"])
        for b in [*every_body(), forward_body()]
    ]
    minimal = edited(status(), ("content", "expected_answer_by"), DELETE)
    cases.append(
        valid_decode(
            minimal, "a status update without its optional field", ["OmittedOptional"], ["MSG-1"]
        )
    )
    for schema, version, comment in [
        ("kr.knpa.cyber-case", 1, "an agency's extension the receiver does not know"),
        ("ncbr.assistance-request", 2, "a known schema id in a version the receiver does not know"),
    ]:
        body = codec.encode(
            {"content": {"anything": [1, b"\x00"]}, "schema": schema, "version": version}
        )
        cases.append(valid_decode(body, comment, ["Opaque"], ["MSG-5"]))

    r = request()
    for group, items in INVALID_RUNS.items():
        flags, reqs, reasons = (part.strip().split(",") for part in group.split("|"))
        for comment, where, value, *field in items:
            path = tuple(int(p) if p.isdigit() else p for p in where.split("."))
            cases.append(
                invalid_decode(
                    edited(r, path, value),
                    comment,
                    flags=flags,
                    reqs=reqs,
                    field=field[0] if field else path_text(path),
                    reason=reasons[0],
                )
            )
    no_condition = edited(
        edited(r, ("content", "handling", "conditions"), []), ("content", "handling", "code"), "H3"
    )
    declined = edited(acknowledgement(), ("content", "decision"), "declined")
    not_a_map = codec.encode([encode_body(r)])
    not_canonical = b"\x83" + encode_body(r)[1:][::-1]
    for body, comment, flags, reqs, where, reason in [
        (
            no_condition,
            "handling code H3 without a condition",
            ["CrossField"],
            ["HAND-2"],
            "content.handling.conditions",
            "invalid",
        ),
        (
            declined,
            "a declined acknowledgement with no reason",
            ["CrossField"],
            ["MSG-10"],
            "content.reason",
            "invalid",
        ),
        (not_a_map, "an array instead of the body map", ["Frame"], ["MSG-1"], None, "wrong-type"),
        (
            not_canonical,
            "bytes that are not canonical msgpack",
            ["NotCanonical"],
            ["MSG-1"],
            None,
            "malformed",
        ),
    ]:
        cases.append(
            invalid_decode(body, comment, flags=flags, reqs=reqs, field=where, reason=reason)
        )
    return cases


# ---------------------------------------------------------------------------------
# BodyContext
# ---------------------------------------------------------------------------------


def context_case(
    body: Body,
    sender: Principal,
    comment: str,
    flags: list[str],
    reqs: list[str],
    *,
    reply_to: bytes | None = None,
    error: tuple[str, str | None, str | None] | None = None,
) -> JSON:
    data = encode_body(body)
    got = refusal(
        lambda: check_context(
            decode_body(data),
            sender=sender.id,
            created=NOW,
            reply_to=reply_to,
            coordinator=COORDINATOR,
        )
    )
    if got != error:
        raise AssertionError(f"{comment}: the library reported {got}, not {error}")
    case: JSON = {
        "comment": comment,
        "flags": flags,
        "requirements": reqs,
        "body": data.hex(),
        "sender": sender.id,
        "created": NOW,
        "replyTo": reply_to.hex() if reply_to else None,
        "result": "invalid" if error else "valid",
    }
    if error:
        case.update(error=error[0], field=error[1], reason=error[2])
    return case


def context_cases() -> list[JSON]:
    hash_ = derive("a request", PERSON_TV_MESSAGES)
    return [
        context_case(
            request(urgency=Urgency.until(NOW + 1)),
            SEOUL,
            "an explicit deadline one second after created",
            ["Valid"],
            ["MSG-7", "MSG-8"],
        ),
        context_case(
            request(urgency=Urgency.until(NOW)),
            SEOUL,
            "an explicit deadline equal to created",
            ["DeadlineInThePast"],
            ["MSG-7"],
            error=("invalid-body", "content.urgency.deadline", "in-the-past"),
        ),
        context_case(
            request(urgency=Urgency.until(NOW - 86_400)),
            SEOUL,
            "an explicit deadline a day before created",
            ["DeadlineInThePast"],
            ["MSG-7"],
            error=("invalid-body", "content.urgency.deadline", "in-the-past"),
        ),
        context_case(
            acknowledgement(expected_answer_by=NOW - 1),
            RABAT,
            "an acknowledgement expecting an answer before it was sent",
            ["DeadlineInThePast"],
            ["MSG-7"],
            reply_to=hash_,
            error=("invalid-body", "content.expected_answer_by", "in-the-past"),
        ),
        context_case(
            status(),
            RABAT,
            "a status update answering a request",
            ["Valid"],
            ["MSG-6"],
            reply_to=hash_,
        ),
        context_case(
            status(),
            RABAT,
            "a status update with no reply_to",
            ["ReplyWithoutReplyTo"],
            ["MSG-6"],
            error=("binding-mismatch", None, None),
        ),
        context_case(
            withdrawal(),
            SEOUL,
            "a withdrawal with no reply_to",
            ["ReplyWithoutReplyTo"],
            ["MSG-6"],
            error=("binding-mismatch", None, None),
        ),
        context_case(notice(), GS, "a notice from the coordinator", ["Valid"], ["MSG-9"]),
        *receipt_context_cases(),
        context_case(
            notice(),
            SEOUL,
            "a notice from a bureau",
            ["NoticeFromBureau"],
            ["MSG-9"],
            error=("invalid-body", "schema", "not-permitted"),
        ),
    ]


def receipt_context_cases() -> list[JSON]:
    """A delivery receipt against its envelope: bound by reply_to, not after it (MSG-12)."""
    receipted = derive("a receipted message", PERSON_TV_MESSAGES)
    other = derive("another message", PERSON_TV_MESSAGES)
    at_created = DeliveryReceipt.of(delivery_receipt().message_id, receipted, NOW)
    return [
        context_case(
            delivery_receipt(receipted),
            RABAT,
            "a delivery receipt naming the message its reply_to names",
            ["Valid"],
            ["MSG-12"],
            reply_to=receipted,
        ),
        context_case(
            at_created,
            RABAT,
            "a delivery receipt sent in the second the message was recorded",
            ["Valid"],
            ["MSG-12"],
            reply_to=receipted,
        ),
        context_case(
            delivery_receipt(receipted),
            RABAT,
            "a delivery receipt with no reply_to",
            ["ReceiptNotBound"],
            ["MSG-12"],
            error=("binding-mismatch", None, None),
        ),
        context_case(
            delivery_receipt(receipted),
            RABAT,
            "a delivery receipt whose reply_to names another message",
            ["ReceiptNotBound"],
            ["MSG-12"],
            reply_to=other,
            error=("binding-mismatch", None, None),
        ),
        context_case(
            DeliveryReceipt.of(at_created.message_id, receipted, NOW + 1),
            RABAT,
            "a delivery receipt received a second after it was sent",
            ["ReceiptAfterItsEnvelope"],
            ["MSG-12"],
            reply_to=receipted,
            error=("invalid-body", "content.received_at", "invalid"),
        ),
    ]


def build() -> dict[str, Any]:
    reset_sequences()
    doc = document(
        algorithm="NCBR/1 message bodies, schema version 1",
        header=[
            "Message bodies (BodyDecode), bodies against their envelope (BodyContext), reply "
            "binding and the request state table (ReplyBinding), and forwards (Forward). "
            "See spec/messages.md and spec/vectors.md.",
            "Principals' private keys are test keys, published so that every envelope can be "
            "opened. They are the same as in envelope.json.",
        ],
        notes=NOTES,
        fields={
            "now": NOW,
            "coordinator": COORDINATOR,
            "principals": principals_json(list(CAST_USED)),
        },
        groups=[
            ("BodyDecode", decode_cases()),
            ("BodyContext", context_cases()),
            ("ReplyBinding", binding_cases()),
            ("Forward", forward_cases()),
        ],
    )
    return {"messages.json": doc}
