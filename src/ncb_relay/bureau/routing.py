"""What a verified message means to one bureau: new work, a copy, a bound or parked reply.

:class:`Router` holds the bureau's :class:`~ncb_relay.messages.Conversations`
and decides, for each message that passed :func:`~ncb_relay.messages.read_message`,
what it is.  It does no I/O: the bureau records the result and hands it over.

- A forward is verified (:func:`~ncb_relay.messages.verify_forward`: the
  original author, the forwarder, the handling code); it binds the replies to
  it when its original is a request followed here.
- A request (direct or forwarded) is new work once: a request this bureau
  wrote, or was handed already by the other route, is a *copy*.
- A reply, withdrawal or error report is bound to its conversation, or parked
  until the request or forward it names is known.  Each sender may park at
  most ``max_parked_per_sender`` (more is refused: :class:`LimitExceeded`);
  when the whole parking space is full, :class:`ParkingFull` says the bureau
  cannot take the message now (it is left at the relay).  The caps do not
  apply while the journal is replayed: what it holds was admitted before.
- A delivery receipt is evidence, never part of a conversation (MSG-15):
  it is handed over as it is, whatever its ``reply_to`` names.
- Any other message, or a reply to something this bureau does not follow
  and that is not part of a conversation, is handed over as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..directory import KeyDirectory
from ..errors import BindingMismatch, LimitExceeded, UsageError
from ..messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Body,
    BodyRegistry,
    Conversation,
    Conversations,
    Delivery,
    DeliveryReceipt,
    ErrorReport,
    Forward,
    ForwardedMessage,
    Message,
    OpaqueBody,
    StatusUpdate,
    Step,
    Withdrawal,
    verify_forward,
)

__all__ = ["ParkingFull", "Routed", "Router"]

CONVERSATION_BODIES = (Acknowledgement, StatusUpdate, AssistanceResponse, Withdrawal, ErrorReport)


class ParkingFull(Exception):
    """The whole parking space is full: the bureau cannot take this reply now."""


@dataclass(frozen=True, slots=True)
class Routed:
    """What a message is here, and the parked replies it lets through."""

    message: Message
    body: Body | OpaqueBody  # the original's, for a forward
    forwarded: ForwardedMessage | None = None
    conversation: Conversation | None = None
    step: Step | None = None
    copy: bool = False
    applied: tuple[Delivery, ...] = ()


class Router:
    """One bureau's conversations, and the rules above."""

    def __init__(
        self,
        principal: str,
        *,
        coordinator: str,
        registry: BodyRegistry,
        max_parked: int,
        max_parked_per_sender: int,
    ) -> None:
        if max_parked_per_sender < 0:
            raise UsageError("max_parked_per_sender must not be negative")
        self.principal = principal
        self.coordinator = coordinator
        self.registry = registry
        self.max_parked_per_sender = max_parked_per_sender
        self.conversations = Conversations(max_parked=max_parked)
        self.replaying = False  # the journal is being replayed: no caps
        self._requests_seen: set[bytes] = set()

    def route(self, message: Message, *, historical: KeyDirectory) -> Routed:
        """What ``message`` means here; raise a ProtocolError to refuse it.

        ``historical`` verifies a forward's original (DIR-9's historical view).
        """
        body = message.body
        if isinstance(body, Forward):
            return self._forward(message, historical)
        if isinstance(body, AssistanceRequest):
            request_hash = message.message_hash
            copy = request_hash in self._requests_seen  # its forward came first
            self._requests_seen.add(request_hash)
            applied: tuple[Delivery, ...] = ()
            if request_hash not in self.conversations:
                _, applied = self.conversations.start(message.envelope, body)
            return Routed(message, body, copy=copy, applied=applied)
        if isinstance(body, DeliveryReceipt):
            return Routed(message, body)
        if message.reply_to is not None and not isinstance(body, OpaqueBody):
            return self._reply(message, body)
        return Routed(message, body)

    def is_parked(self, message: Message) -> bool:
        return any(m.message_id == message.message_id for m in self.conversations.parked)

    def _forward(self, message: Message, historical: KeyDirectory) -> Routed:
        forwarded = verify_forward(
            message, directory=historical, coordinator=self.coordinator, registry=self.registry
        )
        if not isinstance(forwarded.original_body, AssistanceRequest):
            return Routed(message, forwarded.original_body, forwarded=forwarded)
        original = forwarded.original_hash
        copy = forwarded.author == self.principal or original in self._requests_seen
        self._requests_seen.add(original)
        if original not in self.conversations:
            return Routed(message, forwarded.original_body, forwarded=forwarded, copy=copy)
        applied = self.conversations.add_forward(forwarded)  # it binds the replies to it
        return Routed(
            message,
            forwarded.original_body,
            forwarded=forwarded,
            conversation=self.conversations.get(original),
            copy=copy,
            applied=applied,
        )

    def _reply(self, message: Message, body: Body) -> Routed:
        assert message.reply_to is not None
        conversations = self.conversations
        if (
            not self.replaying
            and not conversations.knows(message.reply_to)
            and isinstance(body, CONVERSATION_BODIES)
        ):  # it would be parked
            if conversations.parked_from(message.sender) >= self.max_parked_per_sender:
                raise LimitExceeded(
                    f"{message.sender} has {self.max_parked_per_sender} replies parked"
                )
            if conversations.parked_count >= conversations.max_parked:
                raise ParkingFull("the parking space is full")
        try:
            delivery = conversations.receive(message)
        except BindingMismatch:
            if message.reply_to in conversations or isinstance(body, CONVERSATION_BODIES):
                raise
            return Routed(message, body)  # a reply to something this bureau does not follow
        return Routed(message, body, conversation=delivery.conversation, step=delivery.step)
