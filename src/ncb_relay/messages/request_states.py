"""The life of a request for assistance: its states, its events and the one table of moves.

Theory of operation.  A request starts in ``SENT``.  Each message bound to it
is an event: the responder's acknowledgement (``ACCEPT`` or ``DECLINE``), a
status update (``PROGRESS``), a response (``ANSWER``), the requester's
withdrawal (``WITHDRAW``), and an error report about the request or a forward
of it (``REPORT``, which keeps every state: it is information, not a decision);
``EXPIRE`` is the local observation, with ``now`` passed in, that the deadline
has passed without an answer.  :data:`TRANSITIONS`
is every legal move, and :func:`next_state` refuses any other with
:class:`~ncb_relay.errors.InvalidTransition`.

Messages can arrive out of order: a relay may deliver a response before the
acknowledgement that was sent first, and a withdrawal and a response can cross
in transit.  The table says what such a late arrival does, explicitly, as a
move to the same state: a late acknowledgement leaves an answered request
answered, and whatever arrives after a withdrawal leaves it withdrawn.  A
message that contradicts the state (a decline after an answer, a withdrawal
of an answered request) is not in the table, so it is refused and the state
is not touched.  (The table is the reference for spec/messages.md, CONV-1.)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from ..errors import InvalidTransition

__all__ = ["OPEN_STATES", "TRANSITIONS", "RequestEvent", "RequestState", "next_state"]


class RequestState(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in-progress"
    ANSWERED = "answered"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class RequestEvent(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    PROGRESS = "progress"
    ANSWER = "answer"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    REPORT = "report"


S, E = RequestState, RequestEvent

# (state, event) -> next state.  Every legal move is listed here and nowhere else.
TRANSITIONS: Mapping[tuple[RequestState, RequestEvent], RequestState] = MappingProxyType(
    {
        # awaiting a first reply
        (S.SENT, E.ACCEPT): S.ACKNOWLEDGED,
        (S.SENT, E.DECLINE): S.DECLINED,
        (S.SENT, E.PROGRESS): S.IN_PROGRESS,  # the acknowledgement is late or was skipped
        (S.SENT, E.ANSWER): S.ANSWERED,  # likewise
        (S.SENT, E.WITHDRAW): S.WITHDRAWN,
        (S.SENT, E.EXPIRE): S.EXPIRED,
        # accepted
        (S.ACKNOWLEDGED, E.ACCEPT): S.ACKNOWLEDGED,  # a revised acknowledgement
        (S.ACKNOWLEDGED, E.DECLINE): S.DECLINED,
        (S.ACKNOWLEDGED, E.PROGRESS): S.IN_PROGRESS,
        (S.ACKNOWLEDGED, E.ANSWER): S.ANSWERED,
        (S.ACKNOWLEDGED, E.WITHDRAW): S.WITHDRAWN,
        (S.ACKNOWLEDGED, E.EXPIRE): S.EXPIRED,
        # being worked on
        (S.IN_PROGRESS, E.ACCEPT): S.IN_PROGRESS,  # late acknowledgement
        (S.IN_PROGRESS, E.DECLINE): S.DECLINED,
        (S.IN_PROGRESS, E.PROGRESS): S.IN_PROGRESS,
        (S.IN_PROGRESS, E.ANSWER): S.ANSWERED,
        (S.IN_PROGRESS, E.WITHDRAW): S.WITHDRAWN,
        (S.IN_PROGRESS, E.EXPIRE): S.EXPIRED,
        # answered: later answers supplement; earlier messages arriving late change nothing
        (S.ANSWERED, E.ACCEPT): S.ANSWERED,
        (S.ANSWERED, E.PROGRESS): S.ANSWERED,
        (S.ANSWERED, E.ANSWER): S.ANSWERED,
        # declined: an answer still counts (another responder, or a change of mind)
        (S.DECLINED, E.ACCEPT): S.DECLINED,  # accepted, then declined, delivered in reverse
        (S.DECLINED, E.DECLINE): S.DECLINED,
        (S.DECLINED, E.PROGRESS): S.DECLINED,
        (S.DECLINED, E.ANSWER): S.ANSWERED,
        # overdue: a late answer or decline still closes it
        (S.EXPIRED, E.ACCEPT): S.EXPIRED,
        (S.EXPIRED, E.PROGRESS): S.EXPIRED,
        (S.EXPIRED, E.DECLINE): S.DECLINED,
        (S.EXPIRED, E.ANSWER): S.ANSWERED,
        (S.EXPIRED, E.WITHDRAW): S.WITHDRAWN,
        # withdrawn: replies that crossed the withdrawal in transit are kept, not applied
        (S.WITHDRAWN, E.ACCEPT): S.WITHDRAWN,
        (S.WITHDRAWN, E.DECLINE): S.WITHDRAWN,
        (S.WITHDRAWN, E.PROGRESS): S.WITHDRAWN,
        (S.WITHDRAWN, E.ANSWER): S.WITHDRAWN,
        # an error report is kept as information in every state and never moves it (CONV-7)
        (S.SENT, E.REPORT): S.SENT,
        (S.ACKNOWLEDGED, E.REPORT): S.ACKNOWLEDGED,
        (S.IN_PROGRESS, E.REPORT): S.IN_PROGRESS,
        (S.ANSWERED, E.REPORT): S.ANSWERED,
        (S.DECLINED, E.REPORT): S.DECLINED,
        (S.EXPIRED, E.REPORT): S.EXPIRED,
        (S.WITHDRAWN, E.REPORT): S.WITHDRAWN,
    }
)

# The states in which a passed deadline makes a request overdue.
OPEN_STATES = frozenset(state for (state, event) in TRANSITIONS if event is E.EXPIRE)


def next_state(state: RequestState, event: RequestEvent) -> RequestState:
    """The state after ``event``; raise :class:`InvalidTransition` if the table has no such move."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"a request that is {state} cannot take {event}") from None
