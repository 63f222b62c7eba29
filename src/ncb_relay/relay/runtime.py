"""Running the relay: an ASGI app behind :class:`RequestLimitsMiddleware`, served by anycorn.

Theory of operation.  :func:`serve` is the one entry point (the hypercorn
shape): it wraps the application in
:class:`~ncb_relay.relay.limits.RequestLimitsMiddleware`, builds anycorn's
configuration from a :class:`~ncb_relay.relay.config.RelayConfig` and serves
until ``shutdown_trigger`` returns or the surrounding scope is cancelled.
Started with ``await task_group.start(serve, app, config)`` it reports the
address it actually bound (so a test can bind port 0 and learn the port).

anycorn, the anyio fork of Hypercorn, was chosen over Hypercorn's trio worker
because one crafted request (an HTTP/2 POST answered before its body was read,
or a WebSocket upgrade followed by one byte) stops Hypercorn's whole trio
worker; anycorn keeps serving (README, "Choosing the server";
``tests/test_relay_runtime.py`` keeps the regression tests).  Neither server
enforces a body limit, rejects an oversized header block that arrives in one
read, or refuses ``Content-Length`` with ``Transfer-Encoding``: the middleware
does, in the application.

Shutdown is graceful: once ``shutdown_trigger`` returns, the listener closes
(no new connection is accepted) and requests in flight have
``listen.shutdown_timeout`` seconds to finish before they are cancelled.
anycorn's access log is off (a request line names mailboxes; the relay
application logs what it must) and its error log goes to the
``ncb_relay.relay.server`` logger, so the relay's own logging configuration
decides its format.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anycorn import Config as ServerConfig
from anycorn import serve as anycorn_serve

from ..errors import UsageError
from .config import Listen, RelayConfig
from .limits import ASGIApp, RequestLimitsMiddleware

__all__ = ["ListeningAddress", "serve", "server_config"]


@dataclass(frozen=True, slots=True)
class ListeningAddress:
    """Where a running relay accepts connections (the port is the bound one, never 0)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def server_config(config: RelayConfig, listen: Listen | None = None) -> ServerConfig:
    """anycorn's configuration for ``config`` (plain HTTP; TLS is terminated in front).

    ``listen`` replaces ``config.listen`` (the operator's metrics listener).
    """
    server = ServerConfig()
    listen = listen or config.listen
    host = listen.host
    server.bind = [f"[{host}]:{listen.port}" if ":" in host else f"{host}:{listen.port}"]
    server.graceful_timeout = listen.shutdown_timeout
    server.keep_alive_timeout = listen.keep_alive_timeout
    server.accesslog = None
    server.errorlog = logging.getLogger("ncb_relay.relay.server")  # the relay's log handlers
    # a header block that trickles in is bounded here; one that arrives in a single
    # read is bounded by the middleware (h11 does not check a complete one)
    server.h11_max_incomplete_size = config.limits.max_header_bytes
    server.h2_max_header_list_size = config.limits.max_header_bytes
    server.websocket_max_message_size = 1
    return server


def _address(bind: str) -> ListeningAddress:
    parts = urlsplit(bind)
    if parts.hostname is None or parts.port is None:
        raise UsageError(f"cannot tell the address from {bind!r}")
    return ListeningAddress(parts.hostname, parts.port)


async def serve(
    app: ASGIApp,
    config: RelayConfig,
    *,
    task_status: anyio.abc.TaskStatus[ListeningAddress] = anyio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    listen: Listen | None = None,
) -> None:
    """Serve ``app`` under the relay's request limits until ``shutdown_trigger`` returns.

    Reports the bound :class:`ListeningAddress` through ``task_status``.  Without
    a ``shutdown_trigger`` the relay runs until the caller's scope is cancelled
    (under trio, Ctrl-C cancels it).  ``listen`` replaces ``config.listen``.
    """
    guarded = RequestLimitsMiddleware(app, config.limits.request_limits())
    server = server_config(config, listen)
    async with anyio.create_task_group() as tasks:
        binds: list[str] = await tasks.start(
            lambda task_status: anycorn_serve(
                cast("Any", guarded),  # anycorn's app type lists every ASGI event
                server,
                shutdown_trigger=shutdown_trigger,
                task_status=task_status,
            )
        )
        task_status.started(_address(binds[0]))
