"""A bureau restarted neither loses nor repeats work (ncb_relay.bureau journal and rebuild).

Bureaus run against a real relay node (``bureau_world``) under trio and
asyncio, and are closed and opened again on the same journal file.  The
conversations are rebuilt from the journal; a reply that arrives after the
restart binds to the request sent before it; a handler that raised leaves its
message ``failed`` with no reply sent; a handler that was interrupted (the
process died in it: a ``BaseException`` out of the handler) runs again at
start (once the caller holds the bureau) and its replies go out once, and a
forward it made before dying is not made again; replies parked before a restart
bind when their forward comes after it; sequence numbers go on where they
stopped and the replay guard is seeded from the journal.  The journal file
itself refuses another principal, a foreign SQLite file, a newer schema, and a
second bureau while the first holds it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from bureau_world import GS, IDS, Seen, Tamper, accepted, bureau, relay_node, until
from directory_world import genesis, rotated, signed
from fixtures import seeded_rng
from message_samples import H0, RABAT, SEOUL, acknowledgement, request, response, status
from ncb_relay.bureau import Bureau, BureauStore, Incoming, RowState
from ncb_relay.errors import StorageError, UsageError
from ncb_relay.header import DEFAULT_LIMITS, parse_envelope
from ncb_relay.messages import (
    NO_RECEIPTS,
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Conversation,
    Forward,
    RequestState,
    StatusUpdate,
    Withdrawal,
    seal_message,
)

GUARD = 60.0
LEASE = 2 * 60  # past the relay's lease (60 s): a message not acknowledged comes again


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class PowerCut(BaseException):
    """The process dies while a handler runs (nothing after it is written)."""


def picture(conversation: Conversation) -> tuple[Any, ...]:
    """What a conversation holds, comparable across a restart."""
    return (
        conversation.request_hash,
        conversation.state,
        tuple((s.sender, type(s.body), s.message_hash) for s in conversation.steps),
    )


def seqs(b: Bureau) -> list[int]:
    return [parse_envelope(r.envelope, DEFAULT_LIMITS).header.seq for r in b.outbox()]


@pytest.mark.anyio
async def test_a_conversation_is_rebuilt_and_replies_after_a_restart_bind_to_it(
    tmp_path: Path,
) -> None:
    kept: list[Incoming] = []

    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    async def rabat_acknowledges(incoming: Incoming) -> None:
        kept.append(incoming)
        incoming.reply(acknowledgement(handling=H0))
        incoming.reply(status())

    seen = Seen()
    handlers: dict[Any, Any] = dict.fromkeys(
        (Forward, AssistanceRequest, Acknowledgement, StatusUpdate, AssistanceResponse), seen
    )
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: coordinator_forwards}) as gs,
        bureau(
            url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_acknowledges}
        ) as rabat,
    ):
        async with bureau(url, clock, SEOUL, tmp_path, handlers=handlers) as seoul:
            sent = await seoul.send(request(handling=H0), to=[GS])
            before = picture(seoul.conversations.get(sent.message_hash))
            assert sent.state is RowState.ACCEPTED
        with anyio.fail_after(GUARD):  # Seoul is down while it is forwarded and acknowledged
            await until(lambda: accepted(rabat, 2))
        clock.now += LEASE
        async with bureau(url, clock, SEOUL, tmp_path, run=1, handlers=handlers) as seoul:
            conversation = seoul.conversations.get(sent.message_hash)
            assert picture(conversation)[:2] == before[:2]  # rebuilt from the journal
            with anyio.fail_after(GUARD):
                await seoul.wait_for(conversation, timeout=GUARD, until=lambda c: len(c.steps) >= 2)
                await until(lambda: len(seen.handed) == 3)
            middle = picture(conversation)
            assert conversation.state in {RequestState.ACKNOWLEDGED, RequestState.IN_PROGRESS}
        async with bureau(url, clock, SEOUL, tmp_path, run=2, handlers=handlers) as seoul:
            conversation = seoul.conversations.get(sent.message_hash)
            assert picture(conversation) == middle  # the same state and steps, from the journal
            await rabat.reply(kept[0], response(handling=H0))  # days later, after the restart
            with anyio.fail_after(GUARD):
                await seoul.wait_for(conversation, timeout=GUARD)
                await until(lambda: len(seen.handed) == 4)
            assert conversation.state is RequestState.ANSWERED
            assert [type(i.body) for i in seen.handed] == [
                AssistanceRequest,  # the forward
                Acknowledgement,
                StatusUpdate,
                AssistanceResponse,
            ]
            assert all(i.conversation is not None for i in seen.handed[1:])
            assert seen.handed[-1].conversation is conversation
            assert len(set(seen.ids())) == 4
            assert all(r.state is RowState.HANDLED for r in seoul.inbox())
            assert len(seoul.inbox()) == 4


@pytest.mark.anyio
async def test_replies_parked_before_a_restart_bind_when_their_forward_comes_after_it(
    tmp_path: Path,
) -> None:
    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    async def rabat_answers(incoming: Incoming) -> None:
        incoming.reply(acknowledgement(handling=H0))
        incoming.reply(status())
        incoming.reply(response(handling=H0))

    seen, hostile = Seen(), Tamper()
    hostile.hold = True
    hostile.edits.append(lambda messages: [m for m in messages if m["sender"] != GS])
    handlers: dict[Any, Any] = dict.fromkeys(
        (Forward, AssistanceRequest, Acknowledgement, StatusUpdate, AssistanceResponse), seen
    )
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: coordinator_forwards}) as gs,
        bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_answers}) as rabat,
    ):
        async with bureau(
            url, clock, SEOUL, tmp_path, handlers=handlers, transport=hostile
        ) as seoul:
            sent = await seoul.send(request(handling=H0), to=[GS])
            with anyio.fail_after(GUARD):
                await until(lambda: accepted(rabat, 3))
                hostile.hold = False  # the replies come; the forward they answer is held back
                await until(lambda: len(hostile.acknowledged) == 3)
            assert [(r.sender, r.state, r.detail) for r in seoul.inbox()] == [
                (RABAT, RowState.PENDING, "parked")
            ] * 3
            assert seen.handed == []
            assert seoul.conversations.get(sent.message_hash).state is RequestState.SENT
        clock.now += LEASE  # the forward, never acknowledged, comes again
        async with bureau(url, clock, SEOUL, tmp_path, run=1, handlers=handlers) as seoul:
            conversation = seoul.conversations.get(sent.message_hash)
            assert len(seoul.conversations.parked) == 3  # parked again from the journal
            with anyio.fail_after(GUARD):
                await seoul.wait_for(conversation, timeout=GUARD)
                await until(lambda: len(seen.handed) == 4)
            assert conversation.state is RequestState.ANSWERED
            assert [type(i.body) for i in seen.handed] == [
                AssistanceRequest,
                Acknowledgement,
                StatusUpdate,
                AssistanceResponse,
            ]
            assert all(i.conversation is conversation for i in seen.handed[1:])
            assert len(set(seen.ids())) == 4
            assert [r.state for r in seoul.inbox()] == [RowState.HANDLED] * 4
            assert seoul.conversations.parked == ()


@pytest.mark.anyio
async def test_a_parked_reply_whose_handler_was_interrupted_runs_again_after_a_restart(
    tmp_path: Path,
) -> None:
    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    async def rabat_acknowledges(incoming: Incoming) -> None:
        incoming.reply(acknowledgement(handling=H0))

    acknowledged: list[Incoming] = []

    async def seoul_acknowledged(incoming: Incoming) -> None:
        acknowledged.append(incoming)
        if len(acknowledged) == 1:
            raise PowerCut

    forwards, hostile = Seen(), Tamper()
    hostile.hold = True
    hostile.edits.append(lambda messages: messages[::-1])  # the acknowledgement first
    handlers: dict[Any, Any] = {
        Forward: forwards,
        Acknowledgement: seoul_acknowledged,
    }
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
        bureau(
            url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_acknowledges}
        ) as rabat,
    ):
        with anyio.fail_after(GUARD), pytest.RaisesGroup(PowerCut, flatten_subgroups=True):
            async with bureau(
                url, clock, SEOUL, tmp_path, handlers=handlers, transport=hostile
            ) as seoul:
                sent = await seoul.send(request(handling=H0), to=[GS])
                await until(lambda: accepted(rabat, 1))
                hostile.hold = False
                await anyio.sleep_forever()
        assert [d["sender"] for d in hostile.delivered] == [RABAT, GS]
        assert hostile.acknowledged == []  # the process died before the batch was acknowledged
        assert len(forwards.handed) == 1
        clock.now += LEASE
        async with bureau(url, clock, SEOUL, tmp_path, run=1, handlers=handlers) as seoul:
            with anyio.fail_after(GUARD):
                await until(lambda: len(acknowledged) == 2)
                await until(lambda: all(r.state is RowState.HANDLED for r in seoul.inbox()))
            conversation = seoul.conversations.get(sent.message_hash)
            assert conversation.state is RequestState.ACKNOWLEDGED
            assert acknowledged[1].conversation is conversation
            assert acknowledged[1].step is not None
            assert len(seoul.inbox()) == 2
        assert len(forwards.handed) == 1
        assert acknowledged[0].message_id == acknowledged[1].message_id


@pytest.mark.anyio
async def test_a_conversation_is_rebuilt_after_its_peer_rotated_its_signing_key(
    tmp_path: Path,
) -> None:
    """Seoul restarts on a newer directory where Rabat's old signing key is historical."""

    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    async def rabat_acknowledges(incoming: Incoming) -> None:
        incoming.reply(acknowledgement(handling=H0))

    hostile = Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: coordinator_forwards}) as gs,
        bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_acknowledges}),
    ):
        async with bureau(url, clock, SEOUL, tmp_path) as seoul:
            sent = await seoul.send(request(handling=H0), to=[GS])
            conversation = seoul.conversations.get(sent.message_hash)
            with anyio.fail_after(GUARD):
                await seoul.wait_for(conversation, timeout=GUARD, until=lambda c: bool(c.steps))
                await until(lambda: len(seoul.inbox()) == 2)
            before = picture(conversation)
            assert conversation.state is RequestState.ACKNOWLEDGED
        clock.now += 60
        document, members = genesis()
        newer, _ = rotated(document, members[RABAT], 1, issued=clock())
        hostile.directory = signed(newer)
        async with bureau(url, clock, SEOUL, tmp_path, run=1, transport=hostile) as seoul:
            assert seoul.keys.serial == 2
            assert picture(seoul.conversations.get(sent.message_hash)) == before
            assert seoul.received(seoul.inbox()[1].message_id).conversation is not None


