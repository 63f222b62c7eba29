"""The bureau's low-level client (ncb_relay.client) against a real relay on a loopback port.

Each test starts :func:`ncb_relay.relay.launch.run_relay` (as ``relay_node_world``
does, but in an anyio task group) and runs under trio and asyncio.  Faults are
injected by :class:`Flaky`, an ``httpx.AsyncBaseTransport`` wrapped around the
real network transport: it answers ``503``/``429`` itself, or forwards the
request and then drops the answer (a read timeout), a given number of times.
Backoff delays are tiny; nothing here measures time.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from directory_world import CHAIN, genesis, signed
from fixtures import seeded_rng
from ncb_relay import seal
from ncb_relay.client import Acceptance, RelayClient, RetryPolicy
from ncb_relay.errors import (
    BindingMismatch,
    MalformedInput,
    RelayRefused,
    RelayUnavailable,
    Replay,
    Rollback,
    SubmissionUnknown,
    UsageError,
)
from ncb_relay.lifecycle import next_version
from ncb_relay.relay.launch import run_relay
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW
from ncb_relay.verified_directory import verify_directory
from relay_node_world import (
    GUARD,
    PARIS,
    RABAT,
    RELAY,
    RELAY_SIGNER,
    SEOUL,
    Clock,
    bureaus,
    node_config,
)

IDS = bureaus()
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Flaky(httpx.AsyncBaseTransport):
    """Fail the first ``times`` requests to ``path`` as ``mode`` says, then forward them all."""

    def __init__(self, mode: str, times: int, path: str = "/v1/messages") -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.mode, self.times, self.path = mode, times, path
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != self.path or self.times <= 0:
            return await self.inner.handle_async_request(request)
        self.times -= 1
        self.bodies.append(await request.aread())
        if self.mode == "lost-answer":  # the relay gets the request; its answer never arrives
            response = await self.inner.handle_async_request(request)
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        status = 503 if self.mode == "busy" else 429
        problem = {"type": "urn:ncbr1:error:x", "title": "x", "status": status, "code": "x"}
        return httpx.Response(
            status,
            headers={"content-type": "application/problem+json", "retry-after": "0"},
            content=json.dumps(problem).encode(),
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def relay(tmp_path: Path) -> AsyncIterator[tuple[str, Clock]]:
    """A relay node on 127.0.0.1 (port 0) with an injected clock, stopped gracefully."""
    clock, stop = Clock(), anyio.Event()
    with anyio.fail_after(GUARD * 3):
        async with anyio.create_task_group() as tg:
            running = await tg.start(
                partial(
                    run_relay,
                    node_config(tmp_path),
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


def client(url: str, clock: Clock, who: str, **options: object) -> RelayClient:
    return RelayClient(
        url,
        relay_id=RELAY,
        identity=IDS[who],
        clock=clock,
        rng=seeded_rng(f"client {who} {id(options)}".encode()),
        retry=FAST,
        **options,  # type: ignore[arg-type]
    )


def sealed(
    clock: Clock, sender: str, *recipients: str, body: bytes = b"hi", seed: str = ""
) -> bytes:
    return seal(
        body,
        sender=IDS[sender],
        recipients=[IDS[r].public for r in recipients],
        now=clock(),
        seq=1,
        rng=seeded_rng(f"seal {seed or body!r}".encode()),
    ).data


@pytest.mark.anyio
async def test_submit_fetch_acknowledge_between_two_bureaus(tmp_path: Path) -> None:
    async with (
        relay(tmp_path) as (url, clock),
        client(url, clock, SEOUL) as seoul,
        client(url, clock, RABAT) as rabat,
    ):
        data = sealed(clock, SEOUL, RABAT, PARIS, body=b"a notice for Rabat")
        accepted = await seoul.submit(data)
        assert accepted.sender == SEOUL
        assert await seoul.submit(data) == accepted  # identical resubmission: same acceptance
        batch = await rabat.fetch(after=0, limit=10)
        (delivery,) = batch.messages
        assert (delivery.message_id, delivery.message_hash, delivery.sender) == (
            accepted.message_id,
            accepted.message_hash,
            SEOUL,
        )
        assert delivery.envelope == data
        assert delivery.attempt >= 1
        await rabat.acknowledge([delivery.message_id])
        assert (await rabat.fetch(after=batch.cursor)).messages == ()
        assert (await rabat.fetch()).messages == ()  # acknowledged, not merely past the cursor


@pytest.mark.anyio
async def test_refusals_map_to_the_library_errors(tmp_path: Path) -> None:
    async with relay(tmp_path) as (url, clock), client(url, clock, SEOUL) as seoul:
        await seoul.submit(sealed(clock, SEOUL, RABAT, body=b"one", seed="same id"))
        with pytest.raises(Replay):  # the same message id for other bytes: 409
            await seoul.submit(sealed(clock, SEOUL, RABAT, body=b"two", seed="same id"))
        with pytest.raises(MalformedInput):  # 400 malformed
            await seoul.submit(b"\x93not an envelope")
        async with client(url, clock, RABAT) as rabat:
            with pytest.raises(BindingMismatch):  # 403: a sender other than the signer
                await rabat.submit(sealed(clock, SEOUL, RABAT, body=b"forged"))
        wrong = RelayClient(url, relay_id="XP.other-relay", identity=IDS[SEOUL], clock=clock)
        async with wrong:
            with pytest.raises(BindingMismatch):  # 401: signed for another relay (AUTH-9)
                await wrong.fetch()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["busy", "rate-limited"])
async def test_busy_answers_are_retried_with_the_identical_bytes(tmp_path: Path, mode: str) -> None:
    async with relay(tmp_path) as (url, clock):
        flaky = Flaky(mode, times=2)
        async with client(url, clock, SEOUL, transport=flaky) as seoul:
            data = sealed(clock, SEOUL, RABAT)
            accepted = await seoul.submit(data)
            assert accepted.sender == SEOUL
            assert flaky.bodies == [data, data]
        flaky = Flaky(mode, times=10)
        async with client(url, clock, SEOUL, transport=flaky) as seoul:
            with pytest.raises(RelayUnavailable) as refused:  # refused each time: nothing stored
                await seoul.submit(sealed(clock, SEOUL, RABAT, body=b"later"))
            assert refused.value.status == (503 if mode == "busy" else 429)


@pytest.mark.anyio
async def test_a_lost_answer_is_unknown_and_resubmission_finds_the_acceptance(
    tmp_path: Path,
) -> None:
    async with relay(tmp_path) as (url, clock):
        data = sealed(clock, SEOUL, RABAT)
        flaky = Flaky("lost-answer", times=FAST.attempts)
        async with client(url, clock, SEOUL, transport=flaky) as seoul:
            with pytest.raises(SubmissionUnknown) as unknown:
                await seoul.submit(data)
            assert not isinstance(unknown.value, RelayUnavailable)
            assert flaky.bodies == [data] * FAST.attempts
            accepted: Acceptance = await seoul.submit(data)  # the relay held it all along
        async with client(url, clock, RABAT) as rabat:
            (delivery,) = (await rabat.fetch()).messages  # stored once, whatever the retries
            assert delivery.message_id == accepted.message_id


@pytest.mark.anyio
async def test_a_long_poll_returns_when_a_message_arrives(tmp_path: Path) -> None:
    async with (
        relay(tmp_path) as (url, clock),
        client(url, clock, SEOUL) as seoul,
        client(url, clock, RABAT) as rabat,
    ):
        batches = []

        async def long_poll() -> None:
            batches.append(await rabat.fetch(wait=15))

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(long_poll)
                await anyio.sleep(0.2)  # let the fetch start waiting (it answers either way)
                accepted = await seoul.submit(sealed(clock, SEOUL, RABAT))
        (batch,) = batches
        messages = batch.messages or (await rabat.fetch()).messages  # began after the commit
        assert [m.message_id for m in messages] == [accepted.message_id]


@pytest.mark.anyio
async def test_directory_is_verified_and_a_rollback_refused(tmp_path: Path) -> None:
    async with relay(tmp_path) as (url, clock), client(url, clock, SEOUL) as seoul:
        data = await seoul.directory()
        assert data == signed(genesis()[0])
        held = await seoul.verified_directory(anchors=CHAIN)
        assert held.serial == 1
        assert (await seoul.verified_directory(anchors=CHAIN, previous=held)).hash == held.hash
        newer = verify_directory(
            signed(next_version(genesis()[0], issued=clock())),
            anchors=CHAIN,
            now=clock(),
            previous=held,
        )
        with pytest.raises(Rollback):  # the relay serves version 1 to one who holds 2
            await seoul.verified_directory(anchors=CHAIN, previous=newer)


@pytest.mark.anyio
async def test_unknown_codes_and_garbage_answers_are_typed(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/directory":
            problem = {"type": "urn:ncbr1:error:not-found", "status": 404, "code": "not-found"}
            return httpx.Response(
                404, headers={"content-type": "application/problem+json"}, json=problem
            )
        return httpx.Response(200, content=b"x" * 100_000)  # far over the bound of a batch

    mock = httpx.MockTransport(answer)
    seoul = client("http://relay.test", Clock(), SEOUL, transport=mock, max_envelope_bytes=1024)
    async with seoul:
        with pytest.raises(RelayRefused) as refused:
            await seoul.directory()
        assert (refused.value.status, refused.value.remote_code) == (404, "not-found")
        with pytest.raises(RelayUnavailable):
            await seoul.fetch(limit=1)


@pytest.mark.parametrize(
    "base_url",
    ["http://[::1", "ftp://relay.example", "https://relay.example/v1", "https://relay.example?x=1"],
)
def test_a_base_url_that_is_not_an_origin_is_a_usage_error(base_url: str) -> None:
    with pytest.raises(UsageError, match="base_url"):
        RelayClient(base_url, relay_id=RELAY, identity=IDS[SEOUL])


class _StalledUpload(httpx.AsyncBaseTransport):
    """Takes the first chunk of a request body, then never answers (a write that hangs)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.stream
        assert isinstance(body, httpx.AsyncByteStream)
        async for _ in body:
            break  # the rest of the upload never happens
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


@pytest.mark.anyio
async def test_a_submission_cancelled_mid_upload_leaves_no_unfinished_body_stream() -> None:
    """httpx's own byte stream is an async generator that trio reports when it is dropped
    half-read (encode/httpx#3686); the client hands httpx a plain iterator instead."""
    client = RelayClient(
        "http://relay.test",
        relay_id=RELAY,
        identity=IDS[SEOUL],
        clock=lambda: 1_800_000_000,
        transport=_StalledUpload(),
    )
    with anyio.move_on_after(0.05):
        await client.submit(b"\x00" * 64)
    await client.aclose()
    gc.collect()  # a half-read async generator is finalised here, and trio warns
    await anyio.sleep(0)
