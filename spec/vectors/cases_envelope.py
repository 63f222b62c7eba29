"""envelope.json and disclosure.json: sealing, opening, reply binding and disclosure.

The honest envelopes come first (``seals``); the hostile ones are built from
them (``attacks_binding``, ``attacks_format``), then the reply-binding cases
here and the disclosure cases (``disclosures``).  Every case is checked against
the library by the ``recorder`` before anything is written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from attacks_binding import malleated_signatures, record_binding_attacks
from attacks_format import record_format_attacks
from construction import Draft, honest
from disclosures import disclosure_document, record_disclosures
from principals import CAST, MAX_SKEW, NOW, B, C, S, principals_json
from recorder import DEFAULT_ENVELOPE_LIMITS, Recorder
from seals import Base, record_seals
from vectorfile import JSON, document

from ncb_relay.header import SUITE_NAME

NOTES: JSON = {
    "Honest": "Sealed by the reference library's seal() with the recorded randomness.",
    "MaliciousSender": "Built and validly signed by the sender itself (a buggy or hostile "
    "sender): the signatures verify, and the receiver must still refuse.",
    "SignatureStripping": "The outer signature removed, zeroed, or taken from another message.",
    "SenderSubstitution": "The sender field or sender key id changed, or the routing header "
    "re-signed by another principal.",
    "SurreptitiousForwarding": "A recipient re-seals the sender's inner signature and body to a "
    "third party; the inner signature covers the original header hash, so it fails.",
    "RecipientStripping": "A recipient entry removed from the header.",
    "RecipientExtension": "A recipient entry added to the header.",
    "KeyCommitment": "A recipient's wrapped key yields a content key that does not match the "
    "message id (the key commitment); that recipient must not decrypt anything.",
    "Malleability": "A valid signature made non-canonical (S + L): the same signature to a "
    "verifier that reduces S, invalid under KEY-6.",
    "CrossContextSignature": "A signature made for another context (inner vs outer label, or "
    "no label) used in the wrong place.",
    "Replay": "A message seen before, or a sequence number reused.",
    "Freshness": "Created too far in the future or expired, with respect to now and max skew.",
    "Version": "A protocol version other than 1.",
    "Suite": "A suite other than 1.",
    "NonCanonical": "Not the canonical encoding (CODEC), even though the content is sensible.",
    "SmallOrderKey": "A small-order X25519 ephemeral key.",
    "UnknownKey": "A key or principal that the directory does not know.",
    "KeyBinding": "A key id that belongs to another principal or to another key type.",
    "Truncation": "A part of the envelope cut short.",
    "BitFlip": "A single bit flipped.",
    "PayloadSwap": "The payload of another message.",
    "ValidityWindow": "The expires - created window is empty or longer than 30 days.",
    "RecipientOrder": "Recipient entries unsorted or duplicated.",
    "Limit": "A size or count limit (the case's limits say which).",
    "NotARecipient": "Opened by a principal the envelope is not addressed to.",
    "Layout": "The envelope or header array has the wrong shape or field types.",
    "Boundary": "At the edge of what is allowed (and allowed).",
    "ReplyBinding": "A response checked against the request it claims to answer (BIND-2).",
}


def record_replies(rec: Recorder, b: Base) -> None:
    """BIND-2: responses checked against the request they claim to answer."""
    m1, d_reply = b.m1, b.d_reply
    binding = ["ReplyBinding", "Honest"]
    for comment, flags, reqs, request, response, opened_by, error in (
        (
            "MA.ncb-rabat's reply to M1, checked against M1 by its sender",
            binding,
            ["BIND-2", "ENV-9"],
            m1,
            b.m_reply,
            S,
            None,
        ),
        (
            "MA.ncb-rabat's reply to M1, checked against M2",
            ["ReplyBinding"],
            ["BIND-2"],
            b.m2,
            b.m_reply,
            S,
            "binding-mismatch",
        ),
        (
            "reply to M1 from FR.ncb-paris, which was not a recipient of M1",
            binding,
            ["BIND-2"],
            m1,
            honest(
                Draft(
                    "reply-from-c",
                    C,
                    (S,),
                    b"I was not asked, but here is an answer.",
                    seq=1,
                    reply_to=d_reply.reply_to,
                )
            ),
            S,
            "binding-mismatch",
        ),
        (
            "MA.ncb-rabat's reply to M1 addressed to XP.interpol-gs, not to M1's sender; "
            "checked by XP.interpol-gs against M1",
            binding,
            ["BIND-2"],
            m1,
            honest(replace(d_reply, label="reply-to-b", recipients=(B,))),
            B,
            "binding-mismatch",
        ),
        (
            "a message from MA.ncb-rabat without reply_to, checked against M1",
            binding,
            ["BIND-2"],
            m1,
            honest(replace(d_reply, label="reply-nil", reply_to=None)),
            S,
            "binding-mismatch",
        ),
    ):
        rec.reply_case(comment, flags, reqs, request, response, opened_by=opened_by, error=error)


def build() -> dict[str, Any]:
    rec = Recorder()
    base = record_seals(rec)
    record_binding_attacks(rec, base)
    record_format_attacks(rec, base)
    malleated_signatures(rec, base)
    record_replies(rec, base)
    record_disclosures(rec, base)
    envelope = document(
        algorithm=SUITE_NAME,
        header=[
            "NCBR/1 envelopes: sealing with recorded randomness (EnvelopeSeal), opening honest "
            "and hostile envelopes (EnvelopeOpen), checking reply binding (ReplyBinding).",
            "Principals' private keys are test keys, published so that every value can be "
            "recomputed. See spec/vectors.md.",
        ],
        notes=NOTES,
        fields={
            "defaults": {
                "now": NOW,
                "maxSkew": MAX_SKEW,
                "maxEnvelopeBytes": DEFAULT_ENVELOPE_LIMITS.max_envelope_bytes,
                "maxRecipients": DEFAULT_ENVELOPE_LIMITS.max_recipients,
            },
            "principals": principals_json(list(CAST.values())),
        },
        groups=[
            ("EnvelopeSeal", rec.seal_tests),
            ("EnvelopeOpen", rec.open_tests),
            ("ReplyBinding", rec.reply_tests),
        ],
    )
    return {"envelope.json": envelope, "disclosure.json": disclosure_document(rec)}
