"""Fetching and acknowledging a mailbox (spec/relay-api.md, API-8, API-9, API-11 to API-13).

Reserved bureau: :data:`LONG_POLL_CAP` fills its cap of waiting fetches (API-9),
so no other test may use it.  The other tests spread over ``QA`` to ``QE``, start by
draining every mailbox they read, and acknowledge what they leave.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import pytest

from .session import TIMEOUT, RelaySession, Submitted, b64url_decode, problem

LONG_POLL_CAP = "QF.ncb-foxtrot"  # reserved: holds its whole cap of waiting fetches (API-9)
ALPHA, BRAVO, CHARLIE, DELTA, ECHO = (
    "QA.ncb-alpha",
    "QB.ncb-bravo",
    "QC.ncb-charlie",
    "QD.ncb-delta",
    "QE.ncb-echo",
)
DELIVERY_MEMBERS = {
    "position",
    "sender",
    "messageId",
    "messageHash",
    "acceptedAt",
    "expires",
    "attempt",
    "envelope",
}
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
HEX64 = re.compile(r"[0-9a-f]{64}")
NOBODY = "QZ.ncb-nobody"  # listed nowhere


def random_id() -> str:
    return os.urandom(32).hex()


def ids_of(batch: dict[str, Any]) -> list[str]:
    return [m["messageId"] for m in batch["messages"]]


def acknowledge(relay: RelaySession, who: str, message_ids: list[str]) -> None:
    response = relay.ack(who, message_ids)
    assert response.status_code == 204, f"ack: {response.status_code} {response.text[:300]}"


def no_content(response: httpx.Response) -> None:
    assert response.status_code == 204, f"expected 204, got {response.status_code}: {response.text}"
    assert response.content == b"", "a 204 has no body"


def in_thread(action: Callable[[], object], delay: float) -> threading.Thread:
    """Run ``action()`` after ``delay`` seconds in a thread (its own HTTP client)."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# -- raw connections: a waiting fetch whose client goes away -------------------------------------


def open_waiting_fetch(relay: RelaySession, who: str, query: str) -> socket.socket:
    """Send a signed ``GET /v1/mailbox?query`` on a socket of its own; the answer is not read."""
    url = httpx.URL(relay.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    sock = socket.create_connection((url.host, port), timeout=TIMEOUT)
    if url.scheme == "https":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=url.host)
    target = f"/v1/mailbox?{query}"
    credentials = relay.authorization(who, "GET", target)
    host = url.netloc.decode()
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {credentials}\r\n\r\n"
    sock.sendall(head.encode("ascii"))
    return sock


