"""Sealing and opening NCBR/1 envelopes, with no I/O (spec/protocol.md, "Construction").

Theory of operation.  The sender draws a fresh 32-byte content key ``K`` and a
fresh ephemeral X25519 key pair.  The message id is a commitment to ``K``
(keyed BLAKE2b), so every recipient that recovers ``K`` can check it is the one
key the sender signed for, and all recipients therefore decrypt the same
plaintext.  ``K`` is wrapped for each recipient by XOR with a pad derived from
the X25519 secret shared between the ephemeral key and the recipient's key.
The header (routing data, recipients, wrapped keys) is encoded once; its hash
is the AEAD's associated data and is covered by both signatures.  Inside the
ciphertext, the inner signature (over the header hash and the body hash) comes
before the body: sign-then-encrypt, with the signature naming every recipient,
so a recipient cannot re-address the signed body to someone else.  Outside,
the outer signature covers the header hash and the ciphertext hash, so the
relay can check who sent an envelope without reading it.

Opening runs the checks in the order of the spec: size, encoding and layout;
freshness; the directory's keys for the sender and every recipient; the outer
signature; replay; then decryption, where every failure raises the same
:class:`~ncb_relay.errors.DecryptionFailed`.  Only a fully verified message is
recorded in the replay guard and returned, as a :class:`VerifiedEnvelope`,
which has no public constructor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import codec, primitives
from ._construct import NoPublicConstructor
from .directory import KeyDirectory
from .errors import (
    BadSignature,
    BindingMismatch,
    DecryptionFailed,
    InvalidPeerKey,
    LimitExceeded,
    UnknownKey,
    UsageError,
)
from .freshness import DEFAULT_POLICY, FreshnessPolicy, ReplayGuard
from .header import (
    DEFAULT_LIMITS,
    MAX_SEQ,
    MAX_TIME,
    MAX_TTL,
    SUITE,
    VERSION,
    EnvelopeLimits,
    Header,
    ParsedEnvelope,
    RecipientEntry,
    parse_envelope,
)
from .identity import PrivateIdentity, PublicIdentity, Signer, SigningPublicKey
from .primitives import RandomSource

__all__ = [
    "DEFAULT_TTL",
    "Disclosure",
    "RoutedEnvelope",
    "SealedEnvelope",
    "SignedMessage",
    "VerifiedEnvelope",
    "open_envelope",
    "seal",
    "verify_routing",
]

DEFAULT_TTL = 7 * 24 * 3600

# Domain-separation labels: Ed25519 signature prefixes and BLAKE2b personalisations.
OUTER_SIGNATURE_LABEL = b"NCBR/1 envelope outer signature\x00"
INNER_SIGNATURE_LABEL = b"NCBR/1 envelope inner signature\x00"
PERSON_COMMITMENT = b"NCBR1 commitment"
PERSON_PAYLOAD_KEY = b"NCBR1 payloadkey"
PERSON_KEY_WRAP = b"NCBR1 key wrap"
PERSON_HEADER = b"NCBR1 header"
PERSON_PAYLOAD = b"NCBR1 payload"
PERSON_BODY = b"NCBR1 body"
PERSON_MESSAGE = b"NCBR1 message"
PAYLOAD_NONCE = bytes(primitives.AEAD_NONCE_BYTES)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def commitment(content_key: bytes) -> bytes:
    """The message id: a commitment to the content key (SEAL-2)."""
    return primitives.blake2b(b"", key=content_key, person=PERSON_COMMITMENT)


def payload_key(content_key: bytes) -> bytes:
    return primitives.blake2b(b"", key=content_key, person=PERSON_PAYLOAD_KEY)


def wrap_pad(shared: bytes, ephemeral: bytes, recipient_key: bytes, message_id: bytes) -> bytes:
    return primitives.blake2b(
        ephemeral + recipient_key + message_id, key=shared, person=PERSON_KEY_WRAP
    )


def header_hash(header_bytes: bytes) -> bytes:
    return primitives.blake2b(header_bytes, person=PERSON_HEADER)


def message_hash(header_digest: bytes, payload_digest: bytes) -> bytes:
    """The name of one signed message: what replies and receipts refer to (ENV-9)."""
    return primitives.blake2b(header_digest + payload_digest, person=PERSON_MESSAGE)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """An envelope with its content key: enough to verify and read it without a recipient's key."""

    envelope: bytes
    content_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.envelope, bytes) or not isinstance(self.content_key, bytes):
            raise UsageError("a disclosure holds bytes")


