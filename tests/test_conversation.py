"""A request's life: the state table, binding, withdrawal, deadlines, duplicates, order.

Covers CONV-1 to CONV-8.  Replies travel in real envelopes (:class:`Post`).
"""

from __future__ import annotations

import itertools

import pytest

from fixtures import NOW
from message_samples import (
    GS,
    H0,
    HOUR,
    PARIS,
    RABAT,
    SEOUL,
    TOKYO,
    Post,
    acknowledgement,
    diffusion,
    error_report,
    request,
    response,
    status,
    withdrawal,
)
from ncb_relay import (
    BindingMismatch,
    InvalidTransition,
    LimitExceeded,
    Replay,
    SealedEnvelope,
    UsageError,
    codec,
    encode_body,
    seal,
)
from ncb_relay.messages import (
    TRANSITIONS,
    AssistanceRequest,
    Conversation,
    Conversations,
    Disposition,
    Message,
    RequestEvent,
    RequestState,
    Urgency,
    next_state,
    seal_forward,
    verify_forward,
)
from ncb_relay.messages.conversation import event_for
from ncb_relay.messages.request_states import OPEN_STATES

S, E = RequestState, RequestEvent
DECLINE = acknowledgement(decision="declined", reason="Not a crime here.", expected_answer_by=None)


class Exchange:
    """Seoul asks Rabat with the coordinator in copy; GS follows the request."""

    def __init__(self, body: AssistanceRequest | None = None) -> None:
        self.post = Post()
        self.body = body or request(handling=H0)
        self.request = self.post.send(self.body, SEOUL, [RABAT, GS])
        self.at_gs = self.post.deliver(self.request, GS)
        self.view = Conversation(self.at_gs.envelope, self.body)
        self.hours = itertools.count(1)

    def reply(
        self,
        body: object,
        sender: str = RABAT,
        to: tuple[str, ...] = (SEOUL, GS),
        *,
        reply_to: bytes | None = None,
    ) -> Message:
        at = NOW + next(self.hours) * HOUR
        sealed = self.post.send(
            body,  # type: ignore[arg-type]
            sender,
            to,
            now=at,
            reply_to=self.request.message_hash if reply_to is None else reply_to,
        )
        return self.post.deliver(sealed, GS, now=at)


# --- CONV-1: the table --------------------------------------------------------------------


def state_of(view: Conversation) -> RequestState:
    """The state now (a function, so that mypy does not narrow it across calls)."""
    return view.state


@pytest.mark.req("CONV-1")
@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, E)))
def test_every_pair_is_in_the_table_or_refused(state: RequestState, event: RequestEvent) -> None:
    if (state, event) in TRANSITIONS:
        assert next_state(state, event) is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(InvalidTransition) as caught:
            next_state(state, event)
        assert caught.value.code == "invalid-transition"
        assert state.value in caught.value.message
        assert event.value in caught.value.message


@pytest.mark.req("CONV-1")
def test_the_table_keeps_closed_requests_closed() -> None:
    assert {S.SENT, S.ACKNOWLEDGED, S.IN_PROGRESS} == OPEN_STATES
    for state in (S.ANSWERED, S.DECLINED, S.EXPIRED, S.WITHDRAWN):
        assert (state, E.EXPIRE) not in TRANSITIONS
    assert all(
        TRANSITIONS[(S.WITHDRAWN, e)] is S.WITHDRAWN for e in E if (S.WITHDRAWN, e) in TRANSITIONS
    )
    assert (S.ANSWERED, E.DECLINE) not in TRANSITIONS
    assert (S.ANSWERED, E.WITHDRAW) not in TRANSITIONS
    with pytest.raises(TypeError):
        TRANSITIONS[(S.ANSWERED, E.DECLINE)] = S.DECLINED  # type: ignore[index]


@pytest.mark.req("CONV-1")
@pytest.mark.parametrize(
    ("replies", "states"),
    [
        ([acknowledgement(), status(), response()], ["acknowledged", "in-progress", "answered"]),
        ([response(), acknowledgement(), status()], ["answered", "answered", "answered"]),
        ([status(), acknowledgement()], ["in-progress", "in-progress"]),
        ([acknowledgement(), DECLINE, response()], ["acknowledged", "declined", "answered"]),
        ([DECLINE, acknowledgement(), status()], ["declined", "declined", "declined"]),
        ([response(), response()], ["answered", "answered"]),
    ],
)
def test_replies_move_the_state_by_the_table(replies: list[object], states: list[str]) -> None:
    exchange = Exchange()
    seen = []
    for body in replies:
        step = exchange.view.receive(exchange.reply(body))
        assert step is not None
        assert step.sender == RABAT
        assert step.body == body
        assert step.changed == (step.before is not step.after)
        seen.append(exchange.view.state.value)
    assert seen == states
    assert len(exchange.view.steps) == len(replies)


