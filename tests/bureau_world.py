"""Bureaus (ncb_relay.bureau) on a real relay node on a loopback port, under trio or asyncio.

:func:`relay_node` starts :func:`ncb_relay.relay.launch.run_relay` on the
``directory_world`` genesis directory in an anyio task group, with an injected
clock moved past the restart window of AUTH-12; :func:`bureau` connects one
principal of that directory with its journal in ``tmp_path``.  Polls are short
and retries fast; nothing here measures time.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx

from directory_world import CHAIN, COORDINATOR
from fixtures import seeded_rng
from ncb_relay import PrivateIdentity
from ncb_relay.bureau import Bureau, Incoming, RowState
from ncb_relay.client import RetryPolicy
from ncb_relay.relay.launch import run_relay
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW
from relay_node_world import GUARD, RELAY, RELAY_SIGNER, Clock, bureaus, node_config

IDS = bureaus()
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
GS = COORDINATOR


@asynccontextmanager
async def relay_node(
    tmp_path: Path, *, directory: bytes | None = None
) -> AsyncIterator[tuple[str, Clock]]:
    """A relay node on 127.0.0.1 (port 0) with an injected clock, stopped gracefully.

    ``directory`` is the signed directory file it serves (default: the genesis).
    """
    clock, stop = Clock(), anyio.Event()
    (tmp_path / "relay").mkdir(exist_ok=True)
    config = node_config(tmp_path / "relay")
    if directory is not None:
        config.directory.write_bytes(directory)
    with anyio.fail_after(GUARD * 6):
        async with anyio.create_task_group() as tg:
            running = await tg.start(
                partial(
                    run_relay,
                    config,
                    clock=clock,
                    shutdown_trigger=stop.wait,
                    signer=RELAY_SIGNER,
                )
            )
            clock.now += DEFAULT_REQUEST_SKEW  # past the restart window of AUTH-12
            try:
                yield running.api.url, clock
            finally:
                stop.set()


def bureau(
    url: str,
    clock: Clock,
    who: str,
    tmp_path: Path,
    *,
    run: int = 0,
    identity: PrivateIdentity | None = None,
    **options: Any,
) -> Any:
    """``Bureau.connect`` for ``who``, with its journal at ``tmp_path / who.db``.

    ``run`` counts the restarts of one bureau: each run draws other random
    bytes (a restarted process does not replay its request nonces).
    ``identity`` is for a principal outside the genesis directory; ``options``
    may replace ``retry_interval`` (0.2 s here).
    """
    return Bureau.connect(
        identity or IDS[who],
        relay_url=url,
        relay_id=RELAY,
        store=tmp_path / f"{who}.db",
        coordinator=GS,
        anchors=CHAIN,
        clock=clock,
        rng=seeded_rng(f"bureau {who} {run} {tmp_path.name}"[:60].encode()),
        retry=FAST,
        poll_wait=1,
        **{"retry_interval": 0.2, **options},
    )


async def until(check: Callable[[], bool], *, timeout: float = GUARD) -> None:
    """Return once ``check()`` holds; fail after ``timeout`` (a guard, not an expectation)."""
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.02)


Deliveries = list[dict[str, Any]]


class Tamper(httpx.AsyncBaseTransport):
    """The real network transport, with a hostile relay's answers when a test asks for them.

    ``hold``: mailbox fetches answer an empty batch (nothing reaches the bureau).
    ``edits``: each rewrites the deliveries of the next non-empty batch, once.
    ``withheld``: message ids (hex) never handed to this bureau, however often fetched.
    ``bad_batches``: the next mailbox answers, each as :func:`bad_batch` makes it.
    ``lost_answers``: that many submissions reach the relay; their answer is lost.
    ``spoiled_acceptances``: that many acceptances name another message hash.
    ``unreachable``: that many submissions cannot connect (nothing reaches the relay).
    ``refusals``: that many submissions are refused (409, ``replay``) without reaching it.
    ``directory``: served instead of the relay's directory file.
    ``lost_acks``: that many acknowledgements never reach the relay.
    ``acceptance_edits``: each rewrites the JSON of the next acceptance (``202``), once.
    ``consistency_edits``: each rewrites the next consistency proof answer, once.
    ``checkpoint_notes``: served, one each, instead of the relay's latest checkpoint.
    ``submitted``, ``delivered``, ``acknowledged``: what went through (message ids in hex);
    ``acceptances``: every acceptance the relay gave, as it gave it (a lost one too).
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hold = False
        self.edits: list[Callable[[Deliveries], Deliveries]] = []
        self.withheld: set[str] = set()
        self.bad_batches: list[str] = []
        self.lost_answers = 0
        self.spoiled_acceptances = 0
        self.unreachable = 0
        self.refusals = 0
        self.lost_acks = 0
        self.directory: bytes | None = None
        self.submitted: list[bytes] = []
        self.delivered: Deliveries = []
        self.acknowledged: list[str] = []
        self.acceptance_edits: list[Callable[[dict[str, Any]], dict[str, Any]]] = []
        self.consistency_edits: list[Callable[[dict[str, Any]], dict[str, Any]]] = []
        self.checkpoint_notes: list[bytes] = []
        self.acceptances: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/mailbox":
            return await self._mailbox(request)
        if path == "/v1/directory" and self.directory is not None:
            return httpx.Response(200, content=self.directory)
        if path == "/v1/mailbox/ack":
            if self.lost_acks > 0:
                self.lost_acks -= 1
                raise httpx.ConnectError("the acknowledgement was lost", request=request)
            response = await self.inner.handle_async_request(request)
            if response.status_code == 204:
                self.acknowledged.extend(json.loads(await request.aread())["messageIds"])
            return response
        if path == "/v1/messages":
            self.submitted.append(await request.aread())
            if self.unreachable > 0:
                self.unreachable -= 1
                raise httpx.ConnectError("the relay cannot be reached", request=request)
            if self.refusals > 0:
                self.refusals -= 1
                problem = {"type": "urn:ncbr1:error:replay", "title": "replay", "status": 409}
                return httpx.Response(
                    409,
                    headers={"content-type": "application/problem+json"},
                    content=json.dumps({**problem, "code": "replay"}).encode(),
                )
            if self.lost_answers > 0:
                self.lost_answers -= 1
                response = await self.inner.handle_async_request(request)
                if response.status_code == 202:
                    self.acceptances.append(json.loads(await response.aread()))
                await response.aclose()
                raise httpx.ReadTimeout("the answer was lost", request=request)
            if self.spoiled_acceptances > 0:
                self.spoiled_acceptances -= 1
                response = await self.inner.handle_async_request(request)
                acceptance = json.loads(await response.aread())
                await response.aclose()
                acceptance["messageHash"] = "00" * 32
                return httpx.Response(response.status_code, json=acceptance)
            return await self._rewritten(request, self.acceptance_edits, self.acceptances)
        if path == "/v1/log/consistency" and self.consistency_edits:
            return await self._rewritten(request, self.consistency_edits, [])
        if path == "/v1/log/checkpoint" and self.checkpoint_notes:
            return httpx.Response(200, content=self.checkpoint_notes.pop(0))
        return await self.inner.handle_async_request(request)

    async def _rewritten(
        self,
        request: httpx.Request,
        edits: list[Callable[[dict[str, Any]], dict[str, Any]]],
        seen: list[dict[str, Any]],
    ) -> httpx.Response:
        """The relay's JSON answer, kept in ``seen`` and rewritten by the first of ``edits``."""
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        if response.status_code not in (200, 202):
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        value = json.loads(body)
        seen.append(value)
        if edits:
            value = edits.pop(0)(dict(value))
        return httpx.Response(response.status_code, json=value)

    async def _mailbox(self, request: httpx.Request) -> httpx.Response:
        if self.hold:
            await anyio.sleep(0.05)
            after = int(request.url.params.get("after", "0"))
            return httpx.Response(200, json={"cursor": after, "messages": []})
        if self.bad_batches:
            return bad_batch(self.bad_batches.pop(0), request)
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        if response.status_code != 200:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        batch = json.loads(body)
        if batch["messages"] and self.edits:
            batch["messages"] = self.edits.pop(0)(batch["messages"])
        batch["messages"] = [m for m in batch["messages"] if m["messageId"] not in self.withheld]
        self.delivered.extend(batch["messages"])
        return httpx.Response(200, json=batch)

    async def aclose(self) -> None:
        await self.inner.aclose()


