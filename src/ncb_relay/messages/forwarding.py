"""Forwarding a received message with its provenance (spec/messages.md, "Forwarding").

Theory of operation.  A forwarder that opened a message holds its content key,
so it can disclose it (DISC-1): it seals a :class:`~.provenance.Forward` body
carrying the original envelope and key to new recipients.  The final recipient
verifies two signatures: the forwarder's, on the envelope it received, and the
original author's, by verifying the disclosure with the directory.  It then
knows who wrote the information, who passed it on, and to whom each addressed
it.

The original's handling code travels inside the original's signed body, so no
forwarder can weaken it.  Under H2 (no onward dissemination without
permission) a forward is allowed only with the originator's signed
:class:`~.provenance.DisseminationPermission`, carried as a second disclosure,
naming the original by its message hash and the new recipients.  The library
refuses to build a forward that a receiver would refuse, and a receiver
refuses a forward that lacks what it needs.  Forwarding is one hop: a forward
is never forwarded again, and a body the receiver cannot read (opaque) is
never forwarded, since its handling code cannot be known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import primitives
from .._construct import NoPublicConstructor
from ..directory import KeyDirectory
from ..disclosure import DisclosedMessage, verify_disclosure
from ..envelope import DEFAULT_TTL, SealedEnvelope, VerifiedEnvelope
from ..errors import BindingMismatch, DisseminationForbidden, UsageError
from ..identity import PrivateIdentity, PublicIdentity
from ..primitives import RandomSource
from .body import Body, OpaqueBody
from .handling import Handling
from .message import Message, check_context, read_message, seal_message
from .provenance import CarriedDisclosure, DisseminationPermission, Forward
from .registry import DEFAULT_REGISTRY, BodyRegistry

__all__ = ["ForwardedMessage", "SealedForward", "seal_forward", "verify_forward"]


@dataclass(frozen=True, slots=True)
class SealedForward:
    """A forward as its sender keeps it: the sealed envelope, its body and the original's hash."""

    sealed: SealedEnvelope
    body: Forward
    original_hash: bytes


class ForwardedMessage(metaclass=NoPublicConstructor):
    """A forward whose forwarder, original author and permission all verified.

    Only :func:`verify_forward` makes one.  ``original_body`` is the
    information; its ``handling`` is the originator's and governs what the
    recipient may do with it.
    """

    __slots__ = ("forward", "original", "original_body", "permission")

    def __init__(
        self,
        forward: Message,
        original: DisclosedMessage,
        original_body: Body,
        permission: DisclosedMessage | None,
    ) -> None:
        self.forward = forward
        self.original = original
        self.original_body = original_body
        self.permission = permission

    @property
    def forwarder(self) -> str:
        return self.forward.sender

    @property
    def author(self) -> str:
        return self.original.sender

    @property
    def original_hash(self) -> bytes:
        return self.original.message_hash

    def __repr__(self) -> str:
        return (
            f"ForwardedMessage({self.original_body.schema_id} by {self.author!r}, "
            f"forwarded by {self.forwarder!r})"
        )


def _forwardable(body: Body | OpaqueBody) -> Body:
    if isinstance(body, OpaqueBody):
        raise DisseminationForbidden(
            f"a body of unknown schema {body.schema_id} cannot be forwarded: "
            "its handling code is unknown"
        )
    if isinstance(body, Forward):
        raise DisseminationForbidden("a forward is not forwarded again (one hop only)")
    return body


def _check_permission(
    permission: DisclosedMessage | VerifiedEnvelope,
    body: Body | OpaqueBody,
    *,
    original: DisclosedMessage | VerifiedEnvelope,
    forwarder: str,
    targets: Iterable[str],
    at: int,
) -> None:
    """FWD-4: the originator's permission covers this original, forwarder and recipients."""
    if permission.sender != original.sender:
        raise DisseminationForbidden("the permission is not signed by the originator")
    if not isinstance(body, DisseminationPermission):
        raise DisseminationForbidden("the permission is not a dissemination permission")
    if not primitives.constant_time_equal(body.original, original.message_hash):
        raise DisseminationForbidden("the permission is for another message")
    if forwarder not in permission.recipients:
        raise DisseminationForbidden(f"the permission was not given to {forwarder}")
    already = {original.sender, *original.recipients}
    for target in targets:
        if target not in already and target not in body.granted_to:
            raise DisseminationForbidden(f"the permission does not cover {target}")
    if body.valid_until is not None and at > body.valid_until:
        raise DisseminationForbidden("the permission has expired")


