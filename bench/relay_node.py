"""The relay node under load (bench/relay.py): ``python -m bench.relay_node FOLDER [PROFILE]``.

It runs :func:`ncb_relay.relay.launch.run_relay` on the deployment in
``FOLDER`` (made by :func:`ncb_relay.demo.deployment.make_deployment`: port 0,
SQLite store with ``synchronous=FULL`` and group commit), prints ``listening
URL`` once the API accepts connections and serves until SIGTERM or SIGINT.

Two bench-only changes, made here by wrapping what ``run_relay`` calls, never
in ``src/``:

- ``POST /bench/bare`` answers 202 at once, without reading the body: the bare
  ceiling of the same server, settings and middleware (``serve`` wraps the
  application in the request-limits middleware, as for every relay route).
- the per-bureau request rate limit (50 requests/s by default, not configurable
  in the relay's file) is lifted, and the quotas are set in the configuration so
  that neither refuses the load: the benchmark measures the work of a submission,
  not the policy that throttles one bureau.

With ``PROFILE``, the node runs under pyinstrument (main thread, wall clock,
from the moment it listens) and the flat profile by own time is written to that
path at shutdown.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from ncb_relay.relay import launch
from ncb_relay.relay.app import create_app as create_relay_app
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.config import RelayConfig, config_from_mapping

BARE_PATH = "/bench/bare"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def with_bare_endpoint(app: App) -> App:
    """``app``, except that ``POST /bench/bare`` answers 202 with an empty body at once."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == BARE_PATH:
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 202, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
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


def _patch_launch() -> None:
    original_app, original_settings = create_relay_app, launch.app_settings

    def create_app(**kwargs: Any) -> Any:
        return with_bare_endpoint(original_app(**kwargs))

    def app_settings(config: RelayConfig) -> AppSettings:
        settings = original_settings(config)
        return dataclasses.replace(settings, rate_per_second=1_000_000, rate_burst=10_000_000)

    # run_relay looks both names up in its module at each call
    launch.__dict__["create_app"] = create_app
    launch.__dict__["app_settings"] = app_settings


async def _serve(config: RelayConfig, profiler: Any = None) -> None:
    async with anyio.create_task_group() as tasks:
        running: launch.RunningRelay = await tasks.start(
            partial(launch.run_relay, config, shutdown_trigger=launch.wait_for_stop_signal)
        )
        if profiler is not None:  # from here on: the node serving, not its imports and start
            profiler.start()
        print("listening", running.api.url, flush=True)


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    profile_path = Path(argv[1]) if len(argv) > 1 else None
    _patch_launch()
    config = bench_config(folder)
    if profile_path is None:
        anyio.run(_serve, config, backend="trio")
        return 0
    from pyinstrument import Profiler  # noqa: PLC0415

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    try:
        anyio.run(_serve, config, profiler, backend="trio")
    finally:
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, flat=True, flat_time="self")
        profile_path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
