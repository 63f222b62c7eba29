"""Routing replies to their conversations, and holding the ones that arrive too early.

Theory of operation.  A party tracks many requests at once.  Each reply names
its request by ``reply_to``: the request's message hash, or the hash of a
forward of it.  :class:`Conversations` finds the conversation by that hash.
A reply can arrive before the party knows the hash it names: NCB Rabat's
status update, answering the coordinator's forward, can reach NCB Seoul before
Seoul's copy of that forward.  Such a reply is *parked*, never dropped; when
the forward is added, every reply parked under its hash is applied, in the
order it arrived.  The parking space is bounded: when it is full a new reply
is refused with :class:`~ncb_relay.errors.LimitExceeded` rather than
forgetting one already held.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import LimitExceeded, ProtocolError, UsageError
from .assistance import AssistanceRequest
from .conversation import Conversation, RequestEnvelope, Step
from .forwarding import ForwardedMessage, SealedForward
from .message import Message

__all__ = ["Conversations", "Delivery", "Disposition"]


class Disposition(StrEnum):
    APPLIED = "applied"  # bound and applied (the step may keep the state: a late arrival)
    DUPLICATE = "duplicate"  # seen before; nothing changed
    PARKED = "parked"  # names a hash not known yet; held until it is
    REFUSED = "refused"  # a parked reply that failed its checks once its request was known


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one reply."""

    disposition: Disposition
    message: Message
    conversation: Conversation | None = None
    step: Step | None = None
    error: ProtocolError | None = None


class Conversations:
    """Every request one party follows, by the message hashes replies may name."""

    def __init__(self, *, max_parked: int = 1024) -> None:
        if max_parked < 0:
            raise UsageError("max_parked must not be negative")
        self.max_parked = max_parked
        self._by_request: dict[bytes, Conversation] = {}
        self._by_handle: dict[bytes, Conversation] = {}
        self._parked: dict[bytes, list[Message]] = {}

    def __contains__(self, request_hash: object) -> bool:
        return request_hash in self._by_request

    def __len__(self) -> int:
        return len(self._by_request)

    def get(self, request_hash: bytes) -> Conversation:
        try:
            return self._by_request[request_hash]
        except KeyError:
            raise UsageError("no conversation for that request") from None

    def start(
        self, request: RequestEnvelope, body: AssistanceRequest
    ) -> tuple[Conversation, tuple[Delivery, ...]]:
        """Follow a new request; return it with the deliveries of replies parked for it."""
        if request.message_hash in self._by_request:
            raise UsageError("that request is already followed")
        conversation = Conversation(request, body)
        self._by_request[conversation.request_hash] = conversation
        return conversation, self._register(conversation.request_hash, conversation)

    def add_forward(self, forward: ForwardedMessage | SealedForward) -> tuple[Delivery, ...]:
        """Add a forward of a followed request; apply the replies parked under its hash."""
        conversation = self.get(forward.original_hash)
        handle = conversation.add_forward(forward)
        return self._register(handle, conversation)

    def receive(self, message: Message) -> Delivery:
        """Route a reply to its conversation, or park it until its ``reply_to`` is known."""
        if not isinstance(message, Message) or message.reply_to is None:
            raise UsageError("receive expects a reply: a Message with reply_to")
        conversation = self._by_handle.get(message.reply_to)
        if conversation is not None:
            step = conversation.receive(message)
            if step is None:
                return Delivery(Disposition.DUPLICATE, message, conversation)
            return Delivery(Disposition.APPLIED, message, conversation, step)
        waiting = self._parked.setdefault(message.reply_to, [])
        if any(held.message_id == message.message_id for held in waiting):
            return Delivery(Disposition.DUPLICATE, message)
        if self.parked_count >= self.max_parked:
            if not waiting:
                del self._parked[message.reply_to]
            raise LimitExceeded(f"{self.max_parked} replies are already parked")
        waiting.append(message)
        return Delivery(Disposition.PARKED, message)

    @property
    def parked_count(self) -> int:
        return sum(len(waiting) for waiting in self._parked.values())

    @property
    def parked(self) -> tuple[Message, ...]:
        """The replies waiting for a request or forward not known yet, oldest first per hash."""
        return tuple(message for waiting in self._parked.values() for message in waiting)

    def _register(self, handle: bytes, conversation: Conversation) -> tuple[Delivery, ...]:
        self._by_handle[handle] = conversation
        deliveries = []
        for message in self._parked.pop(handle, []):
            try:
                step = conversation.receive(message)
            except ProtocolError as exc:
                deliveries.append(Delivery(Disposition.REFUSED, message, conversation, error=exc))
                continue
            disposition = Disposition.DUPLICATE if step is None else Disposition.APPLIED
            deliveries.append(Delivery(disposition, message, conversation, step))
        return tuple(deliveries)
