"""The relay's mailbox store on SQLite, under trio and asyncio.

The reusable conformance suite runs check by check; controls show that it
catches broken backends.  Then the SQLite specifics: pragmas, migrations and
refusals, group commit and its bounds, query plans and the work a query does
(counted in SQLite VM steps, never in seconds), error translation, closing
with jobs queued, and a child process killed with SIGKILL mid-burst.
The child is ``relay_storage_child.py``.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import anyio
import pytest

from fixtures import NOW, world
from ncb_relay import seal, verify_routing
from ncb_relay.errors import LimitExceeded, Replay, StorageError, UsageError
from ncb_relay.relay import sqlite_store
from ncb_relay.relay.group_commit import Job
from ncb_relay.relay.sqlite_log import SqliteLog
from ncb_relay.relay.sqlite_schema import APPLICATION_ID, MIGRATIONS, open_database
from ncb_relay.relay.sqlite_store import open_sqlite_store
from ncb_relay.relay.storage import (
    MAX_FETCH,
    Acceptance,
    Batch,
    Delivery,
    LogEntry,
    MailboxStore,
    Purge,
    Quota,
    StoreFactory,
    Submission,
)
from ncb_relay.relay.storage_conformance import (
    CHECKPOINT_SIGNER,
    STORAGE_CHECKS,
    T0,
    check_storage_backend,
    make_submission,
)

SEOUL, RABAT, LYON = "KR.ncb.seoul", "MA.ncb.rabat", "FR.ncb.lyon"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def sqlite_factory(directory: Path) -> StoreFactory:
    return lambda name: open_sqlite_store(
        directory / f"{name}.db", checkpoint_signer=CHECKPOINT_SIGNER
    )


async def drain(store: MailboxStore, mailbox: str, now: int = T0) -> list[Delivery]:
    out: list[Delivery] = []
    cursor = 0
    while batch := (
        await store.fetch(mailbox, after=cursor, limit=MAX_FETCH, lease=600, now=now)
    ).deliveries:
        out.extend(batch)
        cursor = batch[-1].position
    return out


# --- the conformance suite ---------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("check", STORAGE_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_sqlite_passes(
    check: Callable[[StoreFactory], Awaitable[None]], tmp_path: Path
) -> None:
    await check(sqlite_factory(tmp_path))


@pytest.mark.anyio
async def test_check_storage_backend_runs_every_check(tmp_path: Path) -> None:
    await check_storage_backend(sqlite_factory(tmp_path))


class Delegate:
    """A store that forwards every call; the mutants below break one rule each."""

    def __init__(self, inner: MailboxStore) -> None:
        self.inner = inner

    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        return await self.inner.accept(submission, now=now, quota=quota, known=known)

    async def fetch(
        self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
    ) -> Batch:
        return await self.inner.fetch(mailbox, after=after, limit=limit, lease=lease, now=now)

    async def acknowledge(self, mailbox: str, message_ids: Sequence[bytes]) -> None:
        await self.inner.acknowledge(mailbox, message_ids)

    async def purge_expired(self, *, now: int, limit: int = MAX_FETCH) -> Purge:
        return await self.inner.purge_expired(now=now, limit=limit)

    async def queue_depth(self, mailbox: str) -> int:
        return await self.inner.queue_depth(mailbox)

    async def queue_depths(self) -> Mapping[str, int]:
        return await self.inner.queue_depths()

    async def log_size(self) -> int:
        return await self.inner.log_size()

    async def log_checkpoint(self, *, cosigned: int = 0) -> bytes | None:
        return await self.inner.log_checkpoint(cosigned=cosigned)

    async def log_checkpoint_note(self, size: int) -> bytes | None:
        return await self.inner.log_checkpoint_note(size)

    async def log_checkpoints(self, *, after: int, limit: int) -> Sequence[bytes]:
        return await self.inner.log_checkpoints(after=after, limit=limit)

    async def log_inclusion(self, index: int, size: int) -> Sequence[bytes]:
        return await self.inner.log_inclusion(index, size)

    async def log_consistency(self, old: int, new: int) -> Sequence[bytes]:
        return await self.inner.log_consistency(old, new)

    async def log_entries(self, *, start: int, limit: int) -> Sequence[LogEntry]:
        return await self.inner.log_entries(start=start, limit=limit)

    async def log_directory(self, digest: bytes) -> int:
        return await self.inner.log_directory(digest)

    async def log_add_cosignature(self, size: int, witness: str, line: bytes) -> None:
        await self.inner.log_add_cosignature(size, witness, line)


class FreshRecordForDuplicates(Delegate):
    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        return replace(await self.inner.accept(submission, now=now, quota=quota), accepted_at=now)


class ProvesTheWrongLeaf(Delegate):
    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        acceptance = await self.inner.accept(submission, now=now, quota=quota)
        if not acceptance.log_index:
            return acceptance
        proof = await self.inner.log_inclusion(0, await self.inner.log_size())
        return replace(acceptance, inclusion=tuple(proof))


class LosesTheLogOnRestart(Delegate):
    async def log_checkpoint(self, *, cosigned: int = 0) -> bytes | None:
        return None


class IgnoresQuotas(Delegate):
    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        return await self.inner.accept(submission, now=now)


class ChecksTheMailboxQuotaApart(Delegate):
    """Checks the mailbox cap, then accepts in another step: concurrent calls overshoot."""

    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        if quota is not None and quota.mailbox_messages is not None:
            for mailbox in submission.recipients:
                if await self.inner.queue_depth(mailbox) >= quota.mailbox_messages:
                    raise LimitExceeded("full")
            quota = replace(quota, mailbox_messages=None)
        return await self.inner.accept(submission, now=now, quota=quota)


class CountsExpiredMessages(Delegate):
    async def accept(
        self,
        submission: Submission,
        *,
        now: int,
        quota: Quota | None = None,
        known: int | None = None,
    ) -> Acceptance:
        return await self.inner.accept(submission, now=min(now, T0), quota=quota)


class AcknowledgesAnyMailbox(Delegate):
    async def acknowledge(self, mailbox: str, message_ids: Sequence[bytes]) -> None:
        for owner in await self.inner.queue_depths():
            await self.inner.acknowledge(owner, message_ids)


class NeverRedelivers(Delegate):
    async def fetch(
        self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
    ) -> Batch:
        return await self.inner.fetch(mailbox, after=after, limit=limit, lease=10**6, now=now)


class IgnoresTheCursor(Delegate):
    async def fetch(
        self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
    ) -> Batch:
        batch = await self.inner.fetch(mailbox, after=0, limit=limit, lease=lease, now=now)
        return replace(batch, cursor=max(batch.cursor, after))


class HandsOutExpired(Delegate):
    async def fetch(
        self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
    ) -> Batch:
        return await self.inner.fetch(mailbox, after=after, limit=limit, lease=lease, now=0)


def mutant_factory(directory: Path, mutant: type[Delegate]) -> StoreFactory:
    @asynccontextmanager
    async def open_mutant(name: str) -> AsyncIterator[MailboxStore]:
        async with open_sqlite_store(
            directory / f"{name}.db", checkpoint_signer=CHECKPOINT_SIGNER
        ) as store:
            yield mutant(store)

    return open_mutant


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mutant", "check_name"),
    [
        (FreshRecordForDuplicates, "check_identical_resubmission_returns_the_original"),
        (AcknowledgesAnyMailbox, "check_acknowledge_is_blind_outside_own_mailbox"),
        (NeverRedelivers, "check_leases_and_redelivery"),
        (IgnoresTheCursor, "check_order_and_cursor"),
        (HandsOutExpired, "check_expiry_and_purge"),
        (IgnoresQuotas, "check_sender_quota"),
        (IgnoresQuotas, "check_sender_byte_quota"),
        (IgnoresQuotas, "check_mailbox_quota"),
        (ChecksTheMailboxQuotaApart, "check_concurrent_accepts_never_overshoot_a_quota"),
        (CountsExpiredMessages, "check_expired_messages_do_not_count"),
        (ProvesTheWrongLeaf, "check_log_appends_what_is_accepted"),
        (LosesTheLogOnRestart, "check_log_survives_restart"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
async def test_the_suite_catches_a_broken_backend(
    mutant: type[Delegate], check_name: str, tmp_path: Path
) -> None:
    (check,) = [c for c in STORAGE_CHECKS if c.__name__ == check_name]
    for name in ("control", "mutant"):
        (tmp_path / name).mkdir()
    await check(sqlite_factory(tmp_path / "control"))  # the real store passes it
    with pytest.raises(AssertionError):
        await check(mutant_factory(tmp_path / "mutant", mutant))


@pytest.mark.anyio
async def test_a_routed_envelope_becomes_a_submission(tmp_path: Path) -> None:
    ids, directory = world("KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris")
    sealed = seal(
        b"request for assistance",
        sender=ids["KR.ncb-seoul"],
        recipients=[ids["MA.ncb-rabat"].public, ids["FR.ncb-paris"].public],
        now=NOW,
        seq=1,
        rng=lambda n: bytes(range(n)),
    )
    routed = verify_routing(sealed.data, directory=directory, now=NOW)
    submission = Submission.from_routed(routed)
    assert submission.recipients == ("FR.ncb-paris", "MA.ncb-rabat")
    assert (submission.message_id, submission.message_hash) == (
        sealed.message_id,
        sealed.message_hash,
    )
    async with open_sqlite_store(tmp_path / "routed.db") as store:
        await store.accept(submission, now=NOW)
        (delivery,) = await drain(store, "MA.ncb-rabat", NOW)
    assert delivery.data == sealed.data
    assert delivery.expires == sealed.header.expires


@pytest.mark.parametrize(
    "change",
    [
        {"sender": "nobody"},
        {"message_id": b"short"},
        {"message_hash": bytes(31)},
        {"recipients": ()},
        {"recipients": [RABAT]},
        {"recipients": (RABAT, RABAT)},
        {"expires": -1},
        {"expires": True},
        {"data": b""},
        {"data": "text"},
    ],
)
def test_a_bad_submission_is_refused(change: dict[str, object]) -> None:
    good = make_submission(SEOUL, (RABAT,), 1)
    with pytest.raises(UsageError):
        replace(good, **change)  # type: ignore[arg-type]


# --- SQLite: opening, pragmas, migrations ------------------------------------------------


def test_a_store_file_is_wal_full_sync_with_foreign_keys(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "store.db")
    try:
        pragmas = {
            name: connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "application_id")
        }
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        connection.close()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "application_id": APPLICATION_ID,
    }
    assert version == len(MIGRATIONS)


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    open_database(path, migrations=()).close()  # version 0: marked as ours, no tables
    extra = (*MIGRATIONS, ("CREATE TABLE notes (note TEXT)",))
    for migrations in (MIGRATIONS, extra, extra):
        open_database(path, migrations=migrations).close()
    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
        assert version == len(MIGRATIONS) + 1
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"mailboxes", "messages", "deliveries", "notes", "schema_version"} <= tables
    connection.close()


@pytest.mark.req("API-22")
@pytest.mark.anyio
async def test_migration_2_counts_what_a_version_1_store_holds(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    connection = open_database(path, migrations=MIGRATIONS[:1])
    held = [make_submission(SEOUL, (RABAT, LYON), n) for n in range(3)]
    connection.execute("BEGIN")
    for message in held:  # version 1's statements: no counters
        connection.execute(
            "INSERT INTO messages (message_id, sender, message_hash, data_digest, expires,"
            " accepted_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.message_id,
                SEOUL,
                message.message_hash,
                b"d",
                message.expires,
                T0,
                message.data,
            ),
        )
        for mailbox in message.recipients:
            connection.execute(
                "INSERT INTO mailboxes (mailbox, last_position) VALUES (?, 1) ON CONFLICT"
                " (mailbox) DO UPDATE SET last_position = last_position + 1",
                (mailbox,),
            )
            connection.execute(
                "INSERT INTO deliveries (mailbox, position, message, expires) VALUES"
                " (?, (SELECT last_position FROM mailboxes WHERE mailbox = ?),"
                " (SELECT id FROM messages WHERE message_id = ?), ?)",
                (mailbox, mailbox, message.message_id, message.expires),
            )
    connection.execute(
        "UPDATE messages SET data = NULL WHERE message_id = ?", (held[0].message_id,)
    )
    connection.execute("DELETE FROM deliveries WHERE message = 1")
    connection.execute("COMMIT")
    connection.close()
    async with open_sqlite_store(path) as store:
        sizes = sum(len(m.data) for m in held[1:])
        extra = make_submission(SEOUL, (LYON,), 9)
        for quota in (
            Quota(sender_messages=2),
            Quota(sender_bytes=sizes + len(extra.data) - 1),
            Quota(mailbox_messages=2),
        ):
            with pytest.raises(LimitExceeded):
                await store.accept(extra, now=T0, quota=quota)
        quota = Quota(sender_messages=3, sender_bytes=sizes + len(extra.data), mailbox_messages=3)
        await store.accept(extra, now=T0, quota=quota)


@pytest.mark.anyio
async def test_a_store_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with open_sqlite_store(path) as store:
        await store.accept(make_submission(SEOUL, (RABAT,), 1), now=T0)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_version SET version = version + 1")
    connection.close()
    with pytest.raises(StorageError, match="newer than this ncb_relay"):
        async with open_sqlite_store(path):
            pass


@pytest.mark.anyio
@pytest.mark.parametrize(
    "spoil",
    ["CREATE TABLE accounts (id INTEGER)", "PRAGMA application_id = 7", b"not a database", None],
    ids=["foreign-tables", "foreign-application", "garbage", "missing-directory"],
)
async def test_a_file_that_is_not_a_store_is_refused(
    spoil: str | bytes | None, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    if isinstance(spoil, str):
        with sqlite3.connect(path) as connection:
            connection.execute(spoil)
        connection.close()
    elif isinstance(spoil, bytes):
        path.write_bytes(spoil * 100)
    else:
        path = tmp_path / "absent" / "store.db"
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(StorageError) as caught:
        async with open_sqlite_store(path):
            pass
    assert isinstance(caught.value.__cause__, sqlite3.Error | None)
    assert (path.read_bytes() if path.exists() else None) == before  # left as it was


@pytest.mark.anyio
@pytest.mark.parametrize("option", ["max_batch", "max_batch_bytes", "max_pending"])
async def test_bad_store_options_are_refused(option: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        async with open_sqlite_store(tmp_path / "store.db", **{option: 0}):  # type: ignore[arg-type]
            pass
    assert not (tmp_path / "store.db").exists()


# --- SQLite: group commit ------------------------------------------------------------------


async def _accept_concurrently(store: sqlite_store.SqliteMailboxStore, count: int) -> None:
    async with anyio.create_task_group() as tasks:
        for number in range(count):
            message = make_submission(SEOUL, (RABAT, LYON), number)
            tasks.start_soon(partial(store.accept, message, now=T0))


@pytest.mark.anyio
async def test_concurrent_accepts_share_transactions(tmp_path: Path) -> None:
    # Scheduling, not timing: every caller is queued before the writer, which yields once
    # after waking, gathers its batch.
    async with open_sqlite_store(tmp_path / "store.db") as store:
        await _accept_concurrently(store, 100)
        statistics = store.statistics()
        assert await store.queue_depth(RABAT) == 100
    assert statistics.jobs == 100
    assert statistics.transactions < statistics.jobs
    assert statistics.largest_batch > 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "largest"), [({"max_batch": 4}, 4), ({"max_batch_bytes": 1}, 1)]
)
async def test_a_batch_is_bounded(options: dict[str, int], largest: int, tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "store.db", **options) as store:  # type: ignore[arg-type]
        await _accept_concurrently(store, 50)
        statistics = store.statistics()
        assert await store.queue_depth(LYON) == 50
    assert statistics.largest_batch <= largest
    assert statistics.transactions >= 50 // largest


@pytest.mark.anyio
async def test_closing_settles_every_queued_call(tmp_path: Path) -> None:
    """Graceful shutdown: each caller hears "accepted" (and it is stored) or a StorageError."""
    path = tmp_path / "store.db"
    outcomes: dict[int, str] = {}
    first = anyio.Event()

    async def submit(store: MailboxStore, number: int) -> None:
        try:
            await store.accept(make_submission(SEOUL, (RABAT,), number), now=T0)
            outcomes[number] = "accepted"
            first.set()
        except StorageError:
            outcomes[number] = "refused"

    async with anyio.create_task_group() as tasks, open_sqlite_store(path, max_batch=8) as store:
        for number in range(60):
            tasks.start_soon(submit, store, number)
        await first.wait()  # then close while the others are queued or on their way
    assert len(outcomes) == 60
    async with open_sqlite_store(path) as store:
        held = await drain(store, RABAT)
    accepted = {
        make_submission(SEOUL, (RABAT,), number).message_id
        for number, outcome in outcomes.items()
        if outcome == "accepted"
    }
    assert {delivery.message_id for delivery in held} == accepted


# --- SQLite: query plans and the work each query does ---------------------------------------

PLANS = {
    "DEDUPE": ["messages_by_id"],
    "NEXT_POSITION": [],
    "INSERT_DELIVERY": [],
    "FETCH": ["deliveries_fresh", "deliveries_leased"],
    "LEASE": ["PRIMARY KEY"],
    "MESSAGE_ROW": ["messages_by_id"],
    "ACKNOWLEDGE": ["deliveries_by_message"],
    "DROP_BYTES": ["deliveries_by_message"],
    "EXPIRED": ["messages_by_expiry"],
    "PURGE_DELIVERIES": ["deliveries_by_message"],
    "PURGE_MESSAGE": ["INTEGER PRIMARY KEY", "deliveries_by_message"],
    "QUEUE_DEPTH": ["PRIMARY KEY"],
    "SENDER_HELD": ["PRIMARY KEY"],
    "MAILBOX_WAITING": ["PRIMARY KEY"],
    "HOLD": [],
    "RELEASE": ["PRIMARY KEY"],
    "LEAVE": ["PRIMARY KEY"],
}
FULL_SCANS_BY_DESIGN = {"QUEUE_DEPTHS"}  # a metrics scrape over every mailbox


@pytest.mark.parametrize("name", sorted(PLANS))
def test_each_query_uses_its_index(name: str, tmp_path: Path) -> None:
    connection = open_database(tmp_path / "store.db")
    sql = getattr(sqlite_store, name)
    params: dict[str, object] | tuple[int, ...] = (
        {"mailbox": RABAT, "after": 0, "now": T0, "limit": 10}
        if ":mailbox" in sql
        else (1,) * sql.count("?")
    )
    plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    connection.close()
    for index in PLANS[name]:
        assert any(index in step for step in plan), (name, plan)
    table_scans = [s for s in plan if s.startswith("SCAN ") and not s.startswith("SCAN (")]
    assert table_scans in ([], ["SCAN chosen"]), (name, plan)  # the CTE of chosen positions


def test_every_query_is_covered_by_the_plan_test() -> None:
    queries = {
        name
        for name, value in vars(sqlite_store).items()
        if name.isupper() and isinstance(value, str)
    }
    assert queries == set(PLANS) | FULL_SCANS_BY_DESIGN | {"INSERT_MESSAGE"}


def _vm_steps(connection: sqlite3.Connection, work: Callable[[], object]) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    connection.set_progress_handler(count, 1)
    try:
        work()
    finally:
        connection.set_progress_handler(None, 1)
    return steps


def _workload(path: Path, stored: int) -> tuple[int, int]:
    """VM steps for one fetch and one purge, with ``stored`` other messages lying around.

    The other messages are in other mailboxes, leased in this one, acknowledged (kept
    for dedupe), or not yet expired; the fetch and the purge have the same work to do
    whatever ``stored`` is.
    """
    connection = open_database(path)
    log = SqliteLog(connection, None)
    long_lived = T0 + 10**6
    connection.execute("BEGIN")
    for n in range(stored):
        sqlite_store.accept(connection, log, make_submission(SEOUL, (LYON,), n), T0)
        sqlite_store.accept(
            connection, log, make_submission(LYON, (RABAT,), n, expires=long_lived), T0
        )
        acknowledged = make_submission(SEOUL, (RABAT,), n, expires=long_lived)
        sqlite_store.accept(connection, log, acknowledged, T0)
        sqlite_store.acknowledge(connection, RABAT, [acknowledged.message_id])
    while sqlite_store.fetch(
        connection, RABAT, after=0, limit=MAX_FETCH, lease=10**5, now=T0
    ).deliveries:
        pass  # every one of them leased for long
    for n in range(3):  # handed out, lease runs out at T0 + 10
        sqlite_store.accept(connection, log, make_submission(RABAT, (RABAT,), n), T0)
    sqlite_store.fetch(connection, RABAT, after=0, limit=3, lease=10, now=T0)
    for n in range(3, 8):  # never handed out
        sqlite_store.accept(connection, log, make_submission(RABAT, (RABAT,), n), T0)
    for n in range(5):  # expire at T0 + 50
        sqlite_store.accept(
            connection, log, make_submission(SEOUL, (LYON,), 10**6 + n, expires=T0 + 50), T0
        )
    connection.execute("COMMIT")
    cursor = max(
        row[0]
        for row in connection.execute(
            "SELECT position FROM deliveries WHERE mailbox = ? AND lease_until IS NOT NULL",
            (RABAT,),
        )
    )
    batch: list[Batch] = []
    fetch_steps = _vm_steps(
        connection,
        lambda: batch.append(
            sqlite_store.fetch(connection, RABAT, after=cursor, limit=10, lease=60, now=T0 + 20)
        ),
    )
    purged: list[Purge] = []
    purge_steps = _vm_steps(
        connection, lambda: purged.append(sqlite_store.purge_expired(connection, T0 + 50, 100))
    )
    connection.close()
    assert len(batch[0].deliveries) == 8  # 3 redeliveries and 5 new ones
    assert purged == [Purge(messages=5, undelivered=5)]
    return fetch_steps, purge_steps


def test_fetch_and_purge_do_not_slow_down_as_messages_pile_up(tmp_path: Path) -> None:
    small = _workload(tmp_path / "small.db", 20)
    large = _workload(tmp_path / "large.db", 1500)
    assert large == small, (small, large)


# --- SQLite: errors are translated -------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failing_statement_fails_only_its_own_job(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "store.db")
    log = SqliteLog(connection, CHECKPOINT_SIGNER)
    message = make_submission(SEOUL, (RABAT,), 1)
    jobs = [
        Job(
            partial(
                connection.execute,
                "INSERT INTO mailboxes (mailbox, last_position) VALUES (NULL, NULL)",
            ),
            0,
        ),
        Job(partial(sqlite_store.accept, connection, log, message, T0), 1),
        Job(partial(sqlite_store.accept, connection, log, replace(message, data=b"x"), T0), 1),
    ]
    sqlite_store.execute_batch(connection, log, jobs)
    depth = sqlite_store.queue_depth(connection, RABAT)
    connection.close()
    assert isinstance(jobs[0].error, StorageError)
    assert isinstance(jobs[0].error.__cause__, sqlite3.IntegrityError)
    assert jobs[1].error is None
    assert isinstance(jobs[1].result, Acceptance)
    assert isinstance(jobs[2].error, Replay)
    assert depth == 1


@pytest.mark.anyio
async def test_a_full_disk_fails_the_batch_and_the_store_goes_on(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "store.db")
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute(f"PRAGMA max_page_count = {pages + 2}")
    big = replace(make_submission(SEOUL, (RABAT,), 1), data=bytes(64 * 1024))
    small = make_submission(SEOUL, (RABAT,), 2)
    log = SqliteLog(connection, CHECKPOINT_SIGNER)
    failed = [Job(partial(sqlite_store.accept, connection, log, big, T0), 1) for _ in range(1)]
    failed.append(Job(partial(sqlite_store.accept, connection, log, small, T0), 1))
    sqlite_store.execute_batch(connection, log, failed)
    assert all(isinstance(job.error, StorageError) for job in failed)
    assert not connection.in_transaction
    assert (log.size, log.signed_size()) == (0, -1)  # the log forgot the failed appends
    retried = [Job(partial(sqlite_store.accept, connection, log, small, T0), 1)]
    sqlite_store.execute_batch(connection, log, retried)
    assert retried[0].error is None
    assert sqlite_store.queue_depth(connection, RABAT) == 1
    assert isinstance(retried[0].result, Acceptance)
    assert retried[0].result.log_index == 0
    assert (log.size, log.signed_size()) == (1, 1)
    assert SqliteLog(connection, CHECKPOINT_SIGNER).latest() == retried[0].result.checkpoint
    connection.close()


def test_the_step_count_would_catch_a_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: a fetch that walks the mailbox from its start does more work as it fills."""
    naive = """
        SELECT d.position, d.attempts, m.sender, m.message_id, m.message_hash, m.accepted_at,
               m.expires, m.data
        FROM deliveries AS d NOT INDEXED JOIN messages AS m ON m.id = d.message
        WHERE d.mailbox = :mailbox AND d.expires > :now
          AND ((d.lease_until IS NULL AND d.position > :after) OR d.lease_until <= :now)
        ORDER BY d.position LIMIT :limit
    """
    monkeypatch.setattr(sqlite_store, "FETCH", naive)
    small = _workload(tmp_path / "small.db", 20)
    large = _workload(tmp_path / "large.db", 1500)
    assert large[0] > 10 * small[0]
    assert large[1] == small[1]


