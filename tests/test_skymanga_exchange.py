"""The SkyManga case, played through the sans-IO core alone (issue #3, "done when").

Korea's culture ministry asks for action against SkyManga; NCB Seoul sends the
request to the General Secretariat, which forwards it to NCB Rabat with
provenance and Seoul's permission (the request is H2); Rabat acknowledges,
reports progress and answers; replies reach Seoul out of order; an H2 forward
to a bureau the permission does not name is refused; and Rabat's diffusion
about linked sites, held at the coordinator's review gate, is approved and
forwarded to five bureaus.  Every message is a real envelope, opened with the
recipient's keys.
"""

from __future__ import annotations

import pytest

from fixtures import NOW
from message_samples import (
    BRASILIA,
    GS,
    H0,
    HOUR,
    MADRID,
    PARIS,
    RABAT,
    SEOUL,
    TOKYO,
    Post,
    acknowledgement,
    diffusion,
    permission,
    request,
    response,
    status,
)
from ncb_relay import BindingMismatch, DisseminationForbidden
from ncb_relay.messages import (
    AssistanceRequest,
    AssistanceResponse,
    Conversation,
    Conversations,
    Diffusion,
    Disposition,
    Forward,
    RequestState,
    ReviewGate,
    ReviewStatus,
    Urgency,
    seal_forward,
    seal_message,
    verify_forward,
)
from ncb_relay.messages.provenance import CarriedDisclosure

LINKED_SITES_TO = (SEOUL, PARIS, TOKYO, MADRID, BRASILIA)


def state_of(view: Conversation) -> RequestState:
    """The state now (a function, so that mypy does not narrow it across calls)."""
    return view.state


