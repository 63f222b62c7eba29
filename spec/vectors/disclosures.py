"""disclosure.json: an envelope with its content key, verified by a third party (DISC-1, DISC-2).

Valid cases: every EnvelopeSeal envelope of envelope.json with its K, and one
that expired years before the vectors' now (a disclosure has no freshness).
Invalid cases: the K of another message or of the wrong length, bit flips, bad
outer signatures, and envelopes whose sender or inner signature do not hold up.
"""

from __future__ import annotations

from dataclasses import replace

from attacks_binding import forwarded, two_keys
from construction import F_ID, Draft, fields_of, flip, honest, resign, rewritten, transit
from principals import CAST, NOW, OUTSIDER, A, B, S, principals_json
from recorder import DEFAULT_ENVELOPE_LIMITS, Recorder, library_open
from seals import Base
from vectorfile import JSON, document

from ncb_relay.envelope import Disclosure
from ncb_relay.freshness import ReplayGuard
from ncb_relay.header import SUITE_NAME

NOTES: JSON = {
    "Honest": "An envelope sealed by the reference library's seal() with recorded randomness, "
    "and its own content key K.",
    "Expired": "Expired long before the vectors' now; a disclosure is not checked for freshness "
    "(DISC-2).",
    "WrongKey": "A 32-byte key that is not the K the message id commits to.",
    "KeyLength": "A content key that is not 32 bytes.",
    "BitFlip": "A single bit of the envelope flipped.",
    "SignatureStripping": "The outer signature zeroed, taken from another message, or made by "
    "another principal.",
    "MaliciousSender": "Built and validly signed by the sender itself (a buggy or hostile sender).",
    "SurreptitiousForwarding": "A recipient re-seals the sender's inner signature and body under "
    "its own header; the inner signature covers the original header hash, so it fails.",
    "UnknownKey": "Sent by a principal that the directory does not know.",
    "Truncation": "The envelope cut short.",
}

FIVE_YEARS = 5 * 365 * 86_400
DECRYPTION_FAILED = "decryption-failed"


def record_valid(rec: Recorder, b: Base) -> None:
    """Every EnvelopeSeal envelope with its K, and one that expired years ago."""
    for comment, d, f in b.sealed:
        rec.disclosure_case(
            f"the EnvelopeSeal case '{comment}', with its content key",
            ["Honest"],
            ["DISC-1"],
            Disclosure(f.envelope, d.content_key),
            None,
            body=d.body,
        )
    old = Draft(
        "disclosed-years-later",
        S,
        (A, B),
        b"Request, case 2022/0007: kept as evidence for the court.",
        seq=7,
        created=NOW - FIVE_YEARS,
    )
    expired = honest(old).envelope
    opened = library_open(expired, A, NOW, DEFAULT_ENVELOPE_LIMITS, ReplayGuard())
    opened.check("the old envelope, delivered at now", "stale", None)
    rec.disclosure_case(
        "expired five years before the vectors' now (a recipient would refuse it as stale): "
        "the disclosure verifies all the same",
        ["Honest", "Expired"],
        ["DISC-1", "DISC-2"],
        Disclosure(expired, old.content_key),
        None,
        body=old.body,
    )


