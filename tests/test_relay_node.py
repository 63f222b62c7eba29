"""The whole relay node over real sockets: exchange, IDOR, purge, metrics listener, JSON logs.

Each test starts :func:`ncb_relay.relay.launch.run_relay` (anycorn, the relay app, a
SQLite store in ``tmp_path``, the signed genesis directory, an injected clock) on
127.0.0.1 port 0 and talks to it with ``httpx.AsyncClient`` over TCP.  Waits are
bounded loops under generous guards; nothing here measures time.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio

from directory_world import genesis
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.launch import RunningRelay, purge_expired_messages, purge_once, run_relay
from ncb_relay.relay.limits import ASGIApp, Receive, Scope, Send
from ncb_relay.relay.logs import JsonFormatter, configure_logging
from ncb_relay.relay.sqlite_store import open_sqlite_store
from ncb_relay.relay.storage_conformance import T0, make_submission
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


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- submit, long-poll, acknowledge over TCP ----------------------------------------------------


@pytest.mark.req("API-7", "API-8", "API-9", "API-12")
@pytest.mark.anyio
async def test_submit_long_poll_fetch_and_ack_over_a_real_socket(tmp_path: Path) -> None:
    async with running_node(node_config(tmp_path)) as node:
        b = node.bureaus
        assert (await b.client.get("/v1/health")).json() == {"status": "ok"}
        assert (await b.client.get("/v1/ready")).json() == {"status": "ready"}
        data = b.seal(SEOUL, RABAT, body=b"a notice for Rabat")
        answers: list[httpx.Response] = []

        async def long_poll() -> None:
            answers.append(await b.fetch(RABAT, "wait=15"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_poll)
            await trio.sleep(0.2)  # let the fetch start waiting (it answers either way)
            accepted = await b.submit(SEOUL, data)
        assert accepted.status_code == 202, accepted.text
        message_id = accepted.json()["messageId"]
        (waited,) = answers
        assert waited.status_code == 200
        messages = waited.json()["messages"]
        if not messages:  # the wait began after the submission committed: fetch again
            messages = (await b.fetch(RABAT)).json()["messages"]
        (delivery,) = messages
        assert delivery["messageId"] == message_id
        assert delivery["sender"] == SEOUL
        assert _b64decode(delivery["envelope"]) == data  # the exact bytes, never opened
        assert (await b.ack(RABAT, message_id)).status_code == 204
        empty = await b.fetch(RABAT)
        assert empty.json()["messages"] == []


@pytest.mark.req("API-13", "AUTH-16")
@pytest.mark.anyio
async def test_no_bureau_reaches_another_mailbox_over_a_real_socket(tmp_path: Path) -> None:
    async with running_node(node_config(tmp_path)) as node:
        b = node.bureaus
        accepted = await b.submit(SEOUL, b.seal(SEOUL, RABAT, body=b"for Rabat only"))
        assert accepted.status_code == 202
        message_id = accepted.json()["messageId"]
        # Paris sees nothing of Rabat's mailbox, and its acknowledgement of Rabat's
        # message is answered like any other and deletes nothing
        assert (await b.fetch(PARIS)).json() == {"cursor": 0, "messages": []}
        assert (await b.ack(PARIS, message_id)).status_code == 204
        unknown = "ab" * 32
        assert (await b.ack(PARIS, unknown)).status_code == 204
        # no route names a mailbox: a path or query naming one is refused alike
        for target in ("/v1/mailbox/MA.ncb-rabat", "/v1/mailbox/XX.ncb-nobody"):
            answer = await b.client.get(target, headers=b.sign(PARIS, "GET", target))
            assert answer.status_code == 404
            assert answer.json()["code"] == "not-found"
        for query in ("mailbox=MA.ncb-rabat", "mailbox=XX.ncb-nobody"):
            answer = await b.fetch(PARIS, query)
            assert answer.status_code == 400
            assert answer.json()["code"] == "malformed"
        # a request signed by Paris but claiming Rabat fails authentication
        target = "/v1/mailbox"
        refused = await b.client.get(target, headers=b.sign(PARIS, "GET", target, claim=RABAT))
        assert refused.status_code == 401
        # Rabat still has its message
        (delivery,) = (await b.fetch(RABAT)).json()["messages"]
        assert delivery["messageId"] == message_id


# --- the purge of expired messages --------------------------------------------------------------


@pytest.mark.req("API-11")
@pytest.mark.anyio
async def test_purge_once_repeats_while_a_batch_comes_back_full(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "store.db") as store:
        for number in range(5):
            await store.accept(make_submission(SEOUL, (RABAT,), number, expires=T0 + 10), now=T0)
        await store.accept(make_submission(SEOUL, (RABAT,), 99, expires=T0 + 1000), now=T0)
        assert await purge_once(store, now=T0 + 9, batch=2) == 0
        assert await purge_once(store, now=T0 + 10, batch=2) == 5  # batches of 2, 2, 1
        assert await store.queue_depth(RABAT) == 1


@pytest.mark.req("API-11")
@pytest.mark.anyio
async def test_the_purge_task_runs_every_interval_on_the_injected_clock(tmp_path: Path) -> None:
    clock = Clock(T0)
    async with open_sqlite_store(tmp_path / "store.db") as store, trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: purge_expired_messages(store, clock=clock, interval=0.01, batch=3)
        )
        for number in range(7):
            submission = make_submission(SEOUL, (RABAT, PARIS), number, expires=T0 + 100)
            await store.accept(submission, now=T0)
        await trio.sleep(0.1)  # several passes: nothing has expired on this clock
        assert await store.queue_depth(RABAT) == 7
        clock.now = T0 + 100
        with trio.fail_after(GUARD):
            while await store.queue_depth(RABAT) or await store.queue_depth(PARIS):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


@pytest.mark.req("API-11")
@pytest.mark.anyio
async def test_the_running_relay_purges_expired_messages(tmp_path: Path) -> None:
    config = node_config(tmp_path, purge={"interval": 0.05, "batch": 1})
    async with running_node(config) as node:
        b = node.bureaus
        for n in range(3):
            data = b.seal(SEOUL, RABAT, body=b"short-lived %d" % n, ttl=600)
            assert (await b.submit(SEOUL, data)).status_code == 202
        assert _stored_messages(config.database) == 3
        node.clock.now += 600
        with trio.fail_after(GUARD):
            while _stored_messages(config.database):
                await trio.sleep(0.02)
        assert (await b.fetch(RABAT)).json()["messages"] == []


def _stored_messages(database: Path) -> int:
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (count,) = connection.execute("SELECT count(*) FROM messages").fetchone()
        return int(count)
    finally:
        connection.close()


# --- the operator's metrics listener ------------------------------------------------------------


@pytest.mark.req("API-17")
@pytest.mark.anyio
async def test_metrics_are_served_on_the_operator_listener_only(tmp_path: Path) -> None:
    config = node_config(tmp_path, metrics={"port": 0})
    async with running_node(config) as node:
        b = node.bureaus
        assert node.running.metrics is not None
        assert node.running.metrics.host == "127.0.0.1"
        assert node.running.metrics.port != node.running.api.port
        assert (await b.submit(SEOUL, b.seal(SEOUL, RABAT))).status_code == 202
        async with httpx.AsyncClient(base_url=node.running.metrics.url, timeout=GUARD) as operator:
            scraped = await operator.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            assert "ncbr_submissions_total 1.0" in scraped.text
            assert f'ncbr_queue_depth{{mailbox="{RABAT}"}} 1.0' in scraped.text
            assert (await operator.get("/v1/health")).status_code == 404  # metrics only
        on_api = await b.client.get("/metrics")
        assert on_api.status_code == 404
        assert on_api.json()["code"] == "not-found"
        assert "ncbr_" not in on_api.text


def test_the_metrics_listener_is_off_unless_a_port_is_configured(tmp_path: Path) -> None:
    assert node_config(tmp_path).metrics.listen(node_config(tmp_path).listen) is None
    config = node_config(tmp_path, metrics={"port": 9464})
    listen = config.metrics.listen(config.listen)
    assert listen is not None
    assert (listen.host, listen.port) == ("127.0.0.1", 9464)


# --- JSON logs ----------------------------------------------------------------------------------

PLAINTEXT = b"CANARY-PLAINTEXT the suspect's passport number is X1234567"
PASSPHRASE = "CANARY-PASSPHRASE correct horse"


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    handler = configure_logging("debug", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for old in old_handlers:
            root.addHandler(old)
        root.setLevel(old_level)


@pytest.mark.anyio
async def test_json_logs_name_events_and_never_carry_plaintext_keys_or_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NCB_RELAY_PASSPHRASE", PASSPHRASE)
    secrets_seen: list[str] = []
    with captured_logs() as stream:
        async with running_node(node_config(tmp_path)) as node:
            b = node.bureaus
            data = b.seal(SEOUL, RABAT, body=PLAINTEXT)
            headers = {
                "content-type": "application/octet-stream",
                **b.sign(SEOUL, "POST", "/v1/messages", data),
            }
            secrets_seen.append(headers["authorization"])
            accepted = await b.client.post("/v1/messages", content=data, headers=headers)
            assert accepted.status_code == 202
            message_id = accepted.json()["messageId"]
            refused = await b.client.post(
                "/v1/messages", content=data, headers={**headers}
            )  # the same credentials again: a replayed nonce
            assert refused.status_code == 401
            fetched = await b.fetch(RABAT)
            assert fetched.status_code == 200
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert {"time", "level", "logger", "event"} <= set(line), line
        assert line["time"].endswith("Z")
    submit = [line for line in lines if line["event"] == "accepted"]
    assert len(submit) == 1
    assert submit[0]["principal"] == SEOUL
    assert submit[0]["message_id"] == message_id
    assert submit[0]["status"] == 202
    assert submit[0]["endpoint"] == "submit"
    assert isinstance(submit[0]["duration_ms"], float)
    refusals = [line for line in lines if line["event"] == "refused"]
    assert [(r["status"], r["code"]) for r in refusals] == [(401, "replay")]
    served = [line for line in lines if line["event"] == "served"]
    assert any(line["endpoint"] == "fetch" and line["principal"] == RABAT for line in served)
    assert any(line["event"] == "started" for line in lines)
    # nothing secret, in any encoding a careless log line might use
    forbidden = [PLAINTEXT.decode(), "CANARY", PASSPHRASE, *secrets_seen]
    for principal in (SEOUL, RABAT):
        keys = genesis()[1][principal]
        forbidden += _encodings(keys.signer.seed)
        forbidden += [s for key in keys.encryption for s in _encodings(key.secret)]
    forbidden += _encodings(data[-64:])  # a slice of the envelope's ciphertext and signature
    for secret in forbidden:
        assert secret not in text, secret


def _encodings(data: bytes) -> list[str]:
    return [
        data.hex(),
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
    ]


def test_the_json_formatter_writes_one_object_per_line_with_its_fields() -> None:
    record = logging.LogRecord("ncb_relay.relay.app", logging.WARNING, "f", 1, "refused", (), None)
    record.fields = {"status": 429, "code": "limit-exceeded", "event": "not this"}
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "refused"  # a field never replaces the four fixed members
    assert (line["level"], line["logger"], line["status"]) == (
        "warning",
        "ncb_relay.relay.app",
        429,
    )
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logging.LogRecord("x", logging.ERROR, "f", 1, "server-error", (), sys.exc_info())
    formatted = JsonFormatter().format(failing)
    assert "\n" not in formatted
    assert "ValueError" in json.loads(formatted)["exception"]


# --- the hooks of run_relay: settings and a wrapped application ----------------------------------


@pytest.mark.anyio
async def test_run_relay_serves_the_given_settings_behind_the_given_wrapper(tmp_path: Path) -> None:
    """``settings`` replace the configuration's; ``wrap_app`` wraps the bureaus' API only."""
    seen: list[str] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(str(scope["path"]))
            await app(scope, receive, send)

        return wrapped

    clock = Clock()
    stop = trio.Event()
    config = node_config(tmp_path)
    with trio.fail_after(GUARD * 3):
        async with trio.open_nursery() as nursery:
            running: RunningRelay = await nursery.start(
                lambda task_status: run_relay(
                    config,
                    clock=clock,
                    task_status=task_status,
                    shutdown_trigger=stop.wait,
                    signer=RELAY_SIGNER,
                    settings=AppSettings(max_batch=1),
                    wrap_app=wrap,
                )
            )
            async with httpx.AsyncClient(base_url=running.api.url, timeout=GUARD) as client:
                b = Bureaus(client, clock)
                for _ in range(2):
                    assert (await b.submit(SEOUL, b.seal(SEOUL, RABAT))).status_code == 202
                batch = (await b.fetch(RABAT)).json()
                assert len(batch["messages"]) == 1, "max_batch=1 came from the settings"
                refused = await b.fetch(RABAT, "limit=2")
                assert refused.status_code == 400, "a limit above the settings' batch"
            stop.set()
    assert seen[:3] == ["/v1/messages", "/v1/messages", "/v1/mailbox"]
