"""Request limits enforced by the relay itself, in front of the application (pure ASGI).

Theory of operation.  The HTTP server parses bytes into an ASGI scope and a
stream of ``http.request`` messages, and it enforces too little on its own:
h11 accepts a whole 60 KB header block that arrives in one read, frames a
request that carries both ``Content-Length`` and ``Transfer-Encoding`` by the
latter and keeps the connection, and neither Hypercorn nor anycorn bounds an
ASGI body.  :class:`RequestLimitsMiddleware` therefore checks, before the
application sees a request:

- the header block: at most ``max_header_count`` fields and ``max_header_bytes``
  bytes (each field counted as ``name: value`` plus CRLF) -> 431;
- framing: both ``Content-Length`` and ``Transfer-Encoding``, or a
  ``Content-Length`` that is repeated or not a decimal number -> 400, and the
  connection is closed (it cannot be trusted to be in sync any more);
- a declared ``Content-Length`` above ``max_body_bytes`` -> 413, answered
  without reading a byte of the body, when the application first asks for the
  body: an application that refuses the request before it reads the body
  (the relay authenticates first, API-3) gives its own answer.

Then it wraps ``receive``: the body may never pass ``max_body_bytes`` (413) and
must have arrived in full within ``body_deadline`` seconds of the request's
start (408).  When a limit trips inside ``receive``, the middleware sends the
problem response itself (if the application has not started one) and raises
:class:`RequestRefused` into the application; whatever the application then
sends is dropped, and the exception is swallowed here, so a Starlette error
handler that turns it into a 500 cannot override the answer.

Responses to HTTP/1 requests that were refused, and any answer the
application starts before it has read the whole body, carry ``Connection:
close`` so that no unread body (or smuggled request) is ever parsed as the
next request and the client knows not to reuse the connection;
HTTP/2 forbids that header and needs none (the stream is simply reset).
WebSocket scopes are refused (the relay speaks plain HTTP only), lifespan
passes through, and any other scope type is an error, as the ASGI
specification asks.  The middleware is written against anyio, so it runs under
trio and asyncio alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio

from ..errors import LimitExceeded, MalformedInput, ProtocolError, UsageError
from .problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_PREFIX, TITLES

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "RequestLimits",
    "RequestLimitsMiddleware",
    "RequestRefused",
    "Scope",
    "Send",
    "problem_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits on one request; see the module docstring for how each is answered."""

    max_body_bytes: int = 8 * 1024 * 1024  # the envelope limit's default (LIM-1)
    body_deadline: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_header_bytes", "max_header_count"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise UsageError(f"{name} must be a positive int")
        deadline = self.body_deadline
        if (
            isinstance(deadline, bool)
            or not isinstance(deadline, int | float)
            or not math.isfinite(deadline)
            or deadline <= 0
        ):
            raise UsageError("body_deadline must be a positive number of seconds")


class RequestRefused(Exception):
    """Raised into the application from ``receive`` once the request was refused.

    The middleware has already answered; the application should stop.  ``error``
    is the protocol error that was sent to the client.
    """

    def __init__(self, status: int, error: ProtocolError) -> None:
        super().__init__(f"{status} {error.code}: {error.message}")
        self.status = status
        self.error = error


def problem_response(status: int, error: ProtocolError, *, close: bool) -> tuple[Message, Message]:
    """The two ASGI messages of the ``application/problem+json`` answer to ``error`` (API-18).

    The body has the four members of API-18 and nothing taken from the exception.
    """
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_PREFIX + error.code,
            "title": TITLES[error.code],
            "status": status,
            "code": error.code,
        },
        separators=(",", ":"),
    ).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def _declared_length(scope: Scope) -> int | None:
    """The ``Content-Length`` of a request that passed :func:`_check_head`, if any."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value.strip())
    return None


def _check_head(scope: Scope, limits: RequestLimits) -> tuple[int, ProtocolError] | None:
    """The refusal a request's header block earns, or None (a declared size is checked later)."""
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
    if len(headers) > limits.max_header_count:
        return 431, LimitExceeded(f"more than {limits.max_header_count} header fields")
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if size > limits.max_header_bytes:
        return 431, LimitExceeded(f"header fields larger than {limits.max_header_bytes} bytes")
    lengths = [value for name, value in headers if name.lower() == b"content-length"]
    if any(name.lower() == b"transfer-encoding" for name, _ in headers) and lengths:
        return 400, MalformedInput("both Content-Length and Transfer-Encoding")
    if len(lengths) > 1:
        return 400, MalformedInput("Content-Length given more than once")
    if lengths:
        text = lengths[0].strip()
        if not text.isdigit() or len(text) > 18:
            return 400, MalformedInput("Content-Length is not a decimal number")
    return None


class _Exchange:
    """One HTTP request through the middleware: its bounded receive and guarded send."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, limits: RequestLimits) -> None:
        self._receive = receive
        self._send = send
        self._limits = limits
        self._http1 = str(scope.get("http_version", "1.1")).startswith("1")
        self._deadline = anyio.current_time() + limits.body_deadline
        self._declared = _declared_length(scope)
        headers = scope.get("headers", ())
        chunked = any(name.lower() == b"transfer-encoding" for name, _ in headers)
        self._has_body = chunked or bool(self._declared)
        self._received = 0
        self._body_done = False
        self.started = False
        self.refused: RequestRefused | None = None

    async def refuse(self, status: int, error: ProtocolError) -> RequestRefused:
        refusal = RequestRefused(status, error)
        self.refused = refusal
        if not self.started:
            self.started = True
            for message in problem_response(status, error, close=self._http1):
                await self._send(message)
        return refusal

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused
        if self._body_done:  # only a disconnect can follow; it is not bounded by the deadline
            return await self._receive()
        if self._declared is not None and self._declared > self._limits.max_body_bytes:
            limit = self._limits.max_body_bytes
            raise await self.refuse(413, LimitExceeded(f"body larger than {limit} bytes"))
        message: Message | None = None
        with anyio.move_on_after(max(0.0, self._deadline - anyio.current_time())):
            message = await self._receive()
        if message is None:
            deadline = self._limits.body_deadline
            raise await self.refuse(408, LimitExceeded(f"body not received within {deadline} s"))
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limits.max_body_bytes:
                limit = self._limits.max_body_bytes
                raise await self.refuse(413, LimitExceeded(f"body larger than {limit} bytes"))
            self._body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused is not None:
            return  # the refusal was the answer
        if message["type"] == "http.response.start":
            self.started = True
            if self._http1 and self._has_body and not self._body_done:
                # answered before its body was read (a refusal): the server will close the
                # connection rather than parse the rest, so the client must not reuse it
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await self._send(message)


class RequestLimitsMiddleware:
    """Pure ASGI middleware that enforces :class:`RequestLimits` before ``app`` sees a byte."""

    def __init__(self, app: ASGIApp, limits: RequestLimits | None = None) -> None:
        self.app = app
        self.limits = RequestLimits() if limits is None else limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if kind != "http":
            raise UsageError(f"unsupported ASGI scope type {kind!r}")
        exchange = _Exchange(scope, receive, send, self.limits)
        verdict = _check_head(scope, self.limits)
        if verdict is not None:
            await exchange.refuse(*verdict)
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except RequestRefused as exc:
            if exc is not exchange.refused:
                raise
        except Exception:
            if exchange.refused is None:
                raise
            # the application failed after the refusal was sent (e.g. an error handler
            # wrapped RequestRefused); the client already has its answer
