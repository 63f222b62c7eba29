"""Sealing and opening NCBR/1 envelopes (ENV, SEAL, OPEN, BIND, LIM).

:class:`Forge` builds envelopes straight from the requirement catalogue with
hashlib, PyNaCl and msgpack, not with ncb_relay's sealing code.  It serves two
purposes: it checks that :func:`seal` produces exactly the bytes the catalogue
prescribes, and, because it signs whatever it is told to with the sender's
key, it makes envelopes that are broken in exactly one place yet carry a valid
outer signature, so each check of :func:`open_envelope` can be reached on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import Any

import msgpack
import nacl.bindings as sodium
import pytest

from fixtures import NOW, PRINCIPALS, identity, seeded_rng, world
from ncb_relay import (
    DEFAULT_TTL,
    MAX_TTL,
    SUITE,
    SUITE_NAME,
    VERSION,
    BadSignature,
    BindingMismatch,
    DecryptionFailed,
    EncryptionKeyPair,
    EncryptionPublicKey,
    EnvelopeLimits,
    InvalidPeerKey,
    LimitExceeded,
    MalformedInput,
    PrivateIdentity,
    PublicIdentity,
    ReplayGuard,
    RoutedEnvelope,
    SealedEnvelope,
    SigningKeyPair,
    SigningPublicKey,
    StaticDirectory,
    UnknownKey,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
    VerifiedEnvelope,
    open_envelope,
    seal,
    verify_routing,
)
from ncb_relay.errors import NcbRelayError, ProtocolError

ALICE, BOB, CAROL, DAVE, ERIN = PRINCIPALS  # KR, MA, XP, FR, JP
IDS, DIRECTORY = world()

OUTER_LABEL = b"NCBR/1 envelope outer signature\x00"
INNER_LABEL = b"NCBR/1 envelope inner signature\x00"

# header field positions (ENV-2)
VERSION_F, SUITE_F, ID_F, SENDER_F, SENDER_KEY_F, SEQ_F = 0, 1, 2, 3, 4, 5
CREATED_F, EXPIRES_F, REPLY_F, EPHEMERAL_F, RECIPIENTS_F = 6, 7, 8, 9, 10

SMALL_ORDER_X25519 = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]


# --- an independent construction ---------------------------------------------------------


def b2(data: bytes, person: bytes, key: bytes = b"") -> bytes:
    """BLAKE2b-256 with a personalisation (zero-padded by hashlib) and optional key."""
    return hashlib.blake2b(data, digest_size=32, key=key, person=person).digest()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def seed_of(who: PrivateIdentity) -> bytes:
    signer = who.signer
    assert isinstance(signer, SigningKeyPair)
    return signer.seed


def ed_sign(seed: bytes, message: bytes) -> bytes:
    _, secret = sodium.crypto_sign_seed_keypair(seed)
    return bytes(sodium.crypto_sign(message, secret)[:64])


def pack(value: Any) -> bytes:
    """msgpack's own encoder: canonical for values without maps (shortest forms throughout)."""
    return bytes(msgpack.packb(value, use_bin_type=True))


def split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """An envelope's three byte strings, read with msgpack's own decoder."""
    header, payload, signature = msgpack.unpackb(data, raw=False)
    return header, payload, signature


class RecordingRng:
    """A seeded rng that remembers what it returned and for which sizes."""

    def __init__(self, seed: bytes) -> None:
        self._rng = seeded_rng(seed)
        self.calls: list[int] = []
        self.outputs: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        out = self._rng(n)
        self.calls.append(n)
        self.outputs.append(out)
        return out


@dataclass
class Forge:
    """One envelope, built from the catalogue; every field and step can be changed."""

    sender: PrivateIdentity
    recipients: Sequence[PublicIdentity]
    body: bytes = b"forged body"
    content_key: bytes = bytes(range(32))
    ephemeral_secret: bytes = bytes(range(32, 64))
    seq: int = 1
    created: int = NOW
    expires: int = NOW + DEFAULT_TTL
    reply_to: bytes | None = None
    # hooks to break one step
    key_for: dict[str, bytes] = field(default_factory=dict)  # wrap another K for someone
    edit_header: Callable[[list[Any]], None] | None = None
    header_bytes: bytes | None = None  # use these bytes as the header, verbatim
    inner_seed: bytes | None = None  # sign the inner signature with another key
    inner_header_hash: bytes | None = None  # sign the inner signature over another header
    aad: bytes | None = None
    edit_payload: Callable[[bytes], bytes] | None = None
    outer_seed: bytes | None = None
    edit_outer: Callable[[list[Any]], None] | None = None

    @property
    def message_id(self) -> bytes:
        return b2(b"", b"NCBR1 commitment", key=self.content_key)  # SEAL-2

    @property
    def ephemeral(self) -> bytes:
        return bytes(
            sodium.crypto_scalarmult_base(self.ephemeral_secret)
        )  # SEAL-3: E = X25519(e, 9)

    def entry(self, who: PublicIdentity) -> list[Any]:
        recipient_key = who.encryption_key.raw
        shared = bytes(sodium.crypto_scalarmult(self.ephemeral_secret, recipient_key))
        pad = b2(self.ephemeral + recipient_key + self.message_id, b"NCBR1 key wrap", key=shared)
        wrapped = xor(self.key_for.get(who.principal, self.content_key), pad)
        key_id = b2(recipient_key, b"NCBR1 fp encrypt")[:16]  # KEY-2
        return [who.principal, key_id, wrapped]

    def header_fields(self) -> list[Any]:
        targets = sorted(self.recipients, key=lambda who: who.principal.encode())
        sender_key = SigningKeyPair(seed_of(self.sender)).public_key.raw
        fields = [
            1,
            1,
            self.message_id,
            self.sender.principal,
            b2(sender_key, b"NCBR1 fp sign")[:16],
            self.seq,
            self.created,
            self.expires,
            self.reply_to,
            self.ephemeral,
            [self.entry(who) for who in targets],
        ]
        if self.edit_header is not None:
            self.edit_header(fields)
        return fields

    def build(self) -> bytes:
        header = self.header_bytes if self.header_bytes is not None else pack(self.header_fields())
        header_hash = b2(header, b"NCBR1 header")
        seed = seed_of(self.sender)
        inner = ed_sign(  # SEAL-4
            self.inner_seed or seed,
            INNER_LABEL + (self.inner_header_hash or header_hash) + b2(self.body, b"NCBR1 body"),
        )
        payload = bytes(  # SEAL-5
            sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
                inner + self.body,
                header_hash if self.aad is None else self.aad,
                bytes(24),
                b2(b"", b"NCBR1 payloadkey", key=self.content_key),
            )
        )
        if self.edit_payload is not None:
            payload = self.edit_payload(payload)
        outer = ed_sign(  # SEAL-6
            self.outer_seed or seed, OUTER_LABEL + header_hash + b2(payload, b"NCBR1 payload")
        )
        envelope: list[Any] = [header, payload, outer]
        if self.edit_outer is not None:
            self.edit_outer(envelope)
        return pack(envelope)  # ENV-1


