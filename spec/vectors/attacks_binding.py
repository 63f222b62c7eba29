"""EnvelopeOpen cases, part 1: attacks on who signed what for whom.

Signatures stripped or used in the wrong context, senders substituted, messages
forwarded or re-attributed, recipients stripped or added, different content
keys for different recipients, replays and freshness.  Each function records
one section, in the order of the file.
"""

from __future__ import annotations

from dataclasses import replace

from construction import (
    Draft,
    Forged,
    as_sender,
    assemble,
    flip,
    honest,
    honest_fields,
    outer_signature,
    recipient_entries,
    resign,
    rewritten,
    transit,
    with_fields,
    wrap_entry,
)
from principals import (
    MAX_SKEW,
    NOW,
    OUTSIDER,
    PERSON_TV_CONTENT_KEY,
    PERSON_TV_EPHEMERAL,
    PERSON_TV_OTHER,
    A,
    B,
    C,
    S,
    derive,
)
from recorder import Recorder
from seals import BODY_1, Base

from ncb_relay import codec, primitives
from ncb_relay.codec import Value
from ncb_relay.envelope import INNER_SIGNATURE_LABEL, OUTER_SIGNATURE_LABEL, commitment

BAD_SIGNATURE, DECRYPTION_FAILED = "bad-signature", "decryption-failed"
#: the order of the Ed25519 base point (RFC 8032, 5.1): S + L is the same scalar mod L
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def forwarded(b: Base) -> tuple[Draft, Forged]:
    """MA.ncb-rabat re-seals M1's inner signature and body to FR.ncb-paris as its own message."""
    d_fwd = Draft("forward", A, (C,), BODY_1, seq=5)
    return d_fwd, assemble(
        A.signing, honest_fields(d_fwd), d_fwd.content_key, BODY_1, inner=b.m1.inner
    )


def two_keys(b: Base) -> tuple[Draft, bytes, bytes]:
    """A sender that wraps K for MA.ncb-rabat and K' for XP.interpol-gs: (draft, envelope, K')."""
    d_k = Draft(
        "two-keys", S, (A, B), b"Each of you reads the same message, or so you think.", seq=20
    )
    k_other = derive("two-keys-other", PERSON_TV_CONTENT_KEY)
    mid_k = commitment(d_k.content_key)
    recipients: list[Value] = [
        wrap_entry(d_k.content_key, d_k.ephemeral_secret, mid_k, A),
        wrap_entry(k_other, d_k.ephemeral_secret, mid_k, B),
    ]
    fields = honest_fields(d_k)
    fields[-1] = recipients
    return d_k, assemble(S.signing, fields, d_k.content_key, d_k.body).envelope, k_other


def signature_stripping(rec: Recorder, b: Base) -> None:
    m1 = b.m1
    op = rec.open_case
    op(
        "outer signature zeroed",
        ["SignatureStripping"],
        ["SEAL-6", "OPEN-6"],
        transit(m1, outer=bytes(64)),
        BAD_SIGNATURE,
    )
    removed = rec.expecting(["SignatureStripping", "Layout"], ["ENV-1", "OPEN-2"], "malformed")
    removed(
        "outer signature removed: a two-element envelope", codec.encode([m1.header, m1.payload])
    )
    removed("outer signature replaced by an empty bin", codec.encode([m1.header, m1.payload, b""]))
    op(
        "outer signature of M2 on M1",
        ["SignatureStripping"],
        ["SEAL-6", "OPEN-6", "BIND-1"],
        transit(m1, outer=b.m2.outer),
        BAD_SIGNATURE,
    )
    flipped = rec.expecting(["BitFlip"], ["SEAL-6", "OPEN-6"], BAD_SIGNATURE)
    flipped("outer signature: one bit flipped (first byte)", transit(m1, outer=flip(m1.outer, 0)))
    flipped(
        "outer signature: one bit flipped (last byte, in S)",
        transit(m1, outer=flip(m1.outer, 63, 3)),
    )


