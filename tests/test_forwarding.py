"""Forwarding with provenance and the originator's control of dissemination (FWD-1 to FWD-5)."""

from __future__ import annotations

import pytest

from fixtures import NOW
from message_samples import (
    GS,
    H0,
    H1,
    H2,
    HOUR,
    PARIS,
    RABAT,
    SEOUL,
    TOKYO,
    Post,
    diffusion,
    permission,
    request,
    response,
)
from ncb_relay import (
    BindingMismatch,
    DecryptionFailed,
    DisseminationForbidden,
    InvalidBody,
    UsageError,
    VerifiedEnvelope,
    encode_body,
    seal,
)
from ncb_relay.messages import (
    Body,
    CarriedDisclosure,
    DisseminationPermission,
    Forward,
    ForwardedMessage,
    Handling,
    SealedForward,
    Urgency,
    seal_forward,
    verify_forward,
)

H3 = Handling(code="H3", source_reliability="C", information_accuracy=3, conditions=("No media.",))


class World:
    """Seoul sends to the coordinator; the coordinator forwards."""

    def __init__(self) -> None:
        self.post = Post()

    def at_gs(
        self, body: Body, sender: str = SEOUL, to: tuple[str, ...] = (GS,), at: int = NOW
    ) -> VerifiedEnvelope:
        return self.post.open(self.post.send(body, sender, to, now=at), GS, now=at)

    def grant(
        self,
        original: VerifiedEnvelope,
        *granted: str,
        sender: str = SEOUL,
        valid_until: int | None = None,
    ) -> VerifiedEnvelope:
        body = DisseminationPermission(
            handling=H0, original=original.message_hash, granted_to=granted, valid_until=valid_until
        )
        return self.at_gs(body, sender, at=NOW + 1)

    def forward(
        self, original: VerifiedEnvelope, *to: str, at: int = NOW + HOUR, **kw: object
    ) -> SealedForward:
        return seal_forward(
            original,
            sender=self.post.ids[GS],
            recipients=self.post.public(*to),
            now=at,
            seq=self.post.next_seq(GS),
            rng=self.post.rng,
            coordinator=GS,
            **kw,  # type: ignore[arg-type]
        )

    def by_hand(self, body: Forward, sender: str, *to: str, at: int = NOW + HOUR) -> bytes:
        """A forward sealed without seal_forward's checks, as a careless forwarder could."""
        return seal(
            encode_body(body),
            sender=self.post.ids[sender],
            recipients=self.post.public(*to),
            now=at,
            seq=self.post.next_seq(sender),
            rng=self.post.rng,
        ).data

    def receive(
        self, data: SealedForward | bytes, by: str, at: int = NOW + HOUR
    ) -> ForwardedMessage:
        raw = data.sealed.data if isinstance(data, SealedForward) else data
        message = self.post.deliver(raw, by, now=at)
        return verify_forward(message, directory=self.post.directory, coordinator=GS)


# --- FWD-1: provenance ----------------------------------------------------------------------


@pytest.mark.req("FWD-1", "HAND-3")
@pytest.mark.parametrize("handling", [H0, H1, H3], ids=["H0", "H1", "H3"])
def test_a_forward_proves_both_the_author_and_the_forwarder(handling: Handling) -> None:
    world = World()
    ask = request(handling=handling)
    original = world.at_gs(ask)
    sent = world.forward(original, RABAT, note="For action.")
    assert sent.original_hash == original.message_hash
    assert sent.body.handling == handling  # the forward's own handling defaults to the original's
    got = world.receive(sent, RABAT)
    assert (got.author, got.forwarder) == (SEOUL, GS)
    assert got.original_body == ask
    assert got.original_body.handling == handling
    assert got.original.recipients == (GS,)
    assert got.forward.recipients == (RABAT,)
    assert got.original_hash == original.message_hash
    assert got.permission is None
    assert "by 'KR.ncb-seoul'" in repr(got)
    assert "forwarded by 'XP.interpol-gs'" in repr(got)