@pytest.mark.anyio
async def test_a_handler_that_raises_leaves_its_message_failed_and_sends_nothing(
    tmp_path: Path,
) -> None:
    calls: list[Incoming] = []

    async def broken(incoming: Incoming) -> None:
        calls.append(incoming)
        incoming.reply(acknowledgement(handling=H0))
        raise RuntimeError("the case system is down")

    seen, hostile = Seen(), Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, handlers={Acknowledgement: seen}) as seoul,
    ):
        async with bureau(
            url, clock, GS, tmp_path, handlers={AssistanceRequest: broken}, transport=hostile
        ) as gs:
            sent = await seoul.send(request(handling=H0), to=[GS])
            with anyio.fail_after(GUARD):
                await until(lambda: sent.message_id.hex() in hostile.acknowledged)
            [row] = gs.inbox()
            assert (row.state, row.detail) == (RowState.FAILED, "handler raised RuntimeError")
            assert gs.outbox() == []
            second = await seoul.send(request(handling=H0), to=[GS])  # the loop goes on
            with anyio.fail_after(GUARD):
                await until(lambda: len(calls) == 2)
        clock.now += LEASE
        async with bureau(url, clock, GS, tmp_path, run=1) as gs:  # not handed over again
            assert [r.state for r in gs.inbox()] == [RowState.FAILED, RowState.FAILED]
            assert gs.outbox() == []
        assert [i.message_id for i in calls] == [sent.message_id, second.message_id]
        assert seen.handed == []
        assert all(r.state is RowState.ACCEPTED for r in seoul.outbox())