def sender_substitution(rec: Recorder, b: Base) -> None:
    m1 = b.m1
    op = rec.open_case
    renamed = rec.expecting(
        ["SenderSubstitution", "KeyBinding"], ["OPEN-4", "BIND-1"], "binding-mismatch"
    )
    renamed(
        "sender field changed to FR.ncb-paris, sender key id still KR.ncb-seoul's",
        transit(m1, header=rewritten(m1, sender=C.id)),
    )
    renamed(
        "sender key id swapped for FR.ncb-paris's signing key id",
        transit(m1, header=rewritten(m1, sender_key_id=C.signing_key_id)),
    )
    op(
        "sender key id is the sender's own encryption key id (validly re-signed by the sender)",
        ["KeyBinding", "MaliciousSender"],
        ["KEY-1", "KEY-2", "OPEN-4"],
        resign(m1, S.signing, header=rewritten(m1, sender_key_id=S.encryption_key_id)).envelope,
        "binding-mismatch",
    )
    op(
        "FR.ncb-paris sets sender and key id to its own and re-signs the outer signature; "
        "payload unchanged",
        ["SenderSubstitution"],
        ["BIND-1", "OPEN-9", "OPEN-10", "OPEN-11"],
        resign(m1, C.signing, header=rewritten(m1, **as_sender(C))).envelope,
        DECRYPTION_FAILED,
        reason="aead",
    )
    op(
        "XP.interpol-gs (a recipient, so it knows K) re-attributes M1: header names itself, "
        "payload re-encrypted under the new header with KR.ncb-seoul's inner signature, "
        "outer signed by XP.interpol-gs; MA.ncb-rabat opens",
        ["SenderSubstitution"],
        ["BIND-1", "OPEN-10", "OPEN-11"],
        assemble(B.signing, rewritten(m1, **as_sender(B)), b.k1, BODY_1, inner=m1.inner).envelope,
        DECRYPTION_FAILED,
        reason="inner-signature",
    )
    unknown = rec.expecting(["UnknownKey", "SenderSubstitution"], ["OPEN-4"], "unknown-key")
    unknown(
        "sender key id of a key not in the directory",
        resign(
            m1, OUTSIDER.signing, header=rewritten(m1, sender_key_id=OUTSIDER.signing_key_id)
        ).envelope,
    )
    op(
        "sealed by a principal that is not in the directory",
        ["UnknownKey", "Honest"],
        ["OPEN-4"],
        honest(Draft("outsider", OUTSIDER, (A,), b"I am not in your directory.", seq=1)).envelope,
        "unknown-key",
    )


def surreptitious_forwarding(rec: Recorder, b: Base) -> None:
    op = rec.open_case
    d_fwd, fwd = forwarded(b)
    op(
        "MA.ncb-rabat re-seals M1's inner signature and body to FR.ncb-paris under its own "
        "signed header",
        ["SurreptitiousForwarding"],
        ["SEAL-4", "OPEN-10", "OPEN-11", "BIND-1"],
        fwd.envelope,
        DECRYPTION_FAILED,
        recipient=C,
        reason="inner-signature",
    )
    fwd_as_s = with_fields(fwd, **as_sender(S))
    op(
        "MA.ncb-rabat re-seals M1's inner signature and body to FR.ncb-paris, header names "
        "KR.ncb-seoul as sender, outer signature by MA.ncb-rabat",
        ["SurreptitiousForwarding", "SenderSubstitution"],
        ["OPEN-6", "BIND-1"],
        assemble(A.signing, fwd_as_s, d_fwd.content_key, BODY_1, inner=b.m1.inner).envelope,
        BAD_SIGNATURE,
        recipient=C,
    )
    op(
        "M1 forwarded unchanged to FR.ncb-paris, which is not a recipient",
        ["NotARecipient", "SurreptitiousForwarding"],
        ["OPEN-8", "OPEN-11"],
        b.m1.envelope,
        DECRYPTION_FAILED,
        recipient=C,
        reason="not-a-recipient",
    )


