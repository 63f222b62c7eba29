"""A whole relay node on a loopback port, and bureaus talking to it over TCP (relay node tests).

The node is :func:`ncb_relay.relay.launch.run_relay` on a configuration in
``tmp_path``: the genesis directory of ``directory_world`` signed by its roots,
its anchor, a SQLite store, port 0, and an injected clock.  A fresh relay
refuses requests dated before its start plus the request skew (AUTH-12), so
:func:`running_node` moves the clock past that window once the node is up.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from directory_world import ANCHOR_FILE, T0, genesis, member, signed
from fixtures import seeded_rng
from ncb_relay import PrivateIdentity, SealedEnvelope, seal, sign_request
from ncb_relay.admin_keystores import KDF_PROFILES
from ncb_relay.envelope import DEFAULT_TTL
from ncb_relay.keyring import HeldEncryptionKey, Keyring
from ncb_relay.keystore import write_keystore
from ncb_relay.relay.config import RelayConfig, config_from_mapping
from ncb_relay.relay.launch import RunningRelay, run_relay
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW

RELAY = "XP.relay-lyon"
RELAY_SIGNER = member(RELAY).signer  # the relay's key, as the genesis directory lists it
SEOUL, RABAT, PARIS = "KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris"
START = T0 + 60  # the node's clock when it starts
GUARD = 20.0  # seconds; a guard against hangs, never an expectation


@dataclass
class Clock:
    now: int = START

    def __call__(self) -> int:
        return self.now


def node_config(tmp_path: Path, **sections: Mapping[str, Any]) -> RelayConfig:
    """A node's configuration in ``tmp_path`` (port 0), with its directory and anchor files."""
    (tmp_path / "anchor.signed").write_bytes(ANCHOR_FILE)
    (tmp_path / "directory.signed").write_bytes(signed(genesis()[0]))
    return config_from_mapping(
        {
            "relay_id": RELAY,
            "database": "relay.db",
            "keystore": "relay.keystore",
            "directory": "directory.signed",
            "anchors": ["anchor.signed"],
            "listen": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": GUARD},
            **sections,
        },
        base=tmp_path,
    )


RELAY_PASSPHRASE = "relay keystore passphrase (tests only)"


def write_relay_keystore(path: Path) -> dict[str, str]:
    """The relay's keystore at ``path`` (the cheapest KDF the reader accepts).

    Returns the environment a relay process needs to unlock it.
    """
    relay = member(RELAY)
    held = [HeldEncryptionKey(key, T0 - 60, T0 + 90 * 86400) for key in relay.encryption]
    keyring = Keyring(RELAY, relay.signer, held)
    write_keystore(path, keyring, RELAY_PASSPHRASE, kdf=KDF_PROFILES["interactive"], overwrite=True)
    return {"NCB_RELAY_PASSPHRASE": RELAY_PASSPHRASE}


def bureaus() -> dict[str, PrivateIdentity]:
    """The private identities of the genesis directory's principals."""
    return {p: m.identity for p, m in genesis()[1].items()}


@dataclass
class Bureaus:
    """Bureaus with an HTTP client to one relay: signed requests, sealed envelopes."""

    client: httpx.AsyncClient
    clock: Callable[[], int]
    ids: dict[str, PrivateIdentity] = field(default_factory=bureaus)
    rng: Callable[[int], bytes] = field(default_factory=lambda: seeded_rng(b"node requests"))
    seq: int = 0

    def sign(
        self, who: str, method: str, target: str, body: bytes = b"", *, claim: str | None = None
    ) -> dict[str, str]:
        """``who`` signs the request; ``claim`` names another principal (a forgery)."""
        credentials = sign_request(
            principal=claim or who,
            signer=self.ids[who].signer,
            relay=RELAY,
            method=method,
            target=target,
            body=body,
            now=self.clock(),
            rng=self.rng,
        )
        return {"authorization": credentials.authorization}

    def seal(
        self,
        sender: str,
        *recipients: str,
        body: bytes = b"hello",
        ttl: int = DEFAULT_TTL,
        now: int | None = None,
    ) -> bytes:
        self.seq += 1
        sealed: SealedEnvelope = seal(
            body,
            sender=self.ids[sender],
            recipients=[self.ids[r].public for r in recipients],
            now=self.clock() if now is None else now,
            seq=self.seq,
            rng=seeded_rng(f"node seal {self.seq}".encode()),
            ttl=ttl,
        )
        return sealed.data

    async def submit(self, who: str, data: bytes) -> httpx.Response:
        headers = {
            "content-type": "application/octet-stream",
            **self.sign(who, "POST", "/v1/messages", data),
        }
        return await self.client.post("/v1/messages", content=data, headers=headers)

    async def fetch(self, who: str, query: str = "") -> httpx.Response:
        target = "/v1/mailbox" + (f"?{query}" if query else "")
        return await self.client.get(target, headers=self.sign(who, "GET", target))

    async def ack(self, who: str, *message_ids: str) -> httpx.Response:
        body = json.dumps({"messageIds": list(message_ids)}).encode()
        headers = {
            "content-type": "application/json",
            **self.sign(who, "POST", "/v1/mailbox/ack", body),
        }
        return await self.client.post("/v1/mailbox/ack", content=body, headers=headers)


@dataclass
class Node:
    running: RunningRelay
    clock: Clock
    bureaus: Bureaus
    stop: trio.Event


@asynccontextmanager
async def running_node(config: RelayConfig, clock: Clock | None = None) -> AsyncIterator[Node]:
    """Start ``config``'s relay, yield it with a client, then stop it gracefully."""
    clock = clock or Clock()
    stop = trio.Event()
    with trio.fail_after(GUARD * 3):
        async with trio.open_nursery() as nursery:
            running: RunningRelay = await nursery.start(
                lambda task_status: run_relay(
                    config,
                    clock=clock,
                    task_status=task_status,
                    shutdown_trigger=stop.wait,
                    signer=RELAY_SIGNER,
                )
            )
            clock.now += DEFAULT_REQUEST_SKEW  # past the restart window of AUTH-12
            async with httpx.AsyncClient(base_url=running.api.url, timeout=GUARD) as client:
                yield Node(running, clock, Bureaus(client, clock), stop)
            stop.set()
        # run_relay returned by itself once the trigger fired
