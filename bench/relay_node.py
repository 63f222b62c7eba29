"""The relay node under load (bench/relay.py).

``python -m bench.relay_node FOLDER [PROFILE] [--no-log] [--server uvicorn]``
runs :func:`ncb_relay.relay.launch.run_relay` on the deployment in ``FOLDER``
(made by :func:`ncb_relay.demo.deployment.make_deployment`: port 0, SQLite
store with ``synchronous=FULL`` and group commit), prints ``listening URL``
once the API accepts connections and serves until SIGTERM or SIGINT.

The server is anycorn on trio (the relay's own, by default) or, with
``--server uvicorn``, uvicorn with httptools on uvloop (bench/uvicorn_server.py,
passed as ``run_relay``'s ``server``; the whole node then runs under asyncio).

Two bench-only changes, made through ``run_relay``'s ``wrap_app`` and
``settings`` arguments, never in ``src/`` (and a third on request):

- ``POST /bench/bare`` reads the body and answers 202, without the app: the bare
  ceiling of the same server, settings and middleware (``serve`` wraps the
  application in the request-limits middleware, as for every relay route).
  ``GET /bench/writer`` answers the time the store's writer thread has spent
  in group-commit transactions so far (:class:`WriterClock`).
- the per-bureau request rate limit (50 requests/s by default, not configurable
  in the relay's file) is lifted, and the quotas are set in the configuration so
  that neither refuses the load: the benchmark measures the work of a submission,
  not the policy that throttles one bureau.
- with ``--no-log``, the store's Merkle log is switched off: ``SqliteLog`` in
  :mod:`ncb_relay.relay.sqlite_store` is replaced by :class:`UnloggedLog`,
  whose ``append`` writes nothing (it only counts, so a message still gets an
  index) and whose ``seal`` returns ``None``: no entry, node or checkpoint is
  stored, no checkpoint is signed, no inclusion proof is read and no receipt is
  signed (the 202 carries ``logIndex`` alone).  This is the baseline of the
  log's cost (issue #7: at most 10% of the submit rate), never a relay to run.

The database is the configuration's (``relay.db`` in ``FOLDER``) unless
``NCB_RELAY_DATABASE`` names another, as for any relay.  With ``PROFILE``, the
node runs under pyinstrument (main thread, wall clock, from the moment it
listens) and the flat profile by own time is written to that path at shutdown;
the store's writer thread runs under cProfile meanwhile, written beside it
(``.writer.txt``).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from ncb_relay.relay import launch, sqlite_store
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.config import RelayConfig, config_from_mapping
from ncb_relay.relay.group_commit import Job
from ncb_relay.relay.runtime import serve
from ncb_relay.relay.sqlite_log import CheckpointSigner, SqliteLog

BARE_PATH = "/bench/bare"
WRITER_PATH = "/bench/writer"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class WriterClock:
    """The store's writer thread, timed: every group-commit transaction it has run so far.

    ``execute_batch`` (one transaction: the jobs, the log's checkpoint and
    proofs, the commit) is wrapped to add its wall time and the writer
    thread's CPU time; with ``profiler`` set, the transaction also runs under
    it (cProfile, which profiles the calling thread only: the writer's work,
    invisible to the main thread's pyinstrument).
    """

    def __init__(self) -> None:
        self.batches = self.jobs = self.cpu_ns = self.wall_ns = 0
        self.profiler: cProfile.Profile | None = None

    def figures(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "jobs": self.jobs,
            "cpu_ns": self.cpu_ns,
            "wall_ns": self.wall_ns,
        }

    def install(self) -> None:
        original = sqlite_store.execute_batch

        def execute_batch(
            connection: sqlite3.Connection, log: SqliteLog, batch: Sequence[Job]
        ) -> None:
            wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
            profiler = self.profiler
            if profiler is not None:
                profiler.enable()
            try:
                original(connection, log, batch)
            finally:
                if profiler is not None:
                    profiler.disable()
                self.cpu_ns += time.thread_time_ns() - cpu
                self.wall_ns += time.perf_counter_ns() - wall
                self.batches += 1
                self.jobs += len(batch)

        # open_sqlite_store looks it up in its module when it makes the group committer
        sqlite_store.__dict__["execute_batch"] = execute_batch

    def profile_text(self, lines: int = 14) -> str:
        """The writer's profile: functions by own time, then the log's parts by total time."""
        if self.profiler is None:
            return ""
        out = io.StringIO()
        stats = pstats.Stats(self.profiler, stream=out)
        stats.sort_stats("tottime").print_stats(lines)
        stats.sort_stats("cumulative").print_stats(r"sqlite_log|sqlite_store|log_signing", lines)
        return out.getvalue()


WRITER = WriterClock()


def with_bare_endpoint(app: App) -> App:
    """``app``, except for the bench's own routes, answered at once without the app.

    ``POST /bench/bare`` reads the body, drops it and answers 202 with an empty body;
    ``GET /bench/writer`` answers the writer thread's figures so far (JSON,
    :class:`WriterClock`).
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == BARE_PATH:
            # read (and drop) the body first: the request-limits middleware closes a
            # connection whose answer starts before its body was read (Connection: close)
            while (await receive()).get("more_body", False):
                pass
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 202, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http" and scope["path"] == WRITER_PATH:
            body = json.dumps(WRITER.figures()).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def bench_config(folder: Path) -> RelayConfig:
    """The deployment's relay configuration, with quotas that never refuse the load."""
    return config_from_mapping(
        {
            "relay_id": "XP.relay-lyon",
            "database": "relay.db",
            "keystore": "relay.keystore",
            "directory": "directory.signed",
            "anchors": ["anchor.signed"],
            "listen": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": 5},
            "quota": {
                "sender_max_messages": 10**9,
                "sender_max_bytes": 2**50,
                "mailbox_max_messages": 0,
            },
            "log": {"level": "warning"},
        },
        base=folder,
    )


