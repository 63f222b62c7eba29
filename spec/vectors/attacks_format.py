"""EnvelopeOpen cases, part 2: envelopes that are malformed, out of range or damaged.

Versions and suites, encodings and layouts, small-order keys, damaged payloads
and headers, header values out of range, unknown or misbound key ids, and
lowered limits.  Many are validly signed by the sender itself: a
``SignedBySender`` row is the header fields the sender signs, and the case
gets the ``MaliciousSender`` flag.  Each function records one section, in the
order of the file.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from construction import (
    F_ID,
    F_SEQ,
    Draft,
    assemble,
    fields_of,
    flip,
    honest,
    recipient_entries,
    resign,
    rewritten,
    transit,
    with_fields,
)
from principals import NOW, OUTSIDER, PERSON_TV_OTHER, A, B, S, derive
from recorder import Recorder
from seals import BODY_1, Base

from ncb_relay import codec
from ncb_relay.codec import Value
from ncb_relay.header import MAX_TTL

MALFORMED, BAD_SIGNATURE = "malformed", "bad-signature"
DECRYPTION_FAILED = "decryption-failed"


class SignedBySender(NamedTuple):
    """A header the sender signs (with M1's content key and body), and what opening gives."""

    comment: str
    flags: list[str]
    reqs: list[str]
    fields: list[Value]
    error: str


def signed_by_sender(rec: Recorder, b: Base, rows: list[SignedBySender]) -> None:
    for row in rows:
        envelope = assemble(S.signing, row.fields, b.k1, BODY_1).envelope
        rec.open_case(row.comment, [*row.flags, "MaliciousSender"], row.reqs, envelope, row.error)


def version_and_suite(rec: Recorder, b: Base) -> None:
    m1 = b.m1
    version, version_layout = ["Version"], ["Version", "Layout"]
    unsupported = "unsupported-version"
    signed_by_sender(
        rec,
        b,
        [
            SignedBySender(
                "version 2, otherwise M1, validly signed",
                version,
                ["ENV-3", "OPEN-2"],
                with_fields(m1, version=2),
                unsupported,
            ),
            SignedBySender(
                "version 2 header of two fields [2, 1], validly signed",
                version,
                ["ENV-3"],
                [2, 1],
                unsupported,
            ),
            SignedBySender(
                "version 0, validly signed",
                version,
                ["ENV-3"],
                with_fields(m1, version=0),
                unsupported,
            ),
            SignedBySender(
                "version 2^64-1 and suite 7, validly signed: the version is reported",
                version,
                ["ENV-3"],
                with_fields(m1, version=2**64 - 1, suite=7),
                unsupported,
            ),
            SignedBySender(
                "suite 2, validly signed",
                ["Suite"],
                ["ENV-4", "OPEN-2"],
                with_fields(m1, suite=2),
                "unsupported-suite",
            ),
            SignedBySender(
                "version as str '1', validly signed",
                version_layout,
                ["ENV-2", "CODEC-4"],
                with_fields(m1, version="1"),
                MALFORMED,
            ),
            SignedBySender(
                "version true (c3): a boolean is never a uint, validly signed",
                version_layout,
                ["ENV-2", "ENV-3", "OPEN-2"],
                with_fields(m1, version=True),
                MALFORMED,
            ),
            SignedBySender(
                "header of one field [1], validly signed",
                ["Layout"],
                ["ENV-2", "OPEN-2"],
                [1],
                MALFORMED,
            ),
        ],
    )


def encoding_and_layout(rec: Recorder, b: Base) -> None:
    m1, m_one, d_one = b.m1, b.m_one, b.d_one
    h, p, o = m_one.header, m_one.payload, m_one.outer
    enc = codec.encode
    assert len(h) < 256
    longer = rec.expecting(["NonCanonical"], ["CODEC-2", "CODEC-6", "OPEN-2"], MALFORMED)
    longer(
        "header bin (181 bytes) in bin 16 format",
        b"\x93\xc5" + len(h).to_bytes(2, "big") + h + enc(p) + enc(o),
    )
    longer(
        "payload bin in bin 32 format",
        b"\x93" + enc(h) + b"\xc6" + len(p).to_bytes(4, "big") + p + enc(o),
    )
    parts = [enc(v) for v in fields_of(m_one)]
    assert parts[F_SEQ] == b"\x01"
    parts[F_SEQ] = b"\xcd\x00\x01"
    rec.open_case(
        "header bytes with seq 1 as uint 16; both signatures and the AEAD over those exact bytes",
        ["NonCanonical", "MaliciousSender"],
        ["CODEC-2", "CODEC-6", "CODEC-8", "OPEN-2"],
        assemble(S.signing, b"\x9b" + b"".join(parts), d_one.content_key, d_one.body).envelope,
        MALFORMED,
    )
    for comment, flags, reqs, envelope, error in (
        (
            "one trailing byte after the envelope",
            ["NonCanonical", "Layout"],
            ["CODEC-5", "OPEN-2"],
            m_one.envelope + b"\xc0",
            MALFORMED,
        ),
        (
            "envelope cut by one byte",
            ["Truncation"],
            ["CODEC-5", "OPEN-2"],
            m_one.envelope[:-1],
            MALFORMED,
        ),
        (
            "four-element envelope (extra nil): above the outer array limit of 3 (LIM-3), so "
            "limit-exceeded while decoding, before the shape is checked",
            ["Layout", "Limit"],
            ["ENV-1", "LIM-3", "OPEN-2"],
            enc([h, p, o, None]),
            "limit-exceeded",
        ),
        (
            "envelope as a map of header, payload, signature",
            ["Layout"],
            ["ENV-1", "OPEN-2"],
            enc({"header": h, "payload": p, "signature": o}),
            MALFORMED,
        ),
        (
            "header carried as str (its hex) instead of bin",
            ["Layout"],
            ["ENV-1", "CODEC-4", "OPEN-2"],
            enc([h.hex(), p, o]),
            MALFORMED,
        ),
        (
            "outer nesting 3 deep: signature wrapped as [[signature]]",
            ["Layout", "Limit"],
            ["LIM-3", "OPEN-2"],
            enc([h, p, [[o]]]),
            "limit-exceeded",
        ),
    ):
        rec.open_case(comment, flags, reqs, envelope, error)
    layout, env2 = ["Layout"], ["ENV-2", "OPEN-2"]
    signed_by_sender(
        rec,
        b,
        [
            SignedBySender(
                "header of 12 fields (extra nil), validly signed",
                layout,
                env2,
                [*fields_of(m1), None],
                MALFORMED,
            ),
            SignedBySender(
                "reply_to of 31 bytes, validly signed",
                layout,
                env2,
                with_fields(m1, reply_to=bytes(31)),
                MALFORMED,
            ),
            SignedBySender(
                "seq 2^63, validly signed", layout, env2, with_fields(m1, seq=2**63), MALFORMED
            ),
            SignedBySender(
                "created 2^40 + 1, validly signed",
                layout,
                env2,
                with_fields(m1, created=2**40 + 1, expires=2**40 + 2),
                MALFORMED,
            ),
            SignedBySender(
                "sender 'kr.ncb-seoul' (lower-case country), validly signed",
                layout,
                ["ID-1", "OPEN-2"],
                with_fields(m1, sender="kr.ncb-seoul"),
                MALFORMED,
            ),
        ],
    )


SMALL_ORDER_POINTS = (
    ("all-zero ephemeral key", "00" * 32),
    ("ephemeral key 1 with bit 255 set", "01" + "00" * 30 + "80"),
    (
        "ephemeral key of order 8 (e0eb7a7c...)",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ),
    ("ephemeral key p (2^255 - 19, non-canonical zero)", "ed" + "ff" * 30 + "7f"),
)


def small_order_keys(rec: Recorder, b: Base) -> None:
    rows = [
        SignedBySender(
            comment + ", validly signed",
            ["SmallOrderKey"],
            ["KEY-4", "OPEN-2"],
            with_fields(b.m1, ephemeral=bytes.fromhex(point)),
            "invalid-peer-key",
        )
        for comment, point in SMALL_ORDER_POINTS
    ]
    signed_by_sender(rec, b, rows)


def payload(rec: Recorder, b: Base) -> None:
    m1 = b.m1

    def resealed(payload: bytes) -> bytes:
        """``payload`` under M1's header, the outer signature made again by the sender."""
        return resign(replace(m1, payload=payload), S.signing).envelope

    cut, m2_payload = m1.payload[:-1], b.m2.payload
    by_sender = "MaliciousSender"
    for comment, flags, reqs, envelope, error in (
        (
            "payload cut by one byte",
            ["Truncation"],
            ["OPEN-6"],
            transit(m1, payload=cut),
            BAD_SIGNATURE,
        ),
        (
            "payload cut by one byte, re-signed by the sender",
            ["Truncation", by_sender],
            ["OPEN-9", "OPEN-11"],
            resealed(cut),
            DECRYPTION_FAILED,
        ),
        (
            "payload of 79 bytes, validly signed",
            ["Truncation", by_sender],
            ["ENV-7", "OPEN-2"],
            resealed(m1.payload[:79]),
            MALFORMED,
        ),
        (
            "payload: one bit flipped",
            ["BitFlip"],
            ["OPEN-6"],
            transit(m1, payload=flip(m1.payload, 40)),
            BAD_SIGNATURE,
        ),
        (
            "payload: one bit flipped in the tag, re-signed by the sender",
            ["BitFlip", by_sender],
            ["OPEN-9", "OPEN-11"],
            resealed(flip(m1.payload, len(m1.payload) - 1, 7)),
            DECRYPTION_FAILED,
        ),
        (
            "payload of M2 with M1's header and signature",
            ["PayloadSwap"],
            ["OPEN-6", "BIND-1"],
            transit(m1, payload=m2_payload),
            BAD_SIGNATURE,
        ),
        (
            "payload of M2 with M1's header, re-signed by the sender",
            ["PayloadSwap", by_sender],
            ["OPEN-8", "OPEN-11"],
            resealed(m2_payload),
            DECRYPTION_FAILED,
        ),
    ):
        reason = "aead" if error == DECRYPTION_FAILED else None
        rec.open_case(comment, flags, reqs, envelope, error, reason=reason)


def header_bit_flips(rec: Recorder, b: Base) -> None:
    m1 = b.m1
    mid1 = fields_of(m1)[F_ID]
    assert isinstance(mid1, bytes)
    h_flip = rewritten(m1, message_id=flip(mid1, 0))
    assert sum(bin(x ^ y).count("1") for x, y in zip(h_flip, m1.header, strict=True)) == 1
    a_entry, b_entry = recipient_entries(m1)
    a_wrapped = a_entry[2]
    assert isinstance(a_wrapped, bytes)
    flipped: list[Value] = [[A.id, A.encryption_key_id, flip(a_wrapped, 5)], b_entry]
    h_flip_w = rewritten(m1, recipients=flipped)
    in_transit = rec.expecting(["BitFlip"], ["BIND-1", "OPEN-6"], BAD_SIGNATURE)
    in_transit("header: one bit flipped in the message id", transit(m1, header=h_flip))
    in_transit(
        "header: one bit flipped in MA.ncb-rabat's wrapped key", transit(m1, header=h_flip_w)
    )
    rec.open_case(
        "one bit flipped in MA.ncb-rabat's wrapped key, all re-signed by the sender",
        ["BitFlip", "KeyCommitment", "MaliciousSender"],
        ["SEAL-3", "OPEN-8", "OPEN-11"],
        assemble(S.signing, h_flip_w, b.k1, BODY_1).envelope,
        "decryption-failed",
        reason="key-commitment",
    )
    in_transit("header: seq 10 changed to 11 (one bit)", transit(m1, header=rewritten(m1, seq=11)))


def header_semantics(rec: Recorder, b: Base) -> None:
    m1 = b.m1
    entries: list[Value] = list(recipient_entries(m1))
    a_entry = recipient_entries(m1)[0]
    a_wrapped = a_entry[2]
    window, order, env6 = ["ValidityWindow"], ["RecipientOrder"], ["ENV-6", "OPEN-2"]
    unknown_kid: list[Value] = [A.id, derive("unknown key id", PERSON_TV_OTHER)[:16], a_wrapped]
    signed_by_sender(
        rec,
        b,
        [
            SignedBySender(
                "validity window of 30 days + 1 s, validly signed",
                window,
                ["ENV-5", "OPEN-2"],
                with_fields(m1, expires=NOW + MAX_TTL + 1),
                "limit-exceeded",
            ),
            SignedBySender(
                "expires == created, validly signed",
                window,
                ["ENV-5", "OPEN-2"],
                with_fields(m1, expires=NOW),
                MALFORMED,
            ),
            SignedBySender(
                "recipients in descending order, validly signed",
                order,
                env6,
                with_fields(m1, recipients=entries[::-1]),
                MALFORMED,
            ),
            SignedBySender(
                "MA.ncb-rabat listed twice, validly signed",
                order,
                env6,
                with_fields(m1, recipients=[a_entry, a_entry]),
                MALFORMED,
            ),
            SignedBySender(
                "no recipients, validly signed",
                ["Layout"],
                env6,
                with_fields(m1, recipients=[]),
                MALFORMED,
            ),
            SignedBySender(
                "MA.ncb-rabat's entry names an unknown key id, validly signed",
                ["UnknownKey"],
                ["OPEN-5"],
                with_fields(m1, recipients=[unknown_kid]),
                "unknown-key",
            ),
            SignedBySender(
                "MA.ncb-rabat's entry names XP.interpol-gs's encryption key id, validly signed",
                ["KeyBinding"],
                ["OPEN-5"],
                with_fields(m1, recipients=[[A.id, B.encryption_key_id, a_wrapped]]),
                "binding-mismatch",
            ),
            SignedBySender(
                "MA.ncb-rabat's entry names MA.ncb-rabat's signing key id, validly signed",
                ["KeyBinding"],
                ["KEY-1", "KEY-2", "OPEN-5"],
                with_fields(m1, recipients=[[A.id, A.signing_key_id, a_wrapped]]),
                "binding-mismatch",
            ),
        ],
    )
    rec.open_case(
        "a recipient that is not in the directory",
        ["UnknownKey", "Honest"],
        ["OPEN-5"],
        honest(
            Draft("to-outsider", S, (A, OUTSIDER), b"Also to someone unknown.", seq=40)
        ).envelope,
        "unknown-key",
    )


def limits(rec: Recorder, b: Base) -> None:
    ten, data = b.ten, b.m_ten.envelope
    assert len(data) > 1024
    exceeded = "limit-exceeded"
    for comment, flags, reqs, lowered, error, opener in (
        (
            f"envelope of {len(data)} bytes, maxEnvelopeBytes lowered to 1024",
            ["Limit"],
            ["OPEN-1", "LIM-1"],
            {"maxEnvelopeBytes": 1024},
            exceeded,
            ten[0],
        ),
        (
            "ten recipients, maxRecipients lowered to 4",
            ["Limit"],
            ["LIM-2", "LIM-3", "OPEN-2"],
            {"maxRecipients": 4},
            exceeded,
            ten[0],
        ),
        (
            "ten recipients, maxRecipients lowered to 10: accepted",
            ["Limit", "Boundary"],
            ["LIM-2", "LIM-3"],
            {"maxRecipients": 10},
            None,
            ten[-1],
        ),
    ):
        body = None if error else b.d_ten.body
        rec.open_case(
            comment, flags, reqs, data, error, recipient=opener, limits=lowered, body=body
        )


def record_format_attacks(rec: Recorder, b: Base) -> None:
    version_and_suite(rec, b)
    encoding_and_layout(rec, b)
    small_order_keys(rec, b)
    payload(rec, b)
    header_bit_flips(rec, b)
    header_semantics(rec, b)
    limits(rec, b)
