"""The relay node of the kill -9 test in test_relay_node_kill.py.

Run as ``python relay_node_child.py CONFIG NOW``, it runs the relay node of the
TOML configuration ``CONFIG`` (:func:`ncb_relay.relay.launch.run_relay`) with
its clock fixed at ``NOW`` (epoch seconds), prints ``listening URL`` once the
API accepts connections, and serves until it is killed.
"""

from __future__ import annotations

import sys
from functools import partial

import anyio

from ncb_relay.relay.config import load_config
from ncb_relay.relay.launch import RunningRelay, run_relay


async def main(config_path: str, now: int) -> None:
    config = load_config(config_path)
    async with anyio.create_task_group() as tasks:
        running: RunningRelay = await tasks.start(partial(run_relay, config, clock=lambda: now))
        print("listening", running.api.url, flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), backend="trio")