def answered(sock: socket.socket) -> bool:
    """Whether the relay has written anything (an answer or a close) on ``sock`` yet."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


@contextmanager
def full_cap(relay: RelaySession, who: str) -> Iterator[tuple[list[socket.socket], httpx.Response]]:
    """Hold ``who``'s whole cap of waiting fetches on sockets of their own; yield them and the
    refusal of one more waiting fetch.

    The relay may take the extra fetch before one of the held ones (they travel on other
    connections): a held fetch that got an answer is replaced until the extra one is refused
    while all of the held ones wait.
    """
    cap = relay.profile["maxLongPollsPerBureau"]
    held: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 15
        while True:
            assert time.monotonic() < deadline, f"a waiting fetch beyond {cap} was never refused"
            for sock in [sock for sock in held if answered(sock)]:
                close(sock)
                held.remove(sock)
            held += [open_waiting_fetch(relay, who, "wait=30") for _ in range(cap - len(held))]
            time.sleep(0.2)
            if any(answered(sock) for sock in held):
                continue
            response = relay.fetch(who, "wait=1")
            if response.status_code != 200 and not any(answered(sock) for sock in held):
                break
        yield held, response
    finally:
        for sock in held:
            close(sock)


def close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


# -- API-8: the batch ----------------------------------------------------------------------------


@pytest.mark.req("API-8", "AUTH-16")
def test_a_delivery_is_exactly_the_submitted_envelope(relay: RelaySession) -> None:
    relay.drain(ALPHA)
    sent = relay.submit(BRAVO, ALPHA, body=b"the exact bytes, base64url without padding")
    try:
        response = relay.fetch(ALPHA)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"].split(";")[0].strip() == "application/json"
        batch = response.json()
        assert set(batch) == {"cursor", "messages"}, f"a batch is cursor and messages: {batch}"
        assert type(batch["cursor"]) is int
        assert batch["cursor"] >= 0
        assert isinstance(batch["messages"], list)
        [delivery] = [m for m in batch["messages"] if m["messageId"] == sent.message_id]
        assert set(delivery) == DELIVERY_MEMBERS, f"a delivery's members: {sorted(delivery)}"
        for member in ("position", "acceptedAt", "expires", "attempt"):
            assert type(delivery[member]) is int, member
            assert delivery[member] >= 0, member
        assert delivery["attempt"] >= 1
        assert delivery["sender"] == BRAVO
        assert delivery["messageId"] == sent.envelope.message_id.hex()
        assert delivery["messageHash"] == sent.envelope.message_hash.hex()
        assert HEX64.fullmatch(delivery["messageHash"])
        assert delivery["acceptedAt"] == sent.body["acceptedAt"]
        assert delivery["expires"] == sent.envelope.header.expires
        encoded = delivery["envelope"]
        assert isinstance(encoded, str)
        assert BASE64URL.fullmatch(encoded), "base64url without padding"
        assert b64url_decode(encoded) == sent.envelope.data, "the envelope's exact bytes"
        assert batch["cursor"] >= delivery["position"]
    finally:
        acknowledge(relay, ALPHA, [sent.message_id])


@pytest.mark.req("API-8")
def test_batches_come_in_position_order_paged_by_cursor_and_limit(relay: RelaySession) -> None:
    relay.drain(CHARLIE)
    senders = [ALPHA, BRAVO, DELTA, ECHO, ALPHA]
    sent = [relay.submit(sender, CHARLIE).message_id for sender in senders]
    try:
        got: list[str] = []
        after = 0
        for _ in range(10):
            batch = relay.batch(CHARLIE, f"after={after}&limit=2")
            if not batch["messages"]:
                break
            assert len(batch["messages"]) <= 2, "at most `limit` messages"
            positions = [m["position"] for m in batch["messages"]]
            assert positions == sorted(positions), "a batch is in position order"
            assert batch["cursor"] >= max(positions), "the cursor passes the batch"
            # (a message whose 2 s lease ran out meanwhile may come back: it is not new)
            got += [m for m in ids_of(batch) if m in sent and m not in got]
            after = batch["cursor"]
        assert got == sent, "every message once, in the order the relay accepted them"
        assert len(relay.batch(CHARLIE, "limit=1")["messages"]) <= 1
    finally:
        acknowledge(relay, CHARLIE, sent)


@pytest.mark.req("API-8")
@pytest.mark.parametrize(
    "query",
    [
        "after=0",
        "limit=1",
        "limit=100",
        "wait=0",
        "after=0&limit=100&wait=0",
        "wait=0&limit=7&after=0",
        "after=18446744",
    ],
)
def test_a_well_formed_query_is_answered(relay: RelaySession, query: str) -> None:
    batch = relay.batch(DELTA, query)
    assert set(batch) == {"cursor", "messages"}
    if batch["messages"]:
        acknowledge(relay, DELTA, ids_of(batch))


BAD_QUERIES = [
    "foo=1",
    "after=0&foo=1",
    "after=1&after=1",
    "limit=5&limit=5",
    "wait=0&wait=0",
    "after=abc",
    "after=-1",
    "after=+1",
    "after=1.0",
    "after=0x10",
    "after=%31",
    "after=1e3",
    "after=",
    "after",
    "AFTER=0",
    "limit=0",
    "limit=101",
    "limit=1000",
    "limit=",
    "wait=-1",
    "wait=1.5",
    "wait=abc",
    "&",
    "after=0&",
    "&after=0",
    "after=0&&limit=1",
    "known=0",
]


@pytest.mark.req("API-8", "API-21", "API-18", "API-19")
@pytest.mark.parametrize("query", BAD_QUERIES)
def test_any_other_query_is_malformed(relay: RelaySession, query: str) -> None:
    problem(relay.fetch(ECHO, query), 400, "malformed")


# -- API-9: long-poll ----------------------------------------------------------------------------


@pytest.mark.req("API-9", "API-7")
def test_a_waiting_fetch_is_answered_when_a_message_is_accepted(relay: RelaySession) -> None:
    relay.drain(BRAVO)
    sent: list[Submitted] = []
    submitter = in_thread(lambda: sent.append(relay.submit(CHARLIE, BRAVO)), 0.3)
    started = time.monotonic()
    try:
        batch = relay.batch(BRAVO, "wait=10")
        waited = time.monotonic() - started
        submitter.join(TIMEOUT)
        assert sent, "the submission in the other thread failed"
        assert ids_of(batch) == [sent[0].message_id], "answered with the message accepted"
        assert waited < 9, f"answered as soon as the message was accepted, not after {waited:.1f} s"
    finally:
        submitter.join(TIMEOUT)
        acknowledge(relay, BRAVO, [s.message_id for s in sent])


@pytest.mark.req("API-9")
def test_a_fetch_without_wait_is_never_held(relay: RelaySession) -> None:
    relay.drain(DELTA)
    for query in ("", "wait=0", "after=0&wait=0"):
        started = time.monotonic()
        batch = relay.batch(DELTA, query)
        assert batch["messages"] == []
        assert time.monotonic() - started < 2, f"a fetch with {query or 'no query'} was held"


@pytest.mark.req("API-9", "API-18", "API-19", "API-21")
def test_waiting_fetches_are_capped_per_bureau(relay: RelaySession) -> None:
    relay.drain(LONG_POLL_CAP)
    with full_cap(relay, LONG_POLL_CAP) as (held, refused):
        answer = problem(refused, 429, "limit-exceeded")
        assert re.fullmatch(r"[0-9]+", answer.headers.get("retry-after", "")), "Retry-After"
        assert relay.batch(LONG_POLL_CAP, "wait=0")["messages"] == [], "wait=0 never waits"
        other = relay.fetch(ECHO, "wait=1")
        assert other.status_code == 200, "another bureau's waiting fetch is not capped by this one"
        assert not any(answered(sock) for sock in held), "the waiting fetches are still held"


@pytest.mark.req("API-9")
def test_a_fetch_whose_client_went_away_frees_its_place(relay: RelaySession) -> None:
    relay.drain(LONG_POLL_CAP)
    with full_cap(relay, LONG_POLL_CAP) as (held, _):
        for sock in held:
            close(sock)
    # the held fetches asked to wait 30 s: their places must come back well before that
    deadline = time.monotonic() + 10
    while True:
        response = relay.fetch(LONG_POLL_CAP, "wait=1")
        if response.status_code == 200:
            break
        problem(response, 429, "limit-exceeded")
        assert time.monotonic() < deadline, "the places of fetches whose clients left stay taken"
        time.sleep(0.2)
    # the relay knows those clients are gone: it leases nothing to them
    sent = relay.submit(DELTA, LONG_POLL_CAP)
    try:
        assert sent.message_id in ids_of(relay.batch(LONG_POLL_CAP)), "leased to a gone client"
    finally:
        acknowledge(relay, LONG_POLL_CAP, [sent.message_id])


# -- API-11: leases and expiry -------------------------------------------------------------------


def fetch_until(
    relay: RelaySession, who: str, message_ids: set[str], *, within: float
) -> dict[str, dict[str, Any]]:
    """Poll ``who``'s mailbox (without waiting) until all of ``message_ids`` are handed out."""
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + within
    while True:
        for delivery in relay.batch(who)["messages"]:
            if delivery["messageId"] in message_ids:
                seen.setdefault(delivery["messageId"], dict(delivery))
        if set(seen) == message_ids or time.monotonic() >= deadline:
            return seen
        time.sleep(0.2)


