"""Limits, rate limits and quotas (spec/relay-api.md, API-10, API-21 to API-23).

Reserved bureaus (no other test may use them):

- :data:`RATE_LIMITED` spends its whole request allowance (API-10);
- :data:`QUOTA_SENDER` fills its quota of messages awaiting delivery, to
  :data:`QUOTA_RECIPIENT` (API-22);
- :data:`FULL_MAILBOX` is filled to the mailbox cap by :data:`CAP_SENDERS`,
  each within its own quota (API-23).

Every test that leaves messages acknowledges them in the end, so that the
senders' quotas are free again for the next test.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .session import TIMEOUT, Problem, RelaySession, Submitted, problem

RATE_LIMITED = "QL.ncb-lima"
QUOTA_SENDER, QUOTA_RECIPIENT = "QK.ncb-kilo", "QJ.ncb-juliett"
FULL_MAILBOX = "QI.ncb-india"
CAP_SENDERS = ("QH.ncb-hotel", "QG.ncb-golf")
ALPHA, BRAVO, CHARLIE = "QA.ncb-alpha", "QB.ncb-bravo", "QC.ncb-charlie"
CHUNK = 64 * 1024
WORKERS = 4
WHOLE_SECONDS = re.compile(r"[0-9]+")


def retry_after(answer: Problem) -> int:
    value = answer.headers.get("retry-after", "")
    assert WHOLE_SECONDS.fullmatch(value), f"Retry-After in whole seconds, not {value!r}"
    return int(value)


def send_chunked(
    relay: RelaySession, who: str, method: str, target: str, body: bytes, content_type: str | None
) -> httpx.Response:
    """Send ``body`` signed by ``who`` without a declared length (chunked transfer coding)."""
    headers = {"authorization": relay.authorization(who, method, target, body)}
    if content_type is not None:
        headers["content-type"] = content_type

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), CHUNK):
            yield body[start : start + CHUNK]

    response = relay.client.request(method, target, content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers, "sent without a length"
    return response


def send(
    relay: RelaySession,
    who: str,
    method: str,
    target: str,
    body: bytes,
    content_type: str | None,
    *,
    chunked: bool,
) -> httpx.Response:
    if chunked:
        return send_chunked(relay, who, method, target, body, content_type)
    return relay.request(method, target, who=who, body=body, content_type=content_type)


def drain_all(relay: RelaySession, *mailboxes: str) -> None:
    for who in mailboxes:
        relay.drain(who)


def mailbox_ids(relay: RelaySession, who: str) -> set[str]:
    """Every message id ``who`` is handed now (never-delivered ones from position 0)."""
    return {m["messageId"] for m in relay.batch(who, "after=0")["messages"]}


# -- API-21: body and count limits ---------------------------------------------------------------


@pytest.mark.req("API-21", "API-4", "API-3", "API-18", "API-19")
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_envelope_body_over_the_limit_is_refused(relay: RelaySession, chunked: bool) -> None:
    limit = relay.profile["maxEnvelopeBytes"]
    body = bytes(limit + 1)
    response = send(
        relay, ALPHA, "POST", "/v1/messages", body, "application/octet-stream", chunked=chunked
    )
    problem(response, 413, "limit-exceeded")


@pytest.mark.req("API-21", "API-5")
def test_an_envelope_body_at_the_limit_is_read(relay: RelaySession) -> None:
    limit = relay.profile["maxEnvelopeBytes"]
    response = relay.post_envelope(ALPHA, bytes(limit))  # read, and found not to be an envelope
    assert response.status_code == 400, f"{response.status_code}: {response.text[:300]}"


def ack_body(size: int) -> bytes:
    """A well-formed acknowledgement of no ids, padded with JSON white space to ``size`` bytes."""
    body = b'{"messageIds": []}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.req("API-21", "API-12", "API-3", "API-18", "API-19")
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_acknowledgement_body_over_the_limit_is_refused(
    relay: RelaySession, chunked: bool
) -> None:
    limit = relay.profile["maxAckBody"]
    target = "/v1/mailbox/ack"
    at_limit = send(
        relay, BRAVO, "POST", target, ack_body(limit), "application/json", chunked=chunked
    )
    assert at_limit.status_code == 204, f"{at_limit.status_code}: {at_limit.text[:300]}"
    over = send(
        relay, BRAVO, "POST", target, ack_body(limit + 1), "application/json", chunked=chunked
    )
    problem(over, 413, "limit-exceeded")


@pytest.mark.req("API-21", "API-12", "API-18", "API-19")
def test_an_acknowledgement_of_too_many_ids_is_refused(relay: RelaySession) -> None:
    count = relay.profile["maxAckIds"]
    ids = [os.urandom(32).hex() for _ in range(count + 1)]
    assert relay.ack(CHARLIE, ids[:count]).status_code == 204, "as many ids as the limit"
    problem(relay.ack(CHARLIE, ids), 400, "limit-exceeded")


@pytest.mark.req("API-21", "API-8", "API-18", "API-19")
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("body", [b"x", b"{}", bytes(CHUNK * 2)], ids=["1", "2", "128k"])
def test_a_fetch_with_a_body_is_refused(relay: RelaySession, body: bytes, chunked: bool) -> None:
    response = send(relay, CHARLIE, "GET", "/v1/mailbox", body, None, chunked=chunked)
    problem(response, 413, "limit-exceeded")


@pytest.mark.req("API-21", "API-8", "API-9")
def test_a_longer_wait_is_cut_not_refused(relay: RelaySession) -> None:
    relay.drain(ALPHA)
    sent: list[Submitted] = []

    def submit() -> None:
        time.sleep(0.3)
        sent.append(relay.submit(BRAVO, ALPHA))

    thread = threading.Thread(target=submit, daemon=True)
    thread.start()
    try:
        batch = relay.batch(ALPHA, "wait=1000")  # more than any relay may wait (300 s)
        thread.join(TIMEOUT)
        assert sent, "the submission in the other thread failed"
        assert [m["messageId"] for m in batch["messages"]] == [sent[0].message_id]
    finally:
        thread.join(TIMEOUT)
        relay.ack(ALPHA, [s.message_id for s in sent])


# -- API-10: the rate limit ----------------------------------------------------------------------


def until_refused(relay: RelaySession, who: str, budget: int) -> httpx.Response | None:
    """Fetch ``who``'s mailbox from several threads until one is not 200; return that answer."""
    stop = threading.Event()
    lock = threading.Lock()
    refusals: list[httpx.Response] = []
    sent = [0]

    def work() -> None:
        while not stop.is_set():
            with lock:
                if sent[0] >= budget:
                    return
                sent[0] += 1
            response = relay.fetch(who)
            if response.status_code != 200:
                with lock:
                    refusals.append(response)
                stop.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    stop.wait(TIMEOUT)
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT)
    return refusals[0] if refusals else None


