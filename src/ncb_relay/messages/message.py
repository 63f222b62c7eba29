"""Typed messages: sealing a body, and reading a verified envelope's body (spec/messages.md).

A body is checked twice.  :func:`~ncb_relay.messages.registry.decode_body`
checks it alone, against its schema.  The rules here check it against the
signed envelope that carried it: a reply must name the request it answers
(``reply_to``), no time in it may already be past when it was sent (the
envelope's ``created``), and only the coordinator may publish a notice.
:func:`seal_message` applies the same rules before sealing, so the library
never sends what a receiver would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..envelope import DEFAULT_TTL, SealedEnvelope, VerifiedEnvelope, seal
from ..errors import BindingMismatch, InvalidBody, ProtocolError, UsageError
from ..header import DEFAULT_LIMITS, EnvelopeLimits
from ..identity import PrivateIdentity, PublicIdentity
from ..primitives import RandomSource
from .assistance import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    StatusUpdate,
    Withdrawal,
)
from .body import Body, OpaqueBody
from .delivery_receipt import DeliveryReceipt
from .diffusion import Diffusion, Notice
from .provenance import DisseminationPermission
from .registry import DEFAULT_REGISTRY, BodyRegistry, encode_body

__all__ = ["REPLY_BODIES", "Message", "check_context", "read_message", "seal_message"]

REPLY_BODIES: tuple[type[Body], ...] = (
    Acknowledgement,
    StatusUpdate,
    AssistanceResponse,
    Withdrawal,
)


@dataclass(frozen=True, slots=True)
class Message:
    """A verified envelope and its body, checked against its schema and its envelope."""

    envelope: VerifiedEnvelope
    body: Body | OpaqueBody

    @property
    def sender(self) -> str:
        return self.envelope.sender

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.envelope.recipients

    @property
    def message_id(self) -> bytes:
        return self.envelope.message_id

    @property
    def message_hash(self) -> bytes:
        return self.envelope.message_hash

    @property
    def reply_to(self) -> bytes | None:
        return self.envelope.reply_to

    @property
    def created(self) -> int:
        return self.envelope.created


def _not_before(value: int | None, created: int, field: str) -> None:
    if value is not None and value <= created:
        raise InvalidBody(
            f"{field}: is not later than the message", field=field, reason="in-the-past"
        )


def _check_receipt(body: DeliveryReceipt, *, created: int, reply_to: bytes | None) -> None:
    """MSG-13: a receipt names, in ``reply_to``, the message it receipts; it follows it."""
    if reply_to != body.message_hash:
        raise BindingMismatch(
            f"a {body.schema_id} body sets reply_to to the message hash it receipts"
        )
    if body.received_at > created:
        raise InvalidBody(
            "content.received_at: is later than the receipt",
            field="content.received_at",
            reason="invalid",
        )


def check_context(
    body: Body | OpaqueBody,
    *,
    sender: str,
    created: int,
    reply_to: bytes | None,
    coordinator: str | None,
) -> None:
    """Check ``body`` against the envelope that carries it (MSG-6 .. MSG-9); raise if it fails.

    ``coordinator`` is the coordinator's principal id; ``None`` skips the
    notice rule (only when sealing, where the receiver applies it).
    """
    if isinstance(body, OpaqueBody):
        return
    if isinstance(body, REPLY_BODIES) and reply_to is None:
        raise BindingMismatch(f"a {body.schema_id} body must answer a request (reply_to)")
    if isinstance(body, DeliveryReceipt):
        _check_receipt(body, created=created, reply_to=reply_to)
    elif isinstance(body, AssistanceRequest):
        _not_before(body.urgency.deadline, created, "content.urgency.deadline")
    elif isinstance(body, (Acknowledgement, StatusUpdate)):
        _not_before(body.expected_answer_by, created, "content.expected_answer_by")
    elif isinstance(body, (Diffusion, Notice, DisseminationPermission)):
        _not_before(body.valid_until, created, "content.valid_until")
    if isinstance(body, Notice) and coordinator is not None and sender != coordinator:
        raise InvalidBody(
            f"schema: {body.schema_id} is published by the coordinator only",
            field="schema",
            reason="not-permitted",
        )


def read_message(
    envelope: VerifiedEnvelope,
    *,
    coordinator: str,
    registry: BodyRegistry = DEFAULT_REGISTRY,
) -> Message:
    """Decode and check the body of a verified envelope; raise a ProtocolError if it is refused."""
    if not isinstance(envelope, VerifiedEnvelope):
        raise UsageError("read_message expects a VerifiedEnvelope (from open_envelope)")
    body = registry.decode(envelope.body)
    check_context(
        body,
        sender=envelope.sender,
        created=envelope.created,
        reply_to=envelope.reply_to,
        coordinator=coordinator,
    )
    return Message(envelope, body)


def seal_message(
    body: Body,
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
    """Encode ``body`` and seal it; refuse locally (:class:`UsageError`) what a receiver would."""
    try:
        check_context(
            body, sender=sender.principal, created=now, reply_to=reply_to, coordinator=None
        )
    except ProtocolError as exc:
        raise UsageError(f"not sealed: {exc.message}") from exc
    return seal(
        encode_body(body),
        sender=sender,
        recipients=recipients,
        now=now,
        seq=seq,
        rng=rng,
        ttl=ttl,
        reply_to=reply_to,
        limits=limits,
    )