@pytest.mark.req("API-11", "API-12", "API-20")
def test_an_unacknowledged_message_comes_back_after_its_lease(relay: RelaySession) -> None:
    relay.drain(ECHO)
    lease = relay.profile["lease"]
    kept, done, refused = (relay.submit(s, ECHO).message_id for s in (ALPHA, BRAVO, CHARLIE))
    try:
        first = {m["messageId"]: m for m in relay.batch(ECHO)["messages"]}
        assert {kept, done, refused} <= set(first), "all three handed out"
        no_content(relay.ack(ECHO, [done]))
        bad = json.dumps({"messageIds": [refused], "more": 1}).encode()
        response = relay.request(
            "POST", "/v1/mailbox/ack", who=ECHO, body=bad, content_type="application/json"
        )
        problem(response, 400, "malformed")
        leased = ids_of(relay.batch(ECHO, "after=0"))
        assert kept not in leased, "a leased message is not handed out"
        assert refused not in leased, "a leased message is not handed out"
        again = fetch_until(relay, ECHO, {kept, refused}, within=lease + 10)
        assert kept in again, f"not handed out again after its {lease} s lease"
        assert refused in again, "a refused acknowledgement deleted the message"
        for message_id in (kept, refused):
            before, after = first[message_id], again[message_id]
            assert after["attempt"] == before["attempt"] + 1, "attempt increased by one"
            assert {k: v for k, v in after.items() if k != "attempt"} == {
                k: v for k, v in before.items() if k != "attempt"
            }, "the same delivery, only its attempt changed"
        assert done not in ids_of(relay.batch(ECHO, "after=0")), "an acknowledged one came back"
    finally:
        acknowledge(relay, ECHO, [kept, done, refused])


