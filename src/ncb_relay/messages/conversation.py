"""One request for assistance and every message bound to it, with ``now`` passed in.

Theory of operation.  A :class:`Conversation` is built from the request's
envelope (the requester's own :class:`~ncb_relay.envelope.SealedEnvelope`, or
the :class:`~ncb_relay.envelope.VerifiedEnvelope` a recipient opened) and its
body.  Its *handles* are the envelopes a reply may answer: the request itself,
and every forward of it that this party sent or verified.  A reply is bound to
the request by BIND-2 against one of the handles
(:meth:`~ncb_relay.envelope.VerifiedEnvelope.require_reply_to`): its
``reply_to`` is that handle's message hash, its sender was a recipient of it,
and it is addressed back to the handle's sender.  A withdrawal must come from
the requester and name the request itself.  An error report (``ncbr.error-report``)
about the request or a forward of it is bound the same way and kept as a
``REPORT`` step that never moves the state: one recipient's failure to use a
message is information, not a decision (a responder that will not act
declines).  Every other body is not part of a request's conversation and is
refused with :class:`~ncb_relay.errors.BindingMismatch`, as peer input.

Every accepted message moves the request's state by the one table in
:mod:`ncb_relay.messages.request_states` and is kept as a :class:`Step`.  A
message already seen (same message id and hash) is a duplicate and changes
nothing; the same id with another hash is refused as a replay.  Every check
runs before anything changes, so a refused message leaves no trace.  The
deadline comes from the request's signed ``created`` time (urgent 8 h,
standard 7 days, or explicit); :meth:`Conversation.expire` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import primitives
from ..envelope import SealedEnvelope, VerifiedEnvelope
from ..errors import BindingMismatch, Replay, UsageError
from .assistance import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    StatusUpdate,
    Withdrawal,
)
from .body import Body, OpaqueBody
from .error_report import ErrorReport
from .forwarding import ForwardedMessage, SealedForward
from .message import Message
from .request_states import OPEN_STATES, RequestEvent, RequestState, next_state

__all__ = ["Conversation", "RequestEnvelope", "Step", "event_for"]

RequestEnvelope = SealedEnvelope | VerifiedEnvelope


@dataclass(frozen=True, slots=True)
class Step:
    """One move of a request's state; ``message_id`` is ``None`` for a local expiry."""

    event: RequestEvent
    before: RequestState
    after: RequestState
    at: int
    sender: str | None = None
    message_id: bytes | None = None
    message_hash: bytes | None = None
    body: Body | None = None

    @property
    def changed(self) -> bool:
        """False for a late or repeated message that the table keeps in the same state."""
        return self.before is not self.after


def event_for(body: Body | OpaqueBody) -> RequestEvent:
    """The event a body is; raise :class:`BindingMismatch` for a body outside a conversation.

    The replies of MSG-6 and error reports are events (CONV-1, CONV-7); any other
    body (a request, a diffusion, an opaque body, ...) is not part of a request's
    conversation (CONV-8).  The body comes from a peer, so that is a protocol error.
    """
    if isinstance(body, Acknowledgement):
        return RequestEvent.ACCEPT if body.decision == "accepted" else RequestEvent.DECLINE
    if isinstance(body, StatusUpdate):
        return RequestEvent.PROGRESS
    if isinstance(body, AssistanceResponse):
        return RequestEvent.ANSWER
    if isinstance(body, Withdrawal):
        return RequestEvent.WITHDRAW
    if isinstance(body, ErrorReport):
        return RequestEvent.REPORT
    schema = body.schema_id
    raise BindingMismatch(f"a {schema} body is not part of a request's conversation")


