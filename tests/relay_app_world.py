"""A relay application in process, its bureaus, and signed requests to it (relay app tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from fixtures import NOW, seeded_rng, world
from ncb_relay import KeyDirectory, NonceCache, PrivateIdentity, SealedEnvelope, seal, sign_request
from ncb_relay.checkpoint import LogKey
from ncb_relay.identity import SigningKeyPair
from ncb_relay.receipt import log_origin
from ncb_relay.relay.app import create_app
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.context import RelayContext
from ncb_relay.relay.log_signing import checkpoint_signer
from ncb_relay.relay.sqlite_store import SqliteMailboxStore, open_sqlite_store

RELAY = "XP.relay-lyon"
RELAY_KEY = SigningKeyPair(seeded_rng(b"relay signing key")(32))
RELAY_LOG = LogKey(log_origin(RELAY), RELAY_KEY.public_key)
SEOUL, RABAT, GS, PARIS, TOKYO = (
    "KR.ncb-seoul",
    "MA.ncb-rabat",
    "XP.interpol-gs",
    "FR.ncb-paris",
    "JP.ncb-tokyo",
)
ENVELOPE = {"content-type": "application/octet-stream"}
JSON = {"content-type": "application/json"}


@dataclass
class Clock:
    now: int = NOW

    def __call__(self) -> int:
        return self.now


@dataclass
class RelayWorld:
    app: Starlette
    client: httpx.AsyncClient
    store: SqliteMailboxStore
    clock: Clock
    ids: dict[str, PrivateIdentity]
    rng: Callable[[int], bytes] = field(default_factory=lambda: seeded_rng(b"requests"))
    seq: int = 0

    @property
    def context(self) -> RelayContext:
        ctx: RelayContext = self.app.state.context
        return ctx

    def sign(
        self,
        who: str,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        relay: str = RELAY,
        now: int | None = None,
    ) -> dict[str, str]:
        credentials = sign_request(
            principal=who,
            signer=self.ids[who].signer,
            relay=relay,
            method=method,
            target=target,
            body=body,
            now=self.clock.now if now is None else now,
            rng=self.rng,
        )
        return {"authorization": credentials.authorization}

    def seal(
        self,
        sender: str,
        *recipients: str,
        body: bytes = b"hello",
        now: int | None = None,
        seed: int | None = None,
        ids: dict[str, PrivateIdentity] | None = None,
    ) -> SealedEnvelope:
        self.seq += 1
        ids = ids or self.ids
        return seal(
            body,
            sender=ids[sender],
            recipients=[ids[r].public for r in recipients],
            now=self.clock.now if now is None else now,
            seq=self.seq,
            rng=seeded_rng(f"seal {self.seq if seed is None else seed}".encode()),
        )

    async def submit(self, who: str, data: bytes) -> httpx.Response:
        headers = {**ENVELOPE, **self.sign(who, "POST", "/v1/messages", data)}
        return await self.client.post("/v1/messages", content=data, headers=headers)

    async def fetch(self, who: str, query: str = "") -> httpx.Response:
        target = "/v1/mailbox" + (f"?{query}" if query else "")
        return await self.client.get(target, headers=self.sign(who, "GET", target))

    async def ack(self, who: str, *message_ids: bytes) -> httpx.Response:
        body = json.dumps({"messageIds": [m.hex() for m in message_ids]}).encode()
        headers = {**JSON, **self.sign(who, "POST", "/v1/mailbox/ack", body)}
        return await self.client.post("/v1/mailbox/ack", content=body, headers=headers)

    async def snapshot(self) -> dict[str, int]:
        """Everything a refused request must leave unchanged, as far as the store tells."""
        return dict(await self.store.queue_depths())


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "code"}
    assert body["status"] == response.status_code
    assert body["type"] == "urn:ncbr1:error:" + body["code"]
    return body


@asynccontextmanager
async def relay_world(
    tmp_path: Path,
    *,
    settings: AppSettings | None = None,
    directory: KeyDirectory | None = None,
    ids: dict[str, PrivateIdentity] | None = None,
    now: int = NOW,
) -> AsyncIterator[RelayWorld]:
    default_ids, static = world()
    clock = Clock(now)
    current = directory or static
    tmp_path.mkdir(parents=True, exist_ok=True)
    signer = checkpoint_signer(RELAY_LOG.name, RELAY_KEY)
    async with open_sqlite_store(tmp_path / "relay.db", checkpoint_signer=signer) as store:
        app = create_app(
            relay_id=RELAY,
            directory=lambda: current,
            store=store,
            clock=clock,
            settings=settings,
            nonces=NonceCache(since=None),
            signer=RELAY_KEY,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            yield RelayWorld(app, client, store, clock, ids or default_ids)
