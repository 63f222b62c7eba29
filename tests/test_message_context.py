"""Bodies checked against the envelope that carries them (MSG-6 to MSG-9, MSG-11)."""

from __future__ import annotations

import pytest

from fixtures import NOW
from message_samples import (
    GS,
    HOUR,
    PARIS,
    RABAT,
    SEOUL,
    Post,
    acknowledgement,
    diffusion,
    error_report,
    notice,
    permission,
    request,
    response,
    status,
    withdrawal,
)
from ncb_relay import BindingMismatch, InvalidBody, UsageError, encode_body, seal
from ncb_relay.messages import (
    STANDARD_SECONDS,
    URGENT_SECONDS,
    AssistanceRequest,
    Body,
    Message,
    OpaqueBody,
    Urgency,
    read_message,
)


def delivered_raw(post: Post, body: Body, sender: str, to: list[str], **kw: object) -> Message:
    """Seal without seal_message's own checks, as a careless or hostile sender could."""
    sealed = seal(
        encode_body(body),
        sender=post.ids[sender],
        recipients=post.public(*to),
        now=NOW,
        seq=post.next_seq(sender),
        rng=post.rng,
        **kw,  # type: ignore[arg-type]
    )
    return post.deliver(sealed, to[0])


@pytest.mark.req("MSG-6")
@pytest.mark.parametrize("body", [acknowledgement(), status(), response(), withdrawal()])
def test_a_reply_without_reply_to_is_refused(body: Body) -> None:
    post = Post()
    with pytest.raises(BindingMismatch, match="reply_to"):
        delivered_raw(post, body, RABAT, [SEOUL])
    with pytest.raises(UsageError, match="reply_to"):
        post.send(body, RABAT, [SEOUL])
    answered = post.send(body, RABAT, [SEOUL], reply_to=bytes(32))
    assert post.deliver(answered, SEOUL).body == body


@pytest.mark.req("MSG-6")
@pytest.mark.parametrize("body", [request(), diffusion([PARIS]), notice(), error_report()])
def test_bodies_that_are_not_replies_need_no_reply_to(body: Body) -> None:
    post = Post()
    assert post.deliver(post.send(body, GS, [SEOUL]), SEOUL).body == body


@pytest.mark.req("MSG-7")
@pytest.mark.parametrize(
    ("body", "field", "reply_to"),
    [
        (request(urgency=Urgency.until(NOW)), "content.urgency.deadline", None),
        (request(urgency=Urgency.until(NOW - 1)), "content.urgency.deadline", None),
        (acknowledgement(expected_answer_by=NOW), "content.expected_answer_by", bytes(32)),
        (
            status().model_copy(update={"expected_answer_by": NOW - HOUR}),
            "content.expected_answer_by",
            bytes(32),
        ),
        (diffusion([PARIS], valid_until=NOW), "content.valid_until", None),
        (
            permission(bytes(32), RABAT).model_copy(update={"valid_until": NOW}),
            "content.valid_until",
            None,
        ),
    ],
)
def test_a_time_that_is_already_past_is_refused(
    body: Body, field: str, reply_to: bytes | None
) -> None:
    post = Post()
    with pytest.raises(InvalidBody) as caught:
        delivered_raw(post, body, SEOUL, [GS], reply_to=reply_to)
    assert (caught.value.field, caught.value.reason) == (field, "in-the-past")
    with pytest.raises(UsageError, match="not sealed"):
        post.send(body, SEOUL, [GS], reply_to=reply_to)


@pytest.mark.req("MSG-7")
def test_a_time_one_second_later_is_accepted() -> None:
    post = Post()
    body = request(urgency=Urgency.until(NOW + 1))
    assert post.deliver(post.send(body, SEOUL, [GS]), GS).body == body


@pytest.mark.req("MSG-8")
@pytest.mark.parametrize(
    ("urgency", "deadline"),
    [
        (Urgency.urgent(), NOW + 8 * HOUR),
        (Urgency.standard(), NOW + 7 * 24 * HOUR),
        (Urgency.until(NOW + 36 * HOUR), NOW + 36 * HOUR),
    ],
)
def test_the_deadline_comes_from_the_signed_created_time(urgency: Urgency, deadline: int) -> None:
    assert (URGENT_SECONDS, STANDARD_SECONDS) == (28_800, 604_800)
    assert urgency.deadline_after(NOW) == deadline
    post = Post()
    message = post.deliver(post.send(request(urgency=urgency), SEOUL, [GS]), GS)
    assert isinstance(message.body, AssistanceRequest)
    assert message.body.urgency.deadline_after(message.created) == deadline


@pytest.mark.req("MSG-9")
def test_only_the_coordinator_publishes_notices() -> None:
    post = Post()
    assert post.deliver(post.send(notice(), GS, [SEOUL, PARIS]), PARIS).body == notice()
    with pytest.raises(InvalidBody) as caught:
        post.deliver(post.send(notice(), SEOUL, [PARIS]), PARIS)
    assert (caught.value.field, caught.value.reason) == ("schema", "not-permitted")


@pytest.mark.req("MSG-11")
def test_read_message_takes_only_verified_envelopes() -> None:
    post = Post()
    sealed = post.send(request(), SEOUL, [GS])
    with pytest.raises(UsageError):
        read_message(sealed, coordinator=GS)  # type: ignore[arg-type]
    message = post.deliver(sealed, GS)
    assert (message.sender, message.recipients, message.reply_to) == (SEOUL, (GS,), None)
    assert (message.message_id, message.message_hash) == (sealed.message_id, sealed.message_hash)
    assert message.created == NOW


@pytest.mark.req("MSG-5", "MSG-11")
def test_an_opaque_body_passes_the_envelope_checks_untouched() -> None:
    post = Post()
    data = b"\x83\xa7content\x80\xa6schema\xaekr.knpa.x-case\xa7version\x01"
    sealed = seal(
        data, sender=post.ids[SEOUL], recipients=post.public(GS), now=NOW, seq=1, rng=post.rng
    )
    body = post.deliver(sealed, GS).body
    assert isinstance(body, OpaqueBody)
    assert body.data == data