@pytest.mark.anyio
async def test_an_interrupted_handler_runs_again_after_a_restart_and_replies_once(
    tmp_path: Path,
) -> None:
    calls: list[Incoming] = []
    sealed: list[bytes] = []

    async def answers(incoming: Incoming) -> None:
        calls.append(incoming)
        sealed.append(incoming.reply(acknowledgement(handling=H0)).data)
        if len(calls) == 1:
            raise PowerCut

    seen = Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, handlers={Acknowledgement: seen}) as seoul,
    ):
        with anyio.fail_after(GUARD), pytest.RaisesGroup(PowerCut, flatten_subgroups=True):
            async with bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: answers}):
                sent = await seoul.send(request(handling=H0), to=[GS])
                await anyio.sleep_forever()
        journal = BureauStore(tmp_path / f"{GS}.db", principal=GS)
        [row, receipt] = journal.rows()  # its delivery receipt was journaled with it (MSG-13)
        assert (row.message_id, row.state) == (sent.message_id, RowState.PENDING)
        assert (receipt.schema, receipt.reply_to) == ("ncbr.delivery-receipt", sent.message_hash)
        journal.close()
        clock.now += LEASE  # the relay hands the request out again, too
        again = Tamper()
        async with bureau(
            url, clock, GS, tmp_path, run=1, handlers={AssistanceRequest: answers}, transport=again
        ) as gs:
            with anyio.fail_after(GUARD):  # once the bureau runs, before its inbox
                await until(lambda: len(calls) == 2 and gs.inbox()[0].state is RowState.HANDLED)
            [reply] = gs.outbox()
            assert reply.schema == acknowledgement(handling=H0).schema_id
            with anyio.fail_after(GUARD):
                await until(lambda: sent.message_id.hex() in again.acknowledged)
                await until(lambda: bool(seen.handed))
            assert len(gs.outbox()) == 1
            assert reply.envelope == sealed[1]  # what the second run sealed; the first never left
            assert [r.state for r in gs.outbox()] == [RowState.ACCEPTED]
        assert len(calls) == 2
        assert seen.ids() == [reply.message_id]
        assert sealed[0] != sealed[1]
        assert seoul.conversations.get(sent.message_hash).state is RequestState.ACKNOWLEDGED


