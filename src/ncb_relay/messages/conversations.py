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

Only what can be part of a request's conversation is held: the replies of
MSG-6 and error reports (CONV-7).  Any other body, or a message without
``reply_to``, is refused at once with :class:`~ncb_relay.errors.BindingMismatch`
(CONV-8), so a peer cannot park a message that could never be applied.  A held
message whose message id is already held for another message is a replay
(CONV-5).  When a hash becomes known, each held message is handled on its own:
one that fails its checks is delivered as ``REFUSED`` with its error and the
others are still applied, and each leaves the parking space only once it has
been handled, so none is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .. import primitives
from ..errors import BindingMismatch, LimitExceeded, NcbRelayError, Replay, UsageError
from .assistance import AssistanceRequest
from .conversation import Conversation, RequestEnvelope, Step, event_for
from .forwarding import ForwardedMessage, SealedForward
from .message import Message

__all__ = ["Conversations", "Delivery", "Disposition"]


class Disposition(StrEnum):
    APPLIED = "applied"  # bound and applied (the step may keep the state: a late arrival)
    DUPLICATE = "duplicate"  # seen before; nothing changed
    PARKED = "parked"  # names a hash not known yet; held until it is
    REFUSED = "refused"  # a parked message that failed its checks once its request was known


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one reply (or error report); ``error`` is why a held one was refused."""

    disposition: Disposition
    message: Message
    conversation: Conversation | None = None
    step: Step | None = None
    error: NcbRelayError | None = None


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
        """Route a reply to its conversation, or park it until its ``reply_to`` is known.

        A body that is not part of a request's conversation, or a message without
        ``reply_to``, is refused with :class:`BindingMismatch` and never held
        (CONV-8); a held message id reused for another message is a
        :class:`Replay` (CONV-5).
        """
        if not isinstance(message, Message):
            raise UsageError("receive expects a Message (from read_message)")
        event_for(message.body)  # refuses, before anything is held, what no request can take
        if message.reply_to is None:
            raise BindingMismatch("the message names no request: it has no reply_to")
        conversation = self._by_handle.get(message.reply_to)
        if conversation is not None:
            step = conversation.receive(message)
            if step is None:
                return Delivery(Disposition.DUPLICATE, message, conversation)
            return Delivery(Disposition.APPLIED, message, conversation, step)
        if self._is_held(message):
            return Delivery(Disposition.DUPLICATE, message)
        if self.parked_count >= self.max_parked:
            raise LimitExceeded(f"{self.max_parked} replies are already parked")
        self._parked.setdefault(message.reply_to, []).append(message)
        return Delivery(Disposition.PARKED, message)

    def knows(self, handle: bytes) -> bool:
        """Whether a reply naming ``handle`` (a request or a forward of it) would be bound now."""
        return handle in self._by_handle

    def parked_from(self, sender: str) -> int:
        """How many of the parked replies ``sender`` sent."""
        return sum(1 for waiting in self._parked.values() for m in waiting if m.sender == sender)

    @property
    def parked_count(self) -> int:
        return sum(len(waiting) for waiting in self._parked.values())

    @property
    def parked(self) -> tuple[Message, ...]:
        """The replies waiting for a request or forward not known yet, oldest first per hash."""
        return tuple(message for waiting in self._parked.values() for message in waiting)

    def _is_held(self, message: Message) -> bool:
        """Whether this very message is held; :class:`Replay` if its id is held for another one."""
        for waiting in self._parked.values():
            for held in waiting:
                if held.message_id != message.message_id:
                    continue
                if not primitives.constant_time_equal(held.message_hash, message.message_hash):
                    raise Replay(f"message id {message.message_id.hex()} is held for another")
                return True
        return False

    def _register(self, handle: bytes, conversation: Conversation) -> tuple[Delivery, ...]:
        self._by_handle[handle] = conversation
        waiting = self._parked.get(handle, [])
        deliveries = []
        try:
            while waiting:
                message = waiting[0]
                try:
                    step = conversation.receive(message)
                except NcbRelayError as exc:  # this message only; the others are still applied
                    delivery = Delivery(Disposition.REFUSED, message, conversation, error=exc)
                else:
                    disposition = Disposition.DUPLICATE if step is None else Disposition.APPLIED
                    delivery = Delivery(disposition, message, conversation, step)
                del waiting[0]  # handled: only now does it leave the parking space
                deliveries.append(delivery)
        finally:
            if not waiting:
                self._parked.pop(handle, None)
        return tuple(deliveries)