def forge(sender: str = ALICE, to: Iterable[str] = (BOB, CAROL), **changes: Any) -> bytes:
    return Forge(IDS[sender], [IDS[p].public for p in to], **changes).build()


def open_as(
    data: bytes,
    who: str = BOB,
    *,
    now: int = NOW,
    directory: Any = DIRECTORY,
    replay: ReplayGuard | None = None,
    limits: EnvelopeLimits | None = None,
) -> VerifiedEnvelope:
    return open_envelope(
        data,
        recipient=IDS[who],
        directory=directory,
        now=now,
        replay=replay if replay is not None else ReplayGuard(),
        limits=limits if limits is not None else EnvelopeLimits(),
    )


def seal_to(
    body: bytes,
    to: Iterable[str] = (BOB,),
    sender: str = ALICE,
    *,
    seq: int = 1,
    rng: Callable[[int], bytes] | None = None,
    **kwargs: Any,
) -> SealedEnvelope:
    return seal(
        body,
        sender=IDS[sender],
        recipients=[IDS[p].public for p in to],
        now=kwargs.pop("now", NOW),
        seq=seq,
        rng=rng if rng is not None else seeded_rng(b2(body + seq.to_bytes(8, "big"), b"test rng")),
        **kwargs,
    )


# --- round trips -----------------------------------------------------------------------


@cache
def _pool(n: int) -> tuple[list[PrivateIdentity], StaticDirectory]:
    people = [identity(f"XP.member-{i:02d}") for i in range(n)]
    return people, StaticDirectory(p.public for p in people)


@pytest.mark.req("ENV-1", "SEAL-1", "OPEN-6", "OPEN-8", "OPEN-9", "OPEN-10", "OPEN-12")
@pytest.mark.parametrize("count", [1, 2, 10])
def test_every_recipient_reads_the_same_body(count: int) -> None:
    people, directory = _pool(count + 1)
    sender, recipients = people[0], people[1:]
    body = b"Red notice update \x00\xff" * 7
    sealed = seal(
        body,
        sender=sender,
        recipients=[r.public for r in reversed(recipients)],
        now=NOW,
        seq=42,
        rng=seeded_rng(b"round trip"),
    )
    assert sealed.header.recipient_ids == tuple(sorted(r.principal for r in recipients))
    seen = set()
    for recipient in recipients:
        guard = ReplayGuard()
        opened = open_envelope(
            sealed.data, recipient=recipient, directory=directory, now=NOW, replay=guard
        )
        assert opened.body == body
        assert opened.sender == sender.principal
        assert opened.message_id == sealed.message_id
        assert opened.message_hash == sealed.message_hash
        assert opened.recipients == sealed.header.recipient_ids
        assert opened.header == sealed.header
        assert (opened.seq, opened.created, opened.expires) == (42, NOW, NOW + DEFAULT_TTL)
        assert opened.reply_to is None
        assert len(guard) == 1
        seen.add(opened.body)
    assert seen == {body}


@pytest.mark.req("SEAL-1", "OPEN-12")
@pytest.mark.parametrize("body", [b"", b"x", bytes(range(256)) * 64])
def test_bodies_of_any_size_round_trip(body: bytes) -> None:
    sealed = seal_to(body, (BOB, CAROL))
    assert open_as(sealed.data, BOB).body == body
    assert open_as(sealed.data, CAROL).body == body


@pytest.mark.req("LIM-1")
def test_a_one_mebibyte_body_is_accepted_by_default() -> None:
    body = bytes(range(256)) * 4096
    sealed = seal_to(body, (BOB,))
    assert len(sealed.data) > 1024 * 1024
    assert EnvelopeLimits().max_envelope_bytes == 8 * 1024 * 1024
    assert open_as(sealed.data).body == body


@pytest.mark.req("SEAL-1", "SEAL-2", "SEAL-3", "SEAL-4", "SEAL-5", "SEAL-6", "ENV-1", "ENV-2")
@pytest.mark.parametrize("count", [1, 2, 10])
@pytest.mark.parametrize("reply_to", [None, bytes(range(32))])
def test_seal_matches_the_independent_construction(count: int, reply_to: bytes | None) -> None:
    people, _ = _pool(count + 1)
    rng = RecordingRng(b"independent")
    body = b"body for the construction check"
    sealed = seal(
        body,
        sender=people[0],
        recipients=[p.public for p in people[1:]],
        now=NOW,
        seq=7,
        rng=rng,
        ttl=3600,
        reply_to=reply_to,
    )
    # SEAL-1: K first, then e, 32 bytes each, nothing else
    assert rng.calls == [32, 32]
    content_key, ephemeral_secret = rng.outputs
    expected = Forge(
        people[0],
        [p.public for p in people[1:]],
        body=body,
        content_key=content_key,
        ephemeral_secret=ephemeral_secret,
        seq=7,
        created=NOW,
        expires=NOW + 3600,
        reply_to=reply_to,
    )
    assert sealed.data == expected.build()
    assert sealed.message_id == expected.message_id


@pytest.mark.req("ENV-2", "ENV-9", "CODEC-8", "ENV-10")
def test_hashes_are_over_the_received_bytes() -> None:
    sealed = seal_to(b"hash me", (BOB, CAROL), reply_to=bytes(32))
    header, payload, signature = split(sealed.data)
    # ENV-9, computed from the bytes on the wire
    header_hash = b2(header, b"NCBR1 header")
    payload_hash = b2(payload, b"NCBR1 payload")
    message_hash = b2(header_hash + payload_hash, b"NCBR1 message")
    routed = verify_routing(sealed.data, directory=DIRECTORY, now=NOW)
    assert routed.header_digest == header_hash
    assert routed.message_hash == sealed.message_hash == message_hash
    assert routed.payload == payload
    assert routed.data == sealed.data
    assert open_as(sealed.data).message_hash == message_hash
    # ENV-2: the header as msgpack sees it
    fields = msgpack.unpackb(header, raw=False)
    assert len(fields) == 11
    assert fields[:2] == [VERSION, SUITE] == [1, 1]
    assert fields[SENDER_F] == ALICE
    assert fields[SENDER_KEY_F] == IDS[ALICE].public.signing_key.key_id
    assert fields[REPLY_F] == bytes(32)
    assert [e[0] for e in fields[RECIPIENTS_F]] == [BOB, CAROL]
    assert len(signature) == 64
    assert SUITE_NAME == "NCBR1-ED25519-X25519-XCHACHA20POLY1305-BLAKE2B"


@pytest.mark.req("SEAL-1")
def test_every_seal_draws_a_fresh_key_and_ephemeral() -> None:
    rng = seeded_rng(b"one stream")
    first = seal_to(b"same body", rng=rng)
    second = seal_to(b"same body", rng=rng)
    assert first.message_id != second.message_id
    assert first.header.ephemeral != second.header.ephemeral
    assert first.data != second.data


