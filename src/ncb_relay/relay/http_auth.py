"""Authenticating one HTTP request (AUTH-15), cheap checks first (API-3).

The order is: the ``Authorization`` field and every check that needs no body
(steps 1 to 8 of AUTH-15); the declared body size; the media type; the body,
read no further than its limit; the signature over the request as received
and the nonce's record; and last the bureau's rate limit, which is charged
only for authenticated requests.
"""

from __future__ import annotations

from contextlib import aclosing

from starlette.requests import ClientDisconnect, Request

from ..errors import LimitExceeded, NcbRelayError
from ..request_auth import AuthenticatedRequest, authorization_field
from .context import RelayContext
from .problems import Problem, auth_problem
from .rate_limit import RateLimited

__all__ = ["authenticate", "read_body", "request_target"]


def request_target(request: Request) -> str:
    """The request target exactly as sent: raw path, then ``?`` and the query if any (AUTH-3)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    query: bytes = request.scope.get("query_string", b"")
    target = bytes(raw) + (b"?" + query if query else b"")
    return target.decode("latin-1")


def _declared_length(request: Request) -> int | None:
    values = [v for k, v in request.scope["headers"] if k.lower() == b"content-length"]
    if not values:
        return None
    if len(values) > 1 or not values[0].isdigit() or len(values[0]) > 18:
        raise Problem(400, "malformed")
    return int(values[0])


def _check_declared_length(request: Request, limit: int) -> None:
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise Problem(413, "limit-exceeded")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is declared or found to exceed ``limit`` bytes.

    A client that goes away before its body ends is answered ``400 malformed``
    (nobody reads it): an ordinary refusal, not a fault of the relay.  The
    request-limits middleware's :class:`~.limits.RequestRefused` passes through.
    """
    _check_declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with aclosing(request.stream()) as stream:  # closed at once when refused early
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise Problem(413, "limit-exceeded")
                chunks.append(chunk)
    except ClientDisconnect as exc:
        raise Problem(400, "malformed") from exc
    return b"".join(chunks)


def _check_media_type(request: Request, media_type: str) -> None:
    value = request.headers.get("content-type", "")
    if value.split(";", 1)[0].strip().lower() != media_type:
        raise Problem(415, "malformed")


async def authenticate(
    request: Request, ctx: RelayContext, *, max_body: int, media_type: str | None = None
) -> tuple[AuthenticatedRequest, bytes]:
    """Authenticate ``request`` for ``ctx``'s relay; return who asks and the body it sent."""
    verifier = ctx.verifier
    ctx.current_directory()
    try:
        authorization = authorization_field(request.scope["headers"])
        credentials = verifier.check_credentials(authorization=authorization, now=ctx.clock())
    except NcbRelayError as exc:
        raise auth_problem(exc) from exc
    _check_declared_length(request, max_body)  # API-3: the declared length before the media type
    if media_type is not None:
        _check_media_type(request, media_type)
    body = await read_body(request, max_body)
    now = ctx.clock()
    try:
        authenticated = verifier.verify(
            method=request.method,
            target=request_target(request),
            body=body,
            authorization=authorization,
            now=now,
        )
    except LimitExceeded as exc:  # steps 1 to 8 passed before the body: the nonce memory is full
        if verifier.nonces.principal_full(credentials.principal):  # this bureau's share (AUTH-17)
            raise Problem(429, "limit-exceeded", {"Retry-After": "1"}) from exc
        raise auth_problem(exc, recording=True) from exc
    except NcbRelayError as exc:
        raise auth_problem(exc) from exc
    request.state.principal = authenticated.principal  # for the request's log line
    try:
        ctx.rates.charge(authenticated.principal, now)
    except RateLimited as exc:
        raise Problem(429, "limit-exceeded", {"Retry-After": str(exc.retry_after)}) from exc
    return authenticated, body