@pytest.mark.req("CONV-1")
def test_a_refused_move_changes_nothing() -> None:
    exchange = Exchange()
    exchange.view.receive(exchange.reply(response()))
    decline = exchange.reply(DECLINE)
    with pytest.raises(InvalidTransition):
        exchange.view.receive(decline)
    assert state_of(exchange.view) is S.ANSWERED
    assert len(exchange.view.steps) == 1
    late = exchange.reply(withdrawal(), SEOUL, (RABAT, GS))
    with pytest.raises(InvalidTransition):
        exchange.view.receive(late)
    assert state_of(exchange.view) is S.ANSWERED
    assert len(exchange.view.steps) == 1


@pytest.mark.req("CONV-1", "CONV-7", "CONV-8")
def test_only_conversation_bodies_are_events() -> None:
    assert event_for(acknowledgement()) is E.ACCEPT
    assert event_for(DECLINE) is E.DECLINE
    assert event_for(status()) is E.PROGRESS
    assert event_for(response()) is E.ANSWER
    assert event_for(withdrawal()) is E.WITHDRAW
    assert event_for(error_report()) is E.REPORT
    with pytest.raises(BindingMismatch, match=r"ncbr\.diffusion"):  # peer input: a protocol error
        event_for(diffusion([PARIS]))
    exchange = Exchange()
    with pytest.raises(BindingMismatch):
        exchange.view.receive(exchange.reply(request(handling=H0)))  # not a reply body


# --- CONV-2: binding ----------------------------------------------------------------------


@pytest.mark.req("CONV-2")
def test_a_response_bound_to_another_request_is_refused() -> None:
    exchange = Exchange()
    other = exchange.post.send(request(handling=H0), SEOUL, [RABAT, GS], now=NOW + 5)
    exchange.post.deliver(other, GS, now=NOW + 5)
    spliced = exchange.reply(response(), reply_to=other.message_hash)
    with pytest.raises(BindingMismatch):
        exchange.view.receive(spliced)
    assert state_of(exchange.view) is S.SENT
    assert exchange.view.steps == ()


@pytest.mark.req("CONV-2")
@pytest.mark.parametrize(
    ("sender", "to", "why"),
    [
        (PARIS, (SEOUL, GS), "not a recipient"),
        (RABAT, (GS,), "not addressed to the requester"),
    ],
)
def test_a_reply_that_fails_bind_2_is_refused(sender: str, to: tuple[str, ...], why: str) -> None:
    exchange = Exchange()
    with pytest.raises(BindingMismatch):
        exchange.view.receive(exchange.reply(response(), sender, to))
    assert state_of(exchange.view) is S.SENT


