"""The Bureau's own rules, each from a finding of the security review of ncb_relay.bureau.

Most run offline: envelopes are sealed here and fed to :meth:`Bureau.take`,
with fixed keys and a relay client pointed at a closed port (nothing is
submitted or fetched unless a test says so).  The ones about submissions use
a real relay through the ``Tamper`` transport of ``bureau_world``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from bureau_world import FAST, GS, IDS, Seen, Tamper, bureau, relay_node, until
from directory_world import CHAIN, T0, genesis, signed
from fixtures import seeded_rng
from message_samples import (
    H0,
    H2,
    PARIS,
    RABAT,
    SEOUL,
    acknowledgement,
    diffusion,
    request,
    response,
    status,
)
from ncb_relay.bureau import Bureau, BureauStore, Incoming, RowState
from ncb_relay.client import RelayClient
from ncb_relay.directory import StaticDirectory
from ncb_relay.errors import NoAnswer, UsageError
from ncb_relay.lifecycle import next_version, revoke_key, suspend
from ncb_relay.messages import (
    AssistanceRequest,
    Body,
    Diffusion,
    Forward,
    RequestState,
    StatusUpdate,
    seal_message,
)
from ncb_relay.verified_directory import load_directory
from relay_node_world import RELAY, Clock

GUARD = 60.0


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def offline(
    tmp_path: Path, who: str = GS, **options: object
) -> AsyncIterator[tuple[Bureau, Clock]]:
    """A started bureau with fixed keys whose relay cannot be reached."""
    clock = Clock()
    journal = BureauStore(tmp_path / f"{who}.db", principal=who)
    try:
        async with RelayClient(
            "http://127.0.0.1:9", relay_id=RELAY, identity=IDS[who], clock=clock, retry=FAST
        ) as unreachable:
            b = Bureau(
                IDS[who],
                relay=unreachable,
                store=journal,
                coordinator=GS,
                directory=StaticDirectory(i.public for i in IDS.values()),
                clock=clock,
                **options,  # type: ignore[arg-type]
            )
            yield b, clock
    finally:
        journal.close()


def sealed(
    body: Body, sender: str, *to: str, seq: int, now: int, reply_to: bytes | None = None
) -> bytes:
    return seal_message(
        body,
        sender=IDS[sender],
        recipients=[IDS[r].public for r in to],
        now=now,
        seq=seq,
        rng=seeded_rng(f"rules {sender} {seq}".encode()),
        reply_to=reply_to,
    ).data


@pytest.mark.anyio
async def test_a_bureau_is_built_outside_an_event_loop_and_started_inside(
    tmp_path: Path,
) -> None:
    async with offline(tmp_path) as (gs, _):
        assert gs.keys is not None
        await gs.start()
        with pytest.raises(UsageError):
            await gs.start()


@pytest.mark.anyio
async def test_each_sender_parks_at_most_its_share_of_early_replies(tmp_path: Path) -> None:
    async with offline(tmp_path, max_parked_per_sender=2) as (gs, clock):
        await gs.start()
        unknown = [bytes([n]) * 32 for n in range(1, 5)]
        for seq, handle in enumerate(unknown[:3], start=1):  # Rabat: two parked, one refused
            data = sealed(status(), RABAT, GS, seq=seq, now=clock(), reply_to=handle)
            await gs.take(data)
        assert [code for _, _, code, _ in gs.store.refused()] == ["limit-exceeded"]
        data = sealed(status(), SEOUL, GS, seq=1, now=clock(), reply_to=unknown[3])
        await gs.take(data)  # another sender still has room
        assert len(gs.conversations.parked) == 3
        assert [r.detail for r in gs.inbox()] == ["parked"] * 3


@pytest.mark.anyio
async def test_the_same_refused_bytes_are_kept_once(tmp_path: Path) -> None:
    async with offline(tmp_path) as (gs, _):
        await gs.start()
        for _ in range(3):
            assert await gs.take(b"\x93\x01\x02\x03 garbage") is None
        assert len(gs.store.refused()) == 1


@pytest.mark.anyio
async def test_a_message_without_a_handler_waits_unhandled_for_the_next_start(
    tmp_path: Path,
) -> None:
    async with offline(tmp_path) as (gs, clock):
        await gs.start()
        first = sealed(diffusion([GS]), RABAT, GS, seq=1, now=clock())
        assert await gs.take(first) is not None
        assert [(r.state, r.detail) for r in gs.inbox()] == [(RowState.UNHANDLED, "no handler")]
    seen = Seen()
    async with offline(tmp_path) as (gs, _):
        gs.on(Diffusion, seen)
        await gs.start()
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(gs.run)
                await until(lambda: bool(seen.handed))
                gs.stop()
        assert [r.state for r in gs.inbox()] == [RowState.HANDLED]
    async with offline(tmp_path) as (gs, clock):
        catch_all = Seen()
        gs.on("*", catch_all)  # any body no other handler takes
        await gs.start()
        other = sealed(diffusion([GS]), SEOUL, GS, seq=1, now=clock())
        assert await gs.take(other) is not None
        assert [type(i.body) for i in catch_all.handed] == [Diffusion]
        assert [r.state for r in gs.inbox()] == [RowState.HANDLED] * 2


@pytest.mark.anyio
async def test_replies_while_the_handler_runs_go_through_the_incoming_message(
    tmp_path: Path,
) -> None:
    caught: list[BaseException] = []

    async def answer(incoming: Incoming) -> None:
        incoming.reply(acknowledgement(handling=H0))
        try:
            await gs.reply(incoming, response(handling=H0))
        except UsageError as exc:
            caught.append(exc)

    async with offline(tmp_path) as (gs, clock):
        gs.on(AssistanceRequest, answer)
        await gs.start()
        incoming = await gs.take(sealed(request(handling=H0), SEOUL, GS, seq=1, now=clock()))
        assert incoming is not None
        assert len(caught) == 1
        assert [r.schema for r in gs.outbox()] == ["ncbr.acknowledgement"]
        with pytest.raises(UsageError):  # the handler is done: incoming.reply is closed
            incoming.reply(status())


@pytest.mark.anyio
async def test_a_reply_to_a_diffusion_goes_to_its_sender_only(tmp_path: Path) -> None:
    async def answer(incoming: Incoming) -> None:
        incoming.reply(status())

    async with offline(tmp_path, who=SEOUL) as (seoul, clock):
        seoul.on(Diffusion, answer)
        await seoul.start()
        await seoul.take(sealed(diffusion([SEOUL, PARIS]), RABAT, SEOUL, PARIS, seq=1, now=clock()))
        assert [r.recipients for r in seoul.outbox()] == [(RABAT,)]


@pytest.mark.anyio
async def test_a_failed_handler_is_run_again_on_request(tmp_path: Path) -> None:
    calls: list[Incoming] = []

    async def flaky(incoming: Incoming) -> None:
        calls.append(incoming)
        if len(calls) == 1:
            raise RuntimeError("the case system is down")
        incoming.reply(acknowledgement(handling=H0))

    async with offline(tmp_path) as (gs, clock):
        gs.on(AssistanceRequest, flaky)
        await gs.start()
        await gs.take(sealed(request(handling=H0), SEOUL, GS, seq=1, now=clock()))
        assert [(r.state, r.detail) for r in gs.inbox()] == [
            (RowState.FAILED, "handler raised RuntimeError")
        ]
        assert gs.outbox() == []
        assert await gs.retry_failed() == 1
        assert [r.state for r in gs.inbox()] == [RowState.HANDLED]
        assert [r.schema for r in gs.outbox()] == ["ncbr.acknowledgement"]
        assert await gs.retry_failed() == 0


@pytest.mark.anyio
async def test_a_refused_forward_takes_no_sequence_number(tmp_path: Path) -> None:
    async with offline(tmp_path) as (gs, clock):
        held: list[Incoming] = []

        async def keep(incoming: Incoming) -> None:
            held.append(incoming)

        gs.on(AssistanceRequest, keep)
        await gs.start()
        await gs.take(sealed(request(handling=H2), SEOUL, GS, seq=1, now=clock()))
        before = gs.store.last_seq
        with pytest.raises(Exception, match="H2"):  # no permission: DisseminationForbidden
            await gs.forward(held[0], to=[RABAT])
        assert gs.store.last_seq == before
        with pytest.raises(UsageError):
            await gs.send(request(handling=H0), to=[])
        assert gs.store.last_seq == before


@pytest.mark.anyio
async def test_a_closed_request_cannot_be_withdrawn_and_nothing_is_sealed(
    tmp_path: Path,
) -> None:
    async def answer(incoming: Incoming) -> None:
        incoming.reply(response(handling=H0))

    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: answer}),
            bureau(url, clock, SEOUL, tmp_path) as seoul,
        ):
            with anyio.fail_after(GUARD):
                conversation = await seoul.request(request(handling=H0), to=[RABAT], timeout=GUARD)
            assert conversation.state is RequestState.ANSWERED
            with pytest.raises(UsageError, match="answered"):
                await seoul.withdraw(conversation, reason="too late")
            assert [r.schema for r in seoul.outbox()] == ["ncbr.assistance-request"]
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:  # and it starts again
            assert seoul.conversations.get(conversation.request_hash).state is (
                RequestState.ANSWERED
            )


@pytest.mark.anyio
async def test_no_answer_names_the_request_by_hash_not_by_its_content(tmp_path: Path) -> None:
    async with relay_node(tmp_path) as (url, clock), bureau(url, clock, SEOUL, tmp_path) as seoul:
        with pytest.raises(NoAnswer) as raised:
            await seoul.request(request(handling=H0), to=[RABAT], timeout=0.2)
        assert request().case_reference not in str(raised.value)
        assert raised.value.conversation is not None


@pytest.mark.anyio
async def test_an_unknown_submission_never_goes_back_to_queued_or_failed(tmp_path: Path) -> None:
    hostile = Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul,
    ):
        seoul.stop()  # no outbox task: each submission below is this test's
        with anyio.fail_after(GUARD):
            await seoul.stopped()
        hostile.lost_answers = FAST.attempts
        sent = await seoul.send(request(handling=H0), to=[RABAT])
        assert sent.state is RowState.UNKNOWN
        hostile.unreachable = FAST.attempts
        [again] = await seoul.flush()
        assert again.state is RowState.UNKNOWN  # not "queued": the relay may hold it
        hostile.refusals = 1
        [refused] = await seoul.flush()
        assert refused.state is RowState.UNKNOWN  # not "failed": the first copy may be there
        [row] = seoul.outbox()
        assert row.state is RowState.UNKNOWN
        assert row.detail == "refused on resubmission: replay"
        [accepted] = await seoul.flush()
        assert accepted.state is RowState.ACCEPTED
        assert len(set(hostile.submitted)) == 1  # always the identical bytes


@pytest.mark.anyio
async def test_a_queued_message_that_expired_unsent_is_failed(tmp_path: Path) -> None:
    hostile = Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, transport=hostile, ttl=60) as seoul,
    ):
        seoul.stop()
        with anyio.fail_after(GUARD):
            await seoul.stopped()
        hostile.unreachable = FAST.attempts
        sent = await seoul.send(request(handling=H0), to=[RABAT])
        assert sent.state is RowState.QUEUED
        clock.now += 61
        [expired] = await seoul.flush()
        assert (expired.state, expired.detail) == (RowState.FAILED, "expired-unsent")
        assert await seoul.flush() == []


@pytest.mark.anyio
async def test_a_deferred_message_is_not_a_replay_when_it_comes_again(tmp_path: Path) -> None:
    async with offline(tmp_path, max_parked=1) as (gs, clock):
        await gs.start()
        await gs.take(sealed(status(), RABAT, GS, seq=1, now=clock(), reply_to=b"\x01" * 32))
        early = sealed(status(), SEOUL, GS, seq=1, now=clock(), reply_to=b"\x02" * 32)
        for _ in range(3):  # the parking space is full: left at the relay, each time
            assert await gs.take(early) is None
        assert gs.deferrals == 3
        assert gs.store.refused() == []
        assert await gs._take(early, attempt=5) is not None  # refused for good at last
        assert [code for _, _, code, _ in gs.store.refused()] == ["limit-exceeded"]


@pytest.mark.anyio
async def test_with_fixed_keys_an_unknown_sender_is_refused_not_deferred(tmp_path: Path) -> None:
    stranger = IDS[PARIS]
    async with offline(tmp_path) as (gs, clock):
        gs.directory._keys = StaticDirectory(i.public for p, i in IDS.items() if p != PARIS)
        await gs.start()
        data = seal_message(
            request(handling=H0),
            sender=stranger,
            recipients=[IDS[GS].public],
            now=clock(),
            seq=1,
            rng=seeded_rng(b"stranger"),
        ).data
        assert await gs.take(data) is None
        assert gs.deferrals == 0
        assert [code for _, _, code, _ in gs.store.refused()] == ["unknown-key"]


@pytest.mark.anyio
async def test_a_refused_parked_reply_is_not_handed_over_by_retry_failed(tmp_path: Path) -> None:
    statuses = Seen()
    async with offline(tmp_path, who=SEOUL) as (seoul, clock):
        seoul.on(StatusUpdate, statuses)
        await seoul.start()
        asked = await seoul.send(request(handling=H0), to=[RABAT])  # unreachable relay: queued
        assert asked.state is RowState.QUEUED
        # Paris was never asked, so its status update about the request is refused
        await seoul.take(
            sealed(status(), PARIS, SEOUL, seq=1, now=clock(), reply_to=asked.message_hash)
        )
        assert seoul.inbox() == []
        assert [code for _, _, code, _ in seoul.store.refused()] == ["binding-mismatch"]
        assert await seoul.retry_failed() == 0
        assert statuses.handed == []


@pytest.mark.anyio
@pytest.mark.parametrize("forward_first", [False, True])
async def test_a_request_got_directly_and_forwarded_is_handed_over_once(
    tmp_path: Path, forward_first: bool
) -> None:
    requests, forwards = Seen(), Seen()
    async with (
        offline(tmp_path, who=GS) as (gs, clock),
        offline(tmp_path, who=RABAT) as (rabat, _),
    ):
        kept: list[Incoming] = []

        async def keep(incoming: Incoming) -> None:
            kept.append(incoming)

        gs.on(AssistanceRequest, keep)
        rabat.on(AssistanceRequest, requests)
        rabat.on(Forward, forwards)
        await gs.start()
        await rabat.start()
        direct = sealed(request(handling=H0), SEOUL, RABAT, GS, seq=1, now=clock())
        await gs.take(direct)
        await gs.forward(kept[0], to=[RABAT])  # unreachable relay: recorded, queued
        [row] = gs.outbox()
        order = [row.envelope, direct] if forward_first else [direct, row.envelope]
        for data in order:
            await rabat.take(data)
        assert len(requests.handed) == 1  # the request is new work once
        assert len(forwards.handed) == (0 if forward_first else 1)
        assert [r.state for r in rabat.inbox()] == [RowState.HANDLED] * 2


@pytest.mark.anyio
@pytest.mark.req("DIR-11")
@pytest.mark.parametrize("change", ["revoked key", "suspended sender"])
async def test_a_key_the_directory_revoked_or_suspended_is_refused_not_deferred(
    tmp_path: Path, change: str
) -> None:
    """DIR-11: a forgery with a stolen key, once revoked, is refused for good and kept."""
    document, members = genesis()
    draft = next_version(document, issued=T0 + 60)
    if change == "revoked key":
        draft = revoke_key(draft, RABAT, members[RABAT].signer.public_key.key_id, at=T0 + 30)
    else:
        draft = suspend(draft, RABAT, since=T0 + 30)
    clock = Clock()
    journal = BureauStore(tmp_path / f"{GS}.db", principal=GS)
    async with RelayClient(
        "http://127.0.0.1:9", relay_id=RELAY, identity=IDS[GS], clock=clock, retry=FAST
    ) as unreachable:
        gs = Bureau(
            IDS[GS],
            relay=unreachable,
            store=journal,
            coordinator=GS,
            directory=load_directory(signed(draft), anchors=CHAIN),
            clock=clock,
        )
        await gs.start()
        forged = sealed(request(handling=H0), RABAT, GS, seq=1, now=clock())
        for _ in range(2):  # every delivery: refused at once, kept once
            assert await gs.take(forged) is None
        assert gs.deferrals == 0
        assert [(s, code) for _, s, code, _ in gs.store.refused()] == [(RABAT, "unknown-key")]
    journal.close()


@pytest.mark.anyio
async def test_a_message_refused_after_opening_is_a_replay_when_it_comes_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with offline(tmp_path, max_parked_per_sender=0) as (gs, clock):
        await gs.start()
        early = sealed(status(), RABAT, GS, seq=1, now=clock(), reply_to=b"\x01" * 32)
        with caplog.at_level(logging.WARNING, logger="ncb_relay.bureau"):
            for _ in range(2):
                assert await gs.take(early) is None
        codes = [getattr(r, "code", None) for r in caplog.records if r.msg == "message-refused"]
        assert codes == ["limit-exceeded", "replay"]  # opened once: the guard remembers it
