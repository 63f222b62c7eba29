"""The relay's ASGI app in process (httpx ASGITransport), under asyncio and trio.

Round trips with real sealed envelopes, dedupe and conflict, long-poll
wake-up, lease redelivery, the public endpoints and metrics.  No test reads
the wall clock or asserts a duration: the relay's clock is injected, and a
long-poll is shown to return *with the message*.
"""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import httpx
import pytest

from directory_world import genesis, loaded
from fixtures import NOW
from ncb_relay import NonceCache
from ncb_relay.relay.app import create_app
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.metrics import metrics_app
from relay_app_world import GS, PARIS, RABAT, RELAY, SEOUL, problem, relay_world

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _envelope(message: dict[str, object]) -> bytes:
    text = str(message["envelope"])
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.req("API-4", "API-7", "API-8", "API-12")
async def test_submit_fetch_acknowledge_round_trip(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        sealed = w.seal(SEOUL, RABAT, GS)
        response = await w.submit(SEOUL, sealed.data)
        assert response.status_code == 202
        answer = response.json()
        assert {k: answer[k] for k in ("sender", "messageId", "messageHash", "acceptedAt")} == {
            "sender": SEOUL,
            "messageId": sealed.message_id.hex(),
            "messageHash": sealed.message_hash.hex(),
            "acceptedAt": NOW,
        }
        assert answer["logIndex"] == 0
        assert set(answer) >= {"receipt", "checkpoint", "inclusion"}
        for who in (RABAT, GS):
            fetched = await w.fetch(who)
            assert fetched.status_code == 200
            batch = fetched.json()
            assert batch["cursor"] == 1
            [message] = batch["messages"]
            assert _envelope(message) == sealed.data
            assert message["messageId"] == sealed.message_id.hex()
            assert message["sender"] == SEOUL
            assert message["attempt"] == 1
            assert (await w.ack(who, sealed.message_id)).status_code == 204
            assert (await w.fetch(who, "after=1")).json() == {"cursor": 1, "messages": []}
        assert await w.snapshot() == {}
        assert (await w.fetch(SEOUL)).json() == {"cursor": 0, "messages": []}


@pytest.mark.req("API-7")
async def test_identical_resubmission_returns_the_original_acceptance(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        sealed = w.seal(SEOUL, RABAT)
        first = await w.submit(SEOUL, sealed.data)
        w.clock.now += 5
        again = await w.submit(SEOUL, sealed.data)
        assert again.status_code == first.status_code == 202
        assert again.json() == first.json()
        assert await w.snapshot() == {RABAT: 1}


@pytest.mark.req("API-8")
async def test_batches_follow_the_cursor_and_limit(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        sent = [w.seal(SEOUL, RABAT, body=bytes([i])) for i in range(5)]
        for sealed in sent:
            assert (await w.submit(SEOUL, sealed.data)).status_code == 202
        first = (await w.fetch(RABAT, "limit=2")).json()
        assert [m["position"] for m in first["messages"]] == [1, 2]
        second = (await w.fetch(RABAT, f"after={first['cursor']}&limit=2")).json()
        assert [m["position"] for m in second["messages"]] == [3, 4]
        rest = (await w.fetch(RABAT, f"after={second['cursor']}")).json()
        assert [m["messageId"] for m in rest["messages"]] == [sent[4].message_id.hex()]


@pytest.mark.req("API-9")
async def test_a_long_poll_returns_with_the_message_accepted_while_it_waits(
    tmp_path: Path,
) -> None:
    async with relay_world(tmp_path, settings=AppSettings(max_wait=300)) as w:
        sealed = w.seal(SEOUL, RABAT)
        result: list[httpx.Response] = []

        async def poll() -> None:
            result.append(await w.fetch(RABAT, "wait=300"))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(poll)
            for _ in range(1000):  # until the poll is parked on its mailbox's event
                if w.context.signals.waiters(RABAT):
                    break
                await anyio.sleep(0)
            assert w.context.signals.waiters(RABAT) == 1
            assert (await w.submit(SEOUL, sealed.data)).status_code == 202
        [response] = result
        [message] = response.json()["messages"]
        assert message["messageId"] == sealed.message_id.hex()
        assert w.context.signals.waiters(RABAT) == 0


@pytest.mark.req("API-9")
async def test_a_long_poll_waits_no_longer_than_the_relay_allows(tmp_path: Path) -> None:
    async with relay_world(tmp_path, settings=AppSettings(max_wait=0)) as w:
        response = await w.fetch(RABAT, "wait=300")  # capped to 0: answers at once
        assert response.json() == {"cursor": 0, "messages": []}


@pytest.mark.req("API-9")
async def test_concurrent_long_polls_per_bureau_are_capped(tmp_path: Path) -> None:
    async with relay_world(tmp_path, settings=AppSettings(max_long_polls=1)) as w:
        with w.context.signals.waiting(RABAT):  # one poll already parked
            refused = await w.fetch(RABAT, "wait=10")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert problem(refused)["code"] == "limit-exceeded"
            assert (await w.fetch(RABAT)).status_code == 200  # a plain fetch still passes
            assert (await w.fetch(SEOUL, "wait=0")).status_code == 200


@pytest.mark.req("API-11")
async def test_an_unacknowledged_message_comes_back_after_its_lease(tmp_path: Path) -> None:
    async with relay_world(tmp_path, settings=AppSettings(lease=30)) as w:
        sealed = w.seal(SEOUL, RABAT)
        await w.submit(SEOUL, sealed.data)
        first = (await w.fetch(RABAT)).json()
        assert len(first["messages"]) == 1
        w.clock.now += 10
        assert (await w.fetch(RABAT, f"after={first['cursor']}")).json()["messages"] == []
        w.clock.now += 30
        again = (await w.fetch(RABAT, f"after={first['cursor']}")).json()
        [message] = again["messages"]
        assert message["attempt"] == 2
        assert message["messageId"] == sealed.message_id.hex()


@pytest.mark.req("API-10")
async def test_a_bureau_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    settings = AppSettings(rate_per_second=1, rate_burst=2)
    async with relay_world(tmp_path, settings=settings) as w:
        assert (await w.fetch(RABAT)).status_code == 200
        assert (await w.fetch(RABAT)).status_code == 200
        refused = await w.fetch(RABAT)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert problem(refused)["code"] == "limit-exceeded"
        assert (await w.fetch(SEOUL)).status_code == 200  # another bureau is not affected
        w.clock.now += 1
        assert (await w.fetch(RABAT)).status_code == 200


@pytest.mark.req("API-14")
async def test_the_directory_is_served_as_its_signed_bytes(tmp_path: Path) -> None:
    document, members = genesis()
    directory = loaded(document)
    ids = {p: m.identity for p, m in members.items()}
    async with relay_world(tmp_path, directory=directory, ids=ids) as w:
        response = await w.client.get("/v1/directory")
        assert response.status_code == 200
        assert response.content == directory.data
        assert response.headers["etag"] == f'"{directory.hash.hex()}"'
        sealed = w.seal(SEOUL, RABAT)
        assert (await w.submit(SEOUL, sealed.data)).status_code == 202
    async with relay_world(tmp_path / "static") as w:  # a directory without a signed file
        assert problem(await w.client.get("/v1/directory"))["code"] == "not-found"


@pytest.mark.req("API-15", "API-16")
async def test_health_and_readiness(tmp_path: Path) -> None:
    document, _ = genesis()
    directory = loaded(document)
    async with relay_world(tmp_path / "a", directory=directory) as w:
        assert (await w.client.get("/v1/health")).json() == {"status": "ok"}
        assert (await w.client.get("/v1/ready")).json() == {"status": "ready"}
        w.clock.now = directory.expires + directory.policy.grace + 1
        expired = await w.client.get("/v1/ready")
        assert expired.status_code == 503
        assert problem(expired)["code"] == "directory-expired"
        assert (await w.client.get("/v1/health")).status_code == 200
    async with relay_world(tmp_path) as w:
        restarted = create_app(
            relay_id=RELAY,
            directory=lambda: directory,
            store=w.store,
            clock=w.clock,
            nonces=NonceCache(since=NOW, max_skew=60),
        )
        transport = httpx.ASGITransport(app=restarted)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            waiting = await client.get("/v1/ready")
            assert waiting.status_code == 503
            assert problem(waiting)["code"] == "not-ready"
            assert waiting.headers["retry-after"] == "60"
            w.clock.now += 60
            assert (await client.get("/v1/ready")).status_code == 200


@pytest.mark.req("API-17")
async def test_metrics_count_submissions_deliveries_rejections_and_queue_depth(
    tmp_path: Path,
) -> None:
    async with relay_world(tmp_path) as w:
        await w.submit(SEOUL, w.seal(SEOUL, RABAT, PARIS).data)
        await w.fetch(RABAT)
        await w.submit(RABAT, b"\x00garbage")
        assert (await w.client.get("/v1/metrics")).status_code == 404  # not on the bureaus' API
        ops = metrics_app(w.app.state.metrics, w.store.queue_depths)
        transport = httpx.ASGITransport(app=ops)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as client:
            text = (await client.get("/metrics")).text
        assert "ncbr_submissions_total 1.0" in text
        assert "ncbr_deliveries_total 1.0" in text
        assert 'ncbr_rejections_total{code="malformed",status="400"} 1.0' in text
        assert 'ncbr_queue_depth{mailbox="MA.ncb-rabat"} 1.0' in text
        assert 'ncbr_queue_depth{mailbox="FR.ncb-paris"} 1.0' in text
        assert 'ncbr_request_seconds_count{endpoint="submit"} 2.0' in text