@dataclass(frozen=True, slots=True)
class SealedEnvelope:
    """The bytes to send, and the names the sender keeps to match replies and receipts."""

    data: bytes
    message_id: bytes
    message_hash: bytes
    header: Header

    @classmethod
    def from_bytes(cls, data: bytes, limits: EnvelopeLimits = DEFAULT_LIMITS) -> SealedEnvelope:
        """An envelope its sender sealed and kept as bytes, with its names recomputed.

        Only the structure is checked (:func:`~ncb_relay.header.parse_envelope`);
        nothing is verified: use it for the sender's own records, never for
        what arrives from someone else.
        """
        parsed = parse_envelope(data, limits)
        digest = message_hash(
            header_hash(parsed.header_bytes),
            primitives.blake2b(parsed.payload, person=PERSON_PAYLOAD),
        )
        return cls(data, parsed.header.message_id, digest, parsed.header)


def seal(
    body: bytes,
    *,
    sender: PrivateIdentity,
    recipients: Iterable[PublicIdentity],
    now: int,
    seq: int,
    rng: RandomSource,
    ttl: int = DEFAULT_TTL,
    reply_to: bytes | None = None,
    limits: EnvelopeLimits = DEFAULT_LIMITS,
) -> SealedEnvelope:
    """Seal ``body`` from ``sender`` to every identity in ``recipients``.

    ``rng`` is called twice: 32 bytes for the content key, then 32 bytes for
    the ephemeral X25519 secret.  Raises :class:`UsageError` for bad arguments
    and :class:`LimitExceeded` if the envelope would exceed ``limits``.
    """
    if not isinstance(body, bytes):
        raise UsageError("body must be bytes")
    for name, number in (("now", now), ("ttl", ttl), ("seq", seq)):
        if type(number) is not int:  # not a bool, a float or a str: it would go on the wire
            raise UsageError(f"{name} must be an int")
    if not 0 <= now <= MAX_TIME - MAX_TTL:
        raise UsageError("now is out of range")
    if not 0 < ttl <= MAX_TTL:
        raise UsageError(f"ttl must be between 1 and {MAX_TTL} seconds")
    if not 0 <= seq <= MAX_SEQ:
        raise UsageError("seq is out of range")
    if reply_to is not None and (
        not isinstance(reply_to, bytes) or len(reply_to) != primitives.HASH_BYTES
    ):
        raise UsageError("reply_to is a 32-byte message hash")
    targets = sorted(recipients, key=lambda identity: identity.principal.encode("ascii"))
    if not targets:
        raise UsageError("at least one recipient is required")
    if len(targets) > limits.max_recipients:
        raise LimitExceeded(f"more than {limits.max_recipients} recipients")
    if len({identity.principal for identity in targets}) != len(targets):
        raise UsageError("a recipient is listed twice")

    content_key = rng(primitives.AEAD_KEY_BYTES)
    ephemeral_secret = rng(primitives.SECRET_KEY_BYTES)
    if len(content_key) != 32 or len(ephemeral_secret) != 32:
        raise UsageError("rng returned the wrong number of bytes")
    message_id = commitment(content_key)
    ephemeral = primitives.x25519_public_key(ephemeral_secret)
    entries = []
    for identity in targets:
        key = identity.encryption_key.raw
        shared = primitives.x25519(ephemeral_secret, key)
        pad = wrap_pad(shared, ephemeral, key, message_id)
        wrapped = _xor(content_key, pad)
        entries.append(RecipientEntry(identity.principal, identity.encryption_key.key_id, wrapped))
    header = Header(
        version=VERSION,
        suite=SUITE,
        message_id=message_id,
        sender=sender.principal,
        sender_key_id=sender.signer.public_key.key_id,
        seq=seq,
        created=now,
        expires=now + ttl,
        reply_to=reply_to,
        ephemeral=ephemeral,
        recipients=tuple(entries),
    )
    header_bytes = header.encode()
    h_digest = header_hash(header_bytes)
    signer: Signer = sender.signer
    b_digest = primitives.blake2b(body, person=PERSON_BODY)
    inner = signer.sign(INNER_SIGNATURE_LABEL + h_digest + b_digest)
    payload = primitives.aead_encrypt(
        payload_key(content_key), PAYLOAD_NONCE, inner + body, h_digest
    )
    p_digest = primitives.blake2b(payload, person=PERSON_PAYLOAD)
    outer = signer.sign(OUTER_SIGNATURE_LABEL + h_digest + p_digest)
    data = codec.encode([header_bytes, payload, outer], limits=limits.outer)
    return SealedEnvelope(data, message_id, message_hash(h_digest, p_digest), header)