@pytest.mark.req("SEAL-1")
def test_an_rng_returning_the_wrong_size_is_refused() -> None:
    with pytest.raises(UsageError):
        seal_to(b"x", rng=lambda n: bytes(n - 1))
    with pytest.raises(UsageError):
        seal_to(b"x", rng=lambda n: bytes(n + 1))


# --- ENV-10: what the relay sees ------------------------------------------------------------


@pytest.mark.req("ENV-10", "OPEN-6")
def test_verify_routing_needs_no_secrets() -> None:
    body = b"only recipients may read this sentence"
    sealed = seal_to(body, (BOB, CAROL), seq=9, reply_to=bytes([1]) * 32)
    public_only = StaticDirectory(IDS[p].public for p in PRINCIPALS)
    routed = verify_routing(sealed.data, directory=public_only, now=NOW)
    assert isinstance(routed, RoutedEnvelope)
    assert routed.sender == ALICE
    assert routed.recipients == (BOB, CAROL)
    assert routed.message_id == sealed.message_id
    assert routed.sender_key == IDS[ALICE].public.signing_key
    header = routed.header
    assert (header.version, header.suite, header.seq) == (1, 1, 9)
    assert (header.created, header.expires) == (NOW, NOW + DEFAULT_TTL)
    assert header.reply_to == bytes([1]) * 32
    assert [e.key_id for e in header.recipients] == [
        IDS[BOB].public.encryption_key.key_id,
        IDS[CAROL].public.encryption_key.key_id,
    ]
    assert len(routed.payload) == len(body) + 64 + 16  # the size shows, the body does not
    assert not hasattr(routed, "body")
    assert body not in sealed.data
    assert body[:8] not in sealed.data
    assert "RoutedEnvelope" in repr(routed)


@pytest.mark.req("OPEN-6")
def test_verify_routing_refuses_a_bad_outer_signature() -> None:
    sealed = seal_to(b"x")
    header, payload, signature = split(sealed.data)
    bad = pack([header, payload, signature[:-1] + bytes([signature[-1] ^ 1])])
    with pytest.raises(BadSignature):
        verify_routing(bad, directory=DIRECTORY, now=NOW)
    other = ed_sign(
        seed_of(IDS[CAROL]),
        OUTER_LABEL + b2(header, b"NCBR1 header") + b2(payload, b"NCBR1 payload"),
    )
    with pytest.raises(BadSignature):
        verify_routing(pack([header, payload, other]), directory=DIRECTORY, now=NOW)


# --- result types --------------------------------------------------------------------------


@pytest.mark.req("OPEN-12")
@pytest.mark.parametrize("cls", [RoutedEnvelope, VerifiedEnvelope])
def test_verified_results_cannot_be_constructed_directly(cls: type[Any]) -> None:
    sealed = seal_to(b"x")
    with pytest.raises(UsageError):
        cls()
    with pytest.raises(UsageError):
        cls(sealed.data, sealed.header, IDS[ALICE].public.signing_key, bytes(32), bytes(32))
    with pytest.raises(UsageError):
        cls(routed=None, body=b"forged")


@pytest.mark.req("OPEN-12")
def test_verified_envelope_repr_shows_no_body() -> None:
    opened = open_as(seal_to(b"PRIVATE-BODY-TEXT").data)
    assert "PRIVATE-BODY-TEXT" not in repr(opened)
    assert "17 bytes" in repr(opened)


# --- non-recipients and rotated keys ------------------------------------------------------


@pytest.mark.req("OPEN-8", "OPEN-11", "OPEN-12")
@pytest.mark.parametrize("outsider", [DAVE, ALICE])
def test_a_non_recipient_cannot_open(outsider: str) -> None:
    sealed = seal_to(b"for bob only", (BOB,))
    guard = ReplayGuard()
    with pytest.raises(DecryptionFailed) as info:
        open_as(sealed.data, outsider, replay=guard)
    assert info.value.reason == "not-a-recipient"
    assert info.value.wire_code == "decryption-failed"
    assert len(guard) == 0  # nothing recorded
    assert open_as(sealed.data, BOB, replay=guard).body == b"for bob only"


class RotatingDirectory:
    """A KeyDirectory that knows several encryption keys per principal."""

    def __init__(self, people: Iterable[PrivateIdentity]) -> None:
        self.signing: dict[str, SigningPublicKey] = {}
        self.encryption: dict[str, list[EncryptionPublicKey]] = {}
        for person in people:
            self.signing[person.principal] = person.signer.public_key
            self.encryption[person.principal] = [k.public_key for k in person.encryption_keys]

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        key = self.signing.get(principal)
        if key is None or key.key_id != key_id:
            raise UnknownKey("no such signing key")
        return key

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        if key_id not in [k.key_id for k in self.encryption.get(principal, [])]:
            raise UnknownKey("no such encryption key")

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        return self.encryption[principal][-1]


@pytest.mark.req("OPEN-5", "OPEN-8")
def test_a_rotated_recipient_opens_messages_sealed_to_either_key() -> None:
    bob = IDS[BOB]
    old = bob.encryption_keys[0]
    new = EncryptionKeyPair(seeded_rng(b"bob's new key")(32))
    rotated = PrivateIdentity(BOB, bob.signer, [old, new])
    directory = RotatingDirectory([IDS[ALICE], rotated])
    for key in (old, new):
        target = PublicIdentity(BOB, bob.signer.public_key, key.public_key)
        sealed = seal(
            b"to " + key.public_key.key_id.hex().encode(),
            sender=IDS[ALICE],
            recipients=[target],
            now=NOW,
            seq=1,
            rng=seeded_rng(key.secret),
        )
        assert sealed.header.recipients[0].key_id == key.public_key.key_id
        opened = open_envelope(
            sealed.data, recipient=rotated, directory=directory, now=NOW, replay=ReplayGuard()
        )
        assert opened.body == b"to " + key.public_key.key_id.hex().encode()
    # without the old key pair, a message sealed to it cannot be read
    only_new = PrivateIdentity(BOB, bob.signer, [new])
    sealed = seal_to(b"to the old key", (BOB,))
    with pytest.raises(DecryptionFailed) as info:
        open_envelope(
            sealed.data, recipient=only_new, directory=directory, now=NOW, replay=ReplayGuard()
        )
    assert info.value.reason == "no-such-key"


# --- sizes -----------------------------------------------------------------------------


@pytest.mark.req("ENV-1", "ENV-6")
def test_overhead() -> None:
    people, _ = _pool(12)
    body = bytes(1024)
    sizes = [
        len(
            seal(
                body,
                sender=people[0],
                recipients=[p.public for p in people[1 : n + 1]],
                now=NOW,
                seq=1,
                rng=seeded_rng(b"size"),
            ).data
        )
        for n in range(1, 11)
    ]
    assert sizes[0] - len(body) < 350
    for fewer, more in pairwise(sizes):
        assert 0 < more - fewer < 100


# --- seal arguments -----------------------------------------------------------------------