@pytest.mark.req("HAND-3")
def test_a_forwarder_cannot_lower_the_originators_handling() -> None:
    world = World()
    original = world.at_gs(request(handling=H1))
    sent = world.forward(original, RABAT, handling=H0)
    got = world.receive(sent, RABAT)
    assert isinstance(got.forward.body, Forward)
    assert got.forward.body.handling == H0  # the forwarder's note
    assert got.original_body.handling == H1  # the information: still H1, signed by Seoul


@pytest.mark.req("FWD-1")
def test_a_wrong_content_key_or_a_bad_original_body_is_refused() -> None:
    world = World()
    original = world.at_gs(request(handling=H0))
    wrong = Forward(
        handling=H0,
        original=CarriedDisclosure(envelope=original.routed.data, content_key=bytes(32)),
    )
    with pytest.raises(DecryptionFailed):
        world.receive(world.by_hand(wrong, GS, RABAT), RABAT)
    raw = seal(
        b"\x80",
        sender=world.post.ids[SEOUL],
        recipients=world.post.public(GS),
        now=NOW,
        seq=99,
        rng=world.post.rng,
    )
    junk = world.post.open(raw, GS)
    carried = Forward(handling=H0, original=CarriedDisclosure.of(junk.disclose()))
    with pytest.raises(InvalidBody):
        world.receive(world.by_hand(carried, GS, RABAT), RABAT)
    past = seal(
        encode_body(request(handling=H0, urgency=Urgency.until(NOW))),
        sender=world.post.ids[SEOUL],
        recipients=world.post.public(GS),
        now=NOW,
        seq=98,
        rng=world.post.rng,
    )
    stale_deadline = Forward(
        handling=H0, original=CarriedDisclosure.of(world.post.open(past, GS).disclose())
    )
    with pytest.raises(InvalidBody, match="not later than the message"):
        world.receive(world.by_hand(stale_deadline, GS, RABAT), RABAT)


@pytest.mark.req("FWD-1")
def test_verify_forward_takes_a_forward() -> None:
    world = World()
    message = world.post.deliver(world.post.send(request(), SEOUL, [GS]), GS)
    with pytest.raises(UsageError):
        verify_forward(message, directory=world.post.directory, coordinator=GS)
    assert "content_key" not in repr(CarriedDisclosure(envelope=b"e", content_key=b"k" * 32))


# --- FWD-2: the forwarder received the original --------------------------------------------


@pytest.mark.req("FWD-2", "FWD-5")
def test_only_a_recipient_of_the_original_forwards_it() -> None:
    world = World()
    original = world.at_gs(diffusion([PARIS]))
    sent = world.forward(original, PARIS)
    at_paris = world.receive(sent, PARIS)
    assert at_paris.author == SEOUL
    onward = Forward(handling=H0, original=sent.body.original)  # Paris passes Seoul's original on
    with pytest.raises(BindingMismatch, match="not a recipient"):
        world.receive(
            world.by_hand(onward, PARIS, TOKYO, at=NOW + 2 * HOUR), TOKYO, at=NOW + 2 * HOUR
        )
    with pytest.raises(UsageError, match="not a recipient"):
        seal_forward(
            original,
            sender=world.post.ids[PARIS],
            recipients=world.post.public(TOKYO),
            now=NOW + HOUR,
            seq=1,
            rng=world.post.rng,
            coordinator=GS,
        )
    with pytest.raises(UsageError):
        seal_forward(
            sent.sealed,  # type: ignore[arg-type]
            sender=world.post.ids[GS],
            recipients=world.post.public(TOKYO),
            now=NOW + HOUR,
            seq=1,
            rng=world.post.rng,
            coordinator=GS,
        )


# --- FWD-3: one hop, known bodies only -----------------------------------------------------