@pytest.mark.anyio
async def test_a_forward_made_by_an_interrupted_handler_is_not_made_again(
    tmp_path: Path,
) -> None:
    """The coordinator forwards from its handler (``await gs.forward``), then dies in it."""
    calls: list[Incoming] = []

    async def coordinator_forwards(incoming: Incoming) -> None:
        calls.append(incoming)
        await gs.forward(incoming, to=[RABAT, SEOUL], note="Please assist NCB Seoul.")
        if len(calls) == 1:
            raise PowerCut

    rabat_seen, seoul_seen = Seen(), Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, handlers={Forward: seoul_seen}) as seoul,
        bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_seen}),
    ):
        with anyio.fail_after(GUARD), pytest.RaisesGroup(PowerCut, flatten_subgroups=True):
            async with bureau(
                url, clock, GS, tmp_path, handlers={AssistanceRequest: coordinator_forwards}
            ) as gs:
                sent = await seoul.send(request(handling=H0), to=[GS])
                await anyio.sleep_forever()
        clock.now += LEASE
        async with bureau(
            url, clock, GS, tmp_path, run=1, handlers={AssistanceRequest: coordinator_forwards}
        ) as gs:
            with anyio.fail_after(GUARD):  # the request is handed over again
                await until(lambda: len(calls) == 2 and gs.inbox()[0].state is not RowState.PENDING)
            assert [(r.state, r.detail) for r in gs.inbox()] == [(RowState.HANDLED, None)]
            [forward] = gs.outbox()  # but it was forwarded once
            assert forward.state is RowState.ACCEPTED
            with anyio.fail_after(GUARD):
                await until(lambda: bool(rabat_seen.handed) and bool(seoul_seen.handed))
        assert rabat_seen.ids() == seoul_seen.ids() == [forward.message_id]
        conversation = seoul.conversations.get(sent.message_hash)
        assert conversation.handles == {sent.message_hash, forward.message_hash}


@pytest.mark.anyio
async def test_a_withdrawn_request_stays_withdrawn_after_a_restart(tmp_path: Path) -> None:
    withdrawals = Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={Withdrawal: withdrawals}) as gs,
    ):
        async with bureau(url, clock, SEOUL, tmp_path) as seoul:
            sent = await seoul.send(request(handling=H0), to=[GS])
            conversation = seoul.conversations.get(sent.message_hash)
            withdrawn = await seoul.withdraw(conversation, reason="Settled.")
            assert withdrawn.state is RowState.ACCEPTED
            before = picture(conversation)
            assert conversation.state is RequestState.WITHDRAWN
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:
            assert picture(seoul.conversations.get(sent.message_hash)) == before
        with anyio.fail_after(GUARD):
            await until(lambda: bool(withdrawals.handed))
        assert withdrawals.ids() == [withdrawn.message_id]
        assert gs.conversations.get(sent.message_hash).state is RequestState.WITHDRAWN


