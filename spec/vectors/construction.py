"""Honest and hostile envelopes, built from the library's pieces.

Malicious but validly signed envelopes are made here from the primitives, the
canonical codec and the helpers and labels of ``ncb_relay.envelope``, with the
signing key of the principal that would make them, never by patching the
library.  Honest envelopes are sealed by the library and checked against the
same piecewise construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from principals import NOW, PERSON_TV_CONTENT_KEY, PERSON_TV_EPHEMERAL, Principal, derive

from ncb_relay import codec, primitives
from ncb_relay.codec import Value
from ncb_relay.envelope import (
    INNER_SIGNATURE_LABEL,
    OUTER_SIGNATURE_LABEL,
    PAYLOAD_NONCE,
    PERSON_BODY,
    PERSON_PAYLOAD,
    SealedEnvelope,
    commitment,
    header_hash,
    payload_key,
    seal,
    wrap_pad,
)
from ncb_relay.header import SUITE, VERSION
from ncb_relay.identity import SigningKeyPair


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def recorded(*values: bytes) -> Callable[[int], bytes]:
    """A RandomSource that returns the given values in order (and checks the sizes)."""
    queue = list(values)

    def rng(n: int) -> bytes:
        value = queue.pop(0)
        if len(value) != n:
            raise AssertionError(f"recorded value has {len(value)} bytes, {n} requested")
        return value

    return rng


@dataclass(frozen=True)
class Draft:
    """What a sender decides: everything ``seal`` takes, with the randomness named by a label."""

    label: str
    sender: Principal
    recipients: tuple[Principal, ...]
    body: bytes
    seq: int
    created: int = NOW
    ttl: int = 86_400
    reply_to: bytes | None = None

    @property
    def content_key(self) -> bytes:
        return derive(self.label, PERSON_TV_CONTENT_KEY)

    @property
    def ephemeral_secret(self) -> bytes:
        return derive(self.label, PERSON_TV_EPHEMERAL)

    @property
    def sorted_recipients(self) -> list[Principal]:
        return sorted(self.recipients, key=lambda p: p.id.encode("ascii"))


def wrap_entry(
    content_key: bytes, ephemeral_secret: bytes, message_id: bytes, recipient: Principal
) -> list[Value]:
    """One recipient entry [id, key id, K xor pad] (SEAL-3)."""
    ephemeral = primitives.x25519_public_key(ephemeral_secret)
    shared = primitives.x25519(ephemeral_secret, recipient.encryption_public)
    pad = wrap_pad(shared, ephemeral, recipient.encryption_public, message_id)
    return [recipient.id, recipient.encryption_key_id, xor(content_key, pad)]


# the names of the header fields, in the order of ENV-2
FIELD_NAMES = (
    "version",
    "suite",
    "message_id",
    "sender",
    "sender_key_id",
    "seq",
    "created",
    "expires",
    "reply_to",
    "ephemeral",
    "recipients",
)
F_ID, F_SENDER, F_SENDER_KEY, F_SEQ, F_RECIPIENTS = 2, 3, 4, 5, 10


def honest_fields(d: Draft) -> list[Value]:
    """The 11 header fields an honest sender would sign."""
    message_id = commitment(d.content_key)
    return [
        VERSION,
        SUITE,
        message_id,
        d.sender.id,
        d.sender.signing_key_id,
        d.seq,
        d.created,
        d.created + d.ttl,
        d.reply_to,
        primitives.x25519_public_key(d.ephemeral_secret),
        [wrap_entry(d.content_key, d.ephemeral_secret, message_id, r) for r in d.sorted_recipients],
    ]


@dataclass(frozen=True)
class Forged:
    """The three parts of an envelope, as bytes (and the inner signature, for reuse)."""

    header: bytes
    payload: bytes
    outer: bytes
    inner: bytes = b""
    body: bytes = b""

    @property
    def envelope(self) -> bytes:
        return codec.encode([self.header, self.payload, self.outer])


def transit(f: Forged, **parts: bytes) -> bytes:
    """``f``'s envelope with some of header, payload, outer replaced on the way (not re-signed)."""
    return replace(f, **parts).envelope


def inner_signature(
    signer: SigningKeyPair, header: bytes, body: bytes, label: bytes = INNER_SIGNATURE_LABEL
) -> bytes:
    b_digest = primitives.blake2b(body, person=PERSON_BODY)
    return signer.sign(label + header_hash(header) + b_digest)


def outer_signature(
    signer: SigningKeyPair, header: bytes, payload: bytes, label: bytes = OUTER_SIGNATURE_LABEL
) -> bytes:
    p_digest = primitives.blake2b(payload, person=PERSON_PAYLOAD)
    return signer.sign(label + header_hash(header) + p_digest)


def assemble(
    signer: SigningKeyPair,
    header: bytes | list[Value],
    content_key: bytes,
    body: bytes,
    *,
    inner: bytes | None = None,
    inner_label: bytes = INNER_SIGNATURE_LABEL,
) -> Forged:
    """Sign-encrypt-sign ``body`` under ``header`` exactly as SEAL-4..SEAL-6 say."""
    header_bytes = header if isinstance(header, bytes) else codec.encode(header)
    if inner is None:
        inner = inner_signature(signer, header_bytes, body, inner_label)
    payload = primitives.aead_encrypt(
        payload_key(content_key), PAYLOAD_NONCE, inner + body, header_hash(header_bytes)
    )
    outer = outer_signature(signer, header_bytes, payload)
    return Forged(header_bytes, payload, outer, inner, body)


def resign(f: Forged, signer: SigningKeyPair, *, header: bytes | None = None) -> Forged:
    """Replace the header (optionally) and the outer signature, keeping the payload."""
    header_bytes = f.header if header is None else header
    return replace(f, header=header_bytes, outer=outer_signature(signer, header_bytes, f.payload))


def seal_draft(d: Draft) -> SealedEnvelope:
    return seal(
        d.body,
        sender=d.sender.identity,
        recipients=[r.identity.public for r in d.recipients],
        now=d.created,
        seq=d.seq,
        ttl=d.ttl,
        reply_to=d.reply_to,
        rng=recorded(d.content_key, d.ephemeral_secret),
    )


def honest(d: Draft) -> Forged:
    """Seal with the library and check that the piecewise construction agrees."""
    f = assemble(d.sender.signing, honest_fields(d), d.content_key, d.body)
    if seal_draft(d).data != f.envelope:
        raise AssertionError(f"{d.label}: seal() and the piecewise construction differ")
    return f


def fields_of(f: Forged) -> list[Value]:
    value = codec.decode(f.header)
    assert isinstance(value, list)
    return value


def recipient_entries(f: Forged) -> list[list[Value]]:
    """``f``'s recipient entries, each a three-element list."""
    entries = fields_of(f)[F_RECIPIENTS]
    assert isinstance(entries, list)
    out = []
    for entry in entries:
        assert isinstance(entry, list)
        out.append(list(entry))
    return out


def with_fields(f: Forged, **changes: Value) -> list[Value]:
    """A copy of ``f``'s header fields with some replaced (by the names of FIELD_NAMES)."""
    fields = fields_of(f)
    for name, value in changes.items():
        fields[FIELD_NAMES.index(name)] = value
    return fields


def rewritten(f: Forged, **changes: Value) -> bytes:
    """``f``'s header bytes with some fields replaced (see ``with_fields``)."""
    return codec.encode(with_fields(f, **changes))


def as_sender(p: Principal) -> dict[str, Value]:
    """The header changes that name ``p`` as the sender, with its signing key id."""
    return {"sender": p.id, "sender_key_id": p.signing_key_id}