@pytest.mark.req("FWD-3", "FWD-5")
def test_a_forward_is_not_forwarded_again() -> None:
    world = World()
    sent = world.forward(world.at_gs(diffusion([PARIS])), PARIS, TOKYO)
    at_paris = world.post.open(sent.sealed, PARIS, now=NOW + HOUR)
    with pytest.raises(DisseminationForbidden, match="one hop"):
        seal_forward(
            at_paris,
            sender=world.post.ids[PARIS],
            recipients=world.post.public(RABAT),
            now=NOW + 2 * HOUR,
            seq=1,
            rng=world.post.rng,
            coordinator=GS,
        )
    nested = Forward(handling=H0, original=CarriedDisclosure.of(at_paris.disclose()))
    with pytest.raises(DisseminationForbidden, match="one hop"):
        world.receive(
            world.by_hand(nested, PARIS, RABAT, at=NOW + 2 * HOUR), RABAT, at=NOW + 2 * HOUR
        )


@pytest.mark.req("FWD-3", "MSG-5")
def test_a_body_of_unknown_schema_is_not_forwarded() -> None:
    world = World()
    data = b"\x83\xa7content\x80\xa6schema\xaekr.knpa.x-case\xa7version\x01"
    raw = seal(
        data,
        sender=world.post.ids[SEOUL],
        recipients=world.post.public(GS),
        now=NOW,
        seq=50,
        rng=world.post.rng,
    )
    opaque = world.post.open(raw, GS)
    with pytest.raises(DisseminationForbidden, match="unknown schema"):
        world.forward(opaque, RABAT)
    carried = Forward(handling=H0, original=CarriedDisclosure.of(opaque.disclose()))
    with pytest.raises(DisseminationForbidden, match="unknown schema"):
        world.receive(world.by_hand(carried, GS, RABAT), RABAT)


# --- FWD-4: H2 and the originator's permission ---------------------------------------------


@pytest.mark.req("FWD-4", "FWD-5")
def test_h2_is_forwarded_only_with_the_originators_permission() -> None:
    world = World()
    original = world.at_gs(request(handling=H2))
    with pytest.raises(DisseminationForbidden, match="H2"):
        world.forward(original, RABAT)
    bare = Forward(handling=H2, original=CarriedDisclosure.of(original.disclose()))
    with pytest.raises(DisseminationForbidden, match="no permission"):
        world.receive(world.by_hand(bare, GS, RABAT), RABAT)
    grant = world.grant(original, RABAT)
    got = world.receive(world.forward(original, RABAT, SEOUL, permission=grant), RABAT)
    assert got.permission is not None
    assert got.permission.sender == SEOUL
    assert got.original_body.handling.forbids_dissemination


def _refusal(world: World, original: VerifiedEnvelope, grant: VerifiedEnvelope, *to: str) -> str:
    """Both sides refuse: seal_forward, and a receiver of a forward built by hand."""
    with pytest.raises(DisseminationForbidden) as sender_side:
        world.forward(original, *to, permission=grant)
    carried = Forward(
        handling=H2,
        original=CarriedDisclosure.of(original.disclose()),
        permission=CarriedDisclosure.of(grant.disclose()),
    )
    with pytest.raises(DisseminationForbidden) as receiver_side:
        world.receive(world.by_hand(carried, GS, *to), to[0])
    assert sender_side.value.message == receiver_side.value.message
    return sender_side.value.message


@pytest.mark.req("FWD-4", "FWD-5")
def test_every_condition_of_the_permission_is_checked() -> None:
    world = World()
    original = world.at_gs(request(handling=H2))
    other = world.at_gs(request(handling=H2, case_reference="KR-2"), at=NOW + 2)
    assert "does not cover FR.ncb-paris" in _refusal(
        world, original, world.grant(original, RABAT), RABAT, PARIS
    )
    assert "not signed by the originator" in _refusal(
        world, original, world.grant(original, RABAT, sender=TOKYO), RABAT
    )
    assert "another message" in _refusal(world, original, world.grant(other, RABAT), RABAT)
    assert "expired" in _refusal(
        world, original, world.grant(original, RABAT, valid_until=NOW + 60), RABAT
    )
    not_a_permission = world.at_gs(request(handling=H0, case_reference="KR-3"), at=NOW + 3)
    assert "not a dissemination permission" in _refusal(world, original, not_a_permission, RABAT)


