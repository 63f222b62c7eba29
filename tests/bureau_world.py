"""Bureaus (ncb_relay.bureau) on a real relay node on a loopback port, under trio or asyncio.

:func:`relay_node` starts :func:`ncb_relay.relay.launch.run_relay` on the
``directory_world`` genesis directory in an anyio task group, with an injected
clock moved past the restart window of AUTH-12; :func:`bureau` connects one
principal of that directory with its journal in ``tmp_path``.  Polls are short
and retries fast; nothing here measures time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from directory_world import CHAIN, COORDINATOR
from fixtures import seeded_rng
from ncb_relay.bureau import Bureau
from ncb_relay.client import RetryPolicy
from ncb_relay.relay.launch import run_relay
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW
from relay_node_world import GUARD, RELAY, Clock, bureaus, node_config

IDS = bureaus()
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
GS = COORDINATOR


@asynccontextmanager
async def relay_node(tmp_path: Path) -> AsyncIterator[tuple[str, Clock]]:
    """A relay node on 127.0.0.1 (port 0) with an injected clock, stopped gracefully."""
    clock, stop = Clock(), anyio.Event()
    (tmp_path / "relay").mkdir(exist_ok=True)
    with anyio.fail_after(GUARD * 6):
        async with anyio.create_task_group() as tg:
            running = await tg.start(
                partial(
                    run_relay,
                    node_config(tmp_path / "relay"),
                    clock=clock,
                    shutdown_trigger=stop.wait,
                )
            )
            clock.now += DEFAULT_REQUEST_SKEW  # past the restart window of AUTH-12
            try:
                yield running.api.url, clock
            finally:
                stop.set()


def bureau(url: str, clock: Clock, who: str, tmp_path: Path, **options: Any) -> Any:
    """``Bureau.connect`` for ``who``, with its journal at ``tmp_path / who.db``."""
    return Bureau.connect(
        IDS[who],
        relay_url=url,
        relay_id=RELAY,
        store=tmp_path / f"{who}.db",
        coordinator=GS,
        anchors=CHAIN,
        clock=clock,
        rng=seeded_rng(f"bureau {who} {tmp_path.name}"[:60].encode()),
        retry=FAST,
        poll_wait=1,
        retry_interval=0.2,
        **options,
    )
