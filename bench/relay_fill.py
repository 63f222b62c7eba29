"""A relay store filled with ``N`` stored messages before the relay starts (issue #9, item 3).

:func:`fill_store` writes through the store's own code, as the relay's writer
thread does: :func:`ncb_relay.relay.sqlite_store.accept` for every message
(the dedupe look-up, the message row, the sender's and the mailbox's counters,
one delivery, the log's entry), ``FILL_BATCH`` messages per transaction, and
one signed checkpoint per transaction (:meth:`SqliteLog.seal
<ncb_relay.relay.sqlite_log.SqliteLog.seal>`), so the log holds every message
and the relay replays all of it at its next start.  Only the fill's own
connection runs with ``synchronous=OFF`` (one bulk load; the relay reopens
the file with ``synchronous=FULL``).

The messages are 1 KiB of random bytes each (the store never parses them)
from ``SENDERS`` senders to ``MAILBOXES`` mailboxes that the load never
reads, expiring in a week: they stay queued, as mail awaiting slow bureaus.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ncb_relay.identity import Signer
from ncb_relay.receipt import log_origin
from ncb_relay.relay.log_signing import checkpoint_signer
from ncb_relay.relay.sqlite_log import SqliteLog
from ncb_relay.relay.sqlite_schema import open_database
from ncb_relay.relay.sqlite_store import accept
from ncb_relay.relay.storage import Submission

__all__ = ["fill_store"]

FILL_BATCH = 2000  # messages per transaction (one checkpoint each)
SENDERS = 50
MAILBOXES = 195
BODY_BYTES = 1024
WEEK = 7 * 24 * 3600


def fill_store(database: Path, *, relay_id: str, signer: Signer, count: int) -> float:
    """Store ``count`` messages in a new store at ``database``; the seconds it took."""
    started = time.perf_counter()
    now = int(time.time())
    connection = open_database(database)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        log = SqliteLog(connection, checkpoint_signer(log_origin(relay_id), signer))
        senders = [f"ZZ.stored-sender-{i}" for i in range(SENDERS)]
        mailboxes = [(f"ZZ.stored-mailbox-{i}",) for i in range(MAILBOXES)]
        body = os.urandom(BODY_BYTES)
        for start in range(0, count, FILL_BATCH):
            connection.execute("BEGIN IMMEDIATE")
            for i in range(start, min(count, start + FILL_BATCH)):
                number = i.to_bytes(8, "big")
                submission = Submission(
                    sender=senders[i % SENDERS],
                    message_id=hashlib.blake2b(number, digest_size=32).digest(),
                    message_hash=hashlib.sha256(number).digest(),
                    recipients=mailboxes[i % MAILBOXES],
                    expires=now + WEEK,
                    data=number + body[8:],
                )
                accept(connection, log, submission, now)
            log.seal()
            connection.execute("COMMIT")
            log.committed()
    finally:
        connection.close()
    return time.perf_counter() - started