class RoutedEnvelope(metaclass=NoPublicConstructor):
    """An envelope whose routing header and ciphertext are proven to come from its sender.

    Only :func:`verify_routing` (or :func:`open_envelope`) makes one.  This is
    what a relay knows of a message: everything but the body.
    """

    __slots__ = ("data", "header", "header_digest", "message_hash", "payload", "sender_key")

    def __init__(
        self,
        data: bytes,
        parsed: ParsedEnvelope,
        sender_key: SigningPublicKey,
        header_digest: bytes,
        m_hash: bytes,
    ) -> None:
        self.data = data
        self.header = parsed.header
        self.payload = parsed.payload
        self.sender_key = sender_key
        self.header_digest = header_digest
        self.message_hash = m_hash

    @property
    def message_id(self) -> bytes:
        return self.header.message_id

    @property
    def sender(self) -> str:
        return self.header.sender

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.header.recipient_ids

    def __repr__(self) -> str:
        return f"RoutedEnvelope(id={self.message_id.hex()}, sender={self.sender!r})"


class SignedMessage(metaclass=NoPublicConstructor):
    """A message whose sender's signatures were verified, with its body.

    The common part of :class:`VerifiedEnvelope` (opened by a recipient) and
    :class:`~ncb_relay.disclosure.DisclosedMessage` (verified from a
    disclosure); neither has a public constructor.
    """

    __slots__ = ("body", "routed")

    def __init__(self, routed: RoutedEnvelope, body: bytes) -> None:
        self.routed = routed
        self.body = body

    @property
    def header(self) -> Header:
        return self.routed.header

    @property
    def message_id(self) -> bytes:
        return self.routed.header.message_id

    @property
    def message_hash(self) -> bytes:
        return self.routed.message_hash

    @property
    def sender(self) -> str:
        return self.routed.header.sender

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.routed.header.recipient_ids

    @property
    def seq(self) -> int:
        return self.routed.header.seq

    @property
    def created(self) -> int:
        return self.routed.header.created

    @property
    def expires(self) -> int:
        return self.routed.header.expires

    @property
    def reply_to(self) -> bytes | None:
        return self.routed.header.reply_to


class VerifiedEnvelope(SignedMessage):
    """A message that passed every check for one recipient.

    Only :func:`open_envelope` makes one.
    """

    __slots__ = ("_content_key",)

    def __init__(self, routed: RoutedEnvelope, body: bytes, content_key: bytes) -> None:
        super().__init__(routed, body)
        self._content_key = content_key

    def disclose(self) -> Disclosure:
        """The envelope and its content key, for a third party to verify (DISC-1).

        Whoever holds the result can read the body and prove that the sender
        signed it for exactly the listed recipients; hand it only to parties
        entitled to the body (a court, or a bureau the message is forwarded to).
        """
        return Disclosure(self.routed.data, self._content_key)

    def require_reply_to(self, request: VerifiedEnvelope | SealedEnvelope) -> None:
        """Raise :class:`BindingMismatch` unless this message answers ``request`` (BIND-2)."""
        if self.reply_to is None or not primitives.constant_time_equal(
            self.reply_to, request.message_hash
        ):
            raise BindingMismatch("message does not answer this request")
        if self.sender not in request.header.recipient_ids:
            raise BindingMismatch(f"{self.sender} was not a recipient of the request")
        if request.header.sender not in self.recipients:
            raise BindingMismatch("the reply is not addressed to the requester")

    def __repr__(self) -> str:
        return (
            f"VerifiedEnvelope(id={self.message_id.hex()}, sender={self.sender!r}, "
            f"body={len(self.body)} bytes)"
        )


