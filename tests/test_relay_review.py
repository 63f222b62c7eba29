"""Defects found by the relay's security review, each pinned by a test.

An abandoned long-poll, refusals from the request-limits middleware and
client disconnects inside the body read, trailing slashes and ``HEAD``, the
order of the declared length and the media type, and one bureau filling the
relay's nonce memory.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from fixtures import NOW, world
from ncb_relay import NonceCache
from ncb_relay.errors import LimitExceeded
from ncb_relay.relay.app import create_app
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.limits import RequestLimits, RequestLimitsMiddleware
from ncb_relay.relay.sqlite_store import open_sqlite_store
from relay_app_world import RABAT, RELAY, SEOUL, Clock, RelayWorld, problem, relay_world

pytestmark = pytest.mark.anyio

Message = MutableMapping[str, Any]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _scope(method: str, target: str, headers: dict[str, str]) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "scheme": "http",
        "server": ("relay", 80),
        "client": ("192.0.2.1", 1234),
        "headers": [(b"host", b"relay")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }


def _rejections(w: RelayWorld) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels.values()): sample.value
        for metric in w.context.metrics.rejections.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


@pytest.mark.req("API-9", "API-11")
async def test_an_abandoned_long_poll_frees_its_slot_and_leases_nothing(tmp_path: Path) -> None:
    async with relay_world(tmp_path, settings=AppSettings(max_wait=20)) as w:
        target = "/v1/mailbox?wait=20"
        scope = _scope("GET", target, w.sign(RABAT, "GET", target))
        gone = anyio.Event()
        sent: list[Message] = []
        messages: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        signals = w.context.signals
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(w.app, scope, receive, send)
                while signals.waiters(RABAT) == 0:
                    await anyio.sleep(0.01)
                gone.set()  # the client goes away while the fetch waits
                while signals.waiters(RABAT):
                    await anyio.sleep(0.01)
        assert signals.waiters(RABAT) == 0  # the slot is free long before max_wait
        assert (await w.submit(SEOUL, w.seal(SEOUL, RABAT).data)).status_code == 202
        fetched = (await w.fetch(RABAT)).json()["messages"]
        assert [m["attempt"] for m in fetched] == [1]  # nobody leased it to the dead socket


@pytest.mark.req("API-3", "API-19")
async def test_middleware_refusals_and_disconnects_are_not_internal_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ncb_relay")
    async with relay_world(tmp_path) as w:
        middleware = RequestLimitsMiddleware(
            w.app, RequestLimits(max_body_bytes=1024, body_deadline=0.2)
        )

        async def call(chunks: list[Message]) -> list[Message]:
            body = b"".join(c.get("body", b"") for c in chunks)
            headers = {
                "content-type": "application/octet-stream",
                "transfer-encoding": "chunked",
                **w.sign(SEOUL, "POST", "/v1/messages", body),
            }
            sent: list[Message] = []

            async def receive() -> Message:
                if chunks:
                    return chunks.pop(0)
                await anyio.sleep(3600)
                raise AssertionError("unreachable")

            async def send(message: Message) -> None:
                sent.append(message)

            with anyio.fail_after(10):
                await middleware(_scope("POST", "/v1/messages", headers), receive, send)
            return sent

        big = await call([{"type": "http.request", "body": b"a" * 2000, "more_body": True}])
        assert big[0]["status"] == 413
        slow = await call([{"type": "http.request", "body": b"a" * 10, "more_body": True}])
        assert slow[0]["status"] == 408
        left = await call(
            [
                {"type": "http.request", "body": b"a" * 10, "more_body": True},
                {"type": "http.disconnect"},
            ]
        )
        assert left
        assert left[0]["status"] < 500
        rejections = _rejections(w)
        assert not any("internal" in labels or "500" in labels for labels in rejections)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.req("API-1")
async def test_trailing_slashes_are_not_redirected_and_head_leases_nothing(
    tmp_path: Path,
) -> None:
    async with relay_world(tmp_path) as w:
        for path in ("/v1/mailbox/", "/v1/messages/", "/v1/health/", "/v1/nothing/"):
            response = await w.client.get(path, headers={"host": "evil.example"})
            assert response.status_code == 404, path
            assert "location" not in response.headers
            assert problem(response)["code"] == "not-found"
        assert (await w.submit(SEOUL, w.seal(SEOUL, RABAT).data)).status_code == 202
        head = await w.client.head("/v1/mailbox", headers=w.sign(RABAT, "HEAD", "/v1/mailbox"))
        assert head.status_code == 405
        assert head.headers["allow"] == "GET"
        fetched = (await w.fetch(RABAT)).json()["messages"]
        assert [m["attempt"] for m in fetched] == [1]
        assert (await w.client.head("/v1/health")).status_code == 200  # public GETs keep HEAD


@pytest.mark.req("API-3")
async def test_a_declared_length_is_refused_before_the_media_type(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        body = b"x" * (200 * 1024)  # over the 128 KiB acknowledgement limit, declared
        headers = {"content-type": "text/plain", **w.sign(SEOUL, "POST", "/v1/mailbox/ack", body)}
        response = await w.client.post("/v1/mailbox/ack", content=body, headers=headers)
        assert response.status_code == 413
        assert problem(response)["code"] == "limit-exceeded"


@pytest.mark.req("AUTH-17")
def test_the_nonce_cache_caps_live_nonces_per_principal() -> None:
    cache = NonceCache(since=None, max_skew=10, max_entries=100, max_per_principal=3)
    for i in range(3):
        cache.record(SEOUL, bytes([i]) * 16, NOW, NOW)
    with pytest.raises(LimitExceeded):
        cache.record(SEOUL, b"\x09" * 16, NOW, NOW)
    assert len(cache) == 3
    assert cache.live(SEOUL) == 3
    cache.record(RABAT, b"\x09" * 16, NOW, NOW)  # another principal is unaffected
    cache.record(SEOUL, b"\x09" * 16, NOW + 11, NOW + 11)  # the old ones are forgotten
    assert cache.live(SEOUL) == 1
    assert cache.live(RABAT) == 0
    with pytest.raises(Exception, match="max_per_principal"):
        NonceCache(since=None, max_per_principal=0)


@pytest.mark.req("AUTH-17", "API-10")
async def test_one_bureau_over_its_rate_cannot_fill_the_nonce_memory(tmp_path: Path) -> None:
    ids, static = world()
    clock = Clock(NOW)
    settings = AppSettings(rate_per_second=1, rate_burst=2, request_skew=0, max_nonces=5)
    assert settings.max_nonces_per_bureau == 2 + 1 * (2 * 0 + 1)
    async with open_sqlite_store(tmp_path / "relay.db") as store:
        app = create_app(
            relay_id=RELAY, directory=lambda: static, store=store, clock=clock, settings=settings
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            w = RelayWorld(app, client, store, clock, ids)
            statuses = [(await w.fetch(SEOUL)).status_code for _ in range(10)]
            assert statuses == [200, 200] + [429] * 8
            refused = await w.fetch(SEOUL)
            assert problem(refused)["code"] == "limit-exceeded"
            assert refused.headers["retry-after"]
            assert w.context.verifier.nonces.live(SEOUL) == 3
            assert (await w.fetch(RABAT)).status_code == 200