@pytest.mark.req("SEAL-1", "ENV-2", "ENV-5", "ENV-6")
@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"body": "text"}, UsageError, id="body-str"),
        pytest.param({"body": bytearray(b"x")}, UsageError, id="body-bytearray"),
        pytest.param({"now": -1}, UsageError, id="now-negative"),
        pytest.param({"now": 2**40 - MAX_TTL + 1}, UsageError, id="now-too-late"),
        pytest.param({"now": "1800000000"}, UsageError, id="now-str"),
        pytest.param({"now": float(NOW)}, UsageError, id="now-float"),
        pytest.param({"now": True}, UsageError, id="now-bool"),
        pytest.param({"ttl": 0}, UsageError, id="ttl-zero"),
        pytest.param({"ttl": -5}, UsageError, id="ttl-negative"),
        pytest.param({"ttl": MAX_TTL + 1}, UsageError, id="ttl-too-long"),
        pytest.param({"ttl": None}, UsageError, id="ttl-none"),
        pytest.param({"ttl": 60.0}, UsageError, id="ttl-float"),
        pytest.param({"seq": -1}, UsageError, id="seq-negative"),
        pytest.param({"seq": 2**63}, UsageError, id="seq-too-large"),
        pytest.param({"seq": "1"}, UsageError, id="seq-str"),
        pytest.param({"seq": True}, UsageError, id="seq-bool"),
        pytest.param({"reply_to": bytes(31)}, UsageError, id="reply-to-short"),
        pytest.param({"reply_to": bytes(33)}, UsageError, id="reply-to-long"),
        pytest.param({"reply_to": "a" * 32}, UsageError, id="reply-to-str"),
        pytest.param({"reply_to": bytearray(32)}, UsageError, id="reply-to-bytearray"),
        pytest.param({"recipients": []}, UsageError, id="no-recipients"),
        pytest.param({"recipients": "dup"}, UsageError, id="duplicate-recipient"),
        pytest.param({"recipients": "257"}, LimitExceeded, id="too-many-recipients"),
        pytest.param(
            {"limits": EnvelopeLimits(max_recipients=1), "recipients": "2"},
            LimitExceeded,
            id="over-custom-recipient-limit",
        ),
        pytest.param(
            {"limits": EnvelopeLimits(max_envelope_bytes=1024), "body": bytes(700)},
            LimitExceeded,
            id="over-envelope-limit",
        ),
    ],
)
def test_seal_argument_validation(changes: dict[str, Any], error: type[NcbRelayError]) -> None:
    people, _ = _pool(257)
    recipients: Any = [IDS[BOB].public]
    spec = changes.get("recipients")
    if spec == "dup":
        recipients = [IDS[BOB].public, IDS[BOB].public]
    elif spec == "257":
        recipients = [p.public for p in people]
    elif spec == "2":
        recipients = [IDS[BOB].public, IDS[CAROL].public]
    elif spec is not None:
        recipients = spec
    arguments: dict[str, Any] = {
        "sender": IDS[ALICE],
        "recipients": recipients,
        "now": NOW,
        "seq": 1,
        "rng": seeded_rng(b"args"),
    }
    arguments.update({k: v for k, v in changes.items() if k not in ("recipients", "body")})
    with pytest.raises(error):
        seal(changes.get("body", b"body"), **arguments)


@pytest.mark.req("ENV-5", "ENV-6", "LIM-2")
def test_seal_accepts_the_limits_exactly() -> None:
    people, directory = _pool(257)
    sealed = seal(
        b"to everyone",
        sender=people[0],
        recipients=[p.public for p in people[1:]],
        now=NOW,
        seq=2**63 - 1,
        rng=seeded_rng(b"all"),
        ttl=MAX_TTL,
    )
    assert len(sealed.header.recipients) == 256
    assert EnvelopeLimits().max_recipients == 256 >= 195
    assert sealed.header.expires - sealed.header.created == MAX_TTL
    for who in (people[1], people[128], people[256]):
        opened = open_envelope(
            sealed.data, recipient=who, directory=directory, now=NOW, replay=ReplayGuard()
        )
        assert opened.body == b"to everyone"
        assert opened.seq == 2**63 - 1
    assert seal_to(b"late", now=2**40 - MAX_TTL).header.created == 2**40 - MAX_TTL