def verify_routing(
    data: bytes,
    *,
    directory: KeyDirectory,
    now: int,
    policy: FreshnessPolicy = DEFAULT_POLICY,
    limits: EnvelopeLimits = DEFAULT_LIMITS,
) -> RoutedEnvelope:
    """Check an envelope without decrypting it: layout, freshness, keys and outer signature."""
    parsed = parse_envelope(data, limits)
    policy.check(parsed.header.created, parsed.header.expires, now)
    return authenticate(data, parsed, directory)


def authenticate(data: bytes, parsed: ParsedEnvelope, directory: KeyDirectory) -> RoutedEnvelope:
    """OPEN-4 .. OPEN-6: the directory's keys as of creation, and the outer signature."""
    header = parsed.header
    sender_key = directory.signing_key(header.sender, header.sender_key_id, header.created)
    for entry in header.recipients:
        directory.check_encryption_key(entry.principal, entry.key_id, header.created)
    h_digest = header_hash(parsed.header_bytes)
    p_digest = primitives.blake2b(parsed.payload, person=PERSON_PAYLOAD)
    sender_key.verify(OUTER_SIGNATURE_LABEL + h_digest + p_digest, parsed.signature)
    return RoutedEnvelope._create(
        data, parsed, sender_key, h_digest, message_hash(h_digest, p_digest)
    )


def open_payload(routed: RoutedEnvelope, content_key: bytes) -> bytes:
    """OPEN-8 .. OPEN-10 once the content key is known: commitment, AEAD, inner signature."""
    if len(content_key) != primitives.AEAD_KEY_BYTES or not primitives.constant_time_equal(
        commitment(content_key), routed.header.message_id
    ):
        raise DecryptionFailed("key-commitment")
    plaintext = primitives.aead_decrypt(
        payload_key(content_key), PAYLOAD_NONCE, routed.payload, routed.header_digest
    )
    inner, body = (
        plaintext[: primitives.SIGNATURE_BYTES],
        plaintext[primitives.SIGNATURE_BYTES :],
    )
    b_digest = primitives.blake2b(body, person=PERSON_BODY)
    try:
        routed.sender_key.verify(INNER_SIGNATURE_LABEL + routed.header_digest + b_digest, inner)
    except BadSignature as exc:
        raise DecryptionFailed("inner-signature") from exc
    return body


def _unwrap(routed: RoutedEnvelope, recipient: PrivateIdentity) -> bytes:
    """OPEN-8: find the recipient's entry and recover the content key."""
    header = routed.header
    entry = header.entry_for(recipient.principal)
    if entry is None:
        raise DecryptionFailed("not-a-recipient")
    try:
        keypair = recipient.encryption_key(entry.key_id)
        shared = keypair.exchange(header.ephemeral)
    except UnknownKey as exc:
        raise DecryptionFailed("no-such-key") from exc
    except InvalidPeerKey as exc:
        raise DecryptionFailed("small-order-ephemeral") from exc
    pad = wrap_pad(shared, header.ephemeral, keypair.public_key.raw, header.message_id)
    return _xor(entry.wrapped_key, pad)


def open_envelope(
    data: bytes,
    *,
    recipient: PrivateIdentity,
    directory: KeyDirectory,
    now: int,
    replay: ReplayGuard,
    limits: EnvelopeLimits = DEFAULT_LIMITS,
) -> VerifiedEnvelope:
    """Verify and decrypt an envelope for ``recipient``; record it in ``replay``.

    The freshness window is the replay guard's own ``policy``, so the guard
    always remembers a message for as long as the window accepts it
    (REPLAY-1).  Raises a :class:`~ncb_relay.errors.ProtocolError` subclass on
    any failure and returns nothing partial.
    """
    routed = verify_routing(data, directory=directory, now=now, policy=replay.policy, limits=limits)
    header = routed.header
    replay.check(header.sender, header.message_id, header.seq)
    content_key = _unwrap(routed, recipient)
    body = open_payload(routed, content_key)
    replay.record(header.sender, header.message_id, header.seq, header.expires, now)
    return VerifiedEnvelope._create(routed, body, content_key)
