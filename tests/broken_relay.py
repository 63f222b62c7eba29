"""A relay with one seeded bug, to show that the relay black-box tests catch it.

Run as ``python tests/broken_relay.py --bug NAME --config FILE``: the
reference relay node (:func:`ncb_relay.relay.launch.run_relay`) on the
configuration ``FILE``, its bureaus' application wrapped in an ASGI layer that
breaks one requirement of spec/relay-api.md, printing ``relay ID serving on
URL`` once it listens (as ``ncb-relay serve`` does), until SIGTERM.  The
keystore's passphrase comes from ``NCB_RELAY_PASSPHRASE``.

Each bug changes what goes over the wire the way a faulty implementation
would, and names the requirement it breaks: tests/test_conformance_relay.py
runs the relay tests against each and expects that requirement to fail.
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from ncb_relay.relay.config import load_config
from ncb_relay.relay.launch import RunningRelay, run_relay, wait_for_stop_signal
from ncb_relay.relay.limits import ASGIApp

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Headers = list[tuple[bytes, bytes]]
# (status, headers, body) -> the same, changed
Edit = Callable[[int, Headers, bytes], tuple[int, Headers, bytes]]


def _route(scope: Scope) -> tuple[str, str]:
    return str(scope.get("method", "")), str(scope.get("path", ""))


def rewrite_response(app: ASGIApp, applies: Callable[[Scope], bool], edit: Edit) -> ASGIApp:
    """Buffer the answer to every request ``applies`` to, and send ``edit`` of it instead."""

    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not applies(scope):
            await app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    status, headers, body = edit(
                        start["status"], list(start.get("headers", [])), b"".join(chunks)
                    )
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    answer = {"type": "http.response.start", "status": status, "headers": headers}
                    await send(answer)
                    await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await app(scope, receive, capture)

    return wrapped


def _header(headers: Headers, name: bytes) -> bytes | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _json_edit(change: Callable[[Any], None]) -> Edit:
    def edit(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        media = (_header(headers, b"content-type") or b"").split(b";")[0]
        if not media.endswith(b"json"):
            return status, headers, body
        value = json.loads(body)
        change(value)
        return status, headers, json.dumps(value).encode()

    return edit


def _strip(name: bytes, *, status: int | None = None) -> Edit:
    def edit(code: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if status is None or code == status:
            headers = [(k, v) for k, v in headers if k.lower() != name]
        return code, headers, body

    return edit


def _redirect_slash(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            location = path.rstrip("/").encode()
            await send(
                {"type": "http.response.start", "status": 308, "headers": [(b"location", location)]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return wrapped


def _any_media_type(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _route(scope) == ("POST", "/v1/messages"):
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/octet-stream")]}
        await app(scope, receive, send)

    return wrapped


def _ack_does_nothing(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _route(scope) == ("POST", "/v1/mailbox/ack"):
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return wrapped


def _next_leaf(app: ASGIApp) -> ASGIApp:
    """The inclusion proof of the leaf after the one asked for."""

    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _route(scope) == ("GET", "/v1/log/inclusion"):
            query = dict(
                part.split("=", 1)
                for part in scope.get("query_string", b"").decode().split("&")
                if "=" in part
            )
            index, size = query.get("index", ""), query.get("size", "")
            if index.isdigit() and size.isdigit() and int(index) + 1 < int(size):
                query["index"] = str(int(index) + 1)
                rewritten = "&".join(f"{k}={v}" for k, v in query.items()).encode()
                scope = {**scope, "query_string": rewritten}
        await app(scope, receive, send)

    return wrapped


def _flip_receipt(value: Any) -> None:
    if isinstance(value, dict) and isinstance(value.get("receipt"), str):
        text = value["receipt"]
        raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        raw[-1] ^= 0x01  # the last byte of the relay's signature
        value["receipt"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def _add_detail(value: Any) -> None:
    if isinstance(value, dict) and "code" in value:
        value["detail"] = "Traceback (most recent call last): sqlite3.OperationalError"


def _reverse_checkpoints(value: Any) -> None:
    if isinstance(value, dict) and isinstance(value.get("checkpoints"), list):
        value["checkpoints"].reverse()


def _as_503(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    if status == 429:
        value = json.loads(body)
        value["status"] = 503
        return 503, headers, json.dumps(value).encode()
    return status, headers, body


def _other_etag(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    headers = [(k, v) for k, v in headers if k.lower() != b"etag"]
    return status, [*headers, (b"etag", b'"' + b"0" * 64 + b'"')], body


def _always(scope: Scope) -> bool:
    return True


def _on(method: str, path: str) -> Callable[[Scope], bool]:
    return lambda scope: _route(scope) == (method, path)


@dataclass(frozen=True)
class Bug:
    what: str
    breaks: str  # the requirement the relay tests must report failed
    wrap: Callable[[ASGIApp], ASGIApp]
    only: str  # the relay test file that catches it (the run stops at its first failure)


BUGS: dict[str, Bug] = {
    "redirect-trailing-slash": Bug(
        "a known path with a trailing / is redirected, not 404",
        "API-1",
        _redirect_slash,
        "relay/test_endpoints.py",
    ),
    "no-www-authenticate": Bug(
        "a 401 without WWW-Authenticate: NCBR1",
        "API-20",
        lambda app: rewrite_response(app, _always, _strip(b"www-authenticate", status=401)),
        "relay/test_endpoints.py",
    ),
    "problem-with-detail": Bug(
        "problem bodies carry an internal detail (a stack trace)",
        "API-18",
        lambda app: rewrite_response(app, _always, _json_edit(_add_detail)),
        "relay/test_endpoints.py",
    ),
    "wrong-directory-etag": Bug(
        "the directory's ETag is not its hash",
        "API-14",
        lambda app: rewrite_response(app, _on("GET", "/v1/directory"), _other_etag),
        "relay/test_endpoints.py",
    ),
    "any-media-type": Bug(
        "a submission of another media type is accepted (no 415)",
        "API-3",
        _any_media_type,
        "relay/test_submit.py",
    ),
    "forged-receipt": Bug(
        "the receipt in every 202 has a broken signature",
        "API-24",
        lambda app: rewrite_response(app, _on("POST", "/v1/messages"), _json_edit(_flip_receipt)),
        "relay/test_submit.py",
    ),
    "ack-does-nothing": Bug(
        "an acknowledgement answers 204 and deletes nothing",
        "API-12",
        _ack_does_nothing,
        "relay/test_mailbox.py",
    ),
    "no-retry-after": Bug(
        "a 429 without Retry-After",
        "API-10",
        lambda app: rewrite_response(app, _always, _strip(b"retry-after", status=429)),
        "relay/test_limits.py",
    ),
    "rate-limit-as-503": Bug(
        "the rate limit answers 503 instead of 429",
        "API-10",
        lambda app: rewrite_response(app, _always, _as_503),
        "relay/test_limits.py",
    ),
    "checkpoints-newest-first": Bug(
        "the page of checkpoints is largest first",
        "API-26",
        lambda app: rewrite_response(
            app, _on("GET", "/v1/log/checkpoints"), _json_edit(_reverse_checkpoints)
        ),
        "relay/test_log.py",
    ),
    "inclusion-of-the-next-leaf": Bug(
        "the inclusion proof is the next leaf's",
        "API-27",
        _next_leaf,
        "relay/test_log.py",
    ),
}


async def main(config_path: str, bug: Bug) -> None:
    config = load_config(config_path)
    async with anyio.create_task_group() as tasks:
        running: RunningRelay = await tasks.start(
            partial(run_relay, config, shutdown_trigger=wait_for_stop_signal, wrap_app=bug.wrap)
        )
        print(f"relay {config.relay_id} serving on {running.api.url}; SIGTERM stops it", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bug", required=True, choices=sorted(BUGS))
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    anyio.run(main, args.config, BUGS[args.bug], backend="trio")