def record_invalid(rec: Recorder, b: Base) -> None:
    """Wrong keys, damaged envelopes and forgeries, each with the code verifying must give."""
    m1, k1 = b.m1, b.k1
    mid1 = fields_of(m1)[F_ID]
    assert isinstance(mid1, bytes)
    _, two, k_other = two_keys(b)
    d_fwd, fwd = forwarded(b)
    d_out = Draft("disclosed-outsider", OUTSIDER, (A,), b"Take my word for it.", seq=1)
    tag_flipped = replace(m1, payload=flip(m1.payload, len(m1.payload) - 1, 7))
    key, outer = ["DISC-1", "OPEN-8"], ["DISC-1", "OPEN-6"]
    bad_sig, commit = ("bad-signature", None), (DECRYPTION_FAILED, "key-commitment")
    # (comment, flags, requirements, envelope, content key, (error, local reason))
    rows: list[tuple[str, list[str], list[str], bytes, bytes, tuple[str, str | None]]] = [
        ("M1 with M2's content key", ["WrongKey"], key, m1.envelope, b.d2.content_key, commit),
        ("M1 with the all-zero 32-byte key", ["WrongKey"], key, m1.envelope, bytes(32), commit),
        (
            "the sender wrapped K' for XP.interpol-gs while the message id commits to K: the "
            "envelope with K'",
            ["WrongKey", "MaliciousSender"],
            key,
            two,
            k_other,
            commit,
        ),
        (
            "M1 with its content key cut to 31 bytes",
            ["KeyLength"],
            key,
            m1.envelope,
            k1[:31],
            commit,
        ),
        (
            "M1 with its content key and one more byte (33 bytes)",
            ["KeyLength"],
            key,
            m1.envelope,
            k1 + b"\x00",
            commit,
        ),
        (
            "M1 with its content key cut to 16 bytes",
            ["KeyLength"],
            key,
            m1.envelope,
            k1[:16],
            commit,
        ),
        ("M1 with an empty content key", ["KeyLength"], key, m1.envelope, b"", commit),
        (
            "M1 with its content key twice (64 bytes)",
            ["KeyLength"],
            key,
            m1.envelope,
            k1 + k1,
            commit,
        ),
        (
            "M1 with one bit flipped in the payload",
            ["BitFlip"],
            outer,
            transit(m1, payload=flip(m1.payload, 40)),
            k1,
            bad_sig,
        ),
        (
            "M1 with one bit flipped in the message id",
            ["BitFlip"],
            outer,
            transit(m1, header=rewritten(m1, message_id=flip(mid1, 0))),
            k1,
            bad_sig,
        ),
        (
            "M1 with one bit flipped in the outer signature",
            ["BitFlip"],
            outer,
            transit(m1, outer=flip(m1.outer, 0)),
            k1,
            bad_sig,
        ),
        (
            "M1 with its outer signature zeroed",
            ["SignatureStripping"],
            outer,
            transit(m1, outer=bytes(64)),
            k1,
            bad_sig,
        ),
        (
            "M1 with M2's outer signature",
            ["SignatureStripping"],
            outer,
            transit(m1, outer=b.m2.outer),
            k1,
            bad_sig,
        ),
        (
            "M1 with an outer signature by XP.interpol-gs (a recipient, which knows K)",
            ["SignatureStripping"],
            outer,
            resign(m1, B.signing).envelope,
            k1,
            bad_sig,
        ),
        (
            "M1 with one bit flipped in the payload's tag, re-signed by the sender",
            ["BitFlip", "MaliciousSender"],
            ["DISC-1", "OPEN-9"],
            resign(tag_flipped, S.signing).envelope,
            k1,
            (DECRYPTION_FAILED, "aead"),
        ),
        (
            "MA.ncb-rabat re-seals M1's inner signature and body to FR.ncb-paris under its own "
            "signed header, with that envelope's content key",
            ["SurreptitiousForwarding"],
            ["DISC-1", "OPEN-10"],
            fwd.envelope,
            d_fwd.content_key,
            (DECRYPTION_FAILED, "inner-signature"),
        ),
        (
            "sealed by a principal that is not in the directory, with its content key",
            ["UnknownKey", "Honest"],
            ["DISC-1", "OPEN-4"],
            honest(d_out).envelope,
            d_out.content_key,
            ("unknown-key", None),
        ),
        (
            "M1 cut by one byte",
            ["Truncation"],
            ["DISC-1", "OPEN-2"],
            m1.envelope[:-1],
            k1,
            ("malformed", None),
        ),
    ]
    for comment, flags, reqs, envelope, content_key, (error, reason) in rows:
        rec.disclosure_case(
            comment, flags, reqs, Disclosure(envelope, content_key), error, reason=reason
        )


def record_disclosures(rec: Recorder, b: Base) -> None:
    """Record the Disclosure cases: valid first, then invalid."""
    record_valid(rec, b)
    record_invalid(rec, b)


def disclosure_document(rec: Recorder) -> JSON:
    return document(
        algorithm=SUITE_NAME,
        header=[
            "NCBR/1 disclosures (DISC-1, DISC-2): an envelope with its content key K, verified "
            "by a party that need not be a recipient, with the directory and no private key.",
            "No freshness or replay state applies. Principals' private keys are test keys, "
            "published so that every value can be recomputed. See spec/vectors.md.",
        ],
        notes=NOTES,
        fields={
            "limits": {
                "maxEnvelopeBytes": DEFAULT_ENVELOPE_LIMITS.max_envelope_bytes,
                "maxRecipients": DEFAULT_ENVELOPE_LIMITS.max_recipients,
            },
            "principals": principals_json(list(CAST.values())),
        },
        groups=[("Disclosure", rec.disclosure_tests)],
    )