@pytest.mark.req("API-11")
def test_an_expired_message_is_never_handed_out(relay: RelaySession) -> None:
    relay.drain(ALPHA)
    short = relay.seal(DELTA, [ALPHA], ttl=1)
    expired = relay.accepted(relay.post_envelope(DELTA, short.data), short).message_id
    control = relay.submit(ECHO, ALPHA).message_id
    try:
        # the relay's clock may be a fraction of a second behind ours
        pause = short.header.expires + 1 - time.time()
        time.sleep(max(0.0, pause))
        handed = ids_of(relay.batch(ALPHA, "after=0"))
        assert control in handed, "the unexpired message is handed out"
        assert expired not in handed, "an expired message is never handed out"
    finally:
        acknowledge(relay, ALPHA, [expired, control])


# -- API-12: acknowledgements --------------------------------------------------------------------


@pytest.mark.req("API-12", "API-13")
def test_an_acknowledgement_is_no_content_whatever_the_ids_name(relay: RelaySession) -> None:
    relay.drain(BRAVO)
    relay.drain(CHARLIE)
    own = relay.submit(ALPHA, BRAVO).message_id
    others = relay.submit(ALPHA, CHARLIE).message_id
    try:
        for message_ids in (
            [],
            [random_id()],
            [own],
            [own],  # already acknowledged
            [others],  # addressed to someone else
            [own, own, random_id()],
            [random_id() for _ in range(relay.profile["maxAckIds"])],
        ):
            no_content(relay.ack(BRAVO, message_ids))
        assert own not in ids_of(relay.batch(BRAVO, "after=0")), "the own copy is deleted"
        assert others in ids_of(relay.batch(CHARLIE, "after=0")), "another's copy is untouched"
    finally:
        acknowledge(relay, CHARLIE, [others])


BAD_ACKS = [
    b"",
    b"not json",
    b"[]",
    b"{}",
    b"null",
    b'"messageIds"',
    b'{"messageIds": null}',
    b'{"messageIds": "' + b"a" * 64 + b'"}',
    b'{"messageIds": {}}',
    b'{"messageIds": [], "more": true}',
    b'{"messageids": []}',
    b'{"messageIds": [1]}',
    b'{"messageIds": [null]}',
    b'{"messageIds": [["' + b"a" * 64 + b'"]]}',
    b'{"messageIds": ["' + b"A" * 64 + b'"]}',
    b'{"messageIds": ["' + b"a" * 63 + b'"]}',
    b'{"messageIds": ["' + b"a" * 65 + b'"]}',
    b'{"messageIds": ["' + b"g" * 64 + b'"]}',
    b'{"messageIds": ["0x' + b"a" * 62 + b'"]}',
    b'{"messageIds": [" ' + b"a" * 63 + b'"]}',
    b'{"messageIds": []',
    b'\xff{"messageIds": []}',
]


