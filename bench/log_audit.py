"""The audit of a relay's whole log through HTTP: ``python -m bench.log_audit [--entries N]``.

Issue #7's target: ``ncb-relay log audit`` verifies the log of a relay that has
served 100,000 messages in under a minute.  The bench makes a throw-away
deployment (:func:`~ncb_relay.demo.deployment.make_deployment`, the relay
which lists the relay with role ``relay``), fills the relay's SQLite store with ``N`` envelope
entries directly through the store's log (:class:`~ncb_relay.relay.sqlite_log.SqliteLog`,
one signed checkpoint per ``--batch`` entries, as group commit would sign
them), starts the relay node on a loopback port (trio, in a thread of this
process) and times ``ncb-relay log audit`` (:func:`ncb_relay.cli.main`, in the
main thread) from its start to its report.  The relay and the auditor share
this process and its interpreter lock, so the figure is pessimistic: a real
audit runs on another machine than the relay.

It prints one JSON object (entries, checkpoints, proofs checked, seconds,
target met) on stdout; progress on stderr.  Exit 0 whatever the figure says.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import queue
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import trio

from ncb_relay import primitives
from ncb_relay.cli import main as cli_main
from ncb_relay.demo.deployment import Deployment, Member, make_deployment, running_relay
from ncb_relay.receipt import log_origin
from ncb_relay.relay.log_signing import checkpoint_signer
from ncb_relay.relay.sqlite_log import SqliteLog
from ncb_relay.relay.sqlite_store import open_sqlite_store
from ncb_relay.relay.storage import ENVELOPE_ENTRY

TARGET_SECONDS = 60.0
RELAY_ID = "XP.relay-lyon"
START_TIMEOUT = 60.0


def _say(text: str) -> None:
    print(f"bench.log_audit: {text}", file=sys.stderr, flush=True)


def make_folder(folder: Path) -> Deployment:
    members = [
        Member("XP.interpol-gs", "General Secretariat", "coordinator"),
        Member("KR.ncb-seoul", "NCB Seoul"),
    ]
    return make_deployment(folder, members, now=int(time.time()), relay_id=RELAY_ID)


def fill(deployment: Deployment, entries: int, batch: int) -> int:
    """Append ``entries`` envelope entries, signing one checkpoint per ``batch``; return them."""
    signs = checkpoint_signer(log_origin(RELAY_ID), deployment.relay_key)

    async def create() -> None:  # the schema, as the relay makes it
        async with open_sqlite_store(deployment.config.database, checkpoint_signer=signs):
            pass

    anyio.run(create, backend="trio")
    connection = sqlite3.connect(deployment.config.database, isolation_level=None)
    checkpoints = 0
    try:
        log = SqliteLog(connection, signs)
        for start in range(0, entries, batch):
            connection.execute("BEGIN IMMEDIATE")
            for i in range(start, min(start + batch, entries)):
                log.append(ENVELOPE_ENTRY, primitives.sha256(b"bench envelope %d" % i))
            log.seal()
            connection.execute("COMMIT")
            log.committed()
            checkpoints += 1
            if start and start % 20_000 == 0:
                _say(f"{start} entries in the store")
    finally:
        connection.close()
    return checkpoints


@contextlib.contextmanager
def relay_in_thread(deployment: Deployment) -> Iterator[str]:
    """The deployment's relay node on trio in a thread; its URL."""
    started: queue.Queue[tuple[str, trio.lowlevel.TrioToken, trio.Event] | BaseException] = (
        queue.Queue()
    )

    async def serve() -> None:
        stop = trio.Event()
        try:
            async with running_relay(deployment) as relay:
                started.put((relay.api.url, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
        except BaseException as exc:  # reported to the main thread, which raises it
            started.put(exc)

    worker = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    worker.start()
    answer = started.get(timeout=START_TIMEOUT)
    if isinstance(answer, BaseException):
        raise RuntimeError("the relay did not start") from answer
    url, token, stop = answer
    try:
        yield url
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        worker.join(START_TIMEOUT)


def audit(deployment: Deployment, url: str, sample: int) -> tuple[float, int, dict[str, Any]]:
    argv = ["log", "audit", "--relay", url, "--anchor", str(deployment.anchor_file)]
    argv += ["--json", "--sample", str(sample)]
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = cli_main(argv)
    seconds = time.perf_counter() - started
    return seconds, status, json.loads(out.getvalue())


def run(entries: int, batch: int, sample: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="ncb-bench-log-"))
    try:
        deployment = make_folder(folder)
        _say(f"filling the store with {entries} entries, a checkpoint every {batch}")
        started = time.perf_counter()
        checkpoints = fill(deployment, entries, batch)
        fill_seconds = time.perf_counter() - started
        with relay_in_thread(deployment) as url:
            _say(f"relay at {url}; auditing")
            seconds, status, report = audit(deployment, url, sample)
        return {
            "entries": report["size"],
            "filled": entries,
            "checkpointsSigned": checkpoints,
            "checkpointsChecked": report["checkpointsChecked"],
            "inclusionProofs": report["inclusionProofs"],
            "consistencyProofs": report["consistencyProofs"],
            "ok": report["ok"],
            "exitStatus": status,
            "fillSeconds": round(fill_seconds, 2),
            "auditSeconds": round(seconds, 2),
            "targetSeconds": TARGET_SECONDS,
            "targetMet": bool(report["ok"]) and seconds < TARGET_SECONDS,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_audit", description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000, help="log entries (100,000)")
    parser.add_argument("--batch", type=int, default=64, help="entries a checkpoint (64)")
    parser.add_argument("--sample", type=int, default=64, help="the audit's --sample (64)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.entries, args.batch, args.sample), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
