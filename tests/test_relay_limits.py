"""The request limits in process (fast), the relay configuration, and ``ncb-relay relay``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from ncb_relay.cli import main
from ncb_relay.errors import UsageError
from ncb_relay.relay.config import config_from_mapping, load_config
from ncb_relay.relay.launch import app_settings
from ncb_relay.relay.limits import (
    Message,
    Receive,
    RequestLimits,
    RequestLimitsMiddleware,
    Scope,
    Send,
)
from ncb_relay.relay.sqlite_store import open_sqlite_store
from ncb_relay.relay.storage_conformance import make_submission

SENDER, RECIPIENT = "KR.ncb.seoul", "MA.ncb.rabat"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"%d" % size
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _call(
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes | None],
    *,
    app: Any = _echo,
    http_version: str = "1.1",
    **limits: Any,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Run one request through the middleware; ``None`` in ``chunks`` means "never arrives"."""
    middleware = RequestLimitsMiddleware(app, RequestLimits(**limits))
    scope = {"type": "http", "http_version": http_version, "headers": headers, "path": "/"}
    pending = list(chunks)
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = pending.pop(0) if pending else b""
        if chunk is None:
            await anyio.sleep_forever()
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await middleware(scope, receive, send)
    start, *rest = sent
    return (
        start["status"],
        dict(start["headers"]),
        b"".join(m.get("body", b"") for m in rest),
    )


@pytest.mark.anyio
async def test_a_body_within_the_limit_reaches_the_app() -> None:
    status, _, body = await _call([(b"content-length", b"6")], [b"abc", b"def"])
    assert (status, body) == (200, b"6")


@pytest.mark.req("API-19")
@pytest.mark.anyio
async def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    async def reads(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise AssertionError("no byte of the body may reach the app")

    status, headers, body = await _call(
        [(b"content-length", b"11")], [None], app=reads, max_body_bytes=10
    )
    assert status == 413
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"
    problem = json.loads(body)
    assert problem["code"] == "limit-exceeded"
    assert problem == {
        "type": "urn:ncbr1:error:limit-exceeded",
        "title": problem["title"],
        "status": 413,
        "code": "limit-exceeded",
    }


@pytest.mark.req("API-3")
@pytest.mark.anyio
async def test_the_app_refuses_first_when_it_refuses_before_reading_an_oversized_body() -> None:
    """API-3: authentication (steps 1 to 8 of AUTH-15) comes before the declared length."""

    async def authenticates(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"refused"})

    status, _, body = await _call(
        [(b"content-length", b"11")], [None], app=authenticates, max_body_bytes=10
    )
    assert (status, body) == (401, b"refused")


@pytest.mark.anyio
async def test_a_streamed_body_passing_the_limit_gets_413_even_if_the_app_catches_it() -> None:
    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _echo(scope, receive, send)
        except Exception:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"oops"})

    status, _, body = await _call(
        [(b"transfer-encoding", b"chunked")], [b"x" * 6, b"x" * 6], app=stubborn, max_body_bytes=10
    )
    assert status == 413
    assert json.loads(body)["code"] == "limit-exceeded"


@pytest.mark.req("API-19")
@pytest.mark.anyio
async def test_a_body_that_never_finishes_gets_408() -> None:
    status, _, body = await _call([(b"content-length", b"10")], [b"abc", None], body_deadline=0.05)
    assert status == 408
    assert json.loads(body)["code"] == "limit-exceeded"


@pytest.mark.req("API-19")
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "limits"),
    [
        ([(b"x-a", b"v" * 200)], {"max_header_bytes": 100}),
        ([(b"x-%d" % i, b"v") for i in range(11)], {"max_header_count": 10}),
    ],
    ids=["bytes", "count"],
)
async def test_oversized_headers_get_431(
    headers: list[tuple[bytes, bytes]], limits: dict[str, Any]
) -> None:
    status, _, body = await _call(headers, [], **limits)
    assert status == 431
    assert json.loads(body)["code"] == "limit-exceeded"


@pytest.mark.req("API-19")
@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", b"5"), (b"content-length", b"5")],
        [(b"content-length", b"-5")],
    ],
    ids=["cl-and-te", "cl-twice", "cl-not-a-number"],
)
async def test_ambiguous_framing_gets_400_and_close(headers: list[tuple[bytes, bytes]]) -> None:
    status, response_headers, body = await _call(headers, [b"0\r\n\r\n"])
    assert status == 400
    assert response_headers[b"connection"] == b"close"
    assert json.loads(body)["code"] == "malformed"


@pytest.mark.anyio
async def test_http2_refusals_carry_no_connection_header() -> None:
    status, headers, _ = await _call(
        [(b"content-length", b"11")], [], http_version="2", max_body_bytes=10
    )
    assert status == 413
    assert b"connection" not in headers


