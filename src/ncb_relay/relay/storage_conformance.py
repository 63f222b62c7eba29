"""The checks every mailbox store backend must pass (after trio's ``check_two_way_stream``).

A backend's tests call :func:`check_storage_backend` with a factory::

    @pytest.mark.anyio
    async def test_sqlite_backend(tmp_path: Path) -> None:
        await check_storage_backend(
            lambda name: open_sqlite_store(
                tmp_path / f"{name}.db", checkpoint_signer=CHECKPOINT_SIGNER
            )
        )

``factory(name)`` opens the store called ``name`` as an async context
manager, signing the log's checkpoints with :data:`CHECKPOINT_SIGNER` (the
log checks verify them with :data:`LOG_KEY`); opening the same name again
reopens the same store (that is how the restart checks work), and different
names are independent stores.  Each check
in :data:`STORAGE_CHECKS` is an async function of the factory that raises
``AssertionError`` saying what failed, so a test suite may also run them one
by one.  The checks read no clock and assert nothing about timing; they run
under any anyio backend.  Durability across a killed process needs a child
process and is tested per backend (tests/test_relay_storage.py does it for
SQLite); :func:`make_submission` makes the deterministic messages such a test
needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import anyio

from .. import merkle
from ..checkpoint import LogKey, LogView, WitnessKey, cosign_checkpoint, parse_note
from ..errors import LimitExceeded, NcbRelayError, Replay, StorageError, UsageError
from ..identity import SigningKeyPair
from .log_signing import checkpoint_signer
from .storage import (
    MAX_FETCH,
    Acceptance,
    Delivery,
    MailboxStore,
    Quota,
    StoreFactory,
    Submission,
)

__all__ = [
    "CHECKPOINT_SIGNER",
    "LOG_KEY",
    "STORAGE_CHECKS",
    "T0",
    "check_storage_backend",
    "make_submission",
]

T0 = 1_800_000_000  # the checks' "now"; fixed, as everywhere in the tests
TTL = 24 * 3600
SEOUL, RABAT, LYON, MALLORY = "KR.ncb.seoul", "MA.ncb.rabat", "FR.ncb.lyon", "ZZ.mallory"

Check = Callable[[StoreFactory], Awaitable[None]]

_LOG_SIGNING_KEY = SigningKeyPair(bytes(range(32)))  # a published test key, never a real one
LOG_KEY = LogKey("XP.relay-conformance/log", _LOG_SIGNING_KEY.public_key)
CHECKPOINT_SIGNER = checkpoint_signer(LOG_KEY.name, _LOG_SIGNING_KEY)
_WITNESS_SIGNING_KEY = SigningKeyPair(bytes(range(32, 64)))
_WITNESS = WitnessKey("KR.ncb.seoul", _WITNESS_SIGNING_KEY.public_key)


def make_submission(
    sender: str, recipients: tuple[str, ...], number: int, *, expires: int = T0 + TTL
) -> Submission:
    """A deterministic stand-in envelope: its id, hash and bytes derive from ``sender/number``."""
    message_id = hashlib.blake2b(f"{sender}/{number}".encode(), digest_size=32).digest()
    data = b"NCBR/1 test envelope " + message_id + number.to_bytes(8, "big") * (number % 7 + 1)
    message_hash = hashlib.blake2b(data, digest_size=32).digest()
    return Submission(sender, message_id, message_hash, recipients, expires, data)


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


async def _refuses(
    error: type[Exception], call: Callable[[], Awaitable[object]], what: str
) -> None:
    try:
        await call()
    except error:
        return
    raise AssertionError(f"{what}: expected {error.__name__}")


async def _drain(store: MailboxStore, mailbox: str, now: int) -> list[Delivery]:
    """Every delivery a mailbox hands out at ``now``, following the cursor."""
    out: list[Delivery] = []
    cursor = 0
    while batch := (
        await store.fetch(mailbox, after=cursor, limit=7, lease=60, now=now)
    ).deliveries:
        out.extend(batch)
        cursor = batch[-1].position
    return out


def _ids(deliveries: list[Delivery]) -> list[bytes]:
    return [delivery.message_id for delivery in deliveries]


def _same(delivery: Delivery, submission: Submission, accepted_at: int) -> bool:
    return (
        delivery.data == submission.data
        and delivery.sender == submission.sender
        and delivery.message_id == submission.message_id
        and delivery.message_hash == submission.message_hash
        and delivery.expires == submission.expires
        and delivery.accepted_at == accepted_at
    )


async def check_accept_delivers_to_every_recipient(factory: StoreFactory) -> None:
    async with factory("deliver") as store:
        message = make_submission(SEOUL, (RABAT, LYON), 1)
        acceptance = await store.accept(message, now=T0)
        expected = Acceptance(SEOUL, message.message_id, message.message_hash, T0, 0)
        _expect(
            replace(acceptance, checkpoint=None, inclusion=()) == expected,
            "accept returns the acceptance record",
        )
        for mailbox in (RABAT, LYON):
            batch = await store.fetch(mailbox, limit=10, lease=60, now=T0 + 1)
            _expect(len(batch.deliveries) == 1, f"{mailbox} gets its copy")
            (delivery,) = batch.deliveries
            _expect(_same(delivery, message, T0), "the copy carries the exact bytes and facts")
            _expect(delivery.attempt == 1, "a first delivery is attempt 1")
            _expect(delivery.position >= 1 and batch.cursor == delivery.position, "cursor")
        sender_batch = await store.fetch(SEOUL, limit=10, lease=60, now=T0 + 1)
        _expect(sender_batch.deliveries == () and sender_batch.cursor == 0, "sender gets nothing")
        _expect(await store.queue_depth(RABAT) == 1, "queue depth counts leased copies")
        _expect(await store.queue_depth(SEOUL) == 0, "an empty mailbox has depth 0")
        _expect(await store.queue_depth(MALLORY) == 0, "an unknown mailbox has depth 0")
        _expect(dict(await store.queue_depths()) == {RABAT: 1, LYON: 1}, "queue_depths")


async def check_identical_resubmission_returns_the_original(factory: StoreFactory) -> None:
    async with factory("dedupe") as store:
        message = make_submission(SEOUL, (RABAT, LYON), 1)
        first = await store.accept(message, now=T0)
        again = await store.accept(message, now=T0 + 5)
        _expect(again == first, "an identical resubmission returns the original acceptance")
        _expect(await store.queue_depth(RABAT) == 1, "a resubmission is not queued twice")

        twin = make_submission(SEOUL, (RABAT,), 2)
        results: list[Acceptance] = []

        async def submit(now: int) -> None:
            results.append(await store.accept(twin, now=now))

        async with anyio.create_task_group() as tasks:
            for offset in range(20):
                tasks.start_soon(submit, T0 + 10 + offset)
        _expect(len(set(results)) == 1 and len(results) == 20, "concurrent twins: one record")
        _expect(await store.queue_depth(RABAT) == 2, "concurrent twins are queued once")

        await store.acknowledge(RABAT, [message.message_id, twin.message_id])
        await store.acknowledge(LYON, [message.message_id])
        late = await store.accept(message, now=T0 + 100)
        _expect(late == first, "an acknowledged message is still recognised until it expires")
        _expect(await store.queue_depths() == {}, "and is not delivered again")


async def check_conflicting_resubmission_is_refused(factory: StoreFactory) -> None:
    async with factory("conflict") as store:
        message = make_submission(SEOUL, (RABAT,), 1)
        await store.accept(message, now=T0)
        altered = replace(message, data=message.data + b"!", recipients=(RABAT, MALLORY))
        await _refuses(Replay, lambda: store.accept(altered, now=T0 + 1), "same id, other bytes")
        stolen = replace(message, sender=LYON)
        await _refuses(Replay, lambda: store.accept(stolen, now=T0 + 1), "same id, other sender")
        _expect(await store.queue_depth(MALLORY) == 0, "a refused submission queues nothing")
        (delivery,) = await _drain(store, RABAT, T0 + 2)
        _expect(_same(delivery, message, T0), "the original is kept untouched")

        base = make_submission(SEOUL, (LYON,), 2)
        outcomes: list[str] = []

        async def submit(variant: int) -> None:
            try:
                await store.accept(replace(base, data=base.data + bytes([variant])), now=T0)
                outcomes.append("accepted")
            except Replay:
                outcomes.append("conflict")

        async with anyio.create_task_group() as tasks:
            for variant in range(10):
                tasks.start_soon(submit, variant)
        _expect(sorted(outcomes) == ["accepted"] + ["conflict"] * 9, "one of ten variants wins")
        _expect(await store.queue_depth(LYON) == 1, "and only it is queued")


async def check_leases_and_redelivery(factory: StoreFactory) -> None:
    async with factory("lease") as store:
        one, two = (make_submission(SEOUL, (RABAT,), n) for n in (1, 2))
        await store.accept(one, now=T0)
        await store.accept(two, now=T0)
        first = await store.fetch(RABAT, limit=1, lease=30, now=T0)
        _expect(_ids(list(first.deliveries)) == [one.message_id], "limit is respected")
        second = await store.fetch(RABAT, after=0, limit=10, lease=30, now=T0 + 10)
        _expect(_ids(list(second.deliveries)) == [two.message_id], "a leased message is skipped")
        idle = await store.fetch(RABAT, after=0, limit=10, lease=30, now=T0 + 29)
        _expect(idle.deliveries == () and idle.cursor == 0, "nothing while both are leased")
        back = await store.fetch(RABAT, after=second.cursor, limit=10, lease=30, now=T0 + 30)
        _expect(_ids(list(back.deliveries)) == [one.message_id], "redelivered after the lease")
        _expect(back.deliveries[0].attempt == 2, "the redelivery is attempt 2")
        _expect(back.cursor == second.cursor, "a redelivery never moves the cursor back")
        later = await store.fetch(RABAT, after=back.cursor, limit=10, lease=30, now=T0 + 45)
        _expect(_ids(list(later.deliveries)) == [two.message_id], "each lease runs out alone")
        _expect(await store.queue_depth(RABAT) == 2, "unacknowledged messages stay queued")


async def check_acknowledge_deletes_own_copy(factory: StoreFactory) -> None:
    async with factory("ack") as store:
        messages = [make_submission(SEOUL, (RABAT, LYON), n) for n in range(4)]
        for message in messages:
            await store.accept(message, now=T0)
        handed = await store.fetch(RABAT, limit=3, lease=30, now=T0)
        await store.acknowledge(RABAT, [m.message_id for m in messages[:2]])
        await store.acknowledge(RABAT, [messages[3].message_id])  # never fetched: still allowed
        _expect(len(handed.deliveries) == 3, "fetched three")
        _expect(await store.queue_depth(RABAT) == 1, "acknowledged copies are gone")
        await store.acknowledge(RABAT, [messages[0].message_id])
        await store.acknowledge(RABAT, [])
        _expect(await store.queue_depth(RABAT) == 1, "acknowledging twice changes nothing")
        rest = await _drain(store, RABAT, T0 + 30)
        _expect(_ids(rest) == [messages[2].message_id], "only the unacknowledged one returns")
        _expect(await store.queue_depth(LYON) == 4, "another recipient's copies are untouched")
        _expect(_ids(await _drain(store, LYON, T0)) == [m.message_id for m in messages], "LYON")


async def check_acknowledge_is_blind_outside_own_mailbox(factory: StoreFactory) -> None:
    async with factory("blind") as store:
        private = make_submission(SEOUL, (RABAT,), 1)
        shared = make_submission(SEOUL, (RABAT, LYON), 2)
        await store.accept(private, now=T0)
        await store.accept(shared, now=T0)
        unknown = make_submission(SEOUL, (RABAT,), 3).message_id
        # someone else's message, an unknown id, an unknown mailbox: each call simply returns,
        # exactly as acknowledging one's own message does (the interface returns nothing)
        await store.acknowledge(LYON, [private.message_id])
        await store.acknowledge(LYON, [unknown])
        await store.acknowledge(MALLORY, [private.message_id, shared.message_id])
        _expect(await store.queue_depth(RABAT) == 2, "another bureau cannot delete a copy")
        await store.acknowledge(LYON, [shared.message_id])
        _expect(await store.queue_depth(LYON) == 0, "LYON's own copy is gone")
        rabat = await _drain(store, RABAT, T0)
        _expect(_ids(rabat) == [private.message_id, shared.message_id], "RABAT keeps both")


async def check_order_and_cursor(factory: StoreFactory) -> None:
    messages = [make_submission((SEOUL, LYON)[n % 2], (RABAT,), n) for n in range(12)]
    async with factory("order") as store:
        for message in messages[:5]:
            await store.accept(message, now=T0)
        seen: list[Delivery] = []
        cursor = 0
        while batch := (
            await store.fetch(RABAT, after=cursor, limit=2, lease=600, now=T0)
        ).deliveries:
            seen.extend(batch)
            cursor = batch[-1].position
        _expect(_ids(seen) == [m.message_id for m in messages[:5]], "acceptance order")
        positions = [delivery.position for delivery in seen]
        _expect(positions == [1, 2, 3, 4, 5], "a mailbox numbers its copies 1, 2, 3, ...")
        await store.acknowledge(RABAT, _ids(seen))
        await store.accept(messages[5], now=T0)
        (after_empty,) = await _drain(store, RABAT, T0)
        _expect(after_empty.position == 6, "positions never go back when a mailbox empties")
    async with factory("order") as store:
        for message in messages[6:9]:
            await store.accept(message, now=T0)
        skipping = await store.fetch(RABAT, after=8, limit=10, lease=600, now=T0)
        _expect(
            _ids(list(skipping.deliveries)) == [messages[8].message_id],
            "after a restart the positions go on, and a fetch starts after its cursor",
        )
        rest = await store.fetch(RABAT, after=6, limit=10, lease=600, now=T0)
        _expect(
            _ids(list(rest.deliveries)) == [m.message_id for m in messages[6:8]]
            and rest.cursor == 8,
            "copies at or before a cursor wait for a fetch with an earlier cursor",
        )


async def check_expiry_and_purge(factory: StoreFactory) -> None:
    async with factory("purge") as store:
        short = make_submission(SEOUL, (RABAT,), 1, expires=T0 + 100)
        read = make_submission(SEOUL, (LYON,), 2, expires=T0 + 100)
        long = make_submission(SEOUL, (RABAT,), 3)
        for message in (short, read, long):
            await store.accept(message, now=T0)
        await store.acknowledge(LYON, [read.message_id])
        _expect(_ids(await _drain(store, RABAT, T0 + 100)) == [long.message_id], "no expired")
        nothing = await store.purge_expired(now=T0 + 99)
        _expect((nothing.messages, nothing.undelivered) == (0, 0), "nothing expired yet")
        first = await store.purge_expired(now=T0 + 100, limit=1)
        rest = await store.purge_expired(now=T0 + 100, limit=10)
        _expect((first.messages, rest.messages) == (1, 1), "the limit holds")
        _expect(first.undelivered + rest.undelivered == 1, "one copy expired unread")
        _expect(dict(await store.queue_depths()) == {RABAT: 1}, "only the live message is left")
        again = await store.purge_expired(now=T0 + 100)
        _expect(again.messages == 0, "a purge is idempotent")


async def check_concurrent_accepts_are_durable(factory: StoreFactory) -> None:
    mailboxes = (RABAT, LYON, MALLORY)
    messages = [make_submission(SEOUL, tuple(mailboxes[: n % 3 + 1]), n) for n in range(200)]
    returned: dict[bytes, Acceptance] = {}

    async def submit(store: MailboxStore, message: Submission) -> None:
        returned[message.message_id] = await store.accept(message, now=T0)

    async with factory("burst") as store, anyio.create_task_group() as tasks:
        for message in messages:
            tasks.start_soon(submit, store, message)
    _expect(len(returned) == len(messages), "every concurrent accept returned")
    for message in messages:
        acceptance = returned[message.message_id]
        _expect(acceptance.message_hash == message.message_hash, "each caller gets its own record")
    async with factory("burst") as store:
        for mailbox in mailboxes:
            held = await _drain(store, mailbox, T0)
            wanted = {m.message_id: m for m in messages if mailbox in m.recipients}
            _expect(sorted(_ids(held)) == sorted(wanted), f"{mailbox} has every message")
            _expect(all(_same(d, wanted[d.message_id], T0) for d in held), "bytes intact")


async def check_restart_keeps_everything(factory: StoreFactory) -> None:
    messages = [make_submission(SEOUL, (RABAT,), n) for n in range(4)]
    async with factory("restart") as store:
        acceptances = [await store.accept(m, now=T0 + n) for n, m in enumerate(messages)]
        await store.fetch(RABAT, limit=2, lease=30, now=T0)
        await store.acknowledge(RABAT, [messages[0].message_id])
    async with factory("restart") as store:
        _expect(await store.queue_depth(RABAT) == 3, "the queue survives a restart")
        held = await _drain(store, RABAT, T0 + 30)
        _expect(_ids(held) == [m.message_id for m in messages[1:]], "every copy, in order")
        _expect(
            all(
                _same(d, m, T0 + n + 1)
                for n, (d, m) in enumerate(zip(held, messages[1:], strict=True))
            ),
            "intact",
        )
        _expect(await store.accept(messages[0], now=T0 + 50) == acceptances[0], "dedupe survives")
        altered = replace(messages[2], data=b"other bytes")
        await _refuses(Replay, lambda: store.accept(altered, now=T0 + 50), "conflicts survive too")


async def check_sender_quota(factory: StoreFactory) -> None:
    two = Quota(sender_messages=2)
    first, second, third = (make_submission(SEOUL, (RABAT, LYON), n) for n in (1, 2, 3))
    async with factory("quota-sender") as store:
        original = await store.accept(first, now=T0, quota=two)
        await store.accept(second, now=T0, quota=two)
        await _refuses(
            LimitExceeded, lambda: store.accept(third, now=T0, quota=two), "a third over two"
        )
        _expect(await store.queue_depth(RABAT) == 2, "a refused submission stores nothing")
        again = await store.accept(first, now=T0 + 1, quota=two)
        _expect(again == original, "a resubmission over the quota gets the original acceptance")
        other = make_submission(LYON, (RABAT,), 1)
        await store.accept(other, now=T0, quota=two)  # another sender has its own quota
        await store.acknowledge(RABAT, [first.message_id])
        await _refuses(
            LimitExceeded,
            lambda: store.accept(third, now=T0, quota=two),
            "a message acknowledged by one of two recipients is still held",
        )
        await store.acknowledge(LYON, [first.message_id])
        await store.accept(third, now=T0 + 2, quota=two)  # acknowledged by all: room again
        await store.accept(make_submission(SEOUL, (RABAT,), 4), now=T0)  # no quota, no limit
    async with factory("quota-sender") as store:
        fifth = make_submission(SEOUL, (RABAT,), 5)
        await _refuses(
            LimitExceeded,
            lambda: store.accept(fifth, now=T0, quota=Quota(sender_messages=3)),
            "what a sender holds survives a restart",
        )
        await store.accept(fifth, now=T0, quota=Quota(sender_messages=4))
        held = _ids(await _drain(store, RABAT, T0))
        _expect(
            sorted(held)
            == sorted(
                m.message_id
                for m in (second, other, third, make_submission(SEOUL, (RABAT,), 4), fifth)
            ),
            "only the accepted messages are held",
        )


async def check_sender_byte_quota(factory: StoreFactory) -> None:
    small, medium, again = (make_submission(SEOUL, (RABAT, LYON), n) for n in (0, 1, 7))
    quota = Quota(sender_bytes=len(small.data) + len(medium.data))
    _expect(len(again.data) == len(small.data), "the test's sizes")
    async with factory("quota-bytes") as store:
        await store.accept(small, now=T0, quota=quota)
        await store.accept(medium, now=T0, quota=quota)
        await _refuses(
            LimitExceeded, lambda: store.accept(again, now=T0, quota=quota), "bytes over quota"
        )
        await store.acknowledge(RABAT, [small.message_id])
        await _refuses(
            LimitExceeded, lambda: store.accept(again, now=T0, quota=quota), "bytes still held"
        )
        await store.acknowledge(LYON, [small.message_id])
        await store.accept(again, now=T0, quota=quota)
        _expect(await store.queue_depth(LYON) == 2, "held: medium and the last one")


async def check_mailbox_quota(factory: StoreFactory) -> None:
    two = Quota(mailbox_messages=2)
    one, other, both, alone = (
        make_submission(SEOUL, (RABAT,), 1),
        make_submission(LYON, (RABAT,), 2),
        make_submission(SEOUL, (LYON, RABAT), 3),
        make_submission(SEOUL, (LYON,), 4),
    )
    async with factory("quota-mailbox") as store:
        await store.accept(one, now=T0, quota=two)
        await store.accept(other, now=T0, quota=two)
        await _refuses(
            LimitExceeded, lambda: store.accept(both, now=T0, quota=two), "one full recipient"
        )
        _expect(await store.queue_depth(LYON) == 0, "a refusal stores nothing for anybody")
        await store.accept(alone, now=T0, quota=two)
        await store.fetch(RABAT, limit=10, lease=60, now=T0)
        await _refuses(
            LimitExceeded, lambda: store.accept(both, now=T0, quota=two), "leased copies count"
        )
        await store.acknowledge(RABAT, [one.message_id])
        await store.accept(both, now=T0, quota=two)
        _expect(
            dict(await store.queue_depths()) == {RABAT: 2, LYON: 2}, "the mailboxes at their cap"
        )


async def check_expired_messages_do_not_count(factory: StoreFactory) -> None:
    quota = Quota(sender_messages=1, sender_bytes=10**6, mailbox_messages=1)
    short = make_submission(SEOUL, (RABAT,), 1, expires=T0 + 100)
    later = make_submission(SEOUL, (RABAT,), 2)
    async with factory("quota-expiry") as store:
        await store.accept(short, now=T0, quota=quota)
        await _refuses(
            LimitExceeded, lambda: store.accept(later, now=T0 + 99, quota=quota), "not yet"
        )
        try:
            await store.accept(later, now=T0 + 100, quota=quota)
        except LimitExceeded:
            raise AssertionError("an expired message still counts against a quota") from None
        _expect(_ids(await _drain(store, RABAT, T0 + 100)) == [later.message_id], "the new one")
        await store.purge_expired(now=T0 + 100)
        await _refuses(
            LimitExceeded,
            lambda: store.accept(make_submission(SEOUL, (LYON,), 3), now=T0 + 100, quota=quota),
            "after a purge, the live message still counts",
        )


async def check_concurrent_accepts_never_overshoot_a_quota(factory: StoreFactory) -> None:
    outcomes: list[str] = []

    async def submit(store: MailboxStore, message: Submission, quota: Quota) -> None:
        try:
            await store.accept(message, now=T0, quota=quota)
            outcomes.append("accepted")
        except LimitExceeded:
            outcomes.append("refused")

    async with factory("quota-burst") as store:
        async with anyio.create_task_group() as tasks:
            for n in range(30):
                message = make_submission(SEOUL, (RABAT,), n)
                tasks.start_soon(submit, store, message, Quota(sender_messages=5))
        _expect(sorted(outcomes) == ["accepted"] * 5 + ["refused"] * 25, "exactly five of 30")
        outcomes.clear()
        async with anyio.create_task_group() as tasks:
            for n in range(30):
                message = make_submission((LYON, MALLORY)[n % 2], (SEOUL,), n)
                tasks.start_soon(submit, store, message, Quota(mailbox_messages=7))
        _expect(sorted(outcomes) == ["accepted"] * 7 + ["refused"] * 23, "exactly seven of 30")
        _expect(dict(await store.queue_depths()) == {RABAT: 5, SEOUL: 7}, "nothing more stored")


async def check_bad_arguments_are_refused(factory: StoreFactory) -> None:
    async with factory("arguments") as store:
        message = make_submission(SEOUL, (RABAT,), 1)
        calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("limit 0", lambda: store.fetch(RABAT, limit=0, lease=30, now=T0)),
            ("limit too big", lambda: store.fetch(RABAT, limit=MAX_FETCH + 1, lease=30, now=T0)),
            ("lease 0", lambda: store.fetch(RABAT, limit=1, lease=0, now=T0)),
            ("negative cursor", lambda: store.fetch(RABAT, after=-1, limit=1, lease=30, now=T0)),
            ("negative now", lambda: store.fetch(RABAT, limit=1, lease=30, now=-1)),
            ("bad mailbox", lambda: store.fetch("rabat", limit=1, lease=30, now=T0)),
            ("short id", lambda: store.acknowledge(RABAT, [b"short"])),
            ("bare id", lambda: store.acknowledge(RABAT, bytes(32))),  # type: ignore[arg-type]
            ("bad mailbox", lambda: store.acknowledge("nobody", [bytes(32)])),
            ("not a submission", lambda: store.accept(object(), now=T0)),  # type: ignore[arg-type]
            ("float now", lambda: store.accept(message, now=1.5)),  # type: ignore[arg-type]
            ("bad quota", lambda: store.accept(message, now=T0, quota=2)),  # type: ignore[arg-type]
            ("purge limit 0", lambda: store.purge_expired(now=T0, limit=0)),
            ("bad mailbox", lambda: store.queue_depth("x")),
        ]
        for what, call in calls:
            await _refuses(UsageError, call, what)
        _expect(await store.queue_depths() == {}, "refused calls change nothing")


async def check_closed_store_refuses(factory: StoreFactory) -> None:
    async with factory("closed") as store:
        await store.accept(make_submission(SEOUL, (RABAT,), 1), now=T0)
    message = make_submission(SEOUL, (RABAT,), 2)
    await _refuses(StorageError, lambda: store.accept(message, now=T0), "accept after close")
    await _refuses(StorageError, lambda: store.queue_depth(RABAT), "a read after close")


def _verified_evidence(acceptance: Acceptance, message: Submission) -> int:
    """Check an acceptance's checkpoint and inclusion proof; return the checkpoint's size."""
    _expect(acceptance.checkpoint is not None, "an acceptance carries a signed checkpoint")
    assert acceptance.checkpoint is not None
    assert acceptance.log_index is not None
    try:
        checkpoint = LogView(LOG_KEY).update(acceptance.checkpoint)
        merkle.verify_inclusion(
            merkle.leaf_hash(message.message_hash),
            acceptance.log_index,
            checkpoint.size,
            acceptance.inclusion,
            checkpoint.root,
        )
    except NcbRelayError as exc:
        raise AssertionError(f"the acceptance's evidence does not verify: {exc}") from exc
    return checkpoint.size


async def check_log_appends_what_is_accepted(factory: StoreFactory) -> None:
    """LOG-1: one entry per accepted envelope, in order; none for a refusal or a duplicate."""
    async with factory("log-append") as store:
        first, second = make_submission(SEOUL, (RABAT,), 1), make_submission(RABAT, (SEOUL,), 2)
        one = await store.accept(first, now=T0)
        await store.accept(first, now=T0 + 1)  # a duplicate
        await _refuses(
            Replay,
            lambda: store.accept(replace(second, message_id=first.message_id), now=T0),
            "conflict",
        )
        over = make_submission(LYON, (RABAT,), 3)
        await _refuses(
            LimitExceeded,
            lambda: store.accept(over, now=T0, quota=Quota(sender_bytes=len(over.data) - 1)),
            "quota",
        )
        two = await store.accept(second, now=T0 + 2)
        _expect((one.log_index, two.log_index) == (0, 1), "leaves are numbered in order from 0")
        _expect(await store.log_size() == 2, "only accepted envelopes are logged")
        entries = await store.log_entries(start=0, limit=10)
        _expect(
            [(e.index, e.kind, e.entry) for e in entries]
            == [(0, "envelope", first.message_hash), (1, "envelope", second.message_hash)],
            "the entries are the message hashes",
        )
        _expect(_verified_evidence(one, first) == 1, "the first checkpoint covers one leaf")
        _expect(_verified_evidence(two, second) == 2, "a checkpoint per transaction")
        again = await store.accept(first, now=T0 + 3)
        _expect(again.log_index == 0, "a duplicate keeps its leaf")
        _expect(_verified_evidence(again, first) == 2, "with a proof in the latest checkpoint")


async def check_log_batches_one_checkpoint(factory: StoreFactory) -> None:
    """LOG-11: concurrent acceptances share checkpoints; every proof verifies; sizes grow."""
    async with factory("log-batch") as store:
        messages = [make_submission(SEOUL, (RABAT,), n) for n in range(1, 41)]
        results: list[tuple[Acceptance, Submission]] = []

        async def submit(message: Submission) -> None:
            results.append((await store.accept(message, now=T0), message))

        async with anyio.create_task_group() as tasks:
            for message in messages:
                tasks.start_soon(submit, message)
        sizes = {_verified_evidence(acceptance, message) for acceptance, message in results}
        _expect(len(sizes) < len(messages), "concurrent acceptances share a checkpoint")
        notes = await store.log_checkpoints(after=0, limit=MAX_FETCH)
        _expect(len(notes) == len(sizes), "every checkpoint given out is listed")
        view = LogView(LOG_KEY)
        previous: int | None = None
        for note in notes:
            offered = LogView(LOG_KEY).update(note)
            consistency: Sequence[bytes] = ()
            if previous is not None:
                consistency = await store.log_consistency(previous, offered.size)
            view.update(note, consistency)
            previous = offered.size
        held = view.latest
        _expect(held is not None and held.size == 40, "the log holds all 40")
        assert held is not None
        latest = await store.log_checkpoint()
        _expect(latest == notes[-1], "the latest checkpoint is the last listed")
        hashes = messages_by_leaf(results)
        for index in (0, 17, 39):
            proof = await store.log_inclusion(index, 40)
            merkle.verify_inclusion(merkle.leaf_hash(hashes[index]), index, 40, proof, held.root)


def messages_by_leaf(results: list[tuple[Acceptance, Submission]]) -> dict[int, bytes]:
    return {a.log_index: m.message_hash for a, m in results if a.log_index is not None}


async def check_log_survives_restart(factory: StoreFactory) -> None:
    """The log is rebuilt exactly after a restart: the next checkpoint extends the last one."""
    async with factory("log-restart") as store:
        for n in range(1, 12):
            last = await store.accept(make_submission(SEOUL, (RABAT,), n), now=T0)
    async with factory("log-restart") as store:
        _expect(await store.log_size() == 11, "the size survives")
        _expect(await store.log_checkpoint() == last.checkpoint, "the latest checkpoint survives")
        message = make_submission(SEOUL, (RABAT,), 12)
        after = await store.accept(message, now=T0 + 1)
        _expect(after.log_index == 11, "numbering continues")
        _verified_evidence(after, message)
        assert last.checkpoint is not None
        assert after.checkpoint is not None
        view = LogView(LOG_KEY, latest=last.checkpoint)
        view.update(after.checkpoint, await store.log_consistency(11, 12))


async def check_log_directories_and_cosignatures(factory: StoreFactory) -> None:
    """Directory versions are logged once; a witness's cosignature is kept and served."""
    async with factory("log-directory") as store:
        digest = hashlib.blake2b(b"a directory version", digest_size=32).digest()
        index = await store.log_directory(digest)
        _expect(await store.log_directory(digest) == index, "a version is logged once")
        (entry,) = await store.log_entries(start=index, limit=1)
        _expect((entry.kind, entry.entry) == ("directory", digest), "kind and hash")
        note = await store.log_checkpoint()
        assert note is not None
        _expect(await store.log_checkpoint(cosigned=1) is None, "nothing cosigned yet")
        cosigned = cosign_checkpoint(note, witness=_WITNESS, signer=_WITNESS_SIGNING_KEY, now=T0)
        line = parse_note(cosigned).signatures[-1].line()
        size = LogView(LOG_KEY).update(note).size
        await store.log_add_cosignature(size, _WITNESS.name, line)
        await store.log_add_cosignature(size, _WITNESS.name, line)  # again: kept once
        served = await store.log_checkpoint(cosigned=1)
        _expect(served == cosigned, "the note is served with its cosignature")
        LogView(LOG_KEY, witnesses=[_WITNESS], threshold=1).update(cosigned)
        await _refuses(
            UsageError, lambda: store.log_add_cosignature(size + 5, _WITNESS.name, line), "size"
        )


STORAGE_CHECKS: tuple[Check, ...] = (
    check_accept_delivers_to_every_recipient,
    check_identical_resubmission_returns_the_original,
    check_conflicting_resubmission_is_refused,
    check_leases_and_redelivery,
    check_acknowledge_deletes_own_copy,
    check_acknowledge_is_blind_outside_own_mailbox,
    check_order_and_cursor,
    check_expiry_and_purge,
    check_concurrent_accepts_are_durable,
    check_restart_keeps_everything,
    check_sender_quota,
    check_sender_byte_quota,
    check_mailbox_quota,
    check_expired_messages_do_not_count,
    check_concurrent_accepts_never_overshoot_a_quota,
    check_bad_arguments_are_refused,
    check_closed_store_refuses,
    check_log_appends_what_is_accepted,
    check_log_batches_one_checkpoint,
    check_log_survives_restart,
    check_log_directories_and_cosignatures,
)


async def check_storage_backend(factory: StoreFactory) -> None:
    """Run every check in :data:`STORAGE_CHECKS` against stores from ``factory``."""
    for check in STORAGE_CHECKS:
        await check(factory)