@pytest.mark.req("CONV-2")
def test_the_requester_cannot_answer_its_own_request_through_a_forward() -> None:
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [GS])
    at_gs = post.deliver(sealed, GS)
    view = Conversation(at_gs.envelope, ask)
    forward = seal_forward(
        at_gs.envelope,
        sender=post.ids[GS],
        recipients=post.public(RABAT, SEOUL),
        now=NOW + 1,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    view.add_forward(forward)
    own = post.send(response(), SEOUL, [GS], now=NOW + 2, reply_to=forward.sealed.message_hash)
    with pytest.raises(BindingMismatch, match="own request"):
        view.receive(post.deliver(own, GS, now=NOW + 2))
    answer = post.send(
        response(), RABAT, [GS, SEOUL], now=NOW + 3, reply_to=forward.sealed.message_hash
    )
    assert view.receive(post.deliver(answer, GS, now=NOW + 3)) is not None
    assert state_of(view) is S.ANSWERED
    assert view.handles == {
        sealed.message_hash,
        forward.sealed.message_hash,
    }


@pytest.mark.req("CONV-2")
def test_a_forward_of_another_request_is_not_a_handle() -> None:
    post = Post()
    first, second = request(handling=H0), request(handling=H0, case_reference="KR-2")
    sealed_first = post.send(first, SEOUL, [GS])
    sealed_second = post.send(second, SEOUL, [GS], now=NOW + 1)
    view = Conversation(sealed_first, first)
    other = seal_forward(
        post.open(sealed_second, GS, now=NOW + 1),
        sender=post.ids[GS],
        recipients=post.public(RABAT),
        now=NOW + 2,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    with pytest.raises(BindingMismatch):
        view.add_forward(other)
    with pytest.raises(UsageError):
        view.add_forward(sealed_second)  # type: ignore[arg-type]
    assert view.handles == {sealed_first.message_hash}


def test_a_conversation_starts_from_a_request_envelope_and_body() -> None:
    exchange = Exchange()
    with pytest.raises(UsageError):
        Conversation(exchange.request, status())  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Conversation(exchange.request.data, exchange.body)  # type: ignore[arg-type]
    assert "KR-MCST-2027-0042" in repr(exchange.view)
    assert "sent" in repr(exchange.view)
    with pytest.raises(UsageError):
        exchange.view.receive(exchange.request)  # type: ignore[arg-type]


# --- CONV-3: withdrawal -------------------------------------------------------------------


@pytest.mark.req("CONV-3", "CONV-1")
def test_the_requester_withdraws_and_crossing_replies_are_kept() -> None:
    exchange = Exchange()
    exchange.view.receive(exchange.reply(acknowledgement()))
    step = exchange.view.receive(exchange.reply(withdrawal(), SEOUL, (RABAT, GS)))
    assert step is not None
    assert step.after is S.WITHDRAWN
    late = exchange.view.receive(exchange.reply(response()))
    assert late is not None
    assert not late.changed
    assert state_of(exchange.view) is S.WITHDRAWN
    with pytest.raises(InvalidTransition):
        exchange.view.receive(exchange.reply(withdrawal(), SEOUL, (RABAT, GS)))


@pytest.mark.req("CONV-3")
def test_only_the_requester_withdraws_and_only_the_request_itself() -> None:
    exchange = Exchange()
    with pytest.raises(BindingMismatch, match="only the requester"):
        exchange.view.receive(exchange.reply(withdrawal(), RABAT))
    with pytest.raises(BindingMismatch, match="request itself"):
        exchange.view.receive(exchange.reply(withdrawal(), SEOUL, (RABAT, GS), reply_to=bytes(32)))
    assert state_of(exchange.view) is S.SENT


@pytest.mark.req("CONV-3", "CONV-5")
def test_the_requester_records_its_own_withdrawal() -> None:
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [RABAT])
    view = Conversation(sealed, ask)
    mine = post.send(withdrawal(), SEOUL, [RABAT], now=NOW + 60, reply_to=sealed.message_hash)
    step = view.withdraw(mine, withdrawal())
    assert step is not None
    assert step.after is S.WITHDRAWN
    assert step.at == NOW + 60
    assert view.withdraw(mine, withdrawal()) is None  # recorded once
    with pytest.raises(UsageError):
        view.withdraw(mine, status())  # type: ignore[arg-type]
    theirs = post.send(withdrawal(), RABAT, [SEOUL], now=NOW + 61, reply_to=sealed.message_hash)
    with pytest.raises(BindingMismatch):
        view.withdraw(theirs, withdrawal())


# --- CONV-4: deadlines --------------------------------------------------------------------


@pytest.mark.req("CONV-4", "MSG-8")
@pytest.mark.parametrize(
    ("urgency", "deadline"),
    [
        (Urgency.urgent(), NOW + 8 * HOUR),
        (Urgency.standard(), NOW + 168 * HOUR),
        (Urgency.until(NOW + 50), NOW + 50),
    ],
)
def test_a_request_is_overdue_from_its_deadline(urgency: Urgency, deadline: int) -> None:
    exchange = Exchange(request(handling=H0, urgency=urgency))
    view = exchange.view
    assert view.deadline == deadline
    assert not view.is_overdue(deadline - 1)
    assert view.expire(deadline - 1) is None
    assert view.is_overdue(deadline)
    step = view.expire(deadline + 10)
    assert step is not None
    assert (step.event, step.at, step.sender) == (
        E.EXPIRE,
        deadline + 10,
        None,
    )
    assert state_of(view) is S.EXPIRED
    assert not view.is_overdue(deadline + 20)
    assert view.expire(deadline + 20) is None


@pytest.mark.req("CONV-4", "CONV-1")
def test_an_answered_request_is_never_overdue_and_a_late_answer_still_counts() -> None:
    exchange = Exchange(request(handling=H0, urgency=Urgency.urgent()))
    exchange.view.expire(NOW + 9 * HOUR)
    assert state_of(exchange.view) is S.EXPIRED
    exchange.hours = itertools.count(10)
    exchange.view.receive(exchange.reply(status()))
    assert state_of(exchange.view) is S.EXPIRED
    exchange.view.receive(exchange.reply(response()))
    assert state_of(exchange.view) is S.ANSWERED
    assert not exchange.view.is_overdue(NOW + 99 * HOUR)


# --- CONV-5: duplicates -------------------------------------------------------------------


@pytest.mark.req("CONV-5")
def test_a_message_is_applied_once() -> None:
    exchange = Exchange()
    ack = exchange.reply(acknowledgement())
    assert exchange.view.receive(ack) is not None
    assert exchange.view.receive(ack) is None
    assert len(exchange.view.steps) == 1


@pytest.mark.req("CONV-5")
def test_a_message_id_reused_for_another_message_is_a_replay() -> None:
    exchange = Exchange()
    post = exchange.post
    # the same content key, so the same message id, sealed into two different envelopes
    draws = iter([b"K" * 32, b"e" * 32, b"K" * 32, b"f" * 32])

    def reseal(seq: int) -> SealedEnvelope:
        return seal(
            encode_body(status()),
            sender=post.ids[RABAT],
            recipients=post.public(SEOUL, GS),
            now=NOW + HOUR,
            seq=100 + seq,
            rng=lambda n: next(draws),
            reply_to=exchange.request.message_hash,
        )

    one, two = reseal(1), reseal(2)
    assert one.message_id == two.message_id
    assert one.message_hash != two.message_hash
    exchange.view.receive(post.deliver(one, GS, now=NOW + HOUR))
    with pytest.raises(Replay):  # a fresh replay guard, as after a restart that lost it
        exchange.view.receive(Post().deliver(two, GS, now=NOW + HOUR))
    assert len(exchange.view.steps) == 1
    assert state_of(exchange.view) is S.IN_PROGRESS


# --- CONV-6: replies that arrive before what they answer --------------------------------------


def _forwarded_exchange() -> tuple[Post, SealedEnvelope, Conversations, Conversation]:
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [GS])
    book = Conversations(max_parked=2)
    view, early = book.start(sealed, ask)
    assert early == ()
    return post, sealed, book, view