def recipient_stripping_and_extension(rec: Recorder, b: Base) -> None:
    m1, k1 = b.m1, b.k1
    entries: list[Value] = list(recipient_entries(m1))
    a_entry = recipient_entries(m1)[0]
    assert [e[0] for e in recipient_entries(m1)] == [A.id, B.id]

    stripped = rewritten(m1, recipients=[a_entry])
    stripping = rec.expecting(["RecipientStripping"], ["BIND-1", "OPEN-6"], BAD_SIGNATURE)
    stripping("XP.interpol-gs's entry removed, signature unchanged", transit(m1, header=stripped))
    stripping(
        "XP.interpol-gs's entry removed, outer re-signed by FR.ncb-paris "
        "(sender still KR.ncb-seoul)",
        resign(m1, C.signing, header=stripped).envelope,
    )
    rec.open_case(
        "XP.interpol-gs's entry removed, sender set to FR.ncb-paris, re-signed by FR.ncb-paris",
        ["RecipientStripping", "SenderSubstitution"],
        ["BIND-1", "OPEN-9", "OPEN-11"],
        resign(m1, C.signing, header=rewritten(m1, recipients=[a_entry], **as_sender(C))).envelope,
        DECRYPTION_FAILED,
        reason="aead",
    )

    extra: list[Value] = [C.id, C.encryption_key_id, derive("extension", PERSON_TV_OTHER)]
    extension = rec.expecting(
        ["RecipientExtension"], ["BIND-1", "OPEN-6"], BAD_SIGNATURE, recipient=C
    )
    # FR.ncb-paris sorts before MA and XP
    extension(
        "FR.ncb-paris adds an entry for itself, signature unchanged",
        transit(m1, header=rewritten(m1, recipients=[extra, *entries])),
    )
    # an insider (MA.ncb-rabat knows K) re-wraps K for A, B and C under a new ephemeral key
    e_ins = derive("insider-extension", PERSON_TV_EPHEMERAL)
    insider: dict[str, Value] = {
        "ephemeral": primitives.x25519_public_key(e_ins),
        "recipients": [
            wrap_entry(k1, e_ins, commitment(k1), p) for p in sorted((A, B, C), key=lambda p: p.id)
        ],
    }
    extension(
        "MA.ncb-rabat (knows K) adds FR.ncb-paris: K re-wrapped for three under a new "
        "ephemeral key, payload re-encrypted with KR.ncb-seoul's inner signature, outer "
        "signed by MA.ncb-rabat while the header still names KR.ncb-seoul",
        assemble(A.signing, with_fields(m1, **insider), k1, BODY_1, inner=m1.inner).envelope,
    )
    ins_a = with_fields(m1, **insider, **as_sender(A))
    ins_env = assemble(A.signing, ins_a, k1, BODY_1, inner=m1.inner).envelope
    for comment, opener in (
        ("as before, but the header names MA.ncb-rabat as sender: FR.ncb-paris opens it", C),
        ("as before, opened by XP.interpol-gs (an original recipient)", B),
    ):
        rec.open_case(
            comment,
            ["RecipientExtension", "SurreptitiousForwarding"],
            ["BIND-1", "OPEN-10", "OPEN-11"],
            ins_env,
            DECRYPTION_FAILED,
            recipient=opener,
            reason="inner-signature",
        )


def key_commitment(rec: Recorder, b: Base) -> tuple[bytes, bytes]:
    """The section's cases; returns the K' envelope and the honest one, for the replay cases."""
    op = rec.open_case
    d_k, two, _ = two_keys(b)
    for comment, reqs, opener, error in (
        (
            "the sender wraps a different content key K' for XP.interpol-gs (message id commits "
            "to K): XP.interpol-gs opens",
            ["SEAL-2", "OPEN-8", "OPEN-11"],
            B,
            DECRYPTION_FAILED,
        ),
        (
            "the same envelope opened by MA.ncb-rabat, whose wrapped key is K: accepted",
            ["SEAL-2", "OPEN-8"],
            A,
            None,
        ),
    ):
        op(
            comment,
            ["KeyCommitment", "MaliciousSender"],
            reqs,
            two,
            error,
            recipient=opener,
            reason="key-commitment" if error else None,
            body=None if error else d_k.body,
        )
    honest_k = honest(d_k).envelope
    op(
        "after refusing the K' envelope, XP.interpol-gs accepts the honest envelope with the same "
        "message id and seq (a refused message is not recorded)",
        ["KeyCommitment", "Replay"],
        ["OPEN-12", "REPLAY-1"],
        honest_k,
        None,
        recipient=B,
        body=d_k.body,
        prior=[(two, DECRYPTION_FAILED)],
    )
    d_one = b.d_one
    fake_id = derive("not-a-commitment", PERSON_TV_OTHER)
    fake = with_fields(
        b.m_one,
        message_id=fake_id,
        recipients=[wrap_entry(d_one.content_key, d_one.ephemeral_secret, fake_id, A)],
    )
    op(
        "message id is not the commitment of K (validly signed by the sender)",
        ["KeyCommitment", "MaliciousSender"],
        ["SEAL-2", "OPEN-8", "OPEN-11"],
        assemble(S.signing, fake, d_one.content_key, d_one.body).envelope,
        DECRYPTION_FAILED,
        reason="key-commitment",
    )
    return two, honest_k


