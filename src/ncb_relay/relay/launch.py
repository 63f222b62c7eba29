"""A relay node assembled from its configuration: trust, store, application, server.

Theory of operation.  :func:`run_relay` verifies the directory file against the
configured trust anchors (refusing to start on an expired, forged or
unanchored directory), opens the mailbox store, builds the application with
:func:`ncb_relay.relay.app.create_app` and serves it with
:func:`ncb_relay.relay.runtime.serve`.  The store is opened around the
server, so it closes only after the server has stopped and every in-flight
request has finished: a submission in flight at shutdown either commits and
is acknowledged, or fails without an acknowledgement.  The directory is read
once, at start; a new directory version takes effect at the next start.
``ncb-relay serve`` runs this under trio until SIGTERM or SIGINT
(:func:`wait_for_stop_signal`), which start a graceful shutdown.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import anyio.abc

from ..anchor import AnchorChain
from ..errors import NcbRelayError, UsageError
from ..signatures import ANCHOR_KIND, DIRECTORY_KIND
from ..verified_directory import VerifiedDirectory, verify_directory
from .app import create_app
from .app_settings import AppSettings
from .config import RelayConfig
from .runtime import ListeningAddress, serve
from .sqlite_store import open_sqlite_store

__all__ = ["load_trusted_directory", "run_relay", "wait_for_stop_signal"]


def _wall_clock() -> int:
    return int(time.time())


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > max_bytes:
        raise UsageError(f"{path} is larger than {max_bytes} bytes")
    return data


@contextmanager
def _about(path: Path) -> Iterator[None]:
    try:
        yield
    except NcbRelayError as exc:
        exc.add_note(str(path))
        raise


def load_trusted_directory(config: RelayConfig, *, now: int) -> VerifiedDirectory:
    """The configured directory file, verified against the configured trust anchors.

    The anchors are given oldest first, each verified against the one before.
    A failure carries the file at fault as a note.
    """
    first, *later = config.anchors
    with _about(first):
        chain = AnchorChain.trust(_read(first, ANCHOR_KIND.outer_limits.max_bytes))
    for path in later:
        with _about(path):
            chain = chain.extend(_read(path, ANCHOR_KIND.outer_limits.max_bytes))
    with _about(config.directory):
        data = _read(config.directory, DIRECTORY_KIND.outer_limits.max_bytes)
        return verify_directory(data, anchors=chain, now=now)


def app_settings(config: RelayConfig) -> AppSettings:
    """The application's settings that the configuration sets; the rest keep the spec's."""
    return AppSettings(
        max_wait=config.limits.long_poll_max_wait,
        max_long_polls=config.limits.max_long_polls_per_bureau,
    )


async def run_relay(
    config: RelayConfig,
    *,
    clock: Callable[[], int] = _wall_clock,
    task_status: anyio.abc.TaskStatus[ListeningAddress] = anyio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the relay node of ``config`` until ``shutdown_trigger`` returns (or cancellation)."""
    directory = load_trusted_directory(config, now=clock())
    async with open_sqlite_store(config.database) as store:
        app = create_app(
            relay_id=config.relay_id,
            directory=lambda: directory,
            store=store,
            clock=clock,
            settings=app_settings(config),
        )
        await serve(app, config, task_status=task_status, shutdown_trigger=shutdown_trigger)


async def wait_for_stop_signal() -> None:
    """Return at the first SIGTERM or SIGINT (the start of a graceful shutdown)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return
