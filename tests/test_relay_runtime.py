"""The relay's server over real loopback sockets: the crash requests, the limits, shutdown.

A small real ASGI app (not the relay's) is served by :func:`ncb_relay.relay.runtime.serve`
on 127.0.0.1 port 0 inside a trio nursery.  Every hostile request is followed by a normal
one on a fresh connection: the server must still answer it.  Waits are bounded by generous
deadlines that only guard against a hang; nothing here measures time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trio

from directory_world import ANCHOR_FILE, RELAY, ROOTS, T0, genesis, member, signed
from ncb_relay.cli import main
from ncb_relay.errors import ProtocolError
from ncb_relay.relay.config import RelayConfig, config_from_mapping
from ncb_relay.relay.launch import RunningRelay, load_trusted_directory, run_relay
from ncb_relay.relay.limits import Receive, Scope, Send
from ncb_relay.relay.runtime import ListeningAddress, serve

GUARD = 10.0  # seconds; a guard against hangs, never an expectation


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


class SmallApp:
    """A real ASGI app: ``/echo`` reads its body, ``/early`` answers before reading it,
    ``/slow`` waits for ``release``; anything else is ``200 ok``."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.slow_started = trio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "http"
        path = scope["path"]
        if path == "/echo":
            size, more = 0, True
            while more:
                message = await receive()
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
            await _answer(send, 200, b"%d" % size)
        elif path == "/early":
            await _answer(send, 404, b"not here")
        elif path == "/slow":
            self.slow_started.set()
            await self.release.wait()
            await _answer(send, 200, b"finished")
        else:
            await _answer(send, 200, b"ok")


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _config(**limits: Any) -> RelayConfig:
    return config_from_mapping(
        {
            "relay_id": "XP.relay-test",
            "database": "unused.db",
            "keystore": "unused.keystore",
            "directory": "unused.signed",
            "anchors": ["unused.signed"],
            "listen": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": GUARD},
            "limits": limits,
        }
    )


@asynccontextmanager
async def running(app: SmallApp, **limits: Any) -> AsyncIterator[ListeningAddress]:
    async with trio.open_nursery() as nursery:
        address: ListeningAddress = await nursery.start(serve, app, _config(**limits))
        yield address
        nursery.cancel_scope.cancel()


async def exchange(address: ListeningAddress, data: bytes, *, pause: float = 0.0) -> bytes:
    """Send ``data`` (split in two around ``pause`` if asked) and read until the peer closes."""
    received = b""
    with trio.move_on_after(GUARD):
        stream = await trio.open_tcp_stream(address.host, address.port)
        async with stream:
            await stream.send_all(data)
            with trio.move_on_after(2.0):  # a kept-alive connection never closes by itself
                while chunk := await stream.receive_some(65536):
                    received += chunk
    return received