@pytest.mark.req("LIM-1", "LIM-2")
@pytest.mark.parametrize(
    "arguments",
    [
        {"max_envelope_bytes": 1023},
        {"max_envelope_bytes": 64 * 1024 * 1024 + 1},
        {"max_recipients": 0},
        {"max_recipients": 1025},
    ],
)
def test_envelope_limits_are_bounded(arguments: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        EnvelopeLimits(**arguments)


# --- OPEN-1, OPEN-2: size, encoding, layout ---------------------------------------------------


@pytest.mark.req("OPEN-1", "LIM-1")
def test_an_oversized_envelope_is_refused_before_decoding() -> None:
    # garbage of max+1 bytes: a limit error, not a decoding error
    with pytest.raises(LimitExceeded):
        open_as(b"\xc1" * (8 * 1024 * 1024 + 1))
    sealed = seal_to(bytes(1000))
    size = len(sealed.data)
    assert open_as(sealed.data, limits=EnvelopeLimits(max_envelope_bytes=size)).body == bytes(1000)
    with pytest.raises(LimitExceeded):
        open_as(sealed.data, limits=EnvelopeLimits(max_envelope_bytes=size - 1))
    with pytest.raises(LimitExceeded):
        verify_routing(
            b"\xc1" * (size + 1),
            directory=DIRECTORY,
            now=NOW,
            limits=EnvelopeLimits(max_envelope_bytes=size),
        )


@pytest.mark.req("OPEN-2")
@pytest.mark.parametrize("data", ["not bytes", bytearray(b"\x93"), None])
def test_an_envelope_must_be_bytes(data: Any) -> None:
    with pytest.raises(UsageError):
        open_as(data)


def set_field(index: int, value: Any) -> Callable[[list[Any]], None]:
    def edit(fields: list[Any]) -> None:
        fields[index] = value

    return edit


def set_entry(index: int, position: int, value: Any) -> Callable[[list[Any]], None]:
    def edit(fields: list[Any]) -> None:
        fields[RECIPIENTS_F][index][position] = value

    return edit


def _call(function: Callable[[list[Any]], Any]) -> Callable[[list[Any]], None]:
    def edit(fields: list[Any]) -> None:
        function(fields)

    return edit


def _truncate(n: int) -> Callable[[list[Any]], None]:
    def edit(fields: list[Any]) -> None:
        del fields[n:]

    return edit


HEADER_CASES: list[tuple[str, Callable[[list[Any]], None], type[NcbRelayError]]] = [
    # ENV-3: version first, no fallback
    ("version-2", set_field(VERSION_F, 2), UnsupportedVersion),
    ("version-0", set_field(VERSION_F, 0), UnsupportedVersion),
    ("version-max", set_field(VERSION_F, 2**64 - 1), UnsupportedVersion),
    (
        "version-2-short-header",
        _call(lambda f: f.__setitem__(slice(None), [2, 1])),
        UnsupportedVersion,
    ),
    (
        "version-2-garbage",
        _call(lambda f: f.__setitem__(slice(None), [2, "?", None])),
        UnsupportedVersion,
    ),
    ("version-2-suite-2", _call(lambda f: f.__setitem__(slice(0, 2), [2, 2])), UnsupportedVersion),
    ("version-str", set_field(VERSION_F, "1"), MalformedInput),
    ("version-bool", set_field(VERSION_F, True), MalformedInput),
    ("version-negative", set_field(VERSION_F, -1), MalformedInput),
    ("version-nil", set_field(VERSION_F, None), MalformedInput),
    # ENV-4
    ("suite-2", set_field(SUITE_F, 2), UnsupportedSuite),
    ("suite-0", set_field(SUITE_F, 0), UnsupportedSuite),
    (
        "suite-2-short-header",
        _call(lambda f: f.__setitem__(slice(None), [1, 2, 0])),
        UnsupportedSuite,
    ),
    ("suite-bin", set_field(SUITE_F, b"\x01"), MalformedInput),
    # ENV-2: eleven fields of the right types
    ("one-field", _truncate(1), MalformedInput),
    ("ten-fields", _truncate(10), MalformedInput),
    ("twelve-fields", _call(lambda f: f.append(None)), MalformedInput),
    ("message-id-31", set_field(ID_F, bytes(31)), MalformedInput),
    ("message-id-33", set_field(ID_F, bytes(33)), MalformedInput),
    ("message-id-str", set_field(ID_F, "x" * 32), MalformedInput),
    ("sender-invalid", set_field(SENDER_F, "kr.ncb-seoul"), MalformedInput),
    ("sender-bin", set_field(SENDER_F, ALICE.encode()), MalformedInput),
    ("sender-key-id-15", set_field(SENDER_KEY_F, bytes(15)), MalformedInput),
    ("sender-key-id-str", set_field(SENDER_KEY_F, "k" * 16), MalformedInput),
    ("seq-2^63", set_field(SEQ_F, 2**63), MalformedInput),
    ("seq-negative", set_field(SEQ_F, -1), MalformedInput),
    ("seq-bool", set_field(SEQ_F, False), MalformedInput),
    (
        "created-over-2^40",
        _call(lambda f: f.__setitem__(slice(6, 8), [2**40 + 1, 2**40 + 2])),
        MalformedInput,
    ),
    (
        "expires-over-2^40",
        _call(lambda f: f.__setitem__(slice(6, 8), [2**40 - 1, 2**40 + 1])),
        MalformedInput,
    ),
    ("created-str", set_field(CREATED_F, str(NOW)), MalformedInput),
    ("reply-to-31", set_field(REPLY_F, bytes(31)), MalformedInput),
    ("reply-to-str", set_field(REPLY_F, "r" * 32), MalformedInput),
    ("reply-to-false", set_field(REPLY_F, False), MalformedInput),
    ("ephemeral-31", set_field(EPHEMERAL_F, bytes(31)), MalformedInput),
    ("ephemeral-str", set_field(EPHEMERAL_F, "e" * 32), MalformedInput),
    # ENV-5
    ("expires-equals-created", set_field(EXPIRES_F, NOW), MalformedInput),
    ("expires-before-created", set_field(EXPIRES_F, NOW - 1), MalformedInput),
    ("window-over-30-days", set_field(EXPIRES_F, NOW + MAX_TTL + 1), LimitExceeded),
    # ENV-6
    ("recipients-empty", set_field(RECIPIENTS_F, []), MalformedInput),
    ("recipients-nil", set_field(RECIPIENTS_F, None), MalformedInput),
    ("recipients-unsorted", _call(lambda f: f[RECIPIENTS_F].reverse()), MalformedInput),
    (
        "recipients-duplicate",
        _call(lambda f: f[RECIPIENTS_F].__setitem__(1, f[RECIPIENTS_F][0])),
        MalformedInput,
    ),
    ("recipient-two-fields", _call(lambda f: f[RECIPIENTS_F][0].pop()), MalformedInput),
    ("recipient-four-fields", _call(lambda f: f[RECIPIENTS_F][0].append(b"")), MalformedInput),
    ("recipient-not-array", _call(lambda f: f[RECIPIENTS_F].__setitem__(0, BOB)), MalformedInput),
    ("recipient-id-invalid", set_entry(0, 0, "MA.NCB-RABAT"), MalformedInput),
    ("recipient-id-bin", set_entry(0, 0, BOB.encode()), MalformedInput),
    ("recipient-key-id-15", set_entry(0, 1, bytes(15)), MalformedInput),
    ("recipient-wrapped-31", set_entry(0, 2, bytes(31)), MalformedInput),
    ("recipient-wrapped-33", set_entry(0, 2, bytes(33)), MalformedInput),
    ("recipient-wrapped-str", set_entry(0, 2, "w" * 32), MalformedInput),
    # KEY-4: the ephemeral key
    *[
        (f"ephemeral-small-order-{i}", set_field(EPHEMERAL_F, bytes.fromhex(k)), InvalidPeerKey)
        for i, k in enumerate(SMALL_ORDER_X25519)
    ],
    *[
        (
            f"ephemeral-small-order-high-bit-{i}",
            set_field(EPHEMERAL_F, bytes.fromhex(k)[:31] + bytes([bytes.fromhex(k)[31] | 0x80])),
            InvalidPeerKey,
        )
        for i, k in enumerate(SMALL_ORDER_X25519)
    ],
]


@pytest.mark.req(
    "OPEN-2", "ENV-2", "ENV-3", "ENV-4", "ENV-5", "ENV-6", "CODEC-4", "KEY-4", "BIND-1"
)
@pytest.mark.parametrize(("edit", "error"), [pytest.param(e, x, id=i) for i, e, x in HEADER_CASES])
def test_header_checks(edit: Callable[[list[Any]], None], error: type[NcbRelayError]) -> None:
    """Each header is signed by the sender, so only the header check can refuse it."""
    data = forge(edit_header=edit)
    with pytest.raises(error):
        verify_routing(data, directory=DIRECTORY, now=NOW)
    with pytest.raises(error):
        open_as(data)


@pytest.mark.req("OPEN-2", "ENV-2", "CODEC-6")
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"", id="empty"),
        pytest.param(pack({"version": 1}), id="map"),
        pytest.param(pack(1), id="int"),
        pytest.param(pack([1]), id="one-field"),
        pytest.param(b"\xdc\x00\x02\x01\x01", id="array16-for-2"),
        pytest.param(b"\x92\xcc\x01\x01", id="version-uint8"),
        pytest.param(b"\x92\x01\x01\xc0", id="trailing-byte"),
        pytest.param(b"\x9b\x01\x01", id="truncated"),
    ],
)
def test_header_bytes_must_be_canonical(header: bytes) -> None:
    data = forge(header_bytes=header)
    with pytest.raises(MalformedInput):
        verify_routing(data, directory=DIRECTORY, now=NOW)


