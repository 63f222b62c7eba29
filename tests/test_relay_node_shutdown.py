"""Graceful shutdown of a whole relay node mid-burst, over real sockets (issue 5, item 6).

The node is :func:`ncb_relay.relay.launch.run_relay` with
:func:`~ncb_relay.relay.launch.wait_for_stop_signal` as its shutdown trigger,
exactly as ``ncb-relay serve`` runs it, and the test sends the process a real
SIGTERM while signed submissions are still being started.  Afterwards the
store is reopened: every submission answered 202 is stored, one stored without
a 202 gets the original acceptance when submitted again (dedupe), and nothing
else is stored.  Loops are bounded; nothing measures time.
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest
import trio

from fixtures import seeded_rng
from ncb_relay import seal
from ncb_relay.relay.launch import RunningRelay, run_relay, wait_for_stop_signal
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW
from relay_node_world import (
    GUARD,
    PARIS,
    RABAT,
    RELAY_SIGNER,
    SEOUL,
    Bureaus,
    Clock,
    node_config,
    running_node,
)

BURST = 60
STOP_AFTER = 8  # answered submissions before the SIGTERM


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _stored(database: Path) -> dict[str, int]:
    """Message id (hex) to its acceptance time, of every message the store holds."""
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT message_id, accepted_at FROM messages").fetchall()
    finally:
        connection.close()
    return {bytes(message_id).hex(): accepted_at for message_id, accepted_at in rows}


@pytest.mark.req("API-7")
@pytest.mark.anyio
# httpx leaves the body iterator of a request cut off by the stopping server to the collector
@pytest.mark.filterwarnings("ignore:Async generator 'httpx._content.ByteStream:ResourceWarning")
async def test_sigterm_mid_burst_acknowledges_only_what_it_committed(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    clock = Clock()
    outcomes: dict[str, httpx.Response | Exception] = {}
    envelopes: dict[str, bytes] = {}
    answered = trio.Event()
    signalled = False

    async def submit(bureaus: Bureaus, message_id: str, data: bytes) -> None:
        try:
            outcomes[message_id] = await bureaus.submit(SEOUL, data)
        except httpx.TransportError as exc:  # refused, reset or closed by the stopping server
            outcomes[message_id] = exc
        if sum(isinstance(o, httpx.Response) for o in outcomes.values()) >= STOP_AFTER:
            answered.set()

    with trio.fail_after(GUARD * 3):
        async with trio.open_nursery() as nursery:
            running: RunningRelay = await nursery.start(
                lambda task_status: run_relay(
                    config,
                    clock=clock,
                    task_status=task_status,
                    shutdown_trigger=wait_for_stop_signal,
                    signer=RELAY_SIGNER,
                )
            )
            clock.now += DEFAULT_REQUEST_SKEW  # past the restart window of AUTH-12
            limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
            async with httpx.AsyncClient(
                base_url=running.api.url, timeout=GUARD, limits=limits
            ) as client:
                bureaus = Bureaus(client, clock)
                async with trio.open_nursery() as burst:
                    for number in range(BURST):
                        sealed = seal(
                            b"notice %d" % number,
                            sender=bureaus.ids[SEOUL],
                            recipients=[bureaus.ids[(RABAT, PARIS)[number % 2]].public],
                            now=clock.now,
                            seq=number + 1,
                            rng=seeded_rng(b"shutdown %d" % number),
                        )
                        message_id, data = sealed.message_id.hex(), sealed.data
                        envelopes[message_id] = data
                        burst.start_soon(submit, bureaus, message_id, data)
                        await trio.sleep(0)  # the burst goes on while the first ones commit
                        if answered.is_set() and not signalled:
                            signalled = True
                            os.kill(os.getpid(), signal.SIGTERM)  # what `ncb-relay serve` gets
                    await answered.wait()
                    if not signalled:
                        signalled = True
                        os.kill(os.getpid(), signal.SIGTERM)
        # run_relay returned by itself: the servers stopped, the store closed last

    gc.collect()  # those iterators go now, under this test's warning filter
    assert len(outcomes) == BURST
    accepted = {
        message_id: response.json()
        for message_id, response in outcomes.items()
        if isinstance(response, httpx.Response) and response.status_code == 202
    }
    refused = {
        message_id: response.status_code
        for message_id, response in outcomes.items()
        if isinstance(response, httpx.Response) and response.status_code != 202
    }
    assert refused == {}, refused  # a stopping relay answers 202 or drops the request
    assert len(accepted) >= STOP_AFTER
    stored = _stored(tmp_path / "relay.db")
    assert set(accepted) <= set(stored), "a 202 for a message the store does not hold"
    assert set(stored) <= set(envelopes), "the store holds a message nobody submitted"
    for message_id, body in accepted.items():
        assert body["messageId"] == message_id
        assert body["acceptedAt"] == stored[message_id]

    # restart: a message stored without its 202 gets the original acceptance, once again
    unanswered = sorted(set(stored) - set(accepted))
    async with running_node(config) as node:
        for message_id in unanswered:
            again = await node.bureaus.submit(SEOUL, envelopes[message_id])
            assert again.status_code == 202, again.text
            assert again.json()["acceptedAt"] == stored[message_id]
        if accepted:
            message_id = min(accepted)
            again = await node.bureaus.submit(SEOUL, envelopes[message_id])
            assert again.status_code == 202
            record = ("sender", "messageId", "messageHash", "acceptedAt", "logIndex")
            assert {k: again.json()[k] for k in record} == {
                k: accepted[message_id][k] for k in record
            }  # the same record; the evidence is the latest checkpoint's
    assert _stored(tmp_path / "relay.db") == stored  # the resubmissions stored nothing new