class Conversation:
    """The state of one request as seen by one party (the requester, or a recipient)."""

    def __init__(self, request: RequestEnvelope, body: AssistanceRequest) -> None:
        if not isinstance(request, (SealedEnvelope, VerifiedEnvelope)):
            raise UsageError("a conversation starts from the request's envelope")
        if not isinstance(body, AssistanceRequest):
            raise UsageError("a conversation starts from an AssistanceRequest")
        self.request = request
        self.body = body
        self.request_hash = request.message_hash
        self.requester = request.header.sender
        self.created = request.header.created
        self.deadline = body.urgency.deadline_after(self.created)
        self._handles: dict[bytes, RequestEnvelope] = {self.request_hash: request}
        self._state = RequestState.SENT
        self._seen: dict[bytes, bytes] = {}
        self._steps: list[Step] = []

    @property
    def state(self) -> RequestState:
        return self._state

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    @property
    def handles(self) -> frozenset[bytes]:
        """The message hashes a reply's ``reply_to`` may name: the request and its forwards."""
        return frozenset(self._handles)

    def add_forward(self, forward: ForwardedMessage | SealedForward) -> bytes:
        """Accept replies to a forward of this request; return the forward's message hash."""
        if isinstance(forward, ForwardedMessage):
            envelope: RequestEnvelope = forward.forward.envelope
        elif isinstance(forward, SealedForward):
            envelope = forward.sealed
        else:
            raise UsageError("add_forward takes a verified or a sealed forward")
        if not primitives.constant_time_equal(forward.original_hash, self.request_hash):
            raise BindingMismatch("the forward carries another request")
        self._handles[envelope.message_hash] = envelope
        return envelope.message_hash

    def receive(self, message: Message) -> Step | None:
        """Apply a reply, a withdrawal or an error report; return its step, ``None`` if a duplicate.

        Raises :class:`BindingMismatch` for a message not bound to this request
        or whose body is not part of a conversation (CONV-8),
        :class:`~ncb_relay.errors.Replay` for a reused message id and
        :class:`~ncb_relay.errors.InvalidTransition` for a move the table
        forbids; in each case nothing changes.  Peer input never raises
        :class:`UsageError`; passing something that is not a :class:`Message` does.
        """
        if not isinstance(message, Message):
            raise UsageError("receive expects a Message (from read_message)")
        event = event_for(message.body)
        if self._is_duplicate(message.message_id, message.message_hash):
            return None
        if event is RequestEvent.WITHDRAW:
            self._check_withdrawal(message.envelope)
        else:
            self._bind(message.envelope, answer=event is not RequestEvent.REPORT)
        assert isinstance(message.body, Body)
        return self._apply(event, message.created, message.envelope, message.body)

    def withdraw(self, sealed: SealedEnvelope, body: Withdrawal) -> Step | None:
        """Record the requester's own withdrawal, as sealed; ``None`` if already recorded."""
        if not isinstance(body, Withdrawal) or not isinstance(sealed, SealedEnvelope):
            raise UsageError("withdraw takes the sealed withdrawal and its body")
        if self._is_duplicate(sealed.message_id, sealed.message_hash):
            return None
        self._check_withdrawal(sealed)
        return self._apply(RequestEvent.WITHDRAW, sealed.header.created, sealed, body)

    def is_overdue(self, now: int) -> bool:
        """Whether the deadline has passed at ``now`` with no answer, decline or withdrawal."""
        return self._state in OPEN_STATES and now >= self.deadline

    def expire(self, now: int) -> Step | None:
        """Move an overdue request to ``EXPIRED``; return the step, or ``None`` if not overdue."""
        if not self.is_overdue(now):
            return None
        after = next_state(self._state, RequestEvent.EXPIRE)
        step = Step(RequestEvent.EXPIRE, self._state, after, now)
        self._state = after
        self._steps.append(step)
        return step

    def _is_duplicate(self, message_id: bytes, message_hash: bytes) -> bool:
        seen = self._seen.get(message_id)
        if seen is None:
            return False
        if not primitives.constant_time_equal(seen, message_hash):
            raise Replay(f"message id {message_id.hex()} was used for another message")
        return True

    def _bind(self, envelope: VerifiedEnvelope, *, answer: bool) -> None:
        handle = self._handles.get(envelope.reply_to) if envelope.reply_to is not None else None
        if handle is None:
            raise BindingMismatch("the message does not answer this request or a forward of it")
        envelope.require_reply_to(handle)
        # The requester may report an error about a forward of its request (it moves
        # nothing), but never answer its own request (CONV-2, CONV-7).
        if answer and envelope.sender == self.requester:
            raise BindingMismatch("the requester cannot answer its own request")

    def _check_withdrawal(self, envelope: RequestEnvelope) -> None:
        header = envelope.header
        if header.sender != self.requester:
            raise BindingMismatch("only the requester can withdraw a request")
        if header.reply_to is None or not primitives.constant_time_equal(
            header.reply_to, self.request_hash
        ):
            raise BindingMismatch("a withdrawal must name the request itself")

    def _apply(self, event: RequestEvent, at: int, envelope: RequestEnvelope, body: Body) -> Step:
        after = next_state(self._state, event)  # raises before anything changes
        step = Step(
            event,
            self._state,
            after,
            at,
            sender=envelope.header.sender,
            message_id=envelope.message_id,
            message_hash=envelope.message_hash,
            body=body,
        )
        self._seen[envelope.message_id] = envelope.message_hash
        self._state = after
        self._steps.append(step)
        return step

    def __repr__(self) -> str:
        return (
            f"Conversation({self.body.case_reference!r} from {self.requester!r}, "
            f"{self._state}, {len(self._steps)} steps)"
        )