def _outer(function: Callable[[list[Any]], Any]) -> Callable[[list[Any]], None]:
    def edit(envelope: list[Any]) -> None:
        function(envelope)

    return edit


@pytest.mark.req("ENV-1", "ENV-7", "OPEN-2", "LIM-3")
@pytest.mark.parametrize(
    ("edit", "error"),
    [
        pytest.param(_outer(lambda e: e.pop()), MalformedInput, id="two-elements"),
        pytest.param(_outer(lambda e: e.append(b"")), LimitExceeded, id="four-elements"),
        pytest.param(
            _outer(lambda e: e.__setitem__(0, e[0].hex())), MalformedInput, id="header-str"
        ),
        pytest.param(
            _outer(lambda e: e.__setitem__(1, list(e[1][:3]))), MalformedInput, id="payload-array"
        ),
        pytest.param(
            _outer(lambda e: e.__setitem__(2, e[2][:63])), MalformedInput, id="signature-63"
        ),
        pytest.param(
            _outer(lambda e: e.__setitem__(2, e[2] + b"\x00")), MalformedInput, id="signature-65"
        ),
        pytest.param(_outer(lambda e: e.__setitem__(2, None)), MalformedInput, id="signature-nil"),
        pytest.param(
            _outer(lambda e: e.__setitem__(1, e[1][:79])), MalformedInput, id="payload-79"
        ),
        pytest.param(_outer(lambda e: e.__setitem__(1, b"")), MalformedInput, id="payload-empty"),
        pytest.param(
            _outer(lambda e: e.__setitem__(2, [[b""]])), LimitExceeded, id="outer-depth-3"
        ),
    ],
)
def test_envelope_layout(edit: Callable[[list[Any]], None], error: type[NcbRelayError]) -> None:
    with pytest.raises(error):
        verify_routing(forge(edit_outer=edit), directory=DIRECTORY, now=NOW)


@pytest.mark.req("ENV-1", "OPEN-2")
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(pack({"h": b"", "p": b"", "s": b""}), id="map"),
        pytest.param(pack(None), id="nil"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x93", id="truncated"),
    ],
)
def test_an_envelope_is_a_three_element_array(data: bytes) -> None:
    with pytest.raises(MalformedInput):
        verify_routing(data, directory=DIRECTORY, now=NOW)


@pytest.mark.req("ENV-1", "CODEC-6")
def test_a_non_canonical_outer_encoding_is_refused() -> None:
    header, payload, signature = split(seal_to(b"x").data)
    # the same three byte strings, with the header's length as bin16 instead of bin8
    loose = b"\x93\xc5" + len(header).to_bytes(2, "big") + header + pack(payload) + pack(signature)
    assert msgpack.unpackb(loose) == [header, payload, signature]
    with pytest.raises(MalformedInput):
        verify_routing(loose, directory=DIRECTORY, now=NOW)
    with pytest.raises(MalformedInput):
        verify_routing(seal_to(b"x").data + b"\x00", directory=DIRECTORY, now=NOW)


@pytest.mark.req("ENV-7")
def test_a_payload_of_exactly_80_bytes_passes_the_layout_check() -> None:
    data = forge(edit_payload=lambda p: p[:80])
    routed = verify_routing(data, directory=DIRECTORY, now=NOW)  # the outer signature covers it
    assert len(routed.payload) == 80
    with pytest.raises(DecryptionFailed) as info:
        open_as(data)
    assert info.value.reason == "aead"


@pytest.mark.req("ENV-5")
def test_a_window_of_exactly_30_days_is_accepted() -> None:
    data = forge(expires=NOW + MAX_TTL)
    assert open_as(data).expires - NOW == MAX_TTL == 2_592_000


@pytest.mark.req("LIM-2", "LIM-3")
def test_header_limits() -> None:
    people, _ = _pool(257)
    everyone = [p.public for p in people[1:]]
    with pytest.raises(LimitExceeded):  # 257 recipients
        verify_routing(
            Forge(people[0], [*everyone, IDS[BOB].public]).build(), directory=DIRECTORY, now=NOW
        )
    small = EnvelopeLimits(max_recipients=2)
    assert small.header.max_bytes == 256 + 128 * 2
    with pytest.raises(LimitExceeded):  # 3 recipients over a limit of 2
        verify_routing(forge(to=(BOB, CAROL, DAVE)), directory=DIRECTORY, now=NOW, limits=small)

    def bulky(fields: list[Any]) -> None:  # a header of about 450 bytes, each bin under 256
        fields[REPLY_F] = bytes(200)
        fields[RECIPIENTS_F][0][2] = bytes(100)

    bulky_header = pack(Forge(IDS[ALICE], [IDS[BOB].public], edit_header=bulky).header_fields())
    assert 256 + 128 * 1 < len(bulky_header) <= 256 + 128 * 2
    with pytest.raises(LimitExceeded):  # header bytes over 256 + 128 * max_recipients
        verify_routing(
            forge(to=(BOB,), edit_header=bulky),
            directory=DIRECTORY,
            now=NOW,
            limits=EnvelopeLimits(max_recipients=1),
        )
    with pytest.raises(MalformedInput):  # within the limit: the header is parsed
        verify_routing(
            forge(to=(BOB,), edit_header=bulky), directory=DIRECTORY, now=NOW, limits=small
        )
    with pytest.raises(LimitExceeded):  # str over 256 bytes
        verify_routing(
            forge(edit_header=set_field(SENDER_F, "KR." + "a" * 254)), directory=DIRECTORY, now=NOW
        )
    with pytest.raises(LimitExceeded):  # bin over 256 bytes
        verify_routing(
            forge(edit_header=set_field(REPLY_F, bytes(257))), directory=DIRECTORY, now=NOW
        )
    with pytest.raises(LimitExceeded):  # nesting over 3
        verify_routing(forge(edit_header=set_entry(0, 2, [b""])), directory=DIRECTORY, now=NOW)
    # at the limits: 3 levels, 256-byte strings parse (and then fail for other reasons)
    with pytest.raises(MalformedInput):
        verify_routing(
            forge(edit_header=set_field(SENDER_F, "KR." + "a" * 253)), directory=DIRECTORY, now=NOW
        )
    with pytest.raises(MalformedInput):
        verify_routing(
            forge(edit_header=set_field(REPLY_F, bytes(256))), directory=DIRECTORY, now=NOW
        )


# --- OPEN-4, OPEN-5: the directory's keys ----------------------------------------------------