async def still_serving(address: ListeningAddress) -> None:
    reply = await exchange(address, b"GET / HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert reply.endswith(b"ok")


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _request(method: str, path: str, headers: str = "", body: bytes = b"") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: relay\r\n{headers}\r\n".encode() + body


# --- the crash requests (README, "Choosing the server") ------------------------------------


@pytest.mark.anyio
async def test_h2c_post_answered_before_its_body_is_read_leaves_the_server_serving() -> None:
    app = SmallApp()
    async with running(app) as address:
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        stream_id = client.get_next_available_stream_id()
        client.send_headers(
            stream_id,
            [(":method", "POST"), (":path", "/early"), (":scheme", "http"), (":authority", "r")],
        )
        client.send_data(stream_id, b"a" * 1000)
        statuses: list[bytes] = []
        with trio.fail_after(GUARD):
            stream = await trio.open_tcp_stream(address.host, address.port)
            async with stream:
                await stream.send_all(client.data_to_send())
                while not statuses:
                    data = await stream.receive_some(65536)
                    assert data, "the server closed the connection without answering"
                    for event in client.receive_data(data):
                        if isinstance(event, h2.events.ResponseReceived):
                            statuses += [v for k, v in event.headers if k == b":status"]
                await trio.sleep(0.2)  # the rest of the body arrives after the answer
                client.send_data(stream_id, b"b" * 1000, end_stream=True)
                await stream.send_all(client.data_to_send())
                await trio.sleep(0.2)
        assert statuses == [b"404"]
        await still_serving(address)


@pytest.mark.anyio
async def test_websocket_upgrade_followed_by_one_byte_is_refused_and_the_server_serves() -> None:
    app = SmallApp()
    async with running(app) as address:
        reply = await exchange(
            address,
            _request(
                "GET",
                "/ws",
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            )
            + b"X",
        )
        assert _status(reply) == 403  # the middleware closes every websocket before accepting
        await still_serving(address)


@pytest.mark.anyio
async def test_a_60_kb_header_block_in_one_read_gets_431_and_the_server_serves() -> None:
    app = SmallApp()
    async with running(app) as address:
        fields = "".join(f"X-Field-{i}: {'v' * 90}\r\n" for i in range(600))
        request = _request("GET", "/", fields + "Connection: keep-alive\r\n")
        assert len(request) > 60_000
        reply = await exchange(address, request)
        assert _status(reply) == 431
        assert b"connection: close" in reply.lower()
        assert b'"code":"limit-exceeded"' in reply
        await still_serving(address)


@pytest.mark.anyio
async def test_content_length_with_transfer_encoding_gets_400_and_close() -> None:
    app = SmallApp()
    async with running(app) as address:
        request = _request(
            "POST", "/echo", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"
        )
        for _ in range(3):
            reply = await exchange(address, request)
            assert _status(reply) == 400
            assert b"connection: close" in reply.lower()
            assert b'"code":"malformed"' in reply
        await still_serving(address)


@pytest.mark.anyio
async def test_a_request_smuggled_behind_content_length_and_transfer_encoding_is_not_served() -> (
    None
):
    # anycorn may close such a connection before the 400 is written (the pipelined bytes
    # meet a connection that must close): the client gets the 400 or nothing, never a
    # second response
    app = SmallApp()
    async with running(app) as address:
        smuggled = _request("GET", "/smuggled")
        for _ in range(5):
            reply = await exchange(
                address,
                _request(
                    "POST",
                    "/echo",
                    f"Content-Length: {5 + len(smuggled)}\r\nTransfer-Encoding: chunked\r\n",
                    b"0\r\n\r\n" + smuggled,
                ),
            )
            assert reply.count(b"HTTP/1.1 ") <= 1
            assert not reply or _status(reply) == 400
        await still_serving(address)


# --- the limits over the wire ---------------------------------------------------------------


@pytest.mark.anyio
async def test_declared_oversized_body_gets_413_before_any_of_it_is_sent() -> None:
    app = SmallApp()
    async with running(app, max_body_bytes=1024) as address:
        reply = await exchange(address, _request("POST", "/echo", "Content-Length: 1025\r\n"))
        assert _status(reply) == 413
        assert b"application/problem+json" in reply
        await still_serving(address)


@pytest.mark.req("API-19")
@pytest.mark.anyio
async def test_an_answer_before_the_body_arrived_says_the_connection_closes() -> None:
    """The server closes a connection whose request body was never read; the client is told.

    Without ``Connection: close`` a client reuses the connection for its next
    request and finds it closed ("server disconnected without a response").
    """
    app = SmallApp()
    async with running(app) as address:
        received = b""
        with trio.move_on_after(GUARD):
            stream = await trio.open_tcp_stream(address.host, address.port)
            async with stream:
                await stream.send_all(_request("POST", "/early", "Content-Length: 5\r\n"))
                while b"not here" not in received:
                    received += await stream.receive_some(65536)
        head = received.split(b"\r\n\r\n", 1)[0].lower()
        assert _status(received) == 404
        assert b"\r\nconnection: close" in head, head
        reply = await exchange(address, _request("POST", "/early", "Content-Length: 0\r\n"))
        assert b"connection: close" not in reply.lower(), "a request without a body stays open"
        await still_serving(address)


@pytest.mark.anyio
async def test_streamed_body_passing_the_limit_gets_413() -> None:
    app = SmallApp()
    async with running(app, max_body_bytes=1024) as address:
        chunks = b"".join(b"200\r\n" + b"x" * 0x200 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        reply = await exchange(
            address, _request("POST", "/echo", "Transfer-Encoding: chunked\r\n", chunks)
        )
        assert _status(reply) == 413
        assert b'"code":"limit-exceeded"' in reply
        await still_serving(address)


@pytest.mark.anyio
async def test_body_within_the_limits_reaches_the_app() -> None:
    app = SmallApp()
    async with running(app, max_body_bytes=1024) as address:
        reply = await exchange(
            address,
            _request("POST", "/echo", "Content-Length: 1000\r\nConnection: close\r\n", b"y" * 1000),
        )
        assert _status(reply) == 200
        assert reply.endswith(b"1000")


@pytest.mark.anyio
async def test_body_trickling_past_the_deadline_gets_408() -> None:
    app = SmallApp()
    async with running(app, body_deadline=0.5) as address:
        with trio.fail_after(GUARD):
            stream = await trio.open_tcp_stream(address.host, address.port)
            async with stream:
                await stream.send_all(_request("POST", "/echo", "Content-Length: 100\r\n", b"z"))
                reply = b""
                while chunk := await stream.receive_some(65536):  # the server closes
                    reply += chunk
        assert _status(reply) == 408
        assert b'"code":"limit-exceeded"' in reply
        await still_serving(address)


# --- shutdown -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_graceful_shutdown_refuses_new_connections_and_finishes_in_flight_requests() -> None:
    app = SmallApp()
    stop = trio.Event()
    replies: list[bytes] = []

    async def in_flight(address: ListeningAddress) -> None:
        replies.append(await exchange(address, _request("GET", "/slow", "Connection: close\r\n")))

    with trio.fail_after(GUARD * 2):
        async with trio.open_nursery() as nursery:
            address: ListeningAddress = await nursery.start(
                lambda task_status: serve(
                    app, _config(), task_status=task_status, shutdown_trigger=stop.wait
                )
            )
            nursery.start_soon(in_flight, address)
            await app.slow_started.wait()
            stop.set()
            while True:  # the listener closes soon after the trigger
                try:
                    probe = await trio.open_tcp_stream(address.host, address.port)
                except OSError:
                    break
                await probe.aclose()
                await trio.sleep(0.05)
            app.release.set()
        # serve returned by itself: the nursery closed without being cancelled
    assert len(replies) == 1
    assert _status(replies[0]) == 200
    assert replies[0].endswith(b"finished")


# --- the relay node: ncb-relay serve ---------------------------------------------------------


def _node_config(tmp_path: Path, directory: bytes) -> RelayConfig:
    (tmp_path / "anchor.signed").write_bytes(ANCHOR_FILE)
    (tmp_path / "directory.signed").write_bytes(directory)
    return config_from_mapping(
        {
            "relay_id": "XP.relay-lyon",
            "database": "relay.db",
            "keystore": "relay.keystore",
            "directory": "directory.signed",
            "anchors": ["anchor.signed"],
            "listen": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": GUARD},
        },
        base=tmp_path,
    )


@pytest.mark.anyio
async def test_run_relay_serves_the_relay_app_behind_the_limits_and_stops(tmp_path: Path) -> None:
    config = _node_config(tmp_path, signed(genesis()[0]))
    stop = trio.Event()
    with trio.fail_after(GUARD * 2):
        async with trio.open_nursery() as nursery:
            running: RunningRelay = await nursery.start(
                lambda task_status: run_relay(
                    config,
                    clock=lambda: T0 + 60,
                    task_status=task_status,
                    shutdown_trigger=stop.wait,
                    signer=member(RELAY).signer,
                )
            )
            address = running.api
            assert running.metrics is None  # off unless configured
            reply = await exchange(address, _request("GET", "/v1/health", "Connection: close\r\n"))
            assert _status(reply) == 200
            framing = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
            reply = await exchange(address, _request("POST", "/v1/messages", framing, b"0\r\n\r\n"))
            assert _status(reply) == 400
            assert b'"type":"urn:ncbr1:error:malformed"' in reply
            stop.set()
        # run_relay returned by itself once the trigger fired
    assert (tmp_path / "relay.db").is_file()


def test_run_relay_refuses_a_directory_its_anchors_did_not_sign(tmp_path: Path) -> None:
    config = _node_config(tmp_path, signed(genesis()[0], ROOTS[3], ROOTS[4]))
    with pytest.raises(ProtocolError) as caught:
        load_trusted_directory(config, now=T0 + 60)
    assert str(config.directory) in caught.value.__notes__


def test_serve_command_reports_a_bad_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 1
    assert "ncb-relay serve:" in capsys.readouterr().err
