"""The child of the kill -9 test in test_relay_storage.py.

Run as ``python relay_storage_child.py DB BACKEND``, it accepts messages into
the SQLite store at ``DB`` from many tasks, forever, and prints each message's
number once its ``accept`` has returned, until it is killed.
"""

from __future__ import annotations

import sys

import anyio

from ncb_relay.relay.sqlite_store import open_sqlite_store
from ncb_relay.relay.storage_conformance import T0, make_submission

SEOUL, RABAT, LYON = "KR.ncb.seoul", "MA.ncb.rabat", "FR.ncb.lyon"
WORKERS = 32


async def burst(path: str) -> None:
    async with open_sqlite_store(path) as store:

        async def worker(first: int) -> None:
            for number in range(first, 10**9, WORKERS):
                await store.accept(make_submission(SEOUL, (RABAT, LYON), number), now=T0)
                print(number, flush=True)

        async with anyio.create_task_group() as tasks:
            for first in range(WORKERS):
                tasks.start_soon(worker, first)


if __name__ == "__main__":
    anyio.run(burst, sys.argv[1], backend=sys.argv[2])