def bench_settings(config: RelayConfig) -> AppSettings:
    """The relay's settings for ``config``, without the per-bureau rate limit."""
    settings = launch.app_settings(config)
    return dataclasses.replace(settings, rate_per_second=1_000_000, rate_burst=10_000_000)


class UnloggedLog(SqliteLog):
    """Bench only: the store's log switched off (see the module docstring)."""

    def __init__(self, connection: sqlite3.Connection, signer: CheckpointSigner | None) -> None:
        super().__init__(connection, None)  # a fresh store: nothing to replay, nothing to sign
        self._appended = 0

    def append(self, kind: int, entry: bytes) -> int:
        """Count the entry; store nothing."""
        index = self._appended
        self._appended += 1
        return index

    def seal(self) -> tuple[int, bytes] | None:
        """Sign nothing: the batch's acceptances get no checkpoint, proof or receipt."""
        return None


def switch_off_log() -> None:
    """Make the relay's store use :class:`UnloggedLog` (looked up when the store opens)."""
    sqlite_store.__dict__["SqliteLog"] = UnloggedLog


SERVERS = ("anycorn", "uvicorn")


def _server(name: str) -> launch.RelayServer:
    if name == "uvicorn":
        from .uvicorn_server import serve_uvicorn  # noqa: PLC0415 - a bench-only dependency

        return serve_uvicorn
    return serve


async def _serve(config: RelayConfig, server: str, profiler: Any = None) -> None:
    async with anyio.create_task_group() as tasks:
        running: launch.RunningRelay = await tasks.start(
            partial(
                launch.run_relay,
                config,
                shutdown_trigger=launch.wait_for_stop_signal,
                settings=bench_settings(config),
                wrap_app=with_bare_endpoint,
                server=_server(server),
            )
        )
        if profiler is not None:  # from here on: the node serving, not its imports and start
            WRITER.profiler = cProfile.Profile()
            profiler.start()
        print("listening", running.api.url, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_node")
    parser.add_argument("folder", type=Path, help="the deployment's folder")
    parser.add_argument("profile", type=Path, nargs="?", help="write a profile here")
    parser.add_argument("--no-log", action="store_true", help="switch the store's log off")
    parser.add_argument(
        "--server", choices=SERVERS, default="anycorn", help="anycorn on trio (default) or uvicorn"
    )
    return parser


def _run(config: RelayConfig, server: str, profiler: Any = None) -> None:
    if server == "uvicorn":
        options = {"use_uvloop": True}
        anyio.run(_serve, config, server, profiler, backend="asyncio", backend_options=options)
    else:
        anyio.run(_serve, config, server, profiler, backend="trio")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    profile_path: Path | None = args.profile
    WRITER.install()
    if args.no_log:
        switch_off_log()
    config = bench_config(args.folder)
    if profile_path is None:
        _run(config, args.server)
        return 0
    from pyinstrument import Profiler  # noqa: PLC0415

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    try:
        _run(config, args.server, profiler)
    finally:
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, flat=True, flat_time="self")
        profile_path.write_text(text)
        profile_path.with_suffix(".writer.txt").write_text(WRITER.profile_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