def wait_until_served(relay: RelaySession, who: str) -> None:
    """Let ``who``'s allowance come back after the test above, within its Retry-After."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = relay.fetch(who)
        if response.status_code == 200:
            return
        time.sleep(min(retry_after(problem(response, 429, "limit-exceeded")), 5))
    raise AssertionError(f"{who} is still refused")


@pytest.mark.req("API-10", "API-21", "API-18", "API-19")
def test_a_bureau_over_its_rate_is_refused_and_no_other_is(relay: RelaySession) -> None:
    rate, burst = relay.profile["ratePerSecond"], relay.profile["rateBurst"]
    budget = 10 * (burst + rate * 10)
    try:
        refused = until_refused(relay, RATE_LIMITED, budget)
        other = relay.fetch(ALPHA)  # at the same moment
        assert refused is not None, f"{budget} requests of one bureau were never refused"
        retry_after(problem(refused, 429, "limit-exceeded"))
        assert other.status_code == 200, f"another bureau was refused: {other.text[:300]}"
    finally:
        wait_until_served(relay, RATE_LIMITED)  # leave it an allowance for other tests


@pytest.mark.req("API-10", "AUTH-15", "API-20")
def test_requests_that_fail_authentication_are_not_charged(relay: RelaySession) -> None:
    rate, burst = relay.profile["ratePerSecond"], relay.profile["rateBurst"]
    wait_until_served(relay, RATE_LIMITED)
    # signed by the bureau's own key, but for another target: bad-signature at step 9
    started = time.monotonic()
    lock = threading.Lock()
    statuses: dict[tuple[int, str], int] = {}
    sent = [0]
    reached = threading.Event()

    def enough() -> bool:  # more than the allowance could hold, however full it was
        elapsed = time.monotonic() - started
        if sent[0] >= 300 and sent[0] > burst + rate * (elapsed + 2):
            reached.set()
        return reached.is_set()

    def forge() -> None:
        while True:
            with lock:
                if enough() or sent[0] >= 20_000:
                    return
                sent[0] += 1
            forged = relay.authorization(RATE_LIMITED, "GET", "/v1/mailbox?after=0")
            response = relay.request("GET", "/v1/mailbox", headers={"authorization": forged})
            code = response.json().get("code", "") if response.status_code >= 400 else ""
            with lock:
                key = (response.status_code, code)
                statuses[key] = statuses.get(key, 0) + 1

    threads = [threading.Thread(target=forge, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 3)
    assert reached.is_set(), f"only {sent[0]} forged requests sent"
    assert statuses == {(401, "bad-signature"): sent[0]}, f"forged requests: {statuses}"
    genuine = relay.fetch(RATE_LIMITED)
    assert genuine.status_code == 200, (
        f"after {sent[0]} forged requests, the bureau's own: {genuine.status_code} {genuine.text}"
    )


# -- API-22 and API-23: quotas -------------------------------------------------------------------


def acceptance(submitted: Submitted | dict[str, Any]) -> dict[str, Any]:
    body = submitted.body if isinstance(submitted, Submitted) else submitted
    return {k: body[k] for k in ("sender", "messageId", "messageHash", "acceptedAt", "logIndex")}


def acknowledge_all(relay: RelaySession, left: dict[str, set[str]]) -> None:
    """Acknowledge by id (a leased copy escapes a drain until its lease runs out)."""
    for who, message_ids in left.items():
        response = relay.ack(who, sorted(message_ids))
        assert response.status_code == 204, f"ack: {response.status_code} {response.text[:300]}"


@pytest.mark.req("API-22", "API-7", "API-20", "API-18", "API-19")
def test_a_sender_over_its_quota_is_refused_and_nothing_stored(relay: RelaySession) -> None:
    quota = relay.profile["senderMaxMessages"]
    relay.drain(QUOTA_RECIPIENT)
    left: set[str] = set()
    try:
        accepted = []
        for _ in range(quota):
            accepted.append(relay.submit(QUOTA_SENDER, QUOTA_RECIPIENT))
            left.add(accepted[-1].message_id)
        extra = relay.seal(QUOTA_SENDER, [QUOTA_RECIPIENT])
        left.add(extra.message_id.hex())
        refused = problem(relay.post_envelope(QUOTA_SENDER, extra.data), 429, "limit-exceeded")
        retry_after(refused)
        held = mailbox_ids(relay, QUOTA_RECIPIENT)
        assert {s.message_id for s in accepted} <= held, "every accepted message is held"
        assert extra.message_id.hex() not in held, "the refused message was stored"
        # an identical resubmission is the original acceptance, whatever the quota
        again = relay.accepted(
            relay.post_envelope(QUOTA_SENDER, accepted[0].envelope.data), accepted[0].envelope
        )
        assert acceptance(again) == acceptance(accepted[0])
        # once the recipient acknowledges one, the sender has room for one again
        assert relay.ack(QUOTA_RECIPIENT, [accepted[0].message_id]).status_code == 204
        relay.accepted(relay.post_envelope(QUOTA_SENDER, extra.data), extra)  # not remembered
        another = relay.seal(QUOTA_SENDER, [QUOTA_RECIPIENT])
        left.add(another.message_id.hex())
        problem(relay.post_envelope(QUOTA_SENDER, another.data), 429, "limit-exceeded")
    finally:
        acknowledge_all(relay, {QUOTA_RECIPIENT: left})


@pytest.mark.req("API-23", "API-22", "API-20", "API-18", "API-19")
def test_a_full_mailbox_refuses_what_would_pass_its_cap(relay: RelaySession) -> None:
    cap, quota = relay.profile["mailboxMaxMessages"], relay.profile["senderMaxMessages"]
    first, second = CAP_SENDERS
    assert cap <= 2 * quota - 2, "the profile's cap is reachable by two senders within quota"
    drain_all(relay, FULL_MAILBOX, ALPHA)
    left: dict[str, set[str]] = {FULL_MAILBOX: set(), ALPHA: set()}
    try:
        filled: list[str] = []
        for sender, count in ((first, quota), (second, cap - quota)):  # first: at its quota
            for _ in range(count):
                filled.append(relay.submit(sender, FULL_MAILBOX).message_id)
                left[FULL_MAILBOX].add(filled[-1])
        # second is within its quota, but the mailbox holds its cap
        one = relay.seal(second, [FULL_MAILBOX])
        both = relay.seal(second, [ALPHA, FULL_MAILBOX])
        to_alpha = relay.seal(first, [ALPHA])
        left[FULL_MAILBOX] |= {one.message_id.hex(), both.message_id.hex()}
        left[ALPHA] |= {both.message_id.hex(), to_alpha.message_id.hex()}
        full = relay.post_envelope(second, one.data)
        diffusion = relay.post_envelope(second, both.data)
        # the answer of API-22: first is at its own quota, to a mailbox with room
        over_quota = relay.post_envelope(first, to_alpha.data)
        expected = retry_after(problem(over_quota, 429, "limit-exceeded"))
        for response in (full, diffusion):
            assert retry_after(problem(response, 429, "limit-exceeded")) == expected
            assert response.json() == over_quota.json(), "the answer of a quota refusal"
        assert both.message_id.hex() not in mailbox_ids(relay, ALPHA), "stored for the other"
        held = mailbox_ids(relay, FULL_MAILBOX)
        assert set(filled) <= held, "every accepted message is held"
        assert not {one.message_id.hex(), both.message_id.hex()} & held, "a refused one is held"
        # second has room: to ALPHA alone it is accepted
        alone = relay.submit(second, ALPHA)
        left[ALPHA].add(alone.message_id)
        # once the mailbox's owner acknowledges one, there is room for one again
        assert relay.ack(FULL_MAILBOX, [filled[0]]).status_code == 204
        relay.accepted(relay.post_envelope(second, one.data), one)
    finally:
        acknowledge_all(relay, left)


# AUTH-17 (the per-bureau bound on remembered nonces) is not tested here: a bureau reaches
# its bound only by sending more requests within 2 * max_skew + 1 seconds than its rate limit
# lets through, and both are refused with the same answer (429, limit-exceeded, Retry-After);
# telling them apart would take over 6,000 requests and lock the bureau out for minutes.
