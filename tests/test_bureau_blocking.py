"""BlockingBureau (ncb_relay.bureau.blocking): the same bureau for code that does not use async.

The relay node and the coordinator run on the test's event loop (trio or
asyncio); each BlockingBureau runs in a worker thread, as plain code would,
with its own portal loop on the same backend.  Its handlers are plain
functions; it sends and asks with plain calls.  Nothing here measures time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from bureau_world import FAST, GS, IDS, bureau, relay_node, until
from directory_world import CHAIN
from fixtures import seeded_rng
from message_samples import H0, RABAT, SEOUL, acknowledgement, request, response, status
from ncb_relay.bureau import BlockingBureau, Incoming, RowState
from ncb_relay.messages import (
    AssistanceRequest,
    AssistanceResponse,
    Conversation,
    RequestState,
)
from relay_node_world import RELAY, Clock

GUARD = 60.0


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def blocking(
    url: str, clock: Clock, who: str, tmp_path: Path, backend: str, **options: Any
) -> BlockingBureau:
    return BlockingBureau(
        IDS[who],
        backend=backend,
        relay_url=url,
        relay_id=RELAY,
        store=tmp_path / f"{who}.db",
        coordinator=GS,
        anchors=CHAIN,
        clock=clock,
        rng=seeded_rng(f"blocking {who}".encode()),
        retry=FAST,
        poll_wait=1,
        retry_interval=0.2,
        **options,
    )


def rabat_answers(incoming: Incoming) -> None:
    """A plain handler: it runs in a worker thread and queues its replies."""
    assert threading.current_thread() is not threading.main_thread()
    answer(incoming)


def answer(incoming: Incoming) -> None:
    assert incoming.forwarded is not None
    assert incoming.author == SEOUL
    incoming.reply(acknowledgement(handling=H0))
    incoming.reply(status())
    incoming.reply(response(handling=H0))


async def in_thread(work: Callable[[], None], stop: threading.Event) -> None:
    """Run ``work`` in a worker thread; tell it to stop (``stop``) if the test ends first."""
    try:
        await anyio.to_thread.run_sync(work)
    finally:
        stop.set()


@pytest.mark.anyio
async def test_a_blocking_bureau_answers_an_async_request(
    tmp_path: Path, anyio_backend: str
) -> None:
    up, stop = threading.Event(), threading.Event()
    handled: list[list[Any]] = []

    def rabat_side() -> None:
        with blocking(
            url, clock, RABAT, tmp_path, anyio_backend, handlers={AssistanceRequest: rabat_answers}
        ) as rabat:
            up.set()
            stop.wait(GUARD)
            # Seoul may hear the last reply while an earlier one's receipt is still being checked
            settled = time.monotonic() + GUARD
            while any(r.state is not RowState.ACCEPTED for r in rabat.outbox()):
                if time.monotonic() > settled:
                    break
                time.sleep(0.02)
            handled.append([r.state for r in rabat.inbox()])
            handled.append([r.state for r in rabat.outbox()])

    async def forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None:
            await gs.forward(incoming, to=[RABAT, SEOUL])

    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: forwards}) as gs,
        bureau(url, clock, SEOUL, tmp_path) as seoul,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(in_thread, rabat_side, stop)
        try:
            with anyio.fail_after(GUARD):
                await until(up.is_set)
                conversation = await seoul.request(request(handling=H0), to=[GS], timeout=GUARD)
        finally:
            stop.set()
    assert conversation.state is RequestState.ANSWERED
    answers = [s for s in conversation.steps if isinstance(s.body, AssistanceResponse)]
    assert [s.sender for s in answers] == [RABAT]
    assert handled == [[RowState.HANDLED], [RowState.ACCEPTED] * 3]


@pytest.mark.anyio
async def test_plain_code_sends_and_asks_through_blocking_bureaus(
    tmp_path: Path, anyio_backend: str
) -> None:
    up, stop = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def rabat_side() -> None:
        with blocking(
            url, clock, RABAT, tmp_path, anyio_backend, handlers={AssistanceRequest: rabat_answers}
        ):
            up.set()
            stop.wait(GUARD)

    def seoul_side() -> None:
        up.wait(GUARD)
        with blocking(url, clock, SEOUL, tmp_path, anyio_backend) as seoul:
            conversation: Conversation = seoul.request(request(handling=H0), to=[GS], timeout=GUARD)
            results["state"] = conversation.state
            results["steps"] = [type(s.body) for s in conversation.steps]
            results["same"] = seoul.conversation(conversation.request_hash) is conversation
            sent = seoul.send(request(handling=H0), to=[GS])
            results["sent"] = sent.state
            results["outbox"] = [r.state for r in seoul.outbox()]
            results["inbox"] = [r.state for r in seoul.inbox()]
            results["flush"] = seoul.flush()

    async def forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None and incoming.sender == SEOUL and not forwarded:
            forwarded.append(incoming)
            await gs.forward(incoming, to=[RABAT, SEOUL])

    forwarded: list[Incoming] = []
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: forwards}) as gs,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(in_thread, rabat_side, stop)
        with anyio.fail_after(GUARD):
            try:
                await anyio.to_thread.run_sync(seoul_side)
            finally:
                stop.set()
            await until(lambda: [r.sender for r in gs.inbox()].count(SEOUL) == 2)
    assert results["state"] is RequestState.ANSWERED
    assert AssistanceResponse in results["steps"]
    assert results["same"] is True
    assert results["sent"] is RowState.ACCEPTED
    assert results["outbox"] == [RowState.ACCEPTED, RowState.ACCEPTED]
    assert results["inbox"] == [RowState.HANDLED] * 4  # the forward, three replies
    assert results["flush"] == []


@pytest.mark.anyio
async def test_a_blocking_coordinator_forwards_from_its_plain_handler(
    tmp_path: Path, anyio_backend: str
) -> None:
    """The plain handler calls the blocking bureau itself (from its worker thread)."""
    up, stop = threading.Event(), threading.Event()
    holder: list[BlockingBureau] = []
    failed: list[Incoming] = []
    rows: list[list[Any]] = []

    def forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None and incoming.sender == SEOUL:
            if not failed:
                failed.append(incoming)
                raise RuntimeError("the first one fails")
            holder[0].forward(incoming, to=[RABAT, SEOUL], note="Please assist NCB Seoul.")

    def coordinator_side() -> None:
        with blocking(
            url, clock, GS, tmp_path, anyio_backend, handlers={AssistanceRequest: forwards}
        ) as gs:
            holder.append(gs)
            up.set()
            stop.wait(GUARD)
            rows.append([(r.state, r.detail) for r in gs.inbox() if r.sender == SEOUL])

    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: _async(answer)}),
        bureau(url, clock, SEOUL, tmp_path) as seoul,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(in_thread, coordinator_side, stop)
        try:
            with anyio.fail_after(GUARD):
                await until(up.is_set)
                ignored = await seoul.send(request(handling=H0), to=[GS])
                conversation = await seoul.request(request(handling=H0), to=[GS], timeout=GUARD)
        finally:
            stop.set()
    assert conversation.state is RequestState.ANSWERED
    assert failed[0].message_id == ignored.message_id
    assert seoul.conversations.get(ignored.message_hash).state is RequestState.SENT
    assert rows == [[(RowState.FAILED, "handler raised RuntimeError"), (RowState.HANDLED, None)]]


def _async(handler: Callable[[Incoming], None]) -> Callable[[Incoming], Any]:
    async def run(incoming: Incoming) -> None:
        handler(incoming)

    return run