@pytest.mark.req("OPEN-4", "OPEN-5", "BIND-1")
@pytest.mark.parametrize(
    ("edit", "error"),
    [
        pytest.param(
            _call(lambda f: f.__setitem__(slice(3, 5), ["ZZ.unknown", bytes(16)])),
            UnknownKey,
            id="sender-unknown",
        ),
        pytest.param(set_field(SENDER_KEY_F, bytes(16)), UnknownKey, id="sender-key-unknown"),
        pytest.param(set_field(SENDER_F, "ZZ.unknown"), BindingMismatch, id="sender-renamed"),
        pytest.param(set_field(SENDER_F, DAVE), BindingMismatch, id="sender-key-of-another"),
        pytest.param(
            set_field(SENDER_KEY_F, IDS[ALICE].public.encryption_key.key_id),
            BindingMismatch,
            id="sender-key-is-encryption-key",
        ),
        pytest.param(
            set_field(SENDER_KEY_F, IDS[DAVE].public.signing_key.key_id),
            BindingMismatch,
            id="sender-names-dave-key",
        ),
        pytest.param(set_entry(0, 1, bytes(16)), UnknownKey, id="recipient-key-unknown"),
        pytest.param(
            set_entry(1, 1, IDS[BOB].public.encryption_key.key_id),
            BindingMismatch,
            id="recipient-key-of-another",
        ),
        pytest.param(
            set_entry(0, 1, IDS[BOB].public.signing_key.key_id),
            BindingMismatch,
            id="recipient-key-is-signing-key",
        ),
        pytest.param(
            _call(lambda f: f[RECIPIENTS_F][1].__setitem__(slice(0, 2), ["ZZ.unknown", bytes(16)])),
            UnknownKey,
            id="recipient-unknown",
        ),
        pytest.param(set_entry(1, 0, "ZZ.unknown"), BindingMismatch, id="recipient-renamed"),
    ],
)
def test_directory_checks(edit: Callable[[list[Any]], None], error: type[NcbRelayError]) -> None:
    data = forge(to=(BOB, CAROL), edit_header=edit)  # validly signed by Alice
    with pytest.raises(error):
        verify_routing(data, directory=DIRECTORY, now=NOW)


@pytest.mark.req("OPEN-4")
def test_a_sender_missing_from_the_directory_is_unknown() -> None:
    sealed = seal_to(b"x", (BOB,))
    without_alice = StaticDirectory(IDS[p].public for p in PRINCIPALS if p != ALICE)
    with pytest.raises(UnknownKey):
        verify_routing(sealed.data, directory=without_alice, now=NOW)
    without_bob = StaticDirectory(IDS[p].public for p in PRINCIPALS if p != BOB)
    with pytest.raises(UnknownKey):
        verify_routing(sealed.data, directory=without_bob, now=NOW)


@pytest.mark.req("OPEN-4")
def test_a_sender_key_that_is_not_the_directory_key_is_refused() -> None:
    """Mallory signs with her own key under Alice's name: the directory has another key."""
    mallory = PrivateIdentity(ALICE, SigningKeyPair(bytes([66] * 32)), IDS[ALICE].encryption_keys)
    sealed = seal(
        b"x",
        sender=mallory,
        recipients=[IDS[BOB].public],
        now=NOW,
        seq=1,
        rng=seeded_rng(b"mallory"),
    )
    with pytest.raises(UnknownKey):
        verify_routing(sealed.data, directory=DIRECTORY, now=NOW)


# --- OPEN-8 .. OPEN-11: decryption --------------------------------------------------------

OTHER_KEY = bytes([0xAB] * 32)

DECRYPTION_CASES: list[tuple[str, dict[str, Any]]] = [
    ("not-a-recipient", {"to": (CAROL, DAVE)}),
    ("key-commitment", {"key_for": {BOB: OTHER_KEY}}),
    ("key-commitment", {"edit_header": set_entry(0, 2, bytes(32))}),
    ("key-commitment", {"edit_header": set_field(ID_F, bytes(32))}),
    ("key-commitment", {"edit_header": set_field(EPHEMERAL_F, bytes([9]) + bytes(31))}),
    ("aead", {"edit_payload": lambda p: p[:-1] + bytes([p[-1] ^ 1])}),
    ("aead", {"edit_payload": lambda p: bytes([p[0] ^ 0x80]) + p[1:]}),
    ("aead", {"edit_payload": lambda p: p + b"\x00"}),
    ("aead", {"aad": bytes(32)}),
    ("inner-signature", {"inner_seed": bytes([5] * 32)}),
    ("inner-signature", {"inner_header_hash": bytes(32)}),
]


@pytest.mark.req("OPEN-8", "OPEN-9", "OPEN-10", "OPEN-11", "OPEN-12", "SEAL-2", "SEAL-3")
@pytest.mark.parametrize(
    ("reason", "changes"),
    [pytest.param(r, c, id=f"{r}-{i}") for i, (r, c) in enumerate(DECRYPTION_CASES)],
)
def test_every_decryption_failure_looks_the_same(reason: str, changes: dict[str, Any]) -> None:
    data = forge(**{"to": (BOB, CAROL), **changes})
    routed = verify_routing(data, directory=DIRECTORY, now=NOW)  # the relay accepts it
    guard = ReplayGuard()
    with pytest.raises(DecryptionFailed) as info:
        open_as(data, BOB, replay=guard)
    assert info.value.reason == reason  # for the local log
    assert info.value.wire_code == info.value.code == "decryption-failed"  # for the peer
    assert type(info.value) is DecryptionFailed
    assert len(guard) == 0  # OPEN-12
    assert routed.recipients == tuple(sorted(changes.get("to", (BOB, CAROL))))


@pytest.mark.req("OPEN-8", "SEAL-2")
def test_the_key_commitment_keeps_recipients_in_agreement() -> None:
    """Alice wraps another key for Bob: Carol reads the message, Bob refuses it."""
    data = forge(to=(BOB, CAROL), key_for={BOB: OTHER_KEY})
    assert open_as(data, CAROL).body == b"forged body"
    with pytest.raises(DecryptionFailed) as info:
        open_as(data, BOB)
    assert info.value.reason == "key-commitment"


@pytest.mark.req("OPEN-10", "BIND-1")
def test_a_re_attributed_message_fails_the_inner_signature() -> None:
    """Carol, a recipient, re-sends Alice's signed body to Dave under her own name.

    She knows the content key and the inner signature, so she can build a new
    envelope with a valid outer signature of her own; the inner signature is
    Alice's, over Alice's header, and does not verify under Carol's key.
    """
    original = Forge(IDS[ALICE], [IDS[CAROL].public], body=b"signed by alice")
    alice_header = pack(original.header_fields())
    alice_hash = b2(alice_header, b"NCBR1 header")
    resent = Forge(
        IDS[CAROL],
        [IDS[DAVE].public],
        body=b"signed by alice",
        inner_seed=seed_of(IDS[ALICE]),
        inner_header_hash=alice_hash,
    )
    verify_routing(resent.build(), directory=DIRECTORY, now=NOW)
    with pytest.raises(DecryptionFailed) as info:
        open_as(resent.build(), DAVE)
    assert info.value.reason == "inner-signature"
    # and under Alice's name, the outer signature would have to be Alice's
    forwarded = Forge(
        IDS[ALICE], [IDS[DAVE].public], body=b"signed by alice", outer_seed=seed_of(IDS[CAROL])
    )
    with pytest.raises(BadSignature):
        open_as(forwarded.build(), DAVE)


