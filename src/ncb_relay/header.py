"""The NCBR/1 envelope layout: what the relay sees (spec/protocol.md, "Envelope").

An envelope is the canonical encoding of a three-element array
``[header, payload, signature]``: the header is a byte string holding the
canonical encoding of an eleven-element array (carried as bytes so that
everyone hashes exactly the bytes the sender signed), the payload is the
XChaCha20-Poly1305 ciphertext, and the signature is the sender's outer
Ed25519 signature.  This module parses and checks that structure; it does no
cryptography beyond rejecting small-order ephemeral keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import codec, primitives
from .codec import CodecLimits, Value
from .errors import LimitExceeded, MalformedInput, UnsupportedSuite, UnsupportedVersion, UsageError
from .identity import KEY_ID_BYTES, check_principal_id

__all__ = [
    "MAX_TTL",
    "SUITE",
    "SUITE_NAME",
    "VERSION",
    "EnvelopeLimits",
    "Header",
    "ParsedEnvelope",
    "RecipientEntry",
    "parse_envelope",
]

VERSION = 1
SUITE = 1
SUITE_NAME = "NCBR1-ED25519-X25519-XCHACHA20POLY1305-BLAKE2B"
MAX_TTL = 30 * 24 * 3600
MAX_SEQ = 2**63 - 1
MAX_TIME = 2**40  # year 36812; keeps times well inside every language's integer types
HEADER_FIELDS = 11
ENVELOPE_FIELDS = 3
WRAPPED_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class EnvelopeLimits:
    """Limits checked before memory is spent (LIM-1 .. LIM-3)."""

    max_envelope_bytes: int = 8 * 1024 * 1024
    max_recipients: int = 256

    def __post_init__(self) -> None:
        if not 1024 <= self.max_envelope_bytes <= 64 * 1024 * 1024:
            raise UsageError("max_envelope_bytes must be between 1 KiB and 64 MiB")
        if not 1 <= self.max_recipients <= 1024:
            raise UsageError("max_recipients must be between 1 and 1024")

    @property
    def outer(self) -> CodecLimits:
        return CodecLimits(
            max_bytes=self.max_envelope_bytes,
            max_str_bytes=self.max_envelope_bytes,
            max_bin_bytes=self.max_envelope_bytes,
            max_array_items=ENVELOPE_FIELDS,
            max_map_items=ENVELOPE_FIELDS,
            max_depth=2,
        )

    @property
    def header(self) -> CodecLimits:
        return CodecLimits(
            max_bytes=256 + self.max_recipients * 128,
            max_str_bytes=256,
            max_bin_bytes=256,
            max_array_items=max(self.max_recipients, HEADER_FIELDS),
            max_map_items=HEADER_FIELDS,
            max_depth=3,
        )


DEFAULT_LIMITS = EnvelopeLimits()


@dataclass(frozen=True, slots=True)
class RecipientEntry:
    principal: str
    key_id: bytes
    wrapped_key: bytes

    def to_wire(self) -> list[Value]:
        return [self.principal, self.key_id, self.wrapped_key]


@dataclass(frozen=True, slots=True)
class Header:
    """The routing header.  Building one checks only types; parsing checks everything."""

    version: int
    suite: int
    message_id: bytes
    sender: str
    sender_key_id: bytes
    seq: int
    created: int
    expires: int
    reply_to: bytes | None
    ephemeral: bytes
    recipients: tuple[RecipientEntry, ...]

    def to_wire(self) -> list[Value]:
        return [
            self.version,
            self.suite,
            self.message_id,
            self.sender,
            self.sender_key_id,
            self.seq,
            self.created,
            self.expires,
            self.reply_to,
            self.ephemeral,
            [entry.to_wire() for entry in self.recipients],
        ]

    def encode(self) -> bytes:
        return codec.encode(self.to_wire())

    @property
    def recipient_ids(self) -> tuple[str, ...]:
        return tuple(entry.principal for entry in self.recipients)

    def entry_for(self, principal: str) -> RecipientEntry | None:
        for entry in self.recipients:
            if entry.principal == principal:
                return entry
        return None


def _bin(value: Value, length: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise MalformedInput(f"{what} must be a {length}-byte binary string")
    return value


def _uint(value: Value, maximum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise MalformedInput(f"{what} must be an unsigned integer up to {maximum}")
    return value


def _recipients(value: Value, limits: EnvelopeLimits) -> tuple[RecipientEntry, ...]:
    if not isinstance(value, list) or not value:
        raise MalformedInput("recipients must be a non-empty array")
    if len(value) > limits.max_recipients:
        raise LimitExceeded(f"more than {limits.max_recipients} recipients")
    entries: list[RecipientEntry] = []
    previous = b""
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise MalformedInput("a recipient entry is a three-element array")
        principal = check_principal_id(item[0])
        encoded = principal.encode("ascii")
        if encoded <= previous:
            raise MalformedInput("recipients must be unique and sorted by principal id")
        previous = encoded
        entries.append(
            RecipientEntry(
                principal,
                _bin(item[1], KEY_ID_BYTES, "recipient key id"),
                _bin(item[2], WRAPPED_KEY_BYTES, "wrapped key"),
            )
        )
    return tuple(entries)


def parse_header(value: Value, limits: EnvelopeLimits) -> Header:
    """Check a decoded header value field by field (ENV-2 .. ENV-7)."""
    if not isinstance(value, list) or len(value) < 2:
        raise MalformedInput("header must be an array")
    version = _uint(value[0], 2**64 - 1, "version")
    if version != VERSION:
        raise UnsupportedVersion(f"protocol version {version} is not supported")
    suite = _uint(value[1], 2**64 - 1, "suite")
    if suite != SUITE:
        raise UnsupportedSuite(f"suite {suite} is not supported")
    if len(value) != HEADER_FIELDS:
        raise MalformedInput(f"a version 1 header has {HEADER_FIELDS} fields")
    created = _uint(value[6], MAX_TIME, "created")
    expires = _uint(value[7], MAX_TIME, "expires")
    if expires <= created:
        raise MalformedInput("expires must be later than created")
    if expires - created > MAX_TTL:
        raise LimitExceeded(f"validity window longer than {MAX_TTL} s")
    reply_to = value[8]
    if reply_to is not None:
        reply_to = _bin(reply_to, primitives.HASH_BYTES, "reply_to")
    ephemeral = _bin(value[9], primitives.PUBLIC_KEY_BYTES, "ephemeral key")
    primitives.x25519_check_public_key(ephemeral)
    return Header(
        version=version,
        suite=suite,
        message_id=_bin(value[2], primitives.HASH_BYTES, "message id"),
        sender=check_principal_id(value[3]),
        sender_key_id=_bin(value[4], KEY_ID_BYTES, "sender key id"),
        seq=_uint(value[5], MAX_SEQ, "seq"),
        created=created,
        expires=expires,
        reply_to=reply_to,
        ephemeral=ephemeral,
        recipients=_recipients(value[10], limits),
    )


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    """An envelope whose structure is valid; nothing about it is verified yet."""

    header_bytes: bytes
    header: Header
    payload: bytes
    signature: bytes


def parse_envelope(data: bytes, limits: EnvelopeLimits = DEFAULT_LIMITS) -> ParsedEnvelope:
    """Check the size, the canonical encoding and the layout of an envelope."""
    if not isinstance(data, bytes):
        raise UsageError("an envelope is bytes")
    if len(data) > limits.max_envelope_bytes:
        raise LimitExceeded(f"envelope of {len(data)} bytes exceeds {limits.max_envelope_bytes}")
    outer = codec.decode(data, limits=limits.outer)
    if not isinstance(outer, list) or len(outer) != ENVELOPE_FIELDS:
        raise MalformedInput("an envelope is a three-element array")
    header_bytes, payload, signature = outer
    if not isinstance(header_bytes, bytes) or not isinstance(payload, bytes):
        raise MalformedInput("header and payload must be binary strings")
    signature = _bin(signature, primitives.SIGNATURE_BYTES, "signature")
    if len(payload) < primitives.AEAD_TAG_BYTES + primitives.SIGNATURE_BYTES:
        raise MalformedInput("payload is too short to hold a tag and a signature")
    header = parse_header(codec.decode(header_bytes, limits=limits.header), limits)
    return ParsedEnvelope(header_bytes, header, payload, signature)
