"""The relay's ASGI application (spec/relay-api.md): ``create_app``.

The application is Starlette on anyio, so it runs under trio and asyncio
servers alike.  It holds no server, no configuration file and no clock of its
own: the runner passes the relay id, a directory provider, an open mailbox
store, a clock and the limits.  Every route comes from :data:`.routes.ENDPOINTS`;
each handler runs inside :func:`_guarded`, which turns every failure into a
problem+json answer (no stack trace, no message), counts it, and times the
request.  Unknown paths and methods are answered the same way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NcbRelayError
from ..identity import Signer, check_principal_id
from ..request_auth import NonceCache, RequestVerifier
from .app_settings import AppSettings
from .context import DirectoryProvider, RelayContext
from .limits import RequestRefused
from .logs import fields
from .mailbox_signals import MailboxSignals
from .metrics import RelayMetrics
from .openapi import openapi_document
from .problems import Problem, problem_response, relay_problem
from .rate_limit import RateLimiter
from .routes import ENDPOINTS, Endpoint
from .storage import MailboxStore

__all__ = ["create_app", "relay_context"]

log = logging.getLogger("ncb_relay.relay.app")


def _log_request(
    request: Request, endpoint: Endpoint, status: int, code: str | None, seconds: float
) -> None:
    """One line per request: the event, who asked (once authenticated), what came of it."""
    event = "refused" if status >= 400 else ("accepted" if endpoint.name == "submit" else "served")
    log.log(
        logging.ERROR if status == 500 else logging.WARNING if status > 500 else logging.INFO,
        event,
        extra=fields(
            endpoint=endpoint.name,
            principal=getattr(request.state, "principal", None),
            message_id=getattr(request.state, "message_id", None),
            status=status,
            code=code,
            duration_ms=round(seconds * 1000, 3),
        ),
    )


def _guarded(endpoint: Endpoint, ctx: RelayContext) -> Callable[[Request], object]:
    async def run(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await endpoint.handler(request, ctx)
        except Problem as problem:
            response = problem_response(problem)
        except NcbRelayError as exc:
            own = relay_problem(exc)
            if own is None:
                log.error("library-error", extra=fields(endpoint=endpoint.name, code=exc.code))
            response = problem_response(own or Problem(500, "internal"))
        except RequestRefused:
            raise  # the request-limits middleware has answered (408, 413) and counts nothing
        except Exception:
            log.exception("server-error", extra=fields(endpoint=endpoint.name))
            response = problem_response(Problem(500, "internal"))
        code: str | None = None
        if response.status_code >= 400:
            code = str(json.loads(bytes(response.body)).get("code", "internal"))
            ctx.metrics.rejections.labels(code, str(response.status_code)).inc()
        elapsed = time.perf_counter() - started
        ctx.metrics.latency.labels(endpoint.name).observe(elapsed)
        _log_request(request, endpoint, response.status_code, code, elapsed)
        return response

    return run


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not-found", 405: "method-not-allowed"}.get(status, "internal")
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return problem_response(Problem(status if code != "internal" else 500, code, headers))


def relay_context(
    *,
    relay_id: str,
    directory: DirectoryProvider,
    store: MailboxStore,
    clock: Callable[[], int],
    settings: AppSettings | None = None,
    nonces: NonceCache | None = None,
    metrics: RelayMetrics | None = None,
    signer: Signer | None = None,
) -> RelayContext:
    """Everything one relay application shares; see :func:`create_app`."""
    settings = settings or AppSettings()
    check_principal_id(relay_id)
    if nonces is None:
        nonces = NonceCache(
            since=clock(),
            max_skew=settings.request_skew,
            max_entries=settings.max_nonces,
            max_per_principal=settings.max_nonces_per_bureau,
        )
    verifier = RequestVerifier(relay=relay_id, directory=directory(), nonces=nonces)
    return RelayContext(
        relay_id=relay_id,
        directory=directory,
        store=store,
        clock=clock,
        settings=settings,
        verifier=verifier,
        signals=MailboxSignals(max_waiters=settings.max_long_polls),
        rates=RateLimiter(per_second=settings.rate_per_second, burst=settings.rate_burst),
        metrics=metrics or RelayMetrics(),
        signer=signer,
        log_reads=RateLimiter(per_second=settings.log_read_rate, burst=settings.log_read_burst),
    )


def create_app(
    *,
    relay_id: str,
    directory: DirectoryProvider,
    store: MailboxStore,
    clock: Callable[[], int],
    settings: AppSettings | None = None,
    nonces: NonceCache | None = None,
    metrics: RelayMetrics | None = None,
    signer: Signer | None = None,
) -> Starlette:
    """The relay's ASGI app for ``relay_id``.

    ``directory`` returns the current directory version each time it is
    called (a :class:`~ncb_relay.VerifiedDirectory` in production; its signed
    bytes are served at ``/v1/directory``).  ``store`` is an open
    :class:`~.storage.MailboxStore`, owned by the caller.  ``clock`` returns
    whole seconds since the epoch.  ``nonces`` is the request nonce memory;
    by default a new one that starts now and refuses requests dated before
    ``now + request_skew`` (AUTH-12; pass ``NonceCache(since=None)`` only for
    a relay that never served before).  ``metrics`` are also exposed on
    ``app.state.metrics`` for :func:`.metrics.metrics_app`.
    """
    ctx = relay_context(
        relay_id=relay_id,
        directory=directory,
        store=store,
        clock=clock,
        settings=settings,
        nonces=nonces,
        metrics=metrics,
        signer=signer,
    )
    routes = [Route(e.path, _guarded(e, ctx), methods=[e.method], name=e.name) for e in ENDPOINTS]
    for route, endpoint in zip(routes, ENDPOINTS, strict=True):
        if not endpoint.public and route.methods:
            route.methods.discard("HEAD")  # a signed HEAD must not lease (and drop) messages
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception, Exception: _http_exception},
    )
    app.router.redirect_slashes = False  # API-1: any other path is 404, never a redirect
    app.state.context = ctx
    app.state.metrics = ctx.metrics
    app.state.openapi = json.dumps(
        openapi_document(ENDPOINTS, relay_id=relay_id), separators=(",", ":")
    ).encode()
    return app