def cross_context_signatures(rec: Recorder, b: Base) -> None:
    m1 = b.m1
    outer = rec.expecting(["CrossContextSignature"], ["SEAL-6", "OPEN-6"], BAD_SIGNATURE)
    rec.open_case(
        "M1's inner signature used as its outer signature",
        ["CrossContextSignature"],
        ["SEAL-4", "SEAL-6", "OPEN-6"],
        transit(m1, outer=m1.inner),
        BAD_SIGNATURE,
    )
    for comment, label in (
        ("outer signature by the sender over header_hash || payload_hash without the label", b""),
        ("outer signature by the sender with the inner label", INNER_SIGNATURE_LABEL),
    ):
        outer(comment, transit(m1, outer=outer_signature(S.signing, m1.header, m1.payload, label)))
    inner = rec.expecting(
        ["CrossContextSignature", "MaliciousSender"],
        ["SEAL-4", "OPEN-10", "OPEN-11"],
        DECRYPTION_FAILED,
        reason="inner-signature",
    )
    inner(
        "inner signature without the label (validly sealed otherwise)",
        assemble(S.signing, m1.header, b.k1, BODY_1, inner_label=b"").envelope,
    )
    inner(
        "inner signature with the outer label (validly sealed otherwise)",
        assemble(S.signing, m1.header, b.k1, BODY_1, inner_label=OUTER_SIGNATURE_LABEL).envelope,
    )
    inner(
        "inner signature of M2 (another header) inside M1 (validly sealed otherwise)",
        assemble(S.signing, m1.header, b.k1, BODY_1, inner=b.m2.inner).envelope,
    )


def replay(rec: Recorder, b: Base, two: bytes, honest_k: bytes) -> None:
    env1 = b.m1.envelope
    op = rec.open_case
    op(
        "M1 opened a second time",
        ["Replay"],
        ["REPLAY-1", "OPEN-7"],
        env1,
        "replay",
        prior=[(env1, None)],
    )
    op(
        "another message from the same sender with M1's seq",
        ["Replay"],
        ["REPLAY-2", "OPEN-7", "ENV-8"],
        honest(replace(b.d1, label="base-1-again", body=b"Same seq, new message.")).envelope,
        "replay",
        prior=[(env1, None)],
    )
    op(
        "M1 (seq 10) arrives after M2 (seq 11), inside its window: not a replay",
        ["Replay", "Boundary"],
        ["REPLAY-3"],
        env1,
        None,
        body=BODY_1,
        prior=[(b.m2.envelope, None)],
    )
    op(
        "XP.interpol-gs accepted the honest envelope, then gets the K' envelope with the same "
        "message id: replay is checked before decryption",
        ["Replay", "KeyCommitment"],
        ["OPEN-7", "REPLAY-1"],
        two,
        "replay",
        recipient=B,
        prior=[(honest_k, None)],
    )


def freshness(rec: Recorder) -> None:
    stale = Draft("stale", S, (A,), b"Old news.", seq=30, created=NOW - 3600 - MAX_SKEW, ttl=3600)
    future = Draft("future", S, (A,), b"From the future.", seq=31, created=NOW + MAX_SKEW + 1)
    for comment, d, error in (
        ("expired max_skew seconds ago (now = expires + 300)", stale, "stale"),
        (
            "expires + 299 = now: still accepted",
            replace(stale, label="stale-edge", created=stale.created + 1),
            None,
        ),
        ("created now + 301", future, "future-dated"),
        (
            "created now + 300: accepted",
            replace(future, label="future-edge", created=NOW + MAX_SKEW),
            None,
        ),
    ):
        rec.open_case(
            comment,
            ["Freshness"] if error else ["Freshness", "Boundary"],
            ["FRESH-1", "FRESH-2", "OPEN-3"],
            honest(d).envelope,
            error,
            body=None if error else d.body,
        )


def record_binding_attacks(rec: Recorder, b: Base) -> None:
    signature_stripping(rec, b)
    sender_substitution(rec, b)
    surreptitious_forwarding(rec, b)
    recipient_stripping_and_extension(rec, b)
    two, honest_k = key_commitment(rec, b)
    cross_context_signatures(rec, b)
    replay(rec, b, two, honest_k)
    freshness(rec)


def malleated(signature: bytes) -> bytes:
    """``signature`` with ``S + L`` for ``S``: what a verifier reducing S mod L accepts (KEY-6)."""
    s = int.from_bytes(signature[32:], "little") + ED25519_L
    return signature[:32] + s.to_bytes(32, "little")


def malleated_signatures(rec: Recorder, b: Base) -> None:
    """KEY-6: a valid signature whose S is not reduced (S + L) is invalid, outside and inside."""
    m1 = b.m1
    rec.open_case(
        "outer signature of M1 with S + L (non-canonical S, valid to a lenient verifier)",
        ["Malleability"],
        ["KEY-6", "OPEN-6"],
        transit(m1, outer=malleated(m1.outer)),
        BAD_SIGNATURE,
    )
    rec.open_case(
        "inner signature of M1 with S + L (non-canonical S), sealed and signed by the sender",
        ["Malleability", "MaliciousSender"],
        ["KEY-6", "OPEN-10", "OPEN-11"],
        assemble(S.signing, m1.header, b.k1, BODY_1, inner=malleated(m1.inner)).envelope,
        DECRYPTION_FAILED,
        reason="inner-signature",
    )
