"""The coordinator's review gate for diffusions (GATE-1, GATE-2)."""

from __future__ import annotations

import itertools

import pytest

from fixtures import NOW
from message_samples import GS, PARIS, RABAT, SEOUL, TOKYO, Post, diffusion, request
from ncb_relay import UsageError
from ncb_relay.messages import (
    Diffusion,
    Distribution,
    Message,
    ReviewGate,
    ReviewStatus,
    seal_forward,
    verify_forward,
)
from ncb_relay.messages.review import REVIEW_MOVES, ReviewAction


def submitted(post: Post, sender: str, body: Diffusion, at: int = NOW) -> Message:
    return post.deliver(post.send(body, sender, [GS], now=at), GS, now=at)


@pytest.mark.req("GATE-1")
def test_diffusions_from_a_bureau_under_review_are_held_others_released() -> None:
    post = Post()
    gate = ReviewGate(under_review=[RABAT])
    held = gate.submit(submitted(post, RABAT, diffusion([PARIS, TOKYO])))
    free = gate.submit(submitted(post, SEOUL, diffusion([PARIS]), NOW + 1))
    assert (held.status, free.status) == (ReviewStatus.HELD, ReviewStatus.RELEASED)
    assert gate.held == (held,)
    assert gate.ready_to_forward == (free,)
    assert gate.submit(held.message) is held  # a second submission is the same one
    assert gate.under_review == {RABAT}


@pytest.mark.req("GATE-1", "FWD-1")
def test_an_approved_diffusion_is_forwarded_with_provenance_a_rejected_one_never() -> None:
    post = Post()
    gate = ReviewGate()
    gate.hold_diffusions_from(RABAT)
    first = gate.submit(submitted(post, RABAT, diffusion([PARIS, TOKYO, SEOUL])))
    second = gate.submit(
        submitted(post, RABAT, diffusion([PARIS], title="Unverified rumour"), NOW + 1)
    )
    approved = gate.approve(first.message_hash, now=NOW + 60, note="checked against the file")
    rejected = gate.reject(second.message_hash, now=NOW + 61, reason="not substantiated")
    assert (approved.status, approved.decided_at, approved.reason) == (
        ReviewStatus.APPROVED,
        NOW + 60,
        "checked against the file",
    )
    assert (rejected.status, rejected.reason) == (ReviewStatus.REJECTED, "not substantiated")
    assert gate.ready_to_forward == (approved,)
    targets = approved.targets([])
    assert targets == (PARIS, TOKYO, SEOUL)  # sorted, as the envelope sorts recipients
    forward = seal_forward(
        approved.message.envelope,
        sender=post.ids[GS],
        recipients=post.public(*targets),
        now=NOW + 120,
        seq=post.next_seq(GS),
        rng=post.rng,
        coordinator=GS,
    )
    done = gate.mark_forwarded(approved.message_hash)
    assert done.status is ReviewStatus.FORWARDED
    assert done.decided_at == NOW + 60
    assert len(gate.ready_to_forward) == 0
    got = verify_forward(
        post.deliver(forward.sealed, TOKYO, now=NOW + 120), directory=post.directory, coordinator=GS
    )
    assert (got.author, got.forwarder) == (RABAT, GS)


@pytest.mark.req("GATE-1")
def test_lifting_review_releases_later_diffusions_but_not_those_held() -> None:
    post = Post()
    gate = ReviewGate(under_review=[RABAT])
    held = gate.submit(submitted(post, RABAT, diffusion([PARIS])))
    gate.release_diffusions_from(RABAT)
    later = gate.submit(submitted(post, RABAT, diffusion([TOKYO]), NOW + 1))
    assert gate.submission(held.message_hash).status is ReviewStatus.HELD
    assert later.status is ReviewStatus.RELEASED


@pytest.mark.req("GATE-1")
def test_targets_follow_the_distribution() -> None:
    post = Post()
    gate = ReviewGate()
    everyone = [SEOUL, RABAT, GS, PARIS, TOKYO]
    to_all = gate.submit(
        submitted(post, SEOUL, diffusion([PARIS], distribution=Distribution(scope="all")))
    )
    assert to_all.targets(everyone) == tuple(sorted([RABAT, PARIS, TOKYO]))  # not the author or GS
    listed = gate.submit(submitted(post, SEOUL, diffusion([PARIS, GS]), NOW + 1))
    assert listed.targets(everyone) == (PARIS,)


@pytest.mark.req("GATE-2")
@pytest.mark.parametrize(("status", "action"), list(itertools.product(ReviewStatus, ReviewAction)))
def test_every_move_is_in_the_table_or_refused(status: ReviewStatus, action: ReviewAction) -> None:
    post = Post()
    gate = ReviewGate(under_review=[RABAT] if status is not ReviewStatus.RELEASED else [])
    submission = gate.submit(submitted(post, RABAT, diffusion([PARIS])))
    path = {
        ReviewStatus.HELD: [],
        ReviewStatus.RELEASED: [],
        ReviewStatus.APPROVED: [ReviewAction.APPROVE],
        ReviewStatus.REJECTED: [ReviewAction.REJECT],
        ReviewStatus.FORWARDED: [ReviewAction.APPROVE, ReviewAction.FORWARD],
    }[status]
    moves = {
        ReviewAction.APPROVE: lambda: gate.approve(submission.message_hash, now=NOW),
        ReviewAction.REJECT: lambda: gate.reject(submission.message_hash, now=NOW, reason="no"),
        ReviewAction.FORWARD: lambda: gate.mark_forwarded(submission.message_hash),
    }
    for step in path:
        moves[step]()
    assert gate.submission(submission.message_hash).status is status
    if (status, action) in REVIEW_MOVES:
        assert moves[action]().status is REVIEW_MOVES[(status, action)]
    else:
        with pytest.raises(UsageError, match=f"a {status} diffusion cannot"):
            moves[action]()
        assert gate.submission(submission.message_hash).status is status


@pytest.mark.req("GATE-2")
def test_the_gate_refuses_what_is_not_a_submitted_diffusion() -> None:
    post = Post()
    gate = ReviewGate()
    with pytest.raises(UsageError):
        gate.submit(post.deliver(post.send(request(), SEOUL, [GS]), GS))
    with pytest.raises(UsageError):
        gate.approve(bytes(32), now=NOW)
    with pytest.raises(UsageError):
        ReviewGate(under_review=["not a bureau"])
    with pytest.raises(UsageError):
        gate.hold_diffusions_from("XX")