# --- SQLite: kill -9 in the middle of a burst ---------------------------------------------------

REPORTED_BEFORE_KILL = 300
BURST_CHILD = Path(__file__).with_name("relay_storage_child.py")


@pytest.mark.anyio
async def test_a_killed_store_keeps_every_acceptance_it_reported(
    anyio_backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    child = subprocess.Popen(
        [sys.executable, str(BURST_CHILD), str(path), anyio_backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watchdog = threading.Timer(600, child.kill)  # a hung child fails the test, never hangs it
    watchdog.start()
    reported: list[int] = []
    try:
        assert child.stdout is not None
        while len(reported) < REPORTED_BEFORE_KILL and (line := child.stdout.readline()):
            reported.append(int(line))
        child.send_signal(signal.SIGKILL)
        rest, errors = child.communicate()
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len(reported) == REPORTED_BEFORE_KILL, errors.decode(errors="replace")[-3000:]
    assert child.returncode == -signal.SIGKILL
    reported += [int(line) for line in rest.split(b"\n")[:-1]]  # whole lines only

    async with open_sqlite_store(path) as store:
        held = {
            mailbox: {delivery.message_id: delivery for delivery in await drain(store, mailbox)}
            for mailbox in (RABAT, LYON)
        }
    assert held[RABAT].keys() == held[LYON].keys()  # all recipients or none
    for number in reported:
        message = make_submission(SEOUL, (RABAT, LYON), number)
        assert held[RABAT][message.message_id].data == message.data, number
    number_at = len(b"NCBR/1 test envelope ") + 32
    for delivery in held[RABAT].values():  # and nothing that was not submitted
        number = int.from_bytes(delivery.data[number_at : number_at + 8], "big")
        assert delivery.data == make_submission(SEOUL, (RABAT, LYON), number).data
    assert len(held[RABAT]) >= len(set(reported))


@pytest.mark.anyio
async def test_a_bug_in_a_job_fails_its_batch_and_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    connection = open_database(tmp_path / "store.db")
    message = make_submission(SEOUL, (RABAT,), 1)
    log = SqliteLog(connection, CHECKPOINT_SIGNER)
    broken = [Job(partial(sqlite_store.accept, connection, log, message, T0), 1), Job(dict, 0)]
    broken.append(Job(lambda: 1 / 0, 0))
    sqlite_store.execute_batch(connection, log, broken)
    assert log.size == 0
    assert all(isinstance(job.error, StorageError) for job in broken)
    assert isinstance(broken[2].error.__cause__, ZeroDivisionError)  # type: ignore[union-attr]
    assert not connection.in_transaction
    assert sqlite_store.queue_depth(connection, RABAT) == 0  # the whole batch was undone
    connection.close()


def test_a_job_rolled_back_after_appending_leaves_no_leaf_and_no_gap(tmp_path: Path) -> None:
    """The log's rows wait in memory until the batch seals; a job's rollback drops its own."""
    connection = open_database(tmp_path / "store.db")
    log = SqliteLog(connection, CHECKPOINT_SIGNER)
    first, second = make_submission(SEOUL, (RABAT,), 1), make_submission(SEOUL, (RABAT,), 2)

    def appends_then_fails() -> None:
        log.append(0, bytes(32))
        log.append(1, bytes(range(32)))
        raise Replay("refused after appending")

    jobs = [
        Job(partial(sqlite_store.accept, connection, log, first, T0), 1),
        Job(appends_then_fails, 0),
        Job(partial(sqlite_store.accept, connection, log, second, T0), 1),
    ]
    sqlite_store.execute_batch(connection, log, jobs)
    assert isinstance(jobs[1].error, Replay)
    results = [job.result for job in (jobs[0], jobs[2])]
    assert all(isinstance(r, Acceptance) for r in results)
    assert [r.log_index for r in results if isinstance(r, Acceptance)] == [0, 1]
    assert log.find_directory(bytes(range(32))) is None
    entries = log.entries(0, 10)
    assert [(e.index, e.entry) for e in entries] == [
        (0, first.message_hash),
        (1, second.message_hash),
    ]
    reopened = SqliteLog(connection, CHECKPOINT_SIGNER)  # checks every node and the signed root
    assert (reopened.size, reopened.signed_size()) == (2, 2)
    connection.close()
