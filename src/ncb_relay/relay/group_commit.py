"""Group commit: concurrent writes share one transaction, and so one fsync.

Theory of operation.  A store turns each call into a *job*: a blocking
function of its database connection.  Jobs wait in a bounded in-memory stream;
when it is full, callers wait for room (backpressure, not unbounded memory).
One writer task, started in the store's task group, takes the first waiting
job, yields once so that callers already running can queue theirs, then takes
every other waiting job until the batch holds ``max_jobs`` jobs or
``max_bytes`` bytes.  It runs the batch in a worker thread through the
backend's ``execute`` function, which opens one transaction, runs each job in
its own savepoint (so that one job's refusal does not undo another's) and
commits once.  Only after ``execute`` returns, with the commit durable, does
the writer wake the batch's callers, each with its own result or error.  While
one batch commits, the next one gathers: under load one fsync is shared by
every caller that arrived during the previous one.

Why a worker thread per batch rather than a long-lived thread that owns the
connection: ``anyio.to_thread.run_sync`` is a portable, cancellation-safe way
for a trio or an asyncio task to wait for blocking work, while waking an event
loop from a foreign thread without blocking that thread has no portable anyio
API.  The hop costs one thread hand-off per batch, not per call.  A capacity
limiter of one, shared with the store's open and close, reserves the thread:
the connection is only ever used by one thread at a time, and the store never
waits behind the application's own use of anyio's default thread pool.

Closing stops new jobs; the writer runs every job already queued, then
returns.  A batch that is in the worker thread when the writer is cancelled
is shielded and finishes, so its callers learn its outcome; a job still queued
then fails with :class:`~ncb_relay.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

import anyio
import anyio.abc
import anyio.lowlevel

from ..errors import NcbRelayError, StorageError, UsageError

__all__ = ["CommitStatistics", "GroupCommitter", "Job"]

T = TypeVar("T")


@dataclass(eq=False, slots=True)
class Job:
    """One caller's operation; ``execute`` sets ``result`` or ``error``."""

    operation: Callable[[], object]
    size: int
    result: object = None
    error: NcbRelayError | None = None
    done: anyio.Event = field(default_factory=anyio.Event)


@dataclass(frozen=True, slots=True)
class CommitStatistics:
    """Counters for tests and metrics: jobs run, transactions used, largest batch."""

    jobs: int
    transactions: int
    largest_batch: int


def fail_all(batch: Sequence[Job], message: str, cause: BaseException | None) -> None:
    """Give every job in ``batch`` its own :class:`StorageError` caused by ``cause``."""
    for job in batch:
        error = StorageError(message)
        error.__cause__ = cause
        job.result, job.error = None, error


class GroupCommitter:
    """Runs jobs in batches on one connection through ``execute`` (see the module docstring)."""

    def __init__(
        self,
        execute: Callable[[Sequence[Job]], None],
        *,
        limiter: anyio.CapacityLimiter,
        max_jobs: int,
        max_bytes: int,
        max_pending: int,
    ) -> None:
        if max_jobs < 1 or max_bytes < 1 or max_pending < 1:
            raise UsageError("batch and queue bounds must be positive")
        self._execute = execute
        self._limiter = limiter
        self._max_jobs = max_jobs
        self._max_bytes = max_bytes
        self._send, self._receive = anyio.create_memory_object_stream[Job](max_pending)
        self._jobs = self._transactions = self._largest = 0

    def statistics(self) -> CommitStatistics:
        return CommitStatistics(self._jobs, self._transactions, self._largest)

    async def submit(self, operation: Callable[[], T], *, size: int = 0) -> T:
        """Queue ``operation``; return its result once its transaction has committed."""
        job = Job(operation, size)
        try:
            await self._send.send(job)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise StorageError("the store is closed") from exc
        await job.done.wait()
        if job.error is not None:
            raise job.error
        return cast(T, job.result)

    def close(self) -> None:
        """Accept no more jobs; :meth:`run` finishes the queued ones and returns."""
        self._send.close()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The writer task: gather, execute, wake, until closed and drained."""
        async with self._receive:
            task_status.started()
            try:
                async for first in self._receive:
                    batch = await self._gather(first)
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(
                            self._run_batch, batch, limiter=self._limiter
                        )
                    for job in batch:
                        job.done.set()
            finally:
                self._fail_queued()

    async def _gather(self, first: Job) -> list[Job]:
        batch, size = [first], first.size
        await anyio.lowlevel.cancel_shielded_checkpoint()
        while len(batch) < self._max_jobs and size < self._max_bytes:
            try:
                job = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            batch.append(job)
            size += job.size
        return batch

    def _run_batch(self, batch: list[Job]) -> None:  # in the worker thread
        try:
            self._execute(batch)
        except Exception as exc:  # a bug in execute must not stop the writer for everyone
            fail_all(batch, "the store failed", exc)
        self._jobs += len(batch)
        self._transactions += 1
        self._largest = max(self._largest, len(batch))

    def _fail_queued(self) -> None:
        queued: list[Job] = []
        while True:
            try:
                queued.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        fail_all(queued, "the store closed before this operation ran", None)
        for job in queued:
            job.done.set()