@pytest.mark.req("FWD-4")
def test_a_permission_not_given_to_the_forwarder_is_refused() -> None:
    world = World()
    original = world.at_gs(request(handling=H2), to=(GS, TOKYO))
    given_to_tokyo = world.post.send(
        permission(original.message_hash, RABAT), SEOUL, [TOKYO, GS], now=NOW + 1
    )
    at_gs = world.post.open(given_to_tokyo, GS, now=NOW + 1)
    carried = Forward(
        handling=H2,
        original=CarriedDisclosure.of(original.disclose()),
        permission=CarriedDisclosure.of(at_gs.disclose()),
    )
    # Tokyo, a recipient of the original, forwards under a permission to GS and Tokyo: fine
    ok = world.by_hand(carried, TOKYO, RABAT)
    assert world.receive(ok, RABAT).forwarder == TOKYO
    only_gs = world.post.send(permission(original.message_hash, RABAT), SEOUL, [GS], now=NOW + 2)
    carried_only_gs = carried.model_copy(
        update={
            "permission": CarriedDisclosure.of(world.post.open(only_gs, GS, now=NOW + 2).disclose())
        }
    )
    with pytest.raises(DisseminationForbidden, match=r"not given to JP\.ncb-tokyo"):
        world.receive(world.by_hand(carried_only_gs, TOKYO, RABAT), RABAT)


@pytest.mark.req("FWD-4")
def test_copying_those_who_hold_the_original_is_not_dissemination() -> None:
    world = World()
    original = world.at_gs(request(handling=H2), to=(GS, TOKYO))
    grant = world.grant(original, RABAT)
    sent = world.forward(original, RABAT, SEOUL, TOKYO, permission=grant)  # author and a recipient
    for bureau in (RABAT, SEOUL, TOKYO):
        assert world.receive(sent, bureau).author == SEOUL


@pytest.mark.req("FWD-4")
def test_a_permission_carried_with_a_message_that_is_not_h2_is_still_checked() -> None:
    world = World()
    original = world.at_gs(request(handling=H0))
    other = world.at_gs(request(handling=H0, case_reference="KR-4"), at=NOW + 2)
    good = world.receive(
        world.forward(original, RABAT, permission=world.grant(original, RABAT)), RABAT
    )
    assert good.permission is not None
    with pytest.raises(DisseminationForbidden, match="another message"):
        world.forward(original, RABAT, permission=world.grant(other, RABAT))


@pytest.mark.req("FWD-4", "MSG-7")
def test_a_permission_with_a_valid_until_before_its_own_creation_is_an_invalid_body() -> None:
    world = World()
    original = world.at_gs(request(handling=H2))
    body = DisseminationPermission(
        handling=H0, original=original.message_hash, granted_to=(RABAT,), valid_until=NOW
    )
    raw = seal(
        encode_body(body),
        sender=world.post.ids[SEOUL],
        recipients=world.post.public(GS),
        now=NOW + 1,
        seq=77,
        rng=world.post.rng,
    )
    grant = world.post.open(raw, GS, now=NOW + 1)
    with pytest.raises(InvalidBody):
        world.forward(original, RABAT, permission=grant)
    carried = Forward(
        handling=H2,
        original=CarriedDisclosure.of(original.disclose()),
        permission=CarriedDisclosure.of(grant.disclose()),
    )
    with pytest.raises(InvalidBody):
        world.receive(world.by_hand(carried, GS, RABAT), RABAT)


@pytest.mark.req("FWD-4", "HAND-3")
def test_an_h2_answer_is_not_passed_on() -> None:
    world = World()
    answer = world.post.send(response(handling=H2), RABAT, [GS, SEOUL], reply_to=bytes(32))
    at_gs = world.post.open(answer, GS)
    with pytest.raises(DisseminationForbidden, match="H2"):
        world.forward(at_gs, PARIS)
