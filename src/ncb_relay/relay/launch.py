"""A relay node assembled from its configuration: trust, store, application, server.

Theory of operation.  :func:`run_relay` verifies the directory file against the
configured trust anchors (refusing to start on an expired, forged or
unanchored directory), unlocks the relay's keystore (passphrase from the
environment variable the configuration names) and checks that its signing key
is the one the directory lists for the relay (role ``relay``): that key signs
the log's checkpoints and every acceptance's receipt, and bureaus verify them
with the directory's copy.  It opens the mailbox store, logs the directory
version (LOG-1), builds the application with
:func:`ncb_relay.relay.app.create_app` and serves it with
:func:`ncb_relay.relay.runtime.serve`; in the same task group it serves
the Prometheus metrics (:func:`ncb_relay.relay.metrics.metrics_app`) on the
operator's own listener when ``[metrics] port`` is configured (never on the
bureaus' API), and purges expired messages every ``[purge] interval``
seconds, ``[purge] batch`` per transaction, again at once while a batch comes
back full.  The store is opened around the servers, so it closes only after
they have stopped and every in-flight request has finished: a submission in
flight at shutdown either commits and is acknowledged, or fails without an
acknowledgement.  The directory is read
once, at start; a new directory version takes effect at the next start.
``ncb-relay serve`` runs this under trio until SIGTERM or SIGINT
(:func:`wait_for_stop_signal`), which start a graceful shutdown.

Three keyword arguments let a caller that is not an operator (the benchmark,
bench/relay_node.py) change what runs without patching this module:
``settings`` replaces the application's settings, ``wrap_app`` wraps the
bureaus' application (a route of its own in front of the relay's), and
``server`` replaces :func:`~ncb_relay.relay.runtime.serve` (another ASGI
server; it must apply the request-limits middleware itself).  Nothing in the
relay's configuration file reaches them.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc

from ..anchor import AnchorChain
from ..errors import NcbRelayError, UsageError
from ..identity import Signer
from ..keystore import read_keystore
from ..log_keys import relay_log_key
from ..receipt import log_origin
from ..request_auth import NonceCache
from ..signatures import ANCHOR_KIND, DIRECTORY_KIND
from ..verified_directory import VerifiedDirectory, verify_directory
from .app import create_app
from .app_settings import AppSettings
from .config import Listen, RelayConfig
from .limits import ASGIApp
from .log_signing import checkpoint_signer
from .logs import fields
from .metrics import RelayMetrics, metrics_app
from .runtime import ListeningAddress, serve
from .sqlite_store import open_sqlite_store
from .storage import MailboxStore

__all__ = [
    "RelayServer",
    "RunningRelay",
    "check_relay_key",
    "load_relay_key",
    "load_trusted_directory",
    "purge_expired_messages",
    "purge_once",
    "run_relay",
    "wait_for_stop_signal",
]

log = logging.getLogger("ncb_relay.relay.node")


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


def load_relay_key(config: RelayConfig) -> Signer:
    """The relay's signing key, from its keystore (passphrase from ``passphrase_env``)."""
    passphrase = os.environ.get(config.passphrase_env)
    if not passphrase:
        raise UsageError(f"set {config.passphrase_env} to the passphrase of the relay's keystore")
    with _about(config.keystore):
        keyring = read_keystore(config.keystore, passphrase)
        if keyring.principal != config.relay_id:
            raise UsageError(f"this keystore holds the keys of {keyring.principal}")
    return keyring.signing


def check_relay_key(directory: VerifiedDirectory, relay_id: str, signer: Signer, now: int) -> None:
    """Refuse to start unless ``signer`` is the signing key the directory lists for the relay."""
    with _about(Path("the directory")):
        listed = relay_log_key(directory, relay_id, now).public_key
    if listed != signer.public_key:
        raise UsageError(
            f"the relay's key is not the signing key the directory lists for {relay_id}"
        )


def app_settings(config: RelayConfig) -> AppSettings:
    """The application's settings that the configuration sets; the rest keep the spec's."""
    return AppSettings(
        max_wait=config.limits.long_poll_max_wait,
        max_long_polls=config.limits.max_long_polls_per_bureau,
        lease=config.limits.lease,
        sender_max_messages=config.quota.sender_max_messages,
        sender_max_bytes=config.quota.sender_max_bytes,
        mailbox_max_messages=config.quota.mailbox_max_messages,
        quota_retry_after=config.quota.retry_after,
    )