# --- BIND-1: both signatures cover the header --------------------------------------------------


def _readdress(fields: list[Any]) -> None:
    fields[RECIPIENTS_F][1][:2] = [DAVE, IDS[DAVE].public.encryption_key.key_id]
    fields[RECIPIENTS_F].sort(key=lambda e: e[0].encode())


def _reattribute(fields: list[Any]) -> None:
    fields[SENDER_F : SENDER_KEY_F + 1] = [DAVE, IDS[DAVE].public.signing_key.key_id]


TAMPERING = [
    ("seq", set_field(SEQ_F, 2)),
    ("created", set_field(CREATED_F, NOW - 1)),
    ("expires", set_field(EXPIRES_F, NOW + 60)),
    ("reply-to", set_field(REPLY_F, bytes(32))),
    ("ephemeral", set_field(EPHEMERAL_F, EncryptionKeyPair(bytes([4] * 32)).public_key.raw)),
    ("re-attributed", _reattribute),
    ("message-id", set_field(ID_F, bytes(32))),
    ("wrapped-key", set_entry(0, 2, bytes(32))),
    ("recipient-key-id", set_entry(0, 1, EncryptionKeyPair(bytes([4] * 32)).public_key.key_id)),
    ("stripped-recipient", _call(lambda f: f[RECIPIENTS_F].pop())),
    ("re-addressed", _readdress),
    (
        "extended",
        _call(
            lambda f: f[RECIPIENTS_F].insert(
                0, [ERIN, IDS[ERIN].public.encryption_key.key_id, bytes(32)]
            )
        ),
    ),
]


@pytest.mark.req("BIND-1", "OPEN-6", "SEAL-6")
@pytest.mark.parametrize("edit", [pytest.param(e, id=i) for i, e in TAMPERING])
def test_changing_the_header_breaks_the_outer_signature(edit: Callable[[list[Any]], None]) -> None:
    original = Forge(IDS[ALICE], [IDS[BOB].public, IDS[CAROL].public])
    signed = split(original.build())
    assert open_as(original.build()).body == original.body
    fields = original.header_fields()
    edit(fields)
    changed = pack(fields)
    assert changed != signed[0]
    tampered = pack([changed, signed[1], signed[2]])
    directory = RotatingDirectory(
        [
            *IDS.values(),
            PrivateIdentity(
                BOB,
                IDS[BOB].signer,
                [*IDS[BOB].encryption_keys, EncryptionKeyPair(bytes([4] * 32))],
            ),
        ]
    )
    with pytest.raises(BadSignature):
        verify_routing(tampered, directory=directory, now=NOW)


@pytest.mark.req("BIND-1", "OPEN-6")
def test_header_and_payload_of_two_messages_cannot_be_mixed() -> None:
    first, second = split(seal_to(b"first", seq=1).data), split(seal_to(b"second", seq=2).data)
    for mixed in ([first[0], second[1], first[2]], [first[0], second[1], second[2]]):
        with pytest.raises(BadSignature):
            verify_routing(pack(mixed), directory=DIRECTORY, now=NOW)


# --- BIND-2: replies -------------------------------------------------------------------------


@pytest.mark.req("BIND-2", "ENV-9")
def test_require_reply_to() -> None:
    request = seal_to(b"request", (BOB, CAROL), sender=ALICE, seq=1)
    bob_view = open_as(request.data, BOB)
    reply = seal_to(b"reply", (ALICE,), sender=BOB, seq=1, reply_to=request.message_hash)
    opened = open_as(reply.data, ALICE)
    assert opened.reply_to == request.message_hash
    opened.require_reply_to(request)  # the requester's own SealedEnvelope
    opened.require_reply_to(bob_view)  # or a VerifiedEnvelope of the request

    # not a reply at all, or to another message
    unrelated = open_as(seal_to(b"no reply_to", (ALICE,), sender=BOB, seq=2).data, ALICE)
    with pytest.raises(BindingMismatch):
        unrelated.require_reply_to(request)
    other = seal_to(b"another request", (BOB,), sender=ALICE, seq=3)
    with pytest.raises(BindingMismatch):
        opened.require_reply_to(other)

    # the responder was not asked
    dave_reply = seal_to(b"me too", (ALICE,), sender=DAVE, seq=1, reply_to=request.message_hash)
    with pytest.raises(BindingMismatch):
        open_as(dave_reply.data, ALICE).require_reply_to(request)

    # the reply does not go to the requester
    sideways = seal_to(b"psst", (CAROL,), sender=BOB, seq=4, reply_to=request.message_hash)
    carol_reply = open_as(sideways.data, CAROL)
    carol_request = open_as(request.data, CAROL)
    with pytest.raises(BindingMismatch):
        carol_reply.require_reply_to(carol_request)


# --- ENV-8: sequence numbers -------------------------------------------------------------------


@pytest.mark.req("ENV-8", "REPLAY-2")
def test_seq_is_sealed_as_given_and_reuse_is_refused() -> None:
    guard = ReplayGuard()
    for seq in (1, 2, 3):
        sealed = seal_to(b"message %d" % seq, seq=seq)
        assert sealed.header.seq == seq
        assert open_as(sealed.data, replay=guard).seq == seq
    reused = seal_to(b"another message with seq 2", seq=2)
    assert reused.header.seq == 2
    with pytest.raises(ProtocolError) as info:
        open_as(reused.data, replay=guard)
    assert info.value.code == "replay"


@pytest.mark.req("SEAL-6", "KEY-1")
def test_a_signer_outside_memory_seals_too() -> None:
    inner = IDS[ALICE].signer
    calls: list[bytes] = []

    class Hsm:
        @property
        def public_key(self) -> SigningPublicKey:
            return inner.public_key

        def sign(self, message: bytes) -> bytes:
            calls.append(message[:32])
            return inner.sign(message)

    alice = PrivateIdentity(ALICE, Hsm(), IDS[ALICE].encryption_keys)
    sealed = seal(
        b"via hsm",
        sender=alice,
        recipients=[IDS[BOB].public],
        now=NOW,
        seq=1,
        rng=seeded_rng(b"hsm"),
    )
    assert calls == [INNER_LABEL[:32], OUTER_LABEL[:32]]
    assert open_as(sealed.data).body == b"via hsm"


def test_a_sender_reloads_its_sealed_envelope_from_the_bytes_it_kept() -> None:
    people, _ = _pool(3)
    sealed = seal(
        b"kept",
        sender=people[0],
        recipients=[p.public for p in people[1:]],
        now=NOW,
        seq=7,
        rng=seeded_rng(b"kept"),
        reply_to=b"\x05" * 32,
    )
    assert SealedEnvelope.from_bytes(sealed.data) == sealed
    with pytest.raises(MalformedInput):
        SealedEnvelope.from_bytes(sealed.data[:-1])
    with pytest.raises(LimitExceeded):
        SealedEnvelope.from_bytes(sealed.data, EnvelopeLimits(max_recipients=1))