@pytest.mark.req("API-12", "API-18", "API-19")
@pytest.mark.parametrize("body", BAD_ACKS)
def test_a_bad_acknowledgement_is_malformed(relay: RelaySession, body: bytes) -> None:
    response = relay.request(
        "POST", "/v1/mailbox/ack", who=CHARLIE, body=body, content_type="application/json"
    )
    problem(response, 400, "malformed")


@pytest.mark.req("API-12", "API-3", "API-18", "API-19")
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/octet-stream", "application/jsonx"]
)
def test_an_acknowledgement_of_another_media_type_is_refused(
    relay: RelaySession, content_type: str | None
) -> None:
    body = json.dumps({"messageIds": [random_id()]}).encode()
    response = relay.request(
        "POST", "/v1/mailbox/ack", who=DELTA, body=body, content_type=content_type
    )
    problem(response, 415, "malformed")


@pytest.mark.req("API-12", "API-21", "API-18", "API-19")
def test_too_many_ids_is_limit_exceeded(relay: RelaySession) -> None:
    message_ids = [random_id() for _ in range(relay.profile["maxAckIds"] + 1)]
    problem(relay.ack(DELTA, message_ids), 400, "limit-exceeded")


# -- API-13 and AUTH-16: one's own mailbox only --------------------------------------------------


@pytest.mark.req("API-13", "AUTH-16", "API-12", "API-8")
def test_a_bureau_sees_and_acknowledges_only_its_own_mailbox(relay: RelaySession) -> None:
    for who in (ALPHA, BRAVO, CHARLIE):
        relay.drain(who)
    sent = relay.submit(CHARLIE, ALPHA).message_id
    try:
        assert sent not in ids_of(relay.batch(BRAVO, "after=0")), "B reads A's message"
        assert sent not in ids_of(relay.batch(CHARLIE, "after=0")), "the sender reads it"
        no_content(relay.ack(BRAVO, [sent]))  # the answer to any acknowledgement
        no_content(relay.ack(CHARLIE, [sent]))
        delivery = relay.receive(ALPHA, sent, wait=1)
        assert delivery["sender"] == CHARLIE, "A still receives its message"
    finally:
        acknowledge(relay, ALPHA, [sent])


@pytest.mark.req("API-13", "AUTH-16", "API-8")
@pytest.mark.parametrize("name", ["mailbox", "recipient", "principal", "for"])
def test_a_query_naming_a_mailbox_is_malformed_whether_it_exists_or_not(
    relay: RelaySession, name: str
) -> None:
    relay.drain(DELTA)
    sent = relay.submit(BRAVO, ALPHA).message_id
    try:
        answers = []
        for value in (ALPHA, NOBODY, DELTA):
            refused = relay.fetch(DELTA, f"{name}={value}")
            problem(refused, 400, "malformed")
            answers.append(refused.json())
        for value in (sent, random_id()):
            refused = relay.fetch(DELTA, f"messageId={value}")
            problem(refused, 400, "malformed")
            answers.append(refused.json())
        assert all(answer == answers[0] for answer in answers), "the same answer for every one"
        assert sent not in ids_of(relay.batch(DELTA, "after=0"))
    finally:
        acknowledge(relay, ALPHA, [sent])


@pytest.mark.req("API-13", "AUTH-16", "API-1")
def test_a_path_naming_a_mailbox_is_not_found_whether_it_exists_or_not(
    relay: RelaySession,
) -> None:
    answers = []
    for target in (f"/v1/mailbox/{ALPHA}", f"/v1/mailbox/{NOBODY}", f"/v1/mailbox/{random_id()}"):
        refused = relay.request("GET", target, who=ECHO)
        problem(refused, 404, "not-found")
        answers.append(refused.json())
    assert all(answer == answers[0] for answer in answers)
