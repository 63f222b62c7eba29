"""A misbehaving relay never gets an unverified or duplicate message to a handler (bureau).

Every test runs Bureaus against a real relay node (``bureau_world``) under trio
and asyncio.  The relay's misbehaviour is built by :class:`bureau_world.Tamper`,
an httpx transport around the real network transport: it answers garbage,
rewrites, duplicates or reorders the deliveries of a batch, loses the answer
of a submission or an acknowledgement, or serves an older directory.  The
bureau must refuse and keep as evidence what fails its checks, hand every
verified message to its handler exactly once, and keep its journal consistent.
Nothing here measures time; waits are bounded by guards only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from bureau_world import (
    FAST,
    GS,
    IDS,
    Deliveries,
    Seen,
    Tamper,
    accepted,
    bureau,
    envelope_of,
    relay_node,
    until,
    with_envelope,
)
from directory_world import CHAIN, ROOTS, T0, entry_for, genesis, member, signed
from fixtures import seeded_rng
from message_samples import H0, PARIS, RABAT, SEOUL, acknowledgement, request, response, status
from ncb_relay.bureau import Bureau, BureauStore, Incoming, RowState
from ncb_relay.client import RelayClient
from ncb_relay.directory import StaticDirectory
from ncb_relay.envelope import DEFAULT_TTL
from ncb_relay.errors import Fork, ProtocolError, Replay, Rollback
from ncb_relay.freshness import DEFAULT_POLICY
from ncb_relay.identity import PrivateIdentity
from ncb_relay.lifecycle import add_principal, next_version
from ncb_relay.messages import (
    NO_RECEIPTS,
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Forward,
    RequestState,
    StatusUpdate,
    seal_message,
)
from relay_node_world import RELAY, Clock

GUARD = 60.0
TOKYO = "JP.ncb-tokyo"


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def flipped(data: bytes, at: int = -1) -> bytes:
    """``data`` with one bit of its byte ``at`` flipped."""
    index = at % len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "count"),
    [
        ("garbage", 1),
        ("shape", 1),
        ("base64", 1),
        ("too-many", 1),
        ("timeout", FAST.attempts),
        ("error", FAST.attempts),
    ],
)
async def test_bad_batches_are_reported_and_the_mailbox_still_moves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, count: int
) -> None:
    caplog.set_level(logging.WARNING, logger="ncb_relay.bureau")
    seen, hostile = Seen(), Tamper()
    hostile.bad_batches = [kind] * count
    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}, transport=hostile),
            bureau(url, clock, SEOUL, tmp_path) as seoul,
        ):
            sent = await seoul.send(request(handling=H0), to=[GS])
            with anyio.fail_after(GUARD):
                await until(lambda: bool(seen.handed))
        assert hostile.bad_batches == []
        assert seen.ids() == [sent.message_id]
        failures = [r for r in caplog.records if r.getMessage() == "fetch-failed"]
        assert failures
        assert {getattr(r, "code", None) for r in failures} == {"relay-unavailable"}
        assert hostile.acknowledged == [sent.message_id.hex()]


@pytest.mark.anyio
async def test_garbage_and_bit_flipped_envelopes_are_refused_and_do_not_block(
    tmp_path: Path,
) -> None:
    seen, hostile = Seen(), Tamper()
    hostile.hold = True

    def spoil(messages: Deliveries) -> Deliveries:
        assert len(messages) == 3
        garbage, flip, good = messages
        return [
            with_envelope(garbage, b"NCBR" + bytes(range(200))),
            with_envelope(flip, flipped(envelope_of(flip))),
            good,
        ]

    hostile.edits.append(spoil)
    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(
                url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}, transport=hostile
            ) as gs,
            bureau(url, clock, SEOUL, tmp_path) as seoul,
        ):
            sent = [await seoul.send(request(handling=H0), to=[GS]) for _ in range(3)]
            with anyio.fail_after(GUARD):
                await until(lambda: accepted(seoul, 3))
                hostile.hold = False
                await until(lambda: bool(seen.handed))
                assert seen.ids() == [sent[2].message_id]
                refused = gs.store.refused()
                assert len(refused) == 2
                assert refused[0][1] is None  # garbage: no sender could even be read
                assert refused[1][1] == SEOUL
                assert refused[1][2] in {"bad-signature", "decryption-failed", "malformed"}
                # the refused messages are not in the journal, and the mailbox moves on
                assert [r.message_id for r in gs.inbox()] == [sent[2].message_id]
                later = await seoul.send(request(handling=H0), to=[GS])
                await until(lambda: len(seen.handed) == 2)
        assert seen.ids() == [sent[2].message_id, later.message_id]
        assert all(i.message.sender == SEOUL for i in seen.handed)
        acknowledged = {d["messageId"] for d in hostile.delivered}  # the refused ones too
        assert set(hostile.acknowledged) == acknowledged
        assert len(acknowledged) == 4


@pytest.mark.anyio
async def test_a_message_delivered_twice_is_handed_over_once_even_after_a_restart(
    tmp_path: Path,
) -> None:
    seen, hostile = Seen(), Tamper()
    hostile.edits.append(lambda messages: messages + messages)  # the batch holds it twice
    hostile.lost_acks = 10  # and the relay never hears it was acknowledged
    async with relay_node(tmp_path) as (url, clock):
        async with bureau(url, clock, SEOUL, tmp_path) as seoul:
            async with bureau(
                url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}, transport=hostile
            ):
                sent = await seoul.send(request(handling=H0), to=[GS])
                with anyio.fail_after(GUARD):
                    await until(lambda: bool(seen.handed))
                    await until(lambda: hostile.lost_acks < 10)
            assert hostile.acknowledged == []  # the relay still holds it, leased to GS
            clock.now += 2 * 60  # past the relay's lease: it hands the message out again
            again = Tamper()
            async with bureau(
                url, clock, GS, tmp_path, run=1, handlers={AssistanceRequest: seen}, transport=again
            ) as gs:
                with anyio.fail_after(GUARD):
                    await until(lambda: sent.message_id.hex() in again.acknowledged)
                assert [r.state for r in gs.inbox()] == [RowState.HANDLED]
                assert gs.store.refused() == []
        copies = [
            d
            for d in hostile.delivered + again.delivered
            if d["messageId"] == sent.message_id.hex()
        ]
        assert len(copies) == 3
        assert [d["attempt"] for d in copies][-1] > copies[0]["attempt"]
        assert seen.ids() == [sent.message_id]


@pytest.mark.anyio
async def test_known_ids_stale_future_reused_and_misrouted_messages_are_refused(
    tmp_path: Path,
) -> None:
    seen, hostile = Seen(), Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(
            url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}, transport=hostile
        ) as gs,
        bureau(url, clock, SEOUL, tmp_path) as seoul,
    ):
        first = await seoul.send(request(handling=H0), to=[GS])
        with anyio.fail_after(GUARD):
            await until(lambda: bool(seen.handed))
        original = first.sealed.data
        old = clock() - DEFAULT_TTL - DEFAULT_POLICY.max_skew - 60
        stale = seal_message(
            request(handling=H0),
            sender=IDS[RABAT],
            recipients=[IDS[GS].public],
            now=old,
            seq=1,
            rng=seeded_rng(b"stale"),
        )

        future = seal_message(
            request(handling=H0),
            sender=IDS[RABAT],
            recipients=[IDS[GS].public],
            now=clock() + DEFAULT_POLICY.max_skew + 60,
            seq=2,
            rng=seeded_rng(b"future"),
        )
        same_seq = seal_message(  # Seoul's first sequence number on another message
            request(handling=H0),
            sender=IDS[SEOUL],
            recipients=[IDS[GS].public],
            now=clock(),
            seq=1,
            rng=seeded_rng(b"same seq"),
        )
        misrouted = seal_message(  # for Rabat only
            request(handling=H0),
            sender=IDS[SEOUL],
            recipients=[IDS[RABAT].public],
            now=clock(),
            seq=77,
            rng=seeded_rng(b"misrouted"),
        )
        extra = [stale, future, same_seq, misrouted]

        def replay(messages: Deliveries) -> Deliveries:
            model = messages[0]
            return [
                with_envelope(model, original),  # the same message again: a copy
                with_envelope(model, flipped(original)),  # its id, other bytes: a replay
                *({**with_envelope(model, e.data), "messageId": e.message_id.hex()} for e in extra),
                *messages,
            ]

        hostile.edits.append(replay)
        second = await seoul.send(request(handling=H0), to=[GS])
        with anyio.fail_after(GUARD):
            await until(lambda: len(seen.handed) == 2)
            await until(lambda: len(gs.store.refused()) == 5)
        codes = [(sender, code) for _, sender, code, _ in gs.store.refused()]
        assert codes == [
            (SEOUL, "replay"),
            (RABAT, "stale"),
            (RABAT, "future-dated"),
            (SEOUL, "replay"),
            (SEOUL, codes[-1][1]),
        ]
        assert codes[-1][1] in {"binding-mismatch", "decryption-failed"}
        assert seen.ids() == [first.message_id, second.message_id]
        assert [r.state for r in gs.inbox()] == [RowState.HANDLED, RowState.HANDLED]


@pytest.mark.anyio
async def test_replies_delivered_before_their_forward_wait_for_it_and_bind_once(
    tmp_path: Path,
) -> None:
    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    async def rabat_answers(incoming: Incoming) -> None:
        incoming.reply(acknowledgement(handling=H0))
        incoming.reply(status())
        incoming.reply(response(handling=H0))

    async def refuse_own_request(incoming: Incoming) -> None:
        raise AssertionError("Seoul's own request handed to it as a new one")

    seen, hostile = Seen(), Tamper()
    hostile.hold = True  # Seoul gets nothing until every reply waits in its mailbox
    hostile.edits.append(lambda messages: messages[::-1])  # and then the last one first
    # Seoul's copy of the forward of its own request goes to a Forward handler, never to its
    # AssistanceRequest handler: it is not a new request
    handlers: dict[Any, Any] = dict.fromkeys(
        (Forward, Acknowledgement, StatusUpdate, AssistanceResponse), seen
    )
    handlers[AssistanceRequest] = refuse_own_request
    async with (
        relay_node(tmp_path) as (url, clock),
        # GS's delivery receipt of the request would reach Seoul's mailbox at no fixed place
        bureau(
            url,
            clock,
            GS,
            tmp_path,
            handlers={AssistanceRequest: coordinator_forwards},
            receipts=NO_RECEIPTS,
        ) as gs,
        bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_answers}) as rabat,
        bureau(url, clock, SEOUL, tmp_path, handlers=handlers, transport=hostile) as seoul,
    ):
        sent = await seoul.send(request(handling=H0), to=[GS])
        conversation = seoul.conversations.get(sent.message_hash)
        with anyio.fail_after(GUARD):
            await until(lambda: accepted(rabat, 3))
            hostile.hold = False
            await seoul.wait_for(conversation, timeout=GUARD)
            await until(lambda: len(seen.handed) == 4)
        assert len(hostile.delivered) == 4
        assert [d["sender"] for d in hostile.delivered] == [RABAT, RABAT, RABAT, GS]
        assert conversation.state is RequestState.ANSWERED
        forward, *replies = seen.handed
        assert forward.forwarded is not None
        assert forward.conversation == conversation  # the same object (no narrowing)
        assert [type(i.body) for i in replies] == [
            AssistanceResponse,
            StatusUpdate,
            Acknowledgement,
        ]  # applied in the order they arrived, once their forward was known
        for incoming in replies:
            assert incoming.conversation is conversation
            assert incoming.step is not None
        assert len(set(seen.ids())) == 4
        assert len(conversation.steps) >= 3
        assert all(r.state is RowState.HANDLED for r in seoul.inbox())
        assert seoul.store.refused() == []


@pytest.mark.anyio
async def test_a_relay_serving_an_older_directory_is_a_rollback_and_the_newer_is_kept(
    tmp_path: Path,
) -> None:
    newer = signed(next_version(genesis()[0], issued=T0 + 30))
    seen, hostile = Seen(), Tamper()
    hostile.directory = newer  # Seoul first sees version 2 (another relay, say)
    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
            bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul,
        ):
            assert seoul.keys.serial == 2
            hostile.directory = None  # this relay serves version 1
            with pytest.raises(Rollback):
                await seoul.refresh_directory()
            assert seoul.keys.serial == 2
            assert seoul.store.latest_directory() == newer
            sent = await seoul.send(request(handling=H0), to=[GS])
            with anyio.fail_after(GUARD):
                await until(lambda: bool(seen.handed))
            assert sent.state is RowState.ACCEPTED
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:
            assert seoul.keys.serial == 2  # version 2 from the journal; version 1 refused again
            with pytest.raises(Rollback):
                await seoul.refresh_directory()
            assert seoul.keys.serial == 2
            assert seoul.store.directories() == [newer]


@pytest.mark.anyio
async def test_a_fork_or_a_forged_directory_is_refused_and_the_held_one_kept(
    tmp_path: Path,
) -> None:
    newer = signed(next_version(genesis()[0], issued=T0 + 30))
    fork = signed(next_version(genesis()[0], issued=T0 + 40))  # serial 2 again, other bytes
    forged = signed(next_version(genesis()[0], issued=T0 + 50), ROOTS[3], ROOTS[4])
    hostile = Tamper()
    async with relay_node(tmp_path) as (url, clock):
        hostile.directory = forged  # no directory yet: the bureau cannot start
        with pytest.raises(ProtocolError):
            async with bureau(url, clock, SEOUL, tmp_path, transport=hostile):
                pass
        journal = BureauStore(tmp_path / f"{SEOUL}.db", principal=SEOUL)
        assert journal.directories() == []
        journal.close()
        hostile.directory = newer
        async with bureau(url, clock, SEOUL, tmp_path, run=1, transport=hostile) as seoul:
            assert seoul.keys.serial == 2
            hostile.directory = fork
            with pytest.raises(Fork):
                await seoul.refresh_directory()
            assert isinstance(seoul.directory.problem, Fork)
            [(_, code, evidence)] = seoul.store.directory_conflicts()  # kept with the held one
            assert (code, evidence) == ("fork", fork)
            hostile.directory = forged
            with pytest.raises(ProtocolError):
                await seoul.refresh_directory()
            hostile.directory = b"\x00 not a directory"
            with pytest.raises(ProtocolError):
                await seoul.refresh_directory()
            assert seoul.keys.serial == 2
            assert seoul.store.directories() == [newer]
        async with bureau(url, clock, SEOUL, tmp_path, run=2, transport=hostile) as seoul:
            assert seoul.keys.serial == 2  # it starts on what it held; the refresh is logged
            assert seoul.store.directories() == [newer]


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["lost", "spoiled", "unreachable"])
async def test_an_unsure_submission_is_resubmitted_with_the_same_bytes_never_failed(
    tmp_path: Path, fault: str
) -> None:
    seen, hostile = Seen(), Tamper()
    if fault == "lost":  # every attempt reached the relay; every answer was lost
        hostile.lost_answers = FAST.attempts
    elif fault == "spoiled":  # the relay's acceptance names another message
        hostile.spoiled_acceptances = 1
    else:  # no attempt reached the relay
        hostile.unreachable = FAST.attempts
    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
            bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul,
        ):
            sent = await seoul.send(request(handling=H0), to=[GS])
            if fault == "unreachable":
                assert (sent.state, sent.detail) == (RowState.QUEUED, "relay-unavailable")
            else:
                assert (sent.state, sent.detail) == (RowState.UNKNOWN, "submission-unknown")
            with anyio.fail_after(GUARD):
                await until(lambda: accepted(seoul, 1))
                await until(lambda: bool(seen.handed))
            assert len(hostile.submitted) >= 2
            assert set(hostile.submitted) == {sent.sealed.data}
            assert [r.state for r in seoul.outbox()] == [RowState.ACCEPTED]
            assert seoul.outbox()[0].envelope == sent.sealed.data
            assert await seoul.flush() == []
        assert seen.ids() == [sent.message_id]


@pytest.mark.anyio
async def test_flush_resubmits_an_unknown_submission_until_the_relay_answers(
    tmp_path: Path,
) -> None:
    """A bureau without its outbox task (started, not run): only flush() submits again."""
    seen, hostile = Seen(), Tamper()
    hostile.lost_answers = 2 * FAST.attempts
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
        RelayClient(
            url,
            relay_id=RELAY,
            identity=IDS[SEOUL],
            clock=clock,
            rng=seeded_rng(b"flush"),
            retry=FAST,
            transport=hostile,
        ) as client,
    ):
        journal = BureauStore(tmp_path / f"{SEOUL}.db", principal=SEOUL)
        seoul = Bureau(
            IDS[SEOUL], relay=client, store=journal, coordinator=GS, anchors=CHAIN, clock=clock
        )
        await seoul.start()
        sent = await seoul.send(request(handling=H0), to=[GS])
        assert sent.state is RowState.UNKNOWN
        [again] = await seoul.flush()
        assert (again.state, again.message_id) == (RowState.UNKNOWN, sent.message_id)
        [done] = await seoul.flush()
        assert done.state is RowState.ACCEPTED
        assert done.acceptance is not None
        assert done.acceptance.message_hash == sent.message_hash
        assert await seoul.flush() == []
        assert hostile.submitted == [sent.sealed.data] * (2 * FAST.attempts + 1)
        assert [r.state for r in seoul.outbox()] == [RowState.ACCEPTED]
        with anyio.fail_after(GUARD):
            await until(lambda: bool(seen.handed))
        journal.close()
    assert seen.ids() == [sent.message_id]


@pytest.mark.anyio
async def test_a_refused_submission_is_failed_raised_and_not_sent_again(tmp_path: Path) -> None:
    seen, hostile = Seen(), Tamper()
    hostile.refusals = 1
    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
            bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul,
        ):
            with pytest.raises(Replay):
                await seoul.send(request(handling=H0), to=[GS])
            [row] = seoul.outbox()
            assert (row.state, row.detail) == (RowState.FAILED, "replay")
            assert await seoul.flush() == []
            later = await seoul.send(request(handling=H0), to=[GS])  # the next one goes
            with anyio.fail_after(GUARD):
                await until(lambda: bool(seen.handed))
            assert len(hostile.submitted) == 2
            assert [r.state for r in seoul.outbox()] == [RowState.FAILED, RowState.ACCEPTED]
        assert seen.ids() == [later.message_id]


@pytest.mark.anyio
async def test_replies_from_a_bureau_the_request_never_reached_are_refused(
    tmp_path: Path,
) -> None:
    """Paris answers Seoul's request, and a forward of it, though neither was sent to Paris."""

    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    seen, hostile = Seen(), Tamper()
    hostile.hold = True
    hostile.edits.append(lambda messages: sorted(messages, key=lambda m: m["sender"] != PARIS))
    handlers: dict[Any, Any] = dict.fromkeys(
        (Forward, AssistanceRequest, Acknowledgement, StatusUpdate, AssistanceResponse), seen
    )
    async with (
        relay_node(tmp_path) as (url, clock),
        # GS's delivery receipt of the request would reach Seoul's mailbox at no fixed place
        bureau(
            url,
            clock,
            GS,
            tmp_path,
            handlers={AssistanceRequest: coordinator_forwards},
            receipts=NO_RECEIPTS,
        ) as gs,
        bureau(url, clock, PARIS, tmp_path) as paris,
        bureau(url, clock, SEOUL, tmp_path, handlers=handlers, transport=hostile) as seoul,
    ):
        sent = await seoul.send(request(handling=H0), to=[GS])
        with anyio.fail_after(GUARD):
            await until(lambda: accepted(gs, 1))
        [forward] = gs.outbox()
        answer = await paris.send(response(handling=H0), to=[SEOUL], reply_to=sent.message_hash)
        early = await paris.send(
            acknowledgement(handling=H0), to=[SEOUL], reply_to=forward.message_hash
        )
        assert accepted(paris, 2)
        hostile.hold = False  # Paris's two, then the forward
        with anyio.fail_after(GUARD):
            await until(lambda: len(hostile.acknowledged) == 3)
        assert [d["sender"] for d in hostile.delivered] == [PARIS, PARIS, GS]
        [(_, sender, code, _)] = seoul.store.refused()  # the answer: refused at once
        assert (sender, code) == (PARIS, "binding-mismatch")
        inbox = {r.message_id: (r.state, r.detail) for r in seoul.inbox()}
        assert inbox == {  # the early one waited for the forward, then failed its checks
            early.message_id: (RowState.FAILED, "binding-mismatch"),
            forward.message_id: (RowState.HANDLED, None),
        }
        assert answer.message_id not in inbox
        assert seen.ids() == [forward.message_id]
        assert seoul.conversations.get(sent.message_hash).state is RequestState.SENT
        assert seoul.conversations.parked == ()


