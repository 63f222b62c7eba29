"""The relay served by uvicorn (httptools on uvloop), as a ``run_relay`` server.

Issue #9 asks for the relay application "both on the trio server and on
uvicorn with uvloop".  The application is built with anyio, so it runs under
asyncio as it is: :func:`serve_uvicorn` has the shape of
:func:`ncb_relay.relay.runtime.serve` and is passed to
:func:`~ncb_relay.relay.launch.run_relay` as its ``server``, which then runs
under ``anyio.run(..., backend="asyncio", backend_options={"use_uvloop":
True})`` (bench/relay_node.py ``--server uvicorn``).  The store, its group
commit, the log and the application are the relay's own; only the HTTP server
and the event loop change.

The request-limits middleware that :func:`~ncb_relay.relay.runtime.serve`
puts in front of the application is put there here too, so both servers run
the same application code.  uvicorn's signal handling is not used (the relay
node waits for SIGTERM itself): the server is started with its public
``startup`` and stopped with ``shutdown`` (connections closed gracefully
within ``listen.shutdown_timeout``).  A benchmark variant, never a relay to
run: uvicorn is a bench-only dependency.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import uvicorn

from ncb_relay.relay.config import Listen, RelayConfig
from ncb_relay.relay.limits import ASGIApp, RequestLimitsMiddleware
from ncb_relay.relay.runtime import ListeningAddress

__all__ = ["serve_uvicorn"]


async def serve_uvicorn(
    app: ASGIApp,
    config: RelayConfig,
    *,
    task_status: anyio.abc.TaskStatus[ListeningAddress] = anyio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    listen: Listen | None = None,
) -> None:
    """Serve ``app`` with uvicorn (httptools) until ``shutdown_trigger`` returns.

    Runs on the current asyncio loop (uvloop when the caller chose it).
    """
    listen = listen or config.listen
    guarded = RequestLimitsMiddleware(app, config.limits.request_limits())
    server = uvicorn.Server(
        uvicorn.Config(
            guarded,
            host=listen.host,
            port=listen.port,
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level=logging.WARNING,
            timeout_keep_alive=max(1, round(listen.keep_alive_timeout)),
            timeout_graceful_shutdown=max(1, round(listen.shutdown_timeout)),
            h11_max_incomplete_event_size=config.limits.max_header_bytes,
        )
    )
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    await server.startup()
    try:
        (bound, *_) = [s for listener in server.servers for s in listener.sockets]
        host, port = bound.getsockname()[:2]
        task_status.started(ListeningAddress(host, port))
        if shutdown_trigger is None:
            await anyio.sleep_forever()
        else:
            await shutdown_trigger()
    finally:
        with anyio.CancelScope(shield=True):
            await server.shutdown()