@pytest.mark.req("CONV-6", "CONV-2")
def test_replies_to_an_unknown_forward_are_held_then_applied_in_order() -> None:
    post, sealed, book, view = _forwarded_exchange()
    at_gs = post.deliver(sealed, GS)
    forward = seal_forward(
        at_gs.envelope,
        sender=post.ids[GS],
        recipients=post.public(RABAT, SEOUL),
        now=NOW + 1,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    w = forward.sealed.message_hash
    ack = post.send(acknowledgement(), RABAT, [GS, SEOUL], now=NOW + 2, reply_to=w)
    answer = post.send(response(), RABAT, [GS, SEOUL], now=NOW + 3, reply_to=w)
    first = book.receive(post.deliver(answer, SEOUL, now=NOW + 3))
    second = book.receive(post.deliver(ack, SEOUL, now=NOW + 3))
    assert (first.disposition, second.disposition) == (Disposition.PARKED, Disposition.PARKED)
    assert book.receive(first.message).disposition is Disposition.DUPLICATE
    assert book.parked == (first.message, second.message)
    assert book.parked_count == 2
    assert state_of(view) is S.SENT
    copy = verify_forward(
        post.deliver(forward.sealed, SEOUL, now=NOW + 4), directory=post.directory, coordinator=GS
    )
    applied = book.add_forward(copy)
    assert [d.disposition for d in applied] == [Disposition.APPLIED, Disposition.APPLIED]
    assert [d.step.after for d in applied if d.step] == [S.ANSWERED, S.ANSWERED]
    assert state_of(view) is S.ANSWERED
    assert len(book.parked) == 0
    assert book.receive(second.message).disposition is Disposition.DUPLICATE


@pytest.mark.req("CONV-6")
def test_the_parking_space_is_bounded_and_never_forgets() -> None:
    post, _, book, _ = _forwarded_exchange()
    replies = [
        post.send(status(f"step {i}"), RABAT, [SEOUL], now=NOW + i, reply_to=bytes([i]) * 32)
        for i in range(1, 4)
    ]
    held = [book.receive(post.deliver(r, SEOUL, now=NOW + 5)) for r in replies[:2]]
    assert all(d.disposition is Disposition.PARKED for d in held)
    with pytest.raises(LimitExceeded):
        book.receive(post.deliver(replies[2], SEOUL, now=NOW + 5))
    assert book.parked == tuple(d.message for d in held)
    with pytest.raises(UsageError):
        Conversations(max_parked=-1)


@pytest.mark.req("CONV-6", "CONV-2")
def test_a_held_reply_that_fails_its_checks_is_reported_not_applied() -> None:
    post, sealed, book, view = _forwarded_exchange()
    at_gs = post.deliver(sealed, GS)
    forward = seal_forward(
        at_gs.envelope,
        sender=post.ids[GS],
        recipients=post.public(RABAT, SEOUL, TOKYO),
        now=NOW + 1,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    w = forward.sealed.message_hash
    stray = post.send(response(), RABAT, [SEOUL], now=NOW + 2, reply_to=w)  # not to the forwarder
    assert book.receive(post.deliver(stray, SEOUL, now=NOW + 2)).disposition is Disposition.PARKED
    copy = verify_forward(
        post.deliver(forward.sealed, SEOUL, now=NOW + 3), directory=post.directory, coordinator=GS
    )
    (refused,) = book.add_forward(copy)
    assert refused.disposition is Disposition.REFUSED
    assert isinstance(refused.error, BindingMismatch)
    assert state_of(view) is S.SENT


@pytest.mark.req("CONV-6", "CONV-5", "CONV-8")
def test_the_book_routes_by_request_and_forward() -> None:
    post, sealed, book, view = _forwarded_exchange()
    assert sealed.message_hash in book
    assert len(book) == 1
    assert book.get(sealed.message_hash) is view
    with pytest.raises(UsageError):
        book.get(bytes(32))
    with pytest.raises(UsageError):
        book.start(sealed, view.body)
    reply = post.send(acknowledgement(), GS, [SEOUL], now=NOW + 1, reply_to=sealed.message_hash)
    message = post.deliver(reply, SEOUL, now=NOW + 1)
    delivery = book.receive(message)
    assert (delivery.disposition, delivery.conversation) == (Disposition.APPLIED, view)
    assert book.receive(message).disposition is Disposition.DUPLICATE
    no_reply = post.send(request(handling=H0), GS, [SEOUL], now=NOW + 2)
    with pytest.raises(BindingMismatch):  # peer input, so a protocol error (CONV-8)
        book.receive(post.deliver(no_reply, SEOUL, now=NOW + 2))
    with pytest.raises(UsageError):
        book.receive(message.envelope)  # type: ignore[arg-type]


@pytest.mark.req("CONV-6")
def test_replies_held_before_the_request_is_followed_are_applied_when_it_is() -> None:
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [RABAT, GS])
    book = Conversations()
    early = post.send(
        acknowledgement(), RABAT, [SEOUL, GS], now=NOW + 1, reply_to=sealed.message_hash
    )
    assert book.receive(post.deliver(early, GS, now=NOW + 1)).disposition is Disposition.PARKED
    view, applied = book.start(post.open(sealed, GS, now=NOW + 2), ask)
    assert [d.disposition for d in applied] == [Disposition.APPLIED]
    assert state_of(view) is S.ACKNOWLEDGED


# --- CONV-5, CONV-6: held messages ---------------------------------------------------------


def _same_id_twice(
    post: Post, reply_to: bytes, *, other_reply_to: bytes | None = None
) -> tuple[SealedEnvelope, SealedEnvelope]:
    """Two of Rabat's status updates with one content key (so one message id), two hashes."""
    draws = iter([b"K" * 32, b"e" * 32, b"K" * 32, b"f" * 32])

    def reseal(seq: int, answers: bytes) -> SealedEnvelope:
        return seal(
            encode_body(status()),
            sender=post.ids[RABAT],
            recipients=post.public(SEOUL, GS),
            now=NOW + HOUR,
            seq=200 + seq,
            rng=lambda n: next(draws),
            reply_to=answers,
        )

    one = reseal(1, reply_to)
    two = reseal(2, reply_to if other_reply_to is None else other_reply_to)
    assert one.message_id == two.message_id
    assert one.message_hash != two.message_hash
    return one, two


@pytest.mark.req("CONV-5", "CONV-6")
@pytest.mark.parametrize("same_handle", [True, False])
def test_a_held_message_id_reused_for_another_message_is_a_replay(same_handle: bool) -> None:
    post, _, book, _ = _forwarded_exchange()
    unknown = b"\x07" * 32
    one, two = _same_id_twice(post, unknown, other_reply_to=None if same_handle else b"\x08" * 32)
    held = book.receive(post.deliver(one, SEOUL, now=NOW + HOUR))
    assert held.disposition is Disposition.PARKED
    assert book.receive(held.message).disposition is Disposition.DUPLICATE  # the same message
    with pytest.raises(Replay):  # a fresh replay guard, as after a restart that lost it
        book.receive(Post().deliver(two, SEOUL, now=NOW + HOUR))
    assert book.parked == (held.message,)


# --- CONV-7: error reports ----------------------------------------------------------------


@pytest.mark.req("CONV-7", "CONV-1")
def test_an_error_report_about_the_request_is_kept_and_moves_nothing() -> None:
    exchange = Exchange()
    report = exchange.reply(error_report())
    step = exchange.view.receive(report)
    assert step is not None
    assert (step.event, step.before, step.after) == (E.REPORT, S.SENT, S.SENT)
    assert not step.changed
    assert step.sender == RABAT
    assert step.body == error_report()
    assert exchange.view.receive(report) is None  # a duplicate (CONV-5)
    exchange.view.receive(exchange.reply(response()))
    late = exchange.view.receive(exchange.reply(error_report()))
    assert late is not None
    assert (late.event, late.after) == (E.REPORT, S.ANSWERED)
    assert [s.event for s in exchange.view.steps] == [E.REPORT, E.ANSWER, E.REPORT]
    for state in S:
        assert next_state(state, E.REPORT) is state


@pytest.mark.req("CONV-7", "CONV-2")
@pytest.mark.parametrize(
    ("sender", "to", "why"),
    [
        (PARIS, (SEOUL, GS), "not a recipient"),
        (RABAT, (GS,), "not addressed to the requester"),
        (SEOUL, (RABAT, GS), "the requester about its own request"),
    ],
)
def test_an_error_report_that_fails_bind_2_is_refused(
    sender: str, to: tuple[str, ...], why: str
) -> None:
    exchange = Exchange()
    with pytest.raises(BindingMismatch):
        exchange.view.receive(exchange.reply(error_report(), sender, to))
    assert exchange.view.steps == ()
    book = Conversations()
    book.start(exchange.at_gs.envelope, exchange.body)
    with pytest.raises(BindingMismatch):  # refused at once, never held
        book.receive(exchange.reply(error_report(), sender, to))
    assert book.parked_count == 0


@pytest.mark.req("CONV-7", "CONV-2")
def test_the_requester_may_report_an_error_about_a_forward_but_not_answer_it() -> None:
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [GS])
    at_gs = post.deliver(sealed, GS)
    view = Conversation(at_gs.envelope, ask)
    forward = seal_forward(
        at_gs.envelope,
        sender=post.ids[GS],
        recipients=post.public(RABAT, SEOUL),
        now=NOW + 1,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    w = view.add_forward(forward)
    report = post.send(error_report(), SEOUL, [GS], now=NOW + 2, reply_to=w)
    step = view.receive(post.deliver(report, GS, now=NOW + 2))
    assert step is not None
    assert (step.event, step.sender, step.after) == (E.REPORT, SEOUL, S.SENT)
    answer = post.send(response(), SEOUL, [GS], now=NOW + 3, reply_to=w)
    with pytest.raises(BindingMismatch, match="own request"):
        view.receive(post.deliver(answer, GS, now=NOW + 3))


# --- CONV-8: messages that are not part of a request's conversation -------------------------


def _opaque_reply(post: Post, reply_to: bytes) -> SealedEnvelope:
    body = codec.encode({"content": {"note": "seen"}, "schema": "kr.knpa.cyber-note", "version": 1})
    return seal(
        body,
        sender=post.ids[RABAT],
        recipients=post.public(SEOUL, GS),
        now=NOW + HOUR,
        seq=post.next_seq(RABAT),
        rng=post.rng,
        reply_to=reply_to,
    )


@pytest.mark.req("CONV-8")
@pytest.mark.parametrize("followed", [True, False])
def test_a_message_outside_a_conversation_is_refused_never_held(followed: bool) -> None:
    exchange = Exchange()
    book = Conversations()
    if followed:
        book.start(exchange.at_gs.envelope, exchange.body)
    post, hash_ = exchange.post, exchange.request.message_hash
    strays = [
        exchange.reply(diffusion([PARIS]), PARIS),
        exchange.reply(request(handling=H0, case_reference="KR-3")),
        post.deliver(_opaque_reply(post, hash_), GS, now=NOW + HOUR),
        post.deliver(
            post.send(error_report(), RABAT, [SEOUL, GS], now=NOW + HOUR), GS, now=NOW + HOUR
        ),  # no reply_to: about nothing it can be bound to
    ]
    for stray in strays:
        with pytest.raises(BindingMismatch) as caught:
            book.receive(stray)
        assert caught.value.code == "binding-mismatch"
        with pytest.raises(BindingMismatch):
            exchange.view.receive(stray)
    assert book.parked_count == 0
    assert exchange.view.steps == ()


@pytest.mark.req("CONV-6", "CONV-7", "CONV-2")
def test_a_held_message_that_fails_never_loses_the_others() -> None:
    """The review's reproduction: an error report by a bureau the request did not reach."""
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [RABAT, GS])
    at_gs = post.deliver(sealed, GS)
    book = Conversations()
    h = sealed.message_hash
    early = [
        post.send(status(), RABAT, [SEOUL, GS], now=NOW + 60, reply_to=h),
        post.send(error_report(), PARIS, [SEOUL, GS], now=NOW + 30, reply_to=h),
        post.send(error_report(), RABAT, [SEOUL, GS], now=NOW + 90, reply_to=h),
        post.send(response(), PARIS, [SEOUL, GS], now=NOW + 95, reply_to=h),
        post.send(response(), RABAT, [SEOUL, GS], now=NOW + 120, reply_to=h),
    ]
    messages = [post.deliver(e, GS, now=e.header.created) for e in early]
    assert [book.receive(m).disposition for m in messages] == [Disposition.PARKED] * 5
    view, deliveries = book.start(at_gs.envelope, ask)
    assert [d.message for d in deliveries] == messages  # in the order of arrival
    assert [d.disposition for d in deliveries] == [
        Disposition.APPLIED,
        Disposition.REFUSED,
        Disposition.APPLIED,
        Disposition.REFUSED,
        Disposition.APPLIED,
    ]
    assert all(isinstance(d.error, BindingMismatch) for d in deliveries[1::2][:2])
    assert [d.step.event for d in deliveries if d.step] == [E.PROGRESS, E.REPORT, E.ANSWER]
    assert state_of(view) is S.ANSWERED
    assert book.parked_count == 0  # refused ones are not held for ever
    assert book.receive(messages[2]).disposition is Disposition.DUPLICATE
    with pytest.raises(BindingMismatch):  # and refused again, not held, once the hash is known
        book.receive(messages[1])
    assert book.parked_count == 0