@pytest.mark.anyio
async def test_websocket_scopes_are_closed_and_unknown_scopes_are_errors() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    middleware = RequestLimitsMiddleware(_echo)
    await middleware({"type": "websocket", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    with pytest.raises(UsageError):
        await middleware({"type": "webtransport"}, receive, send)


def test_limits_are_validated() -> None:
    with pytest.raises(UsageError):
        RequestLimits(max_body_bytes=0)
    with pytest.raises(UsageError):
        RequestLimits(body_deadline=float("nan"))


# --- configuration --------------------------------------------------------------------------

_MINIMAL = (
    'relay_id = "XP.relay-lyon"\ndatabase = "relay.db"\nkeystore = "relay.keystore"\n'
    'directory = "directory.signed"\nanchors = ["anchor-1.signed", "/etc/anchor-2.signed"]\n'
)


def test_config_loads_from_toml_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(_MINIMAL + "[limits]\nmax_body_bytes = 2048\n")
    config = load_config(path)
    assert config.relay_id == "XP.relay-lyon"
    assert config.database == tmp_path / "relay.db"
    assert config.anchors == (tmp_path / "anchor-1.signed", Path("/etc/anchor-2.signed"))
    assert config.limits.max_body_bytes == 2048
    assert config.limits.request_limits().max_body_bytes == 2048
    assert config.listen.port == 8443


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(_MINIMAL + "[listen]\nport = 9000\n")
    monkeypatch.setenv("NCB_RELAY_LISTEN__PORT", "9001")
    monkeypatch.setenv("NCB_RELAY_LIMITS__BODY_DEADLINE", "5")
    config = load_config(path)
    assert config.listen.port == 9001
    assert config.limits.body_deadline == 5.0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (_MINIMAL + "[limits]\nmax_body_bytes = 0\n", "limits.max_body_bytes"),
        (_MINIMAL + "[limits]\nmax_body_byte = 10\n", "limits.max_body_byte"),
        (_MINIMAL.replace("XP.relay-lyon", "lyon"), "relay_id"),
        ('relay_id = "XP.relay-lyon"\n', "database"),
        (_MINIMAL.replace('"anchor-1.signed", "/etc/anchor-2.signed"', ""), "anchors"),
        ("relay_id = [", "not a TOML file"),
    ],
    ids=["out-of-range", "unknown-key", "bad-principal", "missing", "no-anchors", "not-toml"],
)
def test_invalid_configs_raise_usage_errors_naming_the_setting(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment.replace(".", r"\.")) as caught:
        load_config(path)
    assert str(path) in caught.value.__notes__


def test_a_bad_environment_override_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NCB_RELAY_LISTEN__PORT", "not-a-port")
    with pytest.raises(UsageError, match=r"listen\.port"):
        config_from_mapping(
            {
                "relay_id": "XP.relay-lyon",
                "database": "a",
                "keystore": "b",
                "directory": "c",
                "anchors": ["d"],
            }
        )


# --- ncb-relay relay init / backup -----------------------------------------------------------


def _init(directory: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("TEST_RELAY_PASSPHRASE", "correct horse battery staple")
    return main(
        [
            "relay",
            "init",
            "--dir",
            str(directory),
            "--relay-id",
            "XP.relay-lyon",
            "--passphrase-env",
            "TEST_RELAY_PASSPHRASE",
            "--kdf-profile",
            "interactive",
        ]
    )


def test_relay_init_writes_a_config_that_loads_and_a_private_keystore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "relay"
    assert _init(directory, monkeypatch) == 0
    config = load_config(directory / "relay.toml")
    assert config.relay_id == "XP.relay-lyon"
    assert config.keystore == directory / "relay.keystore"
    assert (config.keystore.stat().st_mode & 0o777) == 0o600
    assert _init(directory, monkeypatch) == 1  # never overwrites


@pytest.mark.anyio
async def test_relay_backup_copies_the_store_consistently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "relay.toml"
    config_path.write_text(_MINIMAL)
    submissions = [make_submission(SENDER, (RECIPIENT,), n) for n in range(5)]
    async with open_sqlite_store(tmp_path / "relay.db") as store:
        for submission in submissions:
            await store.accept(submission, now=1_000)
        # online: the store is still open while the copy is taken
        argv = ["relay", "backup", "--config", str(config_path), "--out", str(tmp_path / "c.db")]
        assert await anyio.to_thread.run_sync(main, argv) == 0
        assert await anyio.to_thread.run_sync(main, argv) == 1  # refuses to overwrite
    assert "exists" in capsys.readouterr().err
    async with open_sqlite_store(tmp_path / "c.db") as copy:
        depths = await copy.queue_depths()
        assert sum(depths.values()) == sum(len(s.recipients) for s in submissions)
        again = await copy.accept(submissions[0], now=2_000)
        assert again.sender == SENDER
        assert again.accepted_at == 1_000  # the copy remembers the original acceptance


@pytest.mark.req("API-11", "API-21")
def test_the_lease_comes_from_the_configuration_and_may_only_be_lowered(tmp_path: Path) -> None:
    base = {
        "relay_id": "XP.relay-lyon",
        "database": "relay.db",
        "keystore": "relay.keystore",
        "directory": "directory.signed",
        "anchors": ["anchor.signed"],
    }
    assert app_settings(config_from_mapping(base, base=tmp_path)).lease == 60
    lowered = config_from_mapping({**base, "limits": {"lease": 2}}, base=tmp_path)
    assert app_settings(lowered).lease == 2
    for refused in (0, 61):
        with pytest.raises(UsageError, match=r"limits\.lease"):
            config_from_mapping({**base, "limits": {"lease": refused}}, base=tmp_path)