def mutations(data: bytes) -> list[bytes]:
    """Every one-bit flip of ``data``'s bytes, truncations, and extensions."""
    flips = [flipped(data, i) for i in range(len(data))]
    cuts = [data[:n] for n in (0, 1, 4, 8, 16, 64, len(data) // 2, len(data) - 1)]
    return [*flips, *cuts, data + b"\x00", data + data]


@pytest.mark.anyio
async def test_no_mutation_of_an_envelope_reaches_a_handler(tmp_path: Path) -> None:
    """Bureau.take, fed every one-bit flip of a valid envelope: each refused, then the original."""
    clock, seen = Clock(), Seen()
    journal = BureauStore(tmp_path / "gs.db", principal=GS)
    async with RelayClient(
        "http://127.0.0.1:9", relay_id=RELAY, identity=IDS[GS], clock=clock, retry=FAST
    ) as unused:
        gs = Bureau(
            IDS[GS],
            relay=unused,
            store=journal,
            coordinator=GS,
            directory=StaticDirectory(i.public for i in IDS.values()),
            clock=clock,
        )
        gs.on(AssistanceRequest, seen)
        await gs.start()
        original = seal_message(
            request(handling=H0),
            sender=IDS[SEOUL],
            recipients=[IDS[GS].public],
            now=clock(),
            seq=1,
            rng=seeded_rng(b"original"),
        )
        spoiled = mutations(original.data)
        for data in spoiled:
            assert await gs.take(data) is None
        assert seen.handed == []
        assert gs.inbox() == []
        # a flip in a key id may be this bureau's stale directory: left at the relay (deferred)
        assert len(gs.store.refused()) + gs.deferrals == len(spoiled)
        assert gs.deferrals < len(spoiled) // 10
        handed = await gs.take(original.data)
        assert handed is not None
        assert await gs.take(original.data) is None  # a copy: only acknowledged again
        assert seen.ids() == [original.message_id]
        assert [r.state for r in gs.inbox()] == [RowState.HANDLED]
        journal.close()


def with_tokyo() -> tuple[bytes, PrivateIdentity]:
    """Version 2 of the directory, where NCB Tokyo joined; and Tokyo's keys."""
    tokyo = member(TOKYO)
    draft = next_version(genesis()[0], issued=T0 + 30)
    return signed(add_principal(draft, entry_for(tokyo, T0 + 30))), tokyo.identity


@pytest.mark.anyio
async def test_a_sender_missing_from_a_stale_directory_is_left_at_the_relay(
    tmp_path: Path,
) -> None:
    """Its key may be in a directory version this bureau has not got yet: not acknowledged."""
    newer, tokyo = with_tokyo()
    seen, hostile = Seen(), Tamper()
    hostile.directory = signed(genesis()[0])  # Seoul's relay serves version 1 only
    async with (
        relay_node(tmp_path, directory=newer) as (url, clock),
        bureau(
            url, clock, SEOUL, tmp_path, handlers={AssistanceRequest: seen}, transport=hostile
        ) as seoul,
        bureau(url, clock, TOKYO, tmp_path, identity=tokyo) as tk,
    ):
        assert (seoul.keys.serial, tk.keys.serial) == (1, 2)
        sent = await tk.send(request(handling=H0), to=[SEOUL])
        assert sent.state is RowState.ACCEPTED
        with anyio.fail_after(GUARD):
            await until(lambda: seoul.deferrals > 0)
        assert seoul.store.refused() == []
        assert sent.message_id.hex() not in hostile.acknowledged
        assert seen.handed == []
        assert seoul.inbox() == []
        assert seoul.keys.serial == 1
        assert seoul.store.directories() == [hostile.directory]


@pytest.mark.anyio
async def test_an_unknown_sender_makes_the_bureau_fetch_the_newer_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ncb_relay.bureau.bureau.UNKNOWN_KEY_REFRESH", 0.0)  # no rate limit
    newer, tokyo = with_tokyo()
    seen, hostile = Seen(), Tamper()
    hostile.directory = signed(genesis()[0])  # Seoul starts on version 1
    async with (
        relay_node(tmp_path, directory=newer) as (url, clock),
        bureau(
            url, clock, SEOUL, tmp_path, handlers={AssistanceRequest: seen}, transport=hostile
        ) as seoul,
        bureau(url, clock, TOKYO, tmp_path, identity=tokyo) as tk,
    ):
        assert seoul.keys.serial == 1
        hostile.directory = None  # then its relay serves version 2
        sent = await tk.send(request(handling=H0), to=[SEOUL])
        with anyio.fail_after(GUARD):
            await until(lambda: bool(seen.handed))
        assert seen.ids() == [sent.message_id]
        assert seen.handed[0].sender == TOKYO
        assert seoul.keys.serial == 2
        assert seoul.store.latest_directory() == newer
        assert seoul.store.refused() == []