@pytest.mark.req("CONV-2", "CONV-5", "CONV-6", "FWD-1", "FWD-2", "FWD-4", "FWD-5", "GATE-1")
def test_the_skymanga_exchange_through_the_core() -> None:
    post = Post()
    seoul_book, gs_book = Conversations(), Conversations()

    # 1. NCB Seoul asks, on behalf of the ministry, under H2; it permits a forward to Rabat.
    ask = request()
    sealed_request = post.send(ask, SEOUL, [GS])
    seoul_view, parked = seoul_book.start(sealed_request, ask)
    assert parked == ()
    assert state_of(seoul_view) is RequestState.SENT
    assert seoul_view.deadline == NOW + 7 * 24 * HOUR  # standard urgency, from signed `created`
    consent = post.send(permission(sealed_request.message_hash, RABAT), SEOUL, [GS], now=NOW + 60)

    # 2. The coordinator reads both and follows the request.
    at_gs = post.deliver(sealed_request, GS, now=NOW + 120)
    assert isinstance(at_gs.body, AssistanceRequest)
    assert at_gs.body == ask
    assert at_gs.body.originating_authority.country == "KR"
    consent_at_gs = post.open(consent, GS, now=NOW + 120)
    gs_book.start(at_gs.envelope, at_gs.body)

    # 3. H2: without permission, and to a bureau the permission does not name, it is refused.
    with pytest.raises(DisseminationForbidden):
        seal_forward(
            at_gs.envelope,
            sender=post.ids[GS],
            recipients=post.public(RABAT),
            now=NOW + 180,
            seq=post.next_seq(GS),
            rng=post.rng,
            coordinator=GS,
        )
    with pytest.raises(DisseminationForbidden, match=PARIS):
        seal_forward(
            at_gs.envelope,
            sender=post.ids[GS],
            recipients=post.public(RABAT, PARIS),
            now=NOW + 180,
            seq=post.next_seq(GS),
            rng=post.rng,
            coordinator=GS,
            permission=consent_at_gs,
        )

    # 4. The coordinator forwards it to Rabat, Seoul in copy, with Seoul's permission.
    forward = seal_forward(
        at_gs.envelope,
        sender=post.ids[GS],
        recipients=post.public(RABAT, SEOUL),
        now=NOW + 240,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
        permission=consent_at_gs,
        note="Please assist NCB Seoul; reply to both of us.",
    )
    assert gs_book.add_forward(forward) == ()

    # 5. Rabat verifies the author (Seoul) and the forwarder (the coordinator).
    at_rabat = verify_forward(
        post.deliver(forward.sealed, RABAT, now=NOW + 300), directory=post.directory, coordinator=GS
    )
    assert (at_rabat.author, at_rabat.forwarder) == (SEOUL, GS)
    assert at_rabat.original_body == ask
    assert at_rabat.original_body.handling.code == "H2"
    assert at_rabat.permission is not None
    assert at_rabat.permission.sender == SEOUL
    w_hash = forward.sealed.message_hash

    # 6. Rabat acknowledges, reports progress and answers, each bound to the forward it received.
    ack = post.send(acknowledgement(), RABAT, [GS, SEOUL], now=NOW + HOUR, reply_to=w_hash)
    progress = post.send(status(), RABAT, [GS, SEOUL], now=NOW + 48 * HOUR, reply_to=w_hash)
    findings = response()
    answer = post.send(findings, RABAT, [GS, SEOUL], now=NOW + 96 * HOUR, reply_to=w_hash)

    # 7. Seoul gets the status update before its copy of the forward: parked, not lost.
    early = seoul_book.receive(post.deliver(progress, SEOUL, now=NOW + 48 * HOUR))
    assert early.disposition is Disposition.PARKED
    assert state_of(seoul_view) is RequestState.SENT
    copy = verify_forward(
        post.deliver(forward.sealed, SEOUL, now=NOW + 48 * HOUR),
        directory=post.directory,
        coordinator=GS,
    )
    (replayed,) = seoul_book.add_forward(copy)
    assert replayed.disposition is Disposition.APPLIED
    assert state_of(seoul_view) is RequestState.IN_PROGRESS

    # 8. The answer, then the acknowledgement that was sent first (late), then a duplicate.
    answered = seoul_book.receive(post.deliver(answer, SEOUL, now=NOW + 96 * HOUR))
    assert answered.step is not None
    assert answered.step.after is RequestState.ANSWERED
    assert isinstance(answered.step.body, AssistanceResponse)
    assert answered.step.body == findings
    late = seoul_book.receive(post.deliver(ack, SEOUL, now=NOW + 96 * HOUR))
    assert late.step is not None
    assert not late.step.changed
    assert seoul_book.receive(answered.message).disposition is Disposition.DUPLICATE
    assert state_of(seoul_view) is RequestState.ANSWERED
    assert [s.event.value for s in seoul_view.steps] == ["progress", "answer", "accept"]
    assert not seoul_view.is_overdue(NOW + 30 * 24 * HOUR)

    # 9. The coordinator, in copy, follows the same request through its own forward.
    at_gs_replies = [post.deliver(x, GS, now=NOW + 96 * HOUR) for x in (ack, progress, answer)]
    for reply in at_gs_replies:
        gs_book.receive(reply)
    assert state_of(gs_book.get(sealed_request.message_hash)) is RequestState.ANSWERED
    answer_at_gs = at_gs_replies[-1]

    # 10. The answer is H2 (Rabat's): the coordinator may not pass it on to Paris.
    with pytest.raises(DisseminationForbidden, match="H2"):
        seal_forward(
            answer_at_gs.envelope,
            sender=post.ids[GS],
            recipients=post.public(PARIS),
            now=NOW + 97 * HOUR,
            seq=post.next_seq(GS),
            rng=post.rng,
            coordinator=GS,
        )
    # ... and a forward built by hand, bypassing that check, is refused by Paris.
    smuggled = Forward(handling=H0, original=CarriedDisclosure.of(answer_at_gs.envelope.disclose()))
    sent = seal_message(
        smuggled,
        sender=post.ids[GS],
        recipients=post.public(PARIS),
        now=NOW + 97 * HOUR,
        seq=post.next_seq(GS),
        rng=post.rng,
    )
    with pytest.raises(DisseminationForbidden):
        verify_forward(
            post.deliver(sent, PARIS, now=NOW + 97 * HOUR), directory=post.directory, coordinator=GS
        )

    # 11. Rabat's diffusion about linked sites is held at the gate, approved, and forwarded.
    gate = ReviewGate(under_review=[RABAT])
    linked = post.send(diffusion(LINKED_SITES_TO), RABAT, [GS], now=NOW + 100 * HOUR)
    held = gate.submit(post.deliver(linked, GS, now=NOW + 100 * HOUR))
    assert held.status is ReviewStatus.HELD
    assert held not in gate.ready_to_forward
    from_seoul = post.send(diffusion([PARIS, TOKYO]), SEOUL, [GS], now=NOW + 100 * HOUR)
    released = gate.submit(post.deliver(from_seoul, GS, now=NOW + 100 * HOUR))
    assert released.status is ReviewStatus.RELEASED
    approved = gate.approve(held.message_hash, now=NOW + 101 * HOUR, note="checked")
    assert approved.status is ReviewStatus.APPROVED
    assert approved.targets([]) == tuple(sorted(LINKED_SITES_TO))
    circulated = seal_forward(
        approved.message.envelope,
        sender=post.ids[GS],
        recipients=post.public(*approved.targets([])),
        now=NOW + 101 * HOUR,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    gate.mark_forwarded(approved.message_hash)
    assert [s.message_hash for s in gate.ready_to_forward] == [released.message_hash]
    for bureau in LINKED_SITES_TO:
        seen = verify_forward(
            post.deliver(circulated.sealed, bureau, now=NOW + 102 * HOUR),
            directory=post.directory,
            coordinator=GS,
        )
        assert (seen.author, seen.forwarder) == (RABAT, GS)
        assert isinstance(seen.original_body, Diffusion)
        assert seen.original_body.subjects.websites[0].domain == "skymanga-mirror.example"


@pytest.mark.req("CONV-4", "CONV-2")
def test_an_urgent_request_nobody_answers_expires_at_eight_hours() -> None:
    post = Post()
    book = Conversations()
    urgent = request(urgency=Urgency.urgent(), handling=H0)
    sent = post.send(urgent, SEOUL, [RABAT, GS])
    view, _ = book.start(sent, urgent)
    assert not view.is_overdue(NOW + 8 * HOUR - 1)
    assert view.expire(NOW + 8 * HOUR - 1) is None
    step = view.expire(NOW + 8 * HOUR)
    assert step is not None
    assert state_of(view) is RequestState.EXPIRED
    # another request's answer cannot be spliced onto this one
    other = post.send(request(handling=H0), SEOUL, [RABAT], now=NOW + 1)
    reply = post.send(response(), RABAT, [SEOUL], now=NOW + 2, reply_to=other.message_hash)
    with pytest.raises(BindingMismatch):
        view.receive(post.deliver(reply, SEOUL, now=NOW + 3))
    assert state_of(view) is RequestState.EXPIRED
    assert len(view.steps) == 1
