"""Bad input and wrong-mailbox access: a precise problem+json answer, and nothing changed.

Every refusal is checked for its status, its ``code`` (the library's error
code), the problem body's exact shape (no detail, no trace), and that the
store's mailboxes and the relay's nonce memory are as they were.  The IDOR
sweep runs over every route that concerns a mailbox or a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from directory_world import DAY, T0, genesis, loaded
from fixtures import NOW, identity, world
from ncb_relay import NonceCache
from ncb_relay.errors import StorageError
from ncb_relay.lifecycle import next_version, suspend
from ncb_relay.relay.app import create_app
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.storage import Acceptance, Batch, LogEntry, Purge, Quota, Submission
from relay_app_world import (
    ENVELOPE,
    GS,
    JSON,
    RABAT,
    RELAY,
    SEOUL,
    RelayWorld,
    problem,
    relay_world,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def refused(
    w: RelayWorld,
    send: Callable[[], Awaitable[httpx.Response]],
    status: int,
    code: str,
) -> httpx.Response:
    """Send, check the problem, and check that nothing the relay holds changed."""
    before, nonces = await w.snapshot(), len(w.context.verifier.nonces)
    response = await send()
    assert response.status_code == status, response.text
    assert problem(response)["code"] == code
    assert await w.snapshot() == before
    if status == 401:
        assert response.headers["www-authenticate"] == "NCBR1"
        assert len(w.context.verifier.nonces) == nonces
    return response


@pytest.mark.req("API-5", "API-19")
async def test_bad_envelopes_are_refused_with_their_codes(tmp_path: Path) -> None:
    outsiders, _ = world("QZ.outsider", SEOUL, RABAT)
    async with relay_world(tmp_path) as w:
        await w.submit(SEOUL, w.seal(SEOUL, RABAT).data)  # something stored already
        good = w.seal(SEOUL, RABAT)
        cases: list[tuple[bytes, int, str]] = [
            (b"\x93garbage", 400, "malformed"),
            (good.data + b"\x00", 400, "malformed"),
            (good.data[:-1] + bytes([good.data[-1] ^ 1]), 422, "bad-signature"),
            (w.seal(SEOUL, RABAT, now=NOW - 8 * DAY).data, 422, "stale"),
            (w.seal(SEOUL, RABAT, now=NOW + 3600).data, 422, "future-dated"),
            (w.seal(SEOUL, "QZ.outsider", ids={**w.ids, **outsiders}).data, 422, "unknown-key"),
        ]
        for data, status, code in cases:
            await refused(w, lambda data=data: w.submit(SEOUL, data), status, code)  # type: ignore[misc]
        # an envelope signed by a principal the directory does not list, submitted by Seoul
        foreign = w.seal("QZ.outsider", RABAT, ids={**outsiders, RABAT: w.ids[RABAT]})
        await refused(w, lambda: w.submit(SEOUL, foreign.data), 422, "unknown-key")


@pytest.mark.req("API-6")
async def test_the_sender_must_be_the_authenticated_bureau(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        sealed = w.seal(SEOUL, RABAT)
        await refused(w, lambda: w.submit(RABAT, sealed.data), 403, "binding-mismatch")
        await refused(w, lambda: w.submit(GS, sealed.data), 403, "binding-mismatch")
        assert (await w.submit(SEOUL, sealed.data)).status_code == 202


@pytest.mark.req("API-7")
async def test_a_message_id_reused_for_other_bytes_is_a_conflict(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        first = w.seal(SEOUL, RABAT, body=b"one", seed=7)
        other = w.seal(SEOUL, RABAT, body=b"two", seed=7)
        assert first.message_id == other.message_id
        assert first.data != other.data
        assert (await w.submit(SEOUL, first.data)).status_code == 202
        await refused(w, lambda: w.submit(SEOUL, other.data), 409, "replay")


@pytest.mark.req("API-5")
async def test_a_suspended_recipient_is_refused(tmp_path: Path) -> None:
    document, members = genesis()
    later = suspend(next_version(document, issued=T0 + DAY), RABAT, since=T0 + DAY)
    directory = loaded(later)
    ids = {p: m.identity for p, m in members.items()}
    async with relay_world(tmp_path, directory=directory, ids=ids, now=T0 + DAY + 10) as w:
        sealed = w.seal(SEOUL, RABAT, now=T0 + 10)
        await refused(w, lambda: w.submit(SEOUL, sealed.data), 422, "unknown-key")
        assert (await w.submit(SEOUL, w.seal(SEOUL, GS).data)).status_code == 202


@pytest.mark.req("API-2", "API-20")
async def test_bad_request_authentication_is_refused(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        body = w.seal(SEOUL, RABAT).data
        target = "/v1/messages"

        def post(
            headers: Mapping[str, str], content: bytes = body
        ) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: w.client.post(target, content=content, headers={**ENVELOPE, **headers})

        await refused(w, post({}), 401, "malformed")
        await refused(w, post({"authorization": "Bearer abc"}), 401, "malformed")
        await refused(w, post({"authorization": "NCBR2 abc"}), 401, "unsupported-version")
        await refused(w, post({"authorization": "NCBR1 " + "A" * 600}), 401, "limit-exceeded")
        await refused(w, post(w.sign(SEOUL, "POST", target, b"other")), 401, "bad-signature")
        await refused(w, post(w.sign(SEOUL, "POST", "/v1/other", body)), 401, "bad-signature")
        await refused(w, post(w.sign(SEOUL, "GET", target, body)), 401, "bad-signature")
        misdirected = w.sign(SEOUL, "POST", target, body, relay="XP.relay-other")
        await refused(w, post(misdirected), 401, "binding-mismatch")
        await refused(w, post(w.sign(SEOUL, "POST", target, body, now=NOW - 600)), 401, "stale")
        future = w.sign(SEOUL, "POST", target, body, now=NOW + 600)
        await refused(w, post(future), 401, "future-dated")
        stranger = RelayWorld(
            w.app, w.client, w.store, w.clock, {"QZ.outsider": identity("QZ.outsider")}
        )
        await refused(
            w, post(stranger.sign("QZ.outsider", "POST", target, body)), 401, "unknown-key"
        )
        twice = [("authorization", w.sign(SEOUL, "POST", target, body)["authorization"])] * 2
        await refused(
            w,
            lambda: w.client.post(
                target, content=body, headers=[*twice, ("content-type", "application/octet-stream")]
            ),
            401,
            "malformed",
        )
        once = w.sign(SEOUL, "POST", target, body)
        assert (await post(once)()).status_code == 202
        await refused(w, post(once), 401, "replay")


async def chunked_post(w: RelayWorld, auth: Mapping[str, str], chunks: int) -> httpx.Response:
    """A POST whose body arrives in chunks without a Content-Length, straight over ASGI."""
    sent: list[MutableMapping[str, Any]] = []
    left = chunks

    async def receive() -> dict[str, object]:
        nonlocal left
        left -= 1
        return {"type": "http.request", "body": b"\x00" * 65536, "more_body": left > 0}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/octet-stream")]
    headers += [(k.encode(), v.encode()) for k, v in auth.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("relay", 80),
        "client": ("127.0.0.1", 1),
    }
    await w.app(scope, receive, send)
    start, body = sent[0], b"".join(bytes(m.get("body", b"")) for m in sent[1:])
    raw_headers = [(bytes(k), bytes(v)) for k, v in start["headers"]]
    return httpx.Response(int(start["status"]), headers=raw_headers, content=body)


@pytest.mark.req("API-3", "API-21")
async def test_size_and_media_type_are_checked_before_the_body(tmp_path: Path) -> None:
    settings = AppSettings(max_ack_body=1024)
    async with relay_world(tmp_path, settings=settings) as w:
        limit = settings.max_envelope_bytes
        big = b"\x00" * (limit + 1)
        headers = {**ENVELOPE, **w.sign(SEOUL, "POST", "/v1/messages", big)}
        await refused(
            w,
            lambda: w.client.post("/v1/messages", content=big, headers=headers),
            413,
            "limit-exceeded",
        )

        chunked = w.sign(SEOUL, "POST", "/v1/messages", b"x")
        await refused(
            w, lambda: chunked_post(w, chunked, limit // 65536 + 2), 413, "limit-exceeded"
        )
        lying = {**ENVELOPE, **w.sign(SEOUL, "POST", "/v1/messages", b"x"), "content-length": "abc"}
        await refused(
            w, lambda: w.client.post("/v1/messages", content=b"x", headers=lying), 400, "malformed"
        )
        data = w.seal(SEOUL, RABAT).data
        wrong_type = {"content-type": "text/plain", **w.sign(SEOUL, "POST", "/v1/messages", data)}
        await refused(
            w,
            lambda: w.client.post("/v1/messages", content=data, headers=wrong_type),
            415,
            "malformed",
        )
        with_body = w.sign(RABAT, "GET", "/v1/mailbox", b"x")
        await refused(
            w,
            lambda: w.client.request("GET", "/v1/mailbox", content=b"x", headers=with_body),
            413,
            "limit-exceeded",
        )
        # the request's signature was never checked, so its nonce is still unused
        assert (
            await w.client.post(
                "/v1/messages",
                content=data,
                headers={**ENVELOPE, **wrong_type, "content-type": "application/octet-stream"},
            )
        ).status_code == 202


@pytest.mark.req("API-8", "API-12")
async def test_bad_fetch_queries_and_acknowledgements(tmp_path: Path) -> None:
    async with relay_world(tmp_path, settings=AppSettings(max_ack_ids=2, max_batch=10)) as w:
        for query in (
            "limit=0",
            "limit=11",
            "foo=1",
            "after=1&after=2",
            "after=-1",
            "wait",
            "after=1x",
        ):
            await refused(w, lambda query=query: w.fetch(RABAT, query), 400, "malformed")  # type: ignore[misc]

        async def ack_body(body: bytes, content_type: str = "application/json") -> httpx.Response:
            headers = {
                "content-type": content_type,
                **w.sign(RABAT, "POST", "/v1/mailbox/ack", body),
            }
            return await w.client.post("/v1/mailbox/ack", content=body, headers=headers)

        for body in (
            b"not json",
            b"[]",
            b'{"messageIds": "ab"}',
            b'{"messageIds": ["AB"]}',
            b'{"ids": []}',
        ):
            await refused(w, lambda body=body: ack_body(body), 400, "malformed")  # type: ignore[misc]
        three = b'{"messageIds": ["' + b'", "'.join([b"00" * 32] * 3) + b'"]}'
        await refused(w, lambda: ack_body(three), 400, "limit-exceeded")
        await refused(w, lambda: ack_body(b'{"messageIds": []}', "text/plain"), 415, "malformed")
        assert (await ack_body(b'{"messageIds": []}')).status_code == 204


@pytest.mark.req("API-18", "API-19")
async def test_the_relays_own_failures_are_503_without_detail(tmp_path: Path) -> None:
    class BrokenStore:
        async def accept(
            self,
            submission: Submission,
            *,
            now: int,
            quota: Quota | None = None,
            known: int | None = None,
        ) -> Acceptance:
            raise StorageError("disk I/O error at /var/lib/secret/relay.db")

        async def fetch(
            self, mailbox: str, *, after: int = 0, limit: int, lease: int, now: int
        ) -> Batch:
            raise StorageError("database is locked")

        async def acknowledge(self, mailbox: str, message_ids: Sequence[bytes]) -> None:
            raise StorageError("closed")

        async def purge_expired(self, *, now: int, limit: int = 1000) -> Purge:
            raise StorageError("closed")

        async def queue_depth(self, mailbox: str) -> int:
            raise StorageError("closed")

        async def queue_depths(self) -> Mapping[str, int]:
            raise StorageError("closed")

        async def log_size(self) -> int:
            raise StorageError("closed")

        async def log_checkpoint(self, *, cosigned: int = 0) -> bytes | None:
            raise StorageError("closed")

        async def log_checkpoint_note(self, size: int) -> bytes | None:
            raise StorageError("closed")

        async def log_checkpoints(self, *, after: int, limit: int) -> Sequence[bytes]:
            raise StorageError("closed")

        async def log_inclusion(self, index: int, size: int) -> Sequence[bytes]:
            raise StorageError("closed")

        async def log_consistency(self, old: int, new: int) -> Sequence[bytes]:
            raise StorageError("closed")

        async def log_entries(self, *, start: int, limit: int) -> Sequence[LogEntry]:
            raise StorageError("closed")

        async def log_directory(self, digest: bytes) -> int:
            raise StorageError("closed")

        async def log_add_cosignature(self, size: int, witness: str, line: bytes) -> None:
            raise StorageError("closed")

    async with relay_world(tmp_path) as w:
        app = create_app(
            relay_id=RELAY,
            directory=w.context.directory,
            store=BrokenStore(),
            clock=w.clock,
            nonces=NonceCache(since=None),
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://r"
        ) as client:
            w.client = client
            for response in (
                await w.submit(SEOUL, w.seal(SEOUL, RABAT).data),
                await w.fetch(RABAT),
                await w.ack(RABAT, b"\x00" * 32),
                await client.get("/v1/ready"),
                await client.get("/v1/log/checkpoint"),
                await client.get("/v1/log/entries"),
            ):
                assert response.status_code == 503
                assert problem(response)["code"] == "storage"
                assert "secret" not in response.text
                assert "locked" not in response.text
        full = create_app(
            relay_id=RELAY,
            directory=w.context.directory,
            store=w.store,
            clock=w.clock,
            nonces=NonceCache(since=None, max_entries=1),
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=full), base_url="http://r"
        ) as client:
            w.client = client
            assert (await w.fetch(RABAT)).status_code == 200
            nonce_memory_full = await w.fetch(SEOUL)
            assert nonce_memory_full.status_code == 503
            assert problem(nonce_memory_full)["code"] == "limit-exceeded"


@pytest.mark.req("API-13", "API-19")
async def test_idor_sweep_no_route_reveals_or_touches_another_bureaus_mailbox(
    tmp_path: Path,
) -> None:
    async with relay_world(tmp_path) as w:
        for_seoul = w.seal(RABAT, SEOUL)
        assert (await w.submit(RABAT, for_seoul.data)).status_code == 202
        before = await w.snapshot()
        assert before == {SEOUL: 1}

        def same(a: httpx.Response, b: httpx.Response) -> None:
            assert (a.status_code, a.headers.get("content-type"), a.content) == (
                b.status_code,
                b.headers.get("content-type"),
                b.content,
            )

        # fetching: Paris sees an empty mailbox, exactly like a bureau nobody ever wrote to
        same(await w.fetch(GS), await w.fetch("FR.ncb-paris"))
        same(await w.fetch(GS, "after=0&limit=1"), await w.fetch("FR.ncb-paris", "after=0&limit=1"))
        # acknowledging Seoul's message, an unknown id, or nothing: the same 204, nothing deleted
        same(await w.ack(GS, for_seoul.message_id), await w.ack(GS, b"\x01" * 32))
        same(await w.ack(RABAT, for_seoul.message_id), await w.ack(GS, b"\x01" * 32))
        # naming a mailbox in the path or the query: the same answer for existing and unknown ones
        for existing, unknown in (
            ("/v1/mailbox/KR.ncb-seoul", "/v1/mailbox/ZZ.nobody"),
            ("/v1/mailbox?mailbox=KR.ncb-seoul", "/v1/mailbox?mailbox=ZZ.nobody"),
            ("/v1/mailboxes/KR.ncb-seoul/messages", "/v1/mailboxes/ZZ.nobody/messages"),
            (f"/v1/messages/{for_seoul.message_id.hex()}", f"/v1/messages/{'00' * 32}"),
        ):
            for method in ("GET", "POST", "DELETE"):
                a = await w.client.request(method, existing, headers=w.sign(GS, method, existing))
                b = await w.client.request(method, unknown, headers=w.sign(GS, method, unknown))
                same(a, b)
                assert a.status_code in (400, 404, 405)
        ack_other = b'{"messageIds": [], "mailbox": "KR.ncb-seoul"}'
        headers = {**JSON, **w.sign(GS, "POST", "/v1/mailbox/ack", ack_other)}
        assert (
            problem(await w.client.post("/v1/mailbox/ack", content=ack_other, headers=headers))[
                "code"
            ]
            == "malformed"
        )
        assert await w.snapshot() == before
        [message] = (await w.fetch(SEOUL)).json()["messages"]
        assert message["messageId"] == for_seoul.message_id.hex()


@pytest.mark.req("API-1", "API-19")
async def test_unknown_paths_and_methods(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        missing = await w.client.get("/v2/mailbox")
        assert missing.status_code == 404
        assert problem(missing)["code"] == "not-found"
        wrong = await w.client.put("/v1/messages", content=b"x")
        assert wrong.status_code == 405
        assert problem(wrong)["code"] == "method-not-allowed"
        assert "POST" in wrong.headers["allow"]
        await anyio.sleep(0)
