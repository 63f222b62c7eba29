"""Delivery receipts and the sender's delivery evidence (spec/messages.md, MSG-12 to MSG-16).

The body and its rules come first, without a network: the receipt names the
message its ``reply_to`` names and follows it (MSG-12), the library never
seals one that breaks that (MSG-11), the policy never receipts a receipt
(MSG-13, MSG-14), and the state table of MSG-16.  Then bureaus on a real relay
(``bureau_world``), under trio and asyncio: receipts flow back by themselves
and move each message's state, a schema turned off is neither receipted nor
expected, a recipient that never answers makes a message overdue at the
deadline the sender chose, a forged or mismatched receipt is refused and kept
as evidence, and a restart keeps every state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from bureau_world import GS, Seen, Tamper, bureau, relay_node, until
from fixtures import NOW
from message_samples import (
    H0,
    PARIS,
    RABAT,
    SEOUL,
    Post,
    diffusion,
    error_report,
    request,
    status,
)
from ncb_relay import envelope as envelopes
from ncb_relay.bureau import Bureau, RowState
from ncb_relay.bureau.delivery import (
    DEFAULT_RECEIPT_DEADLINE,
    DeliveryState,
    Evidence,
    delivery_state,
)
from ncb_relay.errors import BindingMismatch, InvalidBody, Replay, UsageError
from ncb_relay.messages import (
    DEFAULT_RECEIPT_POLICY,
    NO_RECEIPTS,
    DeliveryReceipt,
    ReceiptPolicy,
    decode_body,
    encode_body,
    seal_message,
)
from ncb_relay.messages.message import check_context

GUARD = 60.0
RECEIPT = DeliveryReceipt.schema_id


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- the body (no network) ---------------------------------------------------------------------


def receipt_of(message_hash: bytes, received_at: int = NOW) -> DeliveryReceipt:
    return DeliveryReceipt.of(bytes(range(32)), message_hash, received_at)


@pytest.mark.req("MSG-1", "MSG-2")
def test_a_receipt_is_a_closed_body_of_two_digests_and_a_time() -> None:
    body = receipt_of(b"\x01" * 32)
    assert decode_body(encode_body(body)) == body
    assert body.handling == H0  # it carries no case information
    with pytest.raises(UsageError, match="message_hash"):
        DeliveryReceipt.of(bytes(32), b"\x01" * 31, NOW)
    with pytest.raises(UsageError, match="received_at"):
        DeliveryReceipt.of(bytes(32), bytes(32), -1)


@pytest.mark.req("MSG-12")
def test_a_receipt_names_in_reply_to_the_message_it_receipts_and_follows_it() -> None:
    post = Post(SEOUL, RABAT)
    original = post.send(request(handling=H0), SEOUL, [RABAT])
    good = receipt_of(original.message_hash)

    def delivered(body: DeliveryReceipt, reply_to: bytes | None, now: int = NOW) -> Any:
        sealed = envelopes.seal(  # not seal_message, which refuses all of these (MSG-11)
            encode_body(body),
            sender=post.ids[RABAT],
            recipients=post.public(SEOUL),
            now=now,
            seq=post.next_seq(RABAT),
            rng=post.rng,
            reply_to=reply_to,
        )
        return post.deliver(sealed, SEOUL, now=now)

    assert delivered(good, original.message_hash).body == good
    with pytest.raises(BindingMismatch):
        delivered(good, None)
    with pytest.raises(BindingMismatch):
        delivered(good, b"\x02" * 32)
    with pytest.raises(InvalidBody) as refused:
        delivered(receipt_of(original.message_hash, NOW + 1), original.message_hash)
    assert (refused.value.field, refused.value.reason) == ("content.received_at", "invalid")
    check_context(good, sender=RABAT, created=NOW, reply_to=good.message_hash, coordinator=GS)


@pytest.mark.req("MSG-11", "MSG-12")
def test_the_library_never_seals_a_receipt_a_receiver_would_refuse() -> None:
    post = Post(SEOUL, RABAT)
    body = receipt_of(b"\x03" * 32)
    for reply_to, now in [(None, NOW), (b"\x04" * 32, NOW), (body.message_hash, NOW - 1)]:
        with pytest.raises(UsageError, match="not sealed"):
            seal_message(
                body,
                sender=post.ids[RABAT],
                recipients=post.public(SEOUL),
                now=now,
                seq=1,
                rng=post.rng,
                reply_to=reply_to,
            )


@pytest.mark.req("MSG-13", "MSG-14")
def test_the_policy_receipts_every_schema_but_error_reports_and_never_a_receipt() -> None:
    policy = DEFAULT_RECEIPT_POLICY
    for schema in ("ncbr.assistance-request", "ncbr.assistance-response", "ncbr.diffusion"):
        assert policy.wants(schema)
    assert policy.wants("kr.knpa.cyber-case")  # an extension, or an opaque body (MSG-5)
    assert not policy.wants("ncbr.error-report")
    assert not policy.wants(RECEIPT)
    assert not policy.also(RECEIPT, "ncbr.error-report").wants(RECEIPT)  # never, whatever asked
    assert policy.also("ncbr.error-report").wants("ncbr.error-report")
    off = policy.without("ncbr.diffusion")
    assert not off.wants("ncbr.diffusion")
    assert off.wants("ncbr.assistance-request")
    assert not any(NO_RECEIPTS.wants(s) for s in ("ncbr.assistance-request", "kr.knpa.x"))
    with pytest.raises(UsageError):
        ReceiptPolicy(off=frozenset({"Not A Schema"}))
    with pytest.raises(UsageError):
        ReceiptPolicy(off={"ncbr.diffusion"})  # type: ignore[arg-type]


# state, submission, receipted (of R = {a, b}), expects, now - deadline
TABLE = [
    (DeliveryState.RECEIPTED, RowState.ACCEPTED, {"a", "b"}, True, 10),
    (DeliveryState.RECEIPTED, RowState.FAILED, {"a", "b"}, True, 10),  # a receipt proves it
    (DeliveryState.OVERDUE, RowState.ACCEPTED, {"a"}, True, 0),
    (DeliveryState.OVERDUE, RowState.UNKNOWN, set(), True, 0),
    (DeliveryState.OVERDUE, RowState.QUEUED, set(), True, 5),
    (DeliveryState.DELIVERED, RowState.ACCEPTED, {"a"}, True, -1),
    (DeliveryState.DELIVERED, RowState.UNKNOWN, {"b"}, True, -1),  # its acceptance was lost
    (DeliveryState.DELIVERED, RowState.ACCEPTED, {"a"}, False, 10),  # never overdue unexpected
    (DeliveryState.ACCEPTED, RowState.ACCEPTED, set(), True, -1),
    (DeliveryState.ACCEPTED, RowState.ACCEPTED, set(), False, 10),
    (DeliveryState.SUBMITTED, RowState.QUEUED, set(), True, -1),
    (DeliveryState.UNKNOWN, RowState.UNKNOWN, set(), False, 10),
    (DeliveryState.FAILED, RowState.FAILED, set(), True, 10),  # failed is never overdue
    (DeliveryState.DELIVERED, RowState.FAILED, {"a"}, True, 10),
]


@pytest.mark.req("MSG-16")
@pytest.mark.parametrize(("state", "submission", "receipted", "expects", "late"), TABLE)
def test_the_delivery_state_is_the_first_row_of_the_table_that_holds(
    state: DeliveryState, submission: RowState, receipted: set[str], expects: bool, late: int
) -> None:
    got = delivery_state(
        submission=submission,
        recipients=("a", "b"),
        receipted=receipted,
        expects=expects,
        deadline=NOW,
        now=NOW + late,
    )
    assert got is state


@pytest.mark.req("MSG-16")
def test_a_message_has_recipients() -> None:
    with pytest.raises(UsageError):
        delivery_state(
            submission=RowState.ACCEPTED,
            recipients=(),
            receipted=(),
            expects=True,
            deadline=NOW,
            now=NOW,
        )


# --- bureaus on a real relay -------------------------------------------------------------------


def state_of(b: Bureau, message_id: bytes) -> DeliveryState:
    return b.evidence(message_id).state


def receipts_sent(b: Bureau) -> list[Any]:
    return [r for r in b.outbox(receipts=True) if r.schema == RECEIPT]


@pytest.mark.anyio
@pytest.mark.req("MSG-13", "MSG-15", "MSG-16")
async def test_receipts_flow_back_by_themselves_and_move_the_state(tmp_path: Path) -> None:
    everything, receipts = Seen(), Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, handlers={"*": everything}) as seoul,
        bureau(url, clock, RABAT, tmp_path) as rabat,  # no handler: it is receipted all the same
    ):
        sent = await seoul.send(diffusion([RABAT, PARIS]), to=[RABAT, PARIS])
        assert state_of(seoul, sent.message_id) in (DeliveryState.ACCEPTED, DeliveryState.DELIVERED)
        with anyio.fail_after(GUARD):
            await until(lambda: state_of(seoul, sent.message_id) is DeliveryState.DELIVERED)
        evidence = seoul.evidence(sent.message_id)
        assert evidence.submission is RowState.ACCEPTED
        assert evidence.missing == (PARIS,)
        [from_rabat] = evidence.receipts
        assert from_rabat.recipient == RABAT
        [held] = rabat.inbox()
        assert held.state is RowState.UNHANDLED  # no handler; the receipt went all the same
        assert from_rabat.received_at == held.at
        [receipt] = receipts_sent(rabat)
        assert receipt.reply_to == receipt.refers_to == sent.message_hash
        assert receipt.recipients == (SEOUL,)
        assert from_rabat.receipt_id == receipt.message_id
        body = decode_body(receipt.body or b"")
        assert isinstance(body, DeliveryReceipt)
        assert (body.message_id, body.message_hash) == (sent.message_id, sent.message_hash)

        async with bureau(url, clock, PARIS, tmp_path, handlers={"*": receipts}) as paris:
            with anyio.fail_after(GUARD):
                await until(lambda: state_of(seoul, sent.message_id) is DeliveryState.RECEIPTED)
            assert len(receipts.handed) == 1  # Paris got the diffusion, not a receipt back
            assert [r.schema for r in receipts_sent(paris)] == [RECEIPT]
        evidence = seoul.evidence(sent.message_id)
        assert {r.recipient for r in evidence.receipts} == {RABAT, PARIS}
        assert evidence.missing == ()
        late = evidence.deadline + 1  # receipted is final: never overdue
        assert seoul.evidence(sent.message_id, now=late).state is DeliveryState.RECEIPTED
        assert seoul.overdue(now=late) == []
        # the receipts are evidence, not work: no handler saw them, none is waiting
        assert everything.handed == []
        assert seoul.inbox() == []
        in_journal = seoul.inbox(receipts=True)
        assert [(r.schema, r.state) for r in in_journal] == [(RECEIPT, RowState.HANDLED)] * 2
        assert receipts_sent(seoul) == []  # a receipt is never receipted (MSG-14)
        assert seoul.store.refused() == []


@pytest.mark.anyio
@pytest.mark.req("MSG-13", "MSG-14", "MSG-16")
async def test_a_schema_turned_off_is_neither_receipted_nor_expected(tmp_path: Path) -> None:
    policy = DEFAULT_RECEIPT_POLICY.without("ncbr.diffusion")
    answered = Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, receipts=policy) as seoul,
        bureau(url, clock, RABAT, tmp_path, receipts=policy, handlers={"*": answered}) as rabat,
    ):
        quiet = await seoul.send(diffusion([RABAT]), to=[RABAT])
        report = await seoul.send(error_report(), to=[RABAT])
        asked = await seoul.send(request(handling=H0), to=[RABAT])
        with anyio.fail_after(GUARD):
            await until(lambda: len(answered.handed) == 3)
            await until(lambda: state_of(seoul, asked.message_id) is DeliveryState.RECEIPTED)
        assert [r.reply_to for r in receipts_sent(rabat)] == [asked.message_hash]
        later = NOW + 10 * DEFAULT_RECEIPT_DEADLINE
        for unexpected in (quiet, report):
            evidence = seoul.evidence(unexpected.message_id, now=later)
            assert not evidence.expects_receipts
            assert evidence.state is DeliveryState.ACCEPTED
        assert seoul.overdue(now=later) == []


@pytest.mark.anyio
@pytest.mark.req("MSG-16")
async def test_a_recipient_that_never_answers_makes_the_message_overdue(tmp_path: Path) -> None:
    hostile = Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, transport=hostile) as seoul,
    ):
        # Paris is in the directory but never connects
        sent = await seoul.send(request(handling=H0), to=[PARIS])
        chosen = await seoul.send(status(), to=[PARIS], reply_to=sent.message_hash)
        seoul.expect_receipts(chosen.message_id, by=clock.now + 60)
        hostile.refusals = 1
        with pytest.raises(Replay):  # the relay refused it: failed
            await seoul.send(diffusion([PARIS]), to=[PARIS])
        [refused] = [r for r in seoul.outbox() if r.state is RowState.FAILED]
        created = seoul.evidence(sent.message_id).created

        def overdue(now: int) -> list[bytes]:
            return [e.message_id for e in seoul.overdue(now=now)]

        assert state_of(seoul, sent.message_id) is DeliveryState.ACCEPTED
        assert overdue(clock.now + 59) == []
        assert overdue(clock.now + 60) == [chosen.message_id]  # the deadline the sender set
        due = created + DEFAULT_RECEIPT_DEADLINE
        assert overdue(due - 1) == [chosen.message_id]
        assert overdue(due) == [sent.message_id, chosen.message_id]  # the default deadline
        [first, _] = seoul.overdue(now=due)
        assert (first.state, first.missing, first.deadline) == (
            DeliveryState.OVERDUE,
            (PARIS,),
            due,
        )
        failed = seoul.evidence(refused.message_id, now=due)
        assert failed.state is DeliveryState.FAILED  # failed is final, never overdue
        evidences = seoul.evidences(now=due)
        assert [e.message_id for e in evidences] == [r.message_id for r in seoul.outbox()]
        with pytest.raises(UsageError):
            seoul.evidence(b"\x00" * 32)
        with pytest.raises(UsageError):
            seoul.expect_receipts(b"\x00" * 32, by=due)


@pytest.mark.anyio
@pytest.mark.req("MSG-15")
async def test_a_forged_or_mismatched_receipt_is_refused_and_kept(tmp_path: Path) -> None:
    genuine = Seen()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, SEOUL, tmp_path, handlers={DeliveryReceipt: genuine}) as seoul,
        bureau(url, clock, RABAT, tmp_path, receipts=NO_RECEIPTS) as rabat,
        bureau(url, clock, PARIS, tmp_path) as paris,
    ):
        sent = await seoul.send(request(handling=H0), to=[RABAT])
        other = await seoul.send(request(handling=H0), to=[RABAT])
        with anyio.fail_after(GUARD):
            await until(lambda: len(rabat.inbox()) == 2)
        now = clock.now
        mid, mhash = sent.message_id, sent.message_hash
        # Paris was not a recipient, though it names the message rightly
        await paris.send(DeliveryReceipt.of(mid, mhash, now), to=[SEOUL], reply_to=mhash)
        # Rabat names the message with another message's hash
        wrong = DeliveryReceipt.of(mid, other.message_hash, now)
        await rabat.send(wrong, to=[SEOUL], reply_to=other.message_hash)
        # Rabat names a message Seoul never sent
        await rabat.send(DeliveryReceipt.of(bytes(32), mhash, now), to=[SEOUL], reply_to=mhash)
        # one that breaks its own envelope is not even sealed (MSG-11, MSG-12)
        with pytest.raises(UsageError):
            await rabat.send(DeliveryReceipt.of(mid, mhash, now), to=[SEOUL], reply_to=None)
        with anyio.fail_after(GUARD):
            await until(lambda: len(seoul.store.refused()) == 3)
        refused = [(sender, code) for _, sender, code, _ in seoul.store.refused()]
        assert sorted(refused) == [(PARIS, "binding-mismatch")] + [(RABAT, "binding-mismatch")] * 2
        for message in (sent, other):
            evidence = seoul.evidence(message.message_id)
            assert (evidence.state, evidence.receipts) == (DeliveryState.ACCEPTED, ())
        # the genuine receipt, now: evidence, and handed to its own handler; then another
        first = await rabat.send(DeliveryReceipt.of(mid, mhash, now), to=[SEOUL], reply_to=mhash)
        with anyio.fail_after(GUARD):
            await until(lambda: state_of(seoul, mid) is DeliveryState.RECEIPTED)
        await rabat.send(DeliveryReceipt.of(mid, mhash, now - 1), to=[SEOUL], reply_to=mhash)
        with anyio.fail_after(GUARD):
            await until(lambda: len(genuine.handed) == 2)
        [kept] = seoul.evidence(mid).receipts  # the first stands
        assert (kept.receipt_id, kept.received_at) == (first.message_id, now)
        handed = genuine.handed[0]
        assert isinstance(handed.body, DeliveryReceipt)
        assert handed.conversation is None  # no conversation, no obligation
        assert seoul.conversations.get(mhash).steps == ()
        assert state_of(seoul, other.message_id) is DeliveryState.ACCEPTED


@pytest.mark.anyio
@pytest.mark.req("MSG-13", "MSG-16")
async def test_a_restart_keeps_the_evidence_and_its_states(tmp_path: Path) -> None:
    def picture(b: Bureau, now: int) -> list[tuple[Any, ...]]:
        return [_shown(e) for e in b.evidences(now=now)]

    async with relay_node(tmp_path) as (url, clock):
        async with (
            bureau(url, clock, SEOUL, tmp_path) as seoul,
            bureau(url, clock, RABAT, tmp_path),
        ):
            sent = await seoul.send(diffusion([RABAT, PARIS]), to=[RABAT, PARIS])
            seoul.expect_receipts(sent.message_id, by=clock.now + 600)
            with anyio.fail_after(GUARD):
                await until(lambda: state_of(seoul, sent.message_id) is DeliveryState.DELIVERED)
            before = picture(seoul, clock.now), picture(seoul, clock.now + 600)
        assert before[1][0][0] is DeliveryState.OVERDUE
        async with bureau(url, clock, SEOUL, tmp_path, run=1) as seoul:
            assert (picture(seoul, clock.now), picture(seoul, clock.now + 600)) == before
            async with bureau(url, clock, PARIS, tmp_path):
                with anyio.fail_after(GUARD):
                    await until(lambda: state_of(seoul, sent.message_id) is DeliveryState.RECEIPTED)
        async with bureau(url, clock, SEOUL, tmp_path, run=2) as seoul:
            evidence = seoul.evidence(sent.message_id, now=clock.now + 600)
            assert evidence.state is DeliveryState.RECEIPTED
            assert {r.recipient for r in evidence.receipts} == {RABAT, PARIS}


def _shown(e: Evidence) -> tuple[Any, ...]:
    return (e.state, e.submission, e.deadline, e.receipts, e.expects_receipts)