class RelayServer(Protocol):
    """What serves the relay's applications: :func:`~ncb_relay.relay.runtime.serve`'s shape.

    It serves ``app`` on ``listen`` (``config.listen`` when ``None``) under the
    request limits of ``config.limits``, reports the bound address through
    ``task_status`` and stops gracefully when ``shutdown_trigger`` returns.
    """

    async def __call__(
        self,
        app: ASGIApp,
        config: RelayConfig,
        *,
        task_status: anyio.abc.TaskStatus[ListeningAddress] = ...,
        shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
        listen: Listen | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RunningRelay:
    """Where a started relay listens: the bureaus' API and, if configured, the metrics."""

    api: ListeningAddress
    metrics: ListeningAddress | None = None


async def purge_once(store: MailboxStore, *, now: int, batch: int) -> int:
    """Remove every message expired at ``now``, ``batch`` per transaction; return how many."""
    removed = 0
    while True:
        # shielded: a shutdown waits for the batch in hand (the store closes after it)
        with anyio.CancelScope(shield=True):
            purge = await store.purge_expired(now=now, limit=batch)
        removed += purge.messages
        if purge.messages < batch:
            return removed


async def purge_expired_messages(
    store: MailboxStore, *, clock: Callable[[], int], interval: float, batch: int
) -> None:
    """Every ``interval`` seconds, purge what has expired (API-11), until cancelled.

    A failing store is logged and tried again at the next interval; it never
    stops the relay.
    """
    while True:
        try:
            removed = await purge_once(store, now=clock(), batch=batch)
        except NcbRelayError as exc:
            log.warning("purge-failed", extra=fields(code=exc.code))
        else:
            if removed:
                log.info("purged", extra=fields(messages=removed))
        await anyio.sleep(interval)


async def run_relay(
    config: RelayConfig,
    *,
    clock: Callable[[], int] = _wall_clock,
    task_status: anyio.abc.TaskStatus[RunningRelay] = anyio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    signer: Signer | None = None,
    settings: AppSettings | None = None,
    wrap_app: Callable[[ASGIApp], ASGIApp] | None = None,
    server: RelayServer = serve,
) -> None:
    """Run the relay node of ``config`` until ``shutdown_trigger`` returns (or cancellation).

    ``signer`` is the relay's signing key; by default it is read from the
    configured keystore (:func:`load_relay_key`).  Either way it must be the key
    the directory lists for the relay.

    ``settings`` are the application's settings (by default :func:`app_settings`
    of ``config``); ``wrap_app``, if given, wraps the bureaus' application before
    it is served (the metrics application is never wrapped); ``server`` serves
    both listeners (by default :func:`~ncb_relay.relay.runtime.serve`: anycorn,
    under the request-limits middleware).  The server must run on the event
    loop that runs this function: anycorn under trio or asyncio; the benchmark
    serves uvicorn under asyncio (bench/uvicorn_server.py).

    In one task group: the bureaus' API, the operator's metrics listener when
    ``metrics.port`` is set, and the purge of expired messages.  When the
    trigger returns, the purge is cancelled (a batch in hand finishes), both
    listeners stop gracefully, and the store closes last.
    """
    directory = load_trusted_directory(config, now=clock())
    if signer is None:
        signer = load_relay_key(config)
    check_relay_key(directory, config.relay_id, signer, clock())
    metrics = RelayMetrics()
    metrics_listen = config.metrics.listen(config.listen)
    if settings is None:
        settings = app_settings(config)
    # AUTH-12: a relay on a store it creates now never accepted a request, so it has no
    # restart window; on an existing store it refuses requests dated before now + skew.
    new_store = not config.database.exists()
    signs = checkpoint_signer(log_origin(config.relay_id), signer)
    async with open_sqlite_store(config.database, checkpoint_signer=signs) as store:
        await store.log_directory(directory.hash)  # every version it serves is in its log
        app: ASGIApp = create_app(
            relay_id=config.relay_id,
            directory=lambda: directory,
            store=store,
            clock=clock,
            settings=settings,
            metrics=metrics,
            nonces=NonceCache(
                since=None if new_store else clock(),
                max_skew=settings.request_skew,
                max_entries=settings.max_nonces,
                max_per_principal=settings.max_nonces_per_bureau,
            ),
            signer=signer,
        )
        if wrap_app is not None:
            app = wrap_app(app)
        stopping = anyio.Event()
        async with anyio.create_task_group() as servers:
            api: ListeningAddress = await servers.start(
                partial(server, app, config, shutdown_trigger=stopping.wait)
            )
            operator: ListeningAddress | None = None
            if metrics_listen is not None:
                scrape = metrics_app(metrics, store.queue_depths)
                operator = await servers.start(
                    partial(
                        server,
                        scrape,
                        config,
                        shutdown_trigger=stopping.wait,
                        listen=metrics_listen,
                    )
                )
            async with anyio.create_task_group() as background:
                background.start_soon(
                    partial(
                        purge_expired_messages,
                        store,
                        clock=clock,
                        interval=config.purge.interval,
                        batch=config.purge.batch,
                    )
                )
                log.info(
                    "started",
                    extra=fields(
                        relay=config.relay_id,
                        api=api.url,
                        metrics=operator.url if operator else None,
                    ),
                )
                task_status.started(RunningRelay(api, operator))
                if shutdown_trigger is None:
                    await anyio.sleep_forever()
                else:
                    await shutdown_trigger()
                background.cancel_scope.cancel()
            log.info("stopping", extra=fields(relay=config.relay_id))
            stopping.set()


async def wait_for_stop_signal() -> None:
    """Return at the first SIGTERM or SIGINT (the start of a graceful shutdown)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return