def seal_forward(
    original: VerifiedEnvelope,
    *,
    sender: PrivateIdentity,
    recipients: Iterable[PublicIdentity],
    now: int,
    seq: int,
    rng: RandomSource,
    coordinator: str,
    permission: VerifiedEnvelope | None = None,
    handling: Handling | None = None,
    note: str | None = None,
    ttl: int = DEFAULT_TTL,
    registry: BodyRegistry = DEFAULT_REGISTRY,
) -> SealedForward:
    """Forward ``original`` (a message ``sender`` received) to ``recipients``.

    Raises :class:`DisseminationForbidden` when the original's handling code
    forbids it and ``permission`` (the originator's signed
    :class:`DisseminationPermission`, as received) does not cover every new
    recipient.  The forward's own ``handling`` defaults to the original's.
    """
    if not isinstance(original, VerifiedEnvelope):
        raise UsageError("seal_forward forwards a VerifiedEnvelope it opened")
    targets = tuple(recipients)
    if sender.principal not in original.recipients:
        raise UsageError(f"{sender.principal} was not a recipient of the original")
    body = _forwardable(read_message(original, coordinator=coordinator, registry=registry).body)
    names = [target.principal for target in targets]
    carried_permission = None
    if permission is not None:
        granted = read_message(permission, coordinator=coordinator, registry=registry).body
        _check_permission(
            permission,
            granted,
            original=original,
            forwarder=sender.principal,
            targets=names,
            at=now,
        )
        carried_permission = CarriedDisclosure.of(permission.disclose())
    elif body.handling.forbids_dissemination:
        raise DisseminationForbidden(
            "the originator's handling code H2 forbids onward dissemination without permission"
        )
    forward = Forward(
        handling=handling if handling is not None else body.handling,
        original=CarriedDisclosure.of(original.disclose()),
        permission=carried_permission,
        note=note,
    )
    sealed = seal_message(
        forward, sender=sender, recipients=targets, now=now, seq=seq, rng=rng, ttl=ttl
    )
    return SealedForward(sealed, forward, original.message_hash)


def verify_forward(
    message: Message,
    *,
    directory: KeyDirectory,
    coordinator: str,
    registry: BodyRegistry = DEFAULT_REGISTRY,
) -> ForwardedMessage:
    """Verify a received forward: the original's author, the forwarder, and any permission.

    ``message`` is the forward as :func:`read_message` returned it, so the
    forwarder's signature is already verified.  Raises a ProtocolError if the
    original or the permission does not verify (DISC-1), if the forwarder did
    not receive the original (``binding-mismatch``), if either body is invalid,
    or if the original's handling code forbids the forward
    (``dissemination-forbidden``).
    """
    body = message.body
    if not isinstance(body, Forward):
        raise UsageError("verify_forward expects a message with a Forward body")
    original = verify_disclosure(body.original.to_disclosure(), directory=directory)
    if message.sender not in original.recipients:
        raise BindingMismatch(f"the forwarder {message.sender} was not a recipient of the original")
    information = registry.decode(original.body)
    check_context(
        information,
        sender=original.sender,
        created=original.created,
        reply_to=original.header.reply_to,
        coordinator=coordinator,
    )
    information = _forwardable(information)
    permission = None
    if body.permission is not None:
        permission = verify_disclosure(body.permission.to_disclosure(), directory=directory)
        granted = registry.decode(permission.body)
        check_context(
            granted,
            sender=permission.sender,
            created=permission.created,
            reply_to=permission.header.reply_to,
            coordinator=coordinator,
        )
        _check_permission(
            permission,
            granted,
            original=original,
            forwarder=message.sender,
            targets=message.recipients,
            at=message.created,
        )
    elif information.handling.forbids_dissemination:
        raise DisseminationForbidden(
            "the original's handling code H2 forbids this forward: no permission travels with it"
        )
    return ForwardedMessage._create(message, original, information, permission)
