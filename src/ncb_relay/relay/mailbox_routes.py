"""A bureau's own mailbox: fetch with long-poll, and acknowledge (API-8 to API-13).

No route here takes a mailbox: the mailbox is always the authenticated
principal's own (AUTH-16).  A fetch hands out what the store leases; if there
is nothing and the bureau asked to wait, it waits on the mailbox's event
(:mod:`.mailbox_signals`) no longer than the relay's maximum, then reads
again.  An acknowledgement answers 204 whatever the ids name, so it tells
nobody whether a message exists or whose it is.
"""

from __future__ import annotations

import base64
import json
import re

import anyio
import anyio.lowlevel
from starlette.requests import Request
from starlette.responses import Response

from .context import RelayContext
from .http_auth import authenticate
from .mailbox_signals import LongPollLimit
from .problems import Problem
from .storage import MAX_FETCH, Batch, Delivery

__all__ = ["acknowledge_messages", "batch_json", "fetch_mailbox", "parse_fetch_query"]

_NUMBER = re.compile(r"[0-9]{1,19}")
_MESSAGE_ID = re.compile(r"[0-9a-f]{64}")
MAX_AFTER = 2**63 - 1


def parse_fetch_query(query: str, *, max_batch: int, max_wait: int) -> tuple[int, int, int]:
    """``after``, ``limit`` and ``wait`` from the query (API-8); anything else is malformed."""
    values = {"after": 0, "limit": max_batch, "wait": 0}
    seen: set[str] = set()
    for part in query.split("&") if query else ():
        name, equals, value = part.partition("=")
        if name not in values or name in seen or not equals or not _NUMBER.fullmatch(value):
            raise Problem(400, "malformed")
        seen.add(name)
        values[name] = int(value)
    if values["after"] > MAX_AFTER or not 1 <= values["limit"] <= min(max_batch, MAX_FETCH):
        raise Problem(400, "malformed")
    return values["after"], values["limit"], min(values["wait"], max_wait)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _delivery_json(delivery: Delivery) -> dict[str, object]:
    return {
        "position": delivery.position,
        "sender": delivery.sender,
        "messageId": delivery.message_id.hex(),
        "messageHash": delivery.message_hash.hex(),
        "acceptedAt": delivery.accepted_at,
        "expires": delivery.expires,
        "attempt": delivery.attempt,
        "envelope": _b64(delivery.data),
    }


def batch_json(batch: Batch) -> dict[str, object]:
    return {"cursor": batch.cursor, "messages": [_delivery_json(d) for d in batch.deliveries]}


async def _fetch(ctx: RelayContext, mailbox: str, after: int, limit: int) -> Batch:
    # shielded: a fetch cut off by the wait's deadline would lease messages nobody receives
    with anyio.CancelScope(shield=True):
        batch = await ctx.store.fetch(
            mailbox, after=after, limit=limit, lease=ctx.settings.lease, now=ctx.clock()
        )
    return batch


async def _wait_and_fetch(
    request: Request, ctx: RelayContext, mailbox: str, *, after: int, limit: int, wait: int
) -> Batch | None:
    """Wait for a batch; None if the client went away (its slot is freed, nothing is leased).

    The server does not cancel a handler whose client disconnected; it only queues
    ``http.disconnect`` for the next ``receive``.  A sibling task awaits that
    message and ends the wait, and no lease is taken for a client known to be gone.
    """
    gone = False

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        scope.cancel()

    with ctx.signals.waiting(mailbox):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, tg.cancel_scope)
            with anyio.move_on_after(wait):
                while True:
                    event = ctx.signals.current(mailbox)  # taken before the read: none is lost
                    batch = await _fetch(ctx, mailbox, after, limit)
                    if batch.deliveries:
                        tg.cancel_scope.cancel()
                        return batch
                    await event.wait()
                    await anyio.lowlevel.checkpoint()  # let a queued disconnect be seen first
                    if gone:
                        break
            tg.cancel_scope.cancel()
    if gone or await request.is_disconnected():
        return None
    return await _fetch(ctx, mailbox, after, limit)


async def fetch_mailbox(request: Request, ctx: RelayContext) -> Response:
    auth, _ = await authenticate(request, ctx, max_body=0)
    settings = ctx.settings
    query = request.scope.get("query_string", b"").decode("latin-1")
    after, limit, wait = parse_fetch_query(
        query, max_batch=settings.max_batch, max_wait=settings.max_wait
    )
    mailbox = auth.principal
    if wait:
        try:
            waited = await _wait_and_fetch(
                request, ctx, mailbox, after=after, limit=limit, wait=wait
            )
        except LongPollLimit as exc:
            raise Problem(429, "limit-exceeded", {"Retry-After": "1"}) from exc
        batch = Batch(deliveries=(), cursor=after) if waited is None else waited  # nobody reads
    else:
        batch = await _fetch(ctx, mailbox, after, limit)
    ctx.metrics.deliveries.inc(len(batch.deliveries))
    return Response(
        json.dumps(batch_json(batch), separators=(",", ":")).encode(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def parse_acknowledgement(body: bytes, max_ids: int) -> tuple[bytes, ...]:
    """The message ids of an acknowledgement body ``{"messageIds": [hex, ...]}`` (API-12)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "malformed") from exc
    if not isinstance(value, dict) or set(value) != {"messageIds"}:
        raise Problem(400, "malformed")
    ids = value["messageIds"]
    if not isinstance(ids, list):
        raise Problem(400, "malformed")
    if len(ids) > max_ids:
        raise Problem(400, "limit-exceeded")
    if not all(isinstance(i, str) and _MESSAGE_ID.fullmatch(i) for i in ids):
        raise Problem(400, "malformed")
    return tuple(bytes.fromhex(i) for i in ids)


async def acknowledge_messages(request: Request, ctx: RelayContext) -> Response:
    auth, body = await authenticate(
        request, ctx, max_body=ctx.settings.max_ack_body, media_type="application/json"
    )
    message_ids = parse_acknowledgement(body, ctx.settings.max_ack_ids)
    if message_ids:
        await ctx.store.acknowledge(auth.principal, message_ids)
    ctx.metrics.acknowledged.inc()
    return Response(status_code=204)