@pytest.mark.anyio
async def test_an_unsure_submission_is_resubmitted_after_a_restart(tmp_path: Path) -> None:
    seen, hostile = Seen(), Tamper()
    hostile.lost_answers = 1_000  # the relay takes it; Seoul never hears so
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
    ):
        async with bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul:
            sent = await seoul.send(request(handling=H0), to=[GS])
            assert sent.state is RowState.UNKNOWN
            with anyio.fail_after(GUARD):
                await until(lambda: bool(seen.handed))
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:
            with anyio.fail_after(GUARD):
                await until(lambda: accepted(seoul, 1))
            [row] = seoul.outbox()
            assert row.envelope == sent.sealed.data
            assert seoul.conversations.get(sent.message_hash).state is RequestState.SENT
        assert set(hostile.submitted) == {sent.sealed.data}
        assert seen.ids() == [sent.message_id]  # the relay held one copy


@pytest.mark.anyio
async def test_sequence_numbers_go_on_after_a_restart(tmp_path: Path) -> None:
    seen = Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
    ):
        async with bureau(url, clock, SEOUL, tmp_path) as seoul:
            first = [await seoul.send(request(handling=H0), to=[GS]) for _ in range(2)]
            assert seqs(seoul) == [1, 2]
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:
            later = await seoul.send(request(handling=H0), to=[GS])
            assert seqs(seoul) == [1, 2, 3]
            with anyio.fail_after(GUARD):  # GS's replay guard would refuse a reused number
                await until(lambda: len(seen.handed) == 3)
        assert seen.ids() == [*(o.message_id for o in first), later.message_id]


@pytest.mark.anyio
async def test_the_replay_guard_is_seeded_from_the_journal_at_a_restart(tmp_path: Path) -> None:
    seen = Seen()
    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: seen}),
            bureau(url, clock, SEOUL, tmp_path) as seoul,
        ):
            first = await seoul.send(request(handling=H0), to=[GS])
            with anyio.fail_after(GUARD):
                await until(lambda: bool(seen.handed))
        same_seq = seal_message(  # Seoul's sequence number 1 again, on another message
            request(handling=H0),
            sender=IDS[SEOUL],
            recipients=[IDS[GS].public],
            now=clock(),
            seq=parse_envelope(first.sealed.data, DEFAULT_LIMITS).header.seq,
            rng=seeded_rng(b"same seq again"),
        )
        async with bureau(
            url, clock, GS, tmp_path, run=1, handlers={AssistanceRequest: seen}
        ) as gs:
            assert await gs.take(same_seq.data) is None
            assert [(s, c) for _, s, c, _ in gs.store.refused()] == [(SEOUL, "replay")]
            assert await gs.take(first.sealed.data) is None  # a copy: nothing again
        assert seen.ids() == [first.message_id]


def test_a_journal_of_another_principal_is_refused(tmp_path: Path) -> None:
    BureauStore(tmp_path / "seoul.db", principal=SEOUL).close()
    with pytest.raises(UsageError, match="another principal"):
        BureauStore(tmp_path / "seoul.db", principal=RABAT)
    BureauStore(tmp_path / "seoul.db", principal=SEOUL).close()  # still Seoul's


def test_a_file_that_is_not_a_bureau_journal_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "relay.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(StorageError, match="not a bureau store"):
        BureauStore(foreign, principal=SEOUL)
    other_app = tmp_path / "other.db"
    with sqlite3.connect(other_app) as db:
        db.execute("PRAGMA application_id=1234")
    db.close()
    with pytest.raises(StorageError, match="not a bureau store"):
        BureauStore(other_app, principal=SEOUL)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StorageError):
        BureauStore(garbage, principal=SEOUL)


def test_a_journal_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    BureauStore(tmp_path / "seoul.db", principal=SEOUL).close()
    with sqlite3.connect(tmp_path / "seoul.db") as db:
        db.execute("PRAGMA user_version=2")
    db.close()
    with pytest.raises(StorageError, match="schema 2"):
        BureauStore(tmp_path / "seoul.db", principal=SEOUL)


def test_a_journal_held_by_a_running_bureau_is_refused_to_a_second(tmp_path: Path) -> None:
    first = BureauStore(tmp_path / "seoul.db", principal=SEOUL)
    try:
        with pytest.raises(StorageError, match="locked"):
            BureauStore(tmp_path / "seoul.db", principal=SEOUL)
        assert first.last_seq == 0  # the first one still works
    finally:
        first.close()
    BureauStore(tmp_path / "seoul.db", principal=SEOUL).close()
