"""Check envelope cases against the library, then record them as JSON test entries.

Each case states its expected outcome by hand (the error code an attack must
produce); the recorder runs the reference implementation on it and raises
``AssertionError`` if the library disagrees, so no file is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from construction import Draft, Forged, honest, seal_draft, xor
from principals import DIRECTORY, MAX_SKEW, NOW, A, Principal
from vectorfile import JSON

from ncb_relay import primitives
from ncb_relay.disclosure import DisclosedMessage, verify_disclosure
from ncb_relay.envelope import (
    PERSON_BODY,
    PERSON_PAYLOAD,
    Disclosure,
    SealedEnvelope,
    VerifiedEnvelope,
    commitment,
    header_hash,
    message_hash,
    open_envelope,
    payload_key,
    verify_routing,
    wrap_pad,
)
from ncb_relay.errors import DecryptionFailed, NcbRelayError
from ncb_relay.freshness import FreshnessPolicy, ReplayGuard
from ncb_relay.header import EnvelopeLimits

DEFAULT_ENVELOPE_LIMITS = EnvelopeLimits()
# errors that a relay's check (OPEN-1 .. OPEN-6) cannot see: it passes such envelopes
ROUTING_PASSES = {"decryption-failed", "replay"}

T = TypeVar("T")


def envelope_limits(overrides: JSON | None) -> EnvelopeLimits:
    overrides = overrides or {}
    return EnvelopeLimits(
        max_envelope_bytes=overrides.get(
            "maxEnvelopeBytes", DEFAULT_ENVELOPE_LIMITS.max_envelope_bytes
        ),
        max_recipients=overrides.get("maxRecipients", DEFAULT_ENVELOPE_LIMITS.max_recipients),
    )


@dataclass
class Outcome(Generic[T]):
    """What the library did: the error code (and local reason), or the value it returned."""

    error: str | None = None
    reason: str | None = None
    value: T | None = None

    def check(self, comment: str, error: str | None, reason: str | None) -> T | None:
        if self.error != error or (reason is not None and self.reason != reason):
            raise AssertionError(f"{comment}: expected {error}/{reason}, library says {self}")
        return self.value


def outcome(action: Callable[[], T]) -> Outcome[T]:
    try:
        value = action()
    except DecryptionFailed as exc:
        return Outcome(exc.code, exc.reason)
    except NcbRelayError as exc:
        return Outcome(exc.code)
    return Outcome(value=value)


def library_open(
    data: bytes, recipient: Principal, now: int, limits: EnvelopeLimits, guard: ReplayGuard
) -> Outcome[VerifiedEnvelope]:
    return outcome(
        lambda: open_envelope(
            data,
            recipient=recipient.identity,
            directory=DIRECTORY,
            now=now,
            replay=guard,
            limits=limits,
        )
    )


def library_route(data: bytes, now: int, limits: EnvelopeLimits) -> str | None:
    policy = FreshnessPolicy(MAX_SKEW)
    return outcome(
        lambda: verify_routing(data, directory=DIRECTORY, now=now, policy=policy, limits=limits)
    ).error


def described(comment: str, flags: list[str], reqs: list[str]) -> JSON:
    """The fields every test starts with (its tcId is added when the file is numbered)."""
    return {"comment": comment, "flags": flags, "requirements": reqs}


def verdict(error: str | None) -> JSON:
    return {"result": "valid"} if error is None else {"result": "invalid", "error": error}


class Recorder:
    """The checked cases of envelope.json and disclosure.json, in the order they were made."""

    def __init__(self) -> None:
        self.seal_tests: list[JSON] = []
        self.open_tests: list[JSON] = []
        self.reply_tests: list[JSON] = []
        self.disclosure_tests: list[JSON] = []

    # --- seal ---------------------------------------------------------------

    def seal_case(self, d: Draft, comment: str, flags: list[str], reqs: list[str]) -> Forged:
        sealed = seal_draft(d)
        f = honest(d)
        content_key, secret = d.content_key, d.ephemeral_secret
        message_id = commitment(content_key)
        ephemeral = primitives.x25519_public_key(secret)
        wraps = []
        for r in d.sorted_recipients:
            shared = primitives.x25519(secret, r.encryption_public)
            pad = wrap_pad(shared, ephemeral, r.encryption_public, message_id)
            wraps.append(
                {
                    "recipient": r.id,
                    "encryptionPublicKey": r.encryption_public.hex(),
                    "keyId": r.encryption_key_id.hex(),
                    "sharedSecret": shared.hex(),
                    "pad": pad.hex(),
                    "wrappedKey": xor(content_key, pad).hex(),
                }
            )
        h_digest = header_hash(f.header)
        p_digest = primitives.blake2b(f.payload, person=PERSON_PAYLOAD)
        m_hash = message_hash(h_digest, p_digest)
        assert sealed.header.encode() == f.header
        assert sealed.message_id == message_id
        assert sealed.message_hash == m_hash
        for r in d.recipients:
            got = library_open(f.envelope, r, NOW, DEFAULT_ENVELOPE_LIMITS, ReplayGuard())
            opened = got.check(f"{d.label} opened by {r.id}", None, None)
            if opened is None or opened.body != d.body:
                raise AssertionError(f"{d.label}: {r.id} cannot open it: {got}")
        self.seal_tests.append(
            described(comment, flags, reqs)
            | {
                "sender": d.sender.id,
                "recipients": [r.id for r in d.sorted_recipients],
                "body": d.body.hex(),
                "seq": d.seq,
                "created": d.created,
                "ttl": d.ttl,
                "expires": d.created + d.ttl,
                "replyTo": None if d.reply_to is None else d.reply_to.hex(),
                "contentKey": content_key.hex(),
                "ephemeralSecret": secret.hex(),
                "messageId": message_id.hex(),
                "ephemeralPublicKey": ephemeral.hex(),
                "wraps": wraps,
                "header": f.header.hex(),
                "headerHash": h_digest.hex(),
                "bodyHash": primitives.blake2b(d.body, person=PERSON_BODY).hex(),
                "innerSignature": f.inner.hex(),
                "payloadKey": payload_key(content_key).hex(),
                "payload": f.payload.hex(),
                "payloadHash": p_digest.hex(),
                "outerSignature": f.outer.hex(),
                "messageHash": m_hash.hex(),
                "envelope": f.envelope.hex(),
                "now": NOW,
                "result": "valid",
            }
        )
        return f

    # --- open ---------------------------------------------------------------

    def open_case(
        self,
        comment: str,
        flags: list[str],
        reqs: list[str],
        envelope: bytes,
        error: str | None,
        *,
        recipient: Principal = A,
        reason: str | None = None,
        body: bytes | None = None,
        limits: JSON | None = None,
        prior: Sequence[tuple[bytes, str | None]] = (),
        now: int = NOW,
    ) -> None:
        lim = envelope_limits(limits)
        guard = ReplayGuard(policy=FreshnessPolicy(MAX_SKEW))
        prior_json = []
        for data, expected in prior:
            library_open(data, recipient, now, lim, guard).check(
                f"{comment} (prior)", expected, None
            )
            prior_json.append({"envelope": data.hex()} | verdict(expected))
        got = library_open(envelope, recipient, now, lim, guard)
        opened = got.check(comment, error, reason)
        if error is None and (opened is None or opened.body != body):
            raise AssertionError(f"{comment}: wrong body")
        routing = None if error is None or error in ROUTING_PASSES else error
        if library_route(envelope, now, lim) != routing:
            raise AssertionError(f"{comment}: routing verdict differs from {routing}")
        entry = described(comment, flags, reqs) | {"recipient": recipient.id, "now": now}
        if limits:
            entry["limits"] = limits
        if prior_json:
            entry["prior"] = prior_json
        entry["envelope"] = envelope.hex()
        entry["routingError"] = routing
        if error is None:
            assert body is not None
            entry |= {"result": "valid", "body": body.hex()}
        else:
            entry |= verdict(error) | local_reason(got)
        self.open_tests.append(entry)

    def expecting(
        self, flags: list[str], reqs: list[str], error: str | None, **options: Any
    ) -> Callable[[str, bytes], None]:
        """``open_case`` for a run of cases that share flags, requirements, error and options."""

        def record(comment: str, envelope: bytes) -> None:
            self.open_case(comment, flags, reqs, envelope, error, **options)

        return record

    # --- reply binding ------------------------------------------------------

    def reply_case(
        self,
        comment: str,
        flags: list[str],
        reqs: list[str],
        request: Forged,
        response: Forged,
        *,
        opened_by: Principal,
        error: str | None,
    ) -> None:
        routed = verify_routing(request.envelope, directory=DIRECTORY, now=NOW)
        record = SealedEnvelope(
            request.envelope, routed.message_id, routed.message_hash, routed.header
        )
        verified = open_envelope(
            response.envelope,
            recipient=opened_by.identity,
            directory=DIRECTORY,
            now=NOW,
            replay=ReplayGuard(),
        )
        outcome(lambda: verified.require_reply_to(record)).check(comment, error, None)
        self.reply_tests.append(
            described(comment, flags, reqs)
            | {
                "request": request.envelope.hex(),
                "requestMessageHash": routed.message_hash.hex(),
                "response": response.envelope.hex(),
                "responseOpenedBy": opened_by.id,
                "now": NOW,
            }
            | verdict(error)
        )

    # --- disclosure ---------------------------------------------------------

    def disclosure_case(
        self,
        comment: str,
        flags: list[str],
        reqs: list[str],
        disclosure: Disclosure,
        error: str | None,
        *,
        reason: str | None = None,
        body: bytes | None = None,
    ) -> None:
        got: Outcome[DisclosedMessage] = outcome(
            lambda: verify_disclosure(disclosure, directory=DIRECTORY)
        )
        proven = got.check(comment, error, reason)
        entry = described(comment, flags, reqs) | {
            "envelope": disclosure.envelope.hex(),
            "contentKey": disclosure.content_key.hex(),
        }
        if error is None:
            if proven is None or proven.body != body:
                raise AssertionError(f"{comment}: wrong body")
            entry |= {
                "result": "valid",
                "body": proven.body.hex(),
                "sender": proven.sender,
                "recipients": list(proven.recipients),
                "created": proven.created,
                "messageHash": proven.message_hash.hex(),
            }
        else:
            entry |= verdict(error) | local_reason(got)
        self.disclosure_tests.append(entry)


def local_reason(got: Outcome[Any]) -> JSON:
    return {} if got.reason is None else {"localReason": got.reason}