@pytest.mark.req("CONV-6")
def test_each_held_message_is_removed_only_once_it_was_handled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    post = Post()
    ask = request(handling=H0)
    sealed = post.send(ask, SEOUL, [RABAT, GS])
    book = Conversations()
    h = sealed.message_hash
    bodies = [acknowledgement(), status(), response()]
    held = [
        post.deliver(post.send(b, RABAT, [SEOUL, GS], now=NOW + i, reply_to=h), GS, now=NOW + i)
        for i, b in enumerate(bodies, 1)
    ]
    for message in held:
        book.receive(message)
    real = Conversation.receive

    def flaky(self: Conversation, message: Message) -> object:
        if message is held[0]:
            raise UsageError("a library error from a held message")  # any NcbRelayError
        if message is held[1]:
            raise RuntimeError("a bug")
        return real(self, message)

    monkeypatch.setattr(Conversation, "receive", flaky)
    with pytest.raises(RuntimeError):
        book.start(post.open(sealed, GS, now=NOW + 5), ask)
    assert book.parked == (held[1], held[2])  # the first was handled (refused); none was lost
    monkeypatch.setattr(Conversation, "receive", real)
    assert [book.receive(m).disposition for m in book.parked] == [Disposition.APPLIED] * 2
    assert book.get(h).state is S.ANSWERED