def bad_batch(kind: str, request: httpx.Request) -> httpx.Response:
    """A mailbox answer no client may take: ``garbage``, ``timeout``, ``error``, ``shape``..."""
    if kind == "timeout":
        raise httpx.ReadTimeout("the relay never answered", request=request)
    if kind == "error":
        return httpx.Response(500, content=b"Internal Server Error")
    content = {
        "garbage": b"\x00garbage{",
        "shape": json.dumps({"cursor": -1, "messages": {}}).encode(),
        "base64": json.dumps({"cursor": 1, "messages": [{**DELIVERY, "envelope": "!!"}]}).encode(),
        "too-many": json.dumps({"cursor": 1, "messages": [DELIVERY] * 1_001}).encode(),
    }[kind]
    return httpx.Response(200, content=content, headers={"content-type": "application/json"})


DELIVERY = {
    "position": 1,
    "sender": GS,
    "messageId": "00" * 32,
    "messageHash": "00" * 32,
    "acceptedAt": 1,
    "expires": 2,
    "attempt": 1,
    "envelope": "",
}


def envelope_of(delivery: dict[str, Any]) -> bytes:
    return base64.urlsafe_b64decode(delivery["envelope"] + "=" * (-len(delivery["envelope"]) % 4))


def with_envelope(delivery: dict[str, Any], data: bytes) -> dict[str, Any]:
    """The delivery carrying ``data`` instead of its envelope."""
    return {**delivery, "envelope": base64.urlsafe_b64encode(data).rstrip(b"=").decode()}


class Seen:
    """A handler that keeps what it was handed."""

    def __init__(self) -> None:
        self.handed: list[Incoming] = []

    async def __call__(self, incoming: Incoming) -> None:
        self.handed.append(incoming)

    def ids(self) -> list[bytes]:
        return [i.message_id for i in self.handed]


def accepted(b: Bureau, count: int) -> bool:
    """Whether ``b`` has at least ``count`` sent messages the relay accepted."""
    return [r.state for r in b.outbox()].count(RowState.ACCEPTED) >= count
