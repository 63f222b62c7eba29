"""Submitting an envelope: ``POST /v1/messages`` (spec/relay-api.md, API-3 to API-7, API-20).

The tests that must control the wire (a declared length with no body behind
it, a body that never ends) talk HTTP/1.1 over a socket of their own
(:func:`raw_exchange`); the others go through :class:`RelaySession`.
Every refused submission is followed by a look at the recipient's mailbox: a
refusal stores nothing (API-20).  Only the bureaus that no test reserves are
used (below); none of these tests comes near a rate limit or a quota, and every
message accepted is acknowledged before the test ends.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ncb_relay import PrivateIdentity, codec, seal
from ncb_relay.envelope import SealedEnvelope
from ncb_relay.identity import EncryptionKeyPair, SigningKeyPair

from .session import TIMEOUT, RelaySession, problem

# Only the bureaus no test reserves: foxtrot to lima are reserved for the rate limit, the
# quotas and the long-poll cap (test_limits.py, test_mailbox.py).
ALPHA, BRAVO, CHARLIE, DELTA, ECHO = (
    "QA.ncb-alpha",
    "QB.ncb-bravo",
    "QC.ncb-charlie",
    "QD.ncb-delta",
    "QE.ncb-echo",
)
OCTETS = "application/octet-stream"
HEX = set("0123456789abcdef")
ACCEPTANCE = {"sender", "messageId", "messageHash", "acceptedAt"}
EVIDENCE = {"logIndex", "receipt", "checkpoint", "inclusion"}
CHUNK = 64 * 1024


# -- the wire, by hand ----------------------------------------------------------------------


def raw_exchange(
    relay: RelaySession,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes | Iterable[bytes] = b"",
) -> httpx.Response:
    """One HTTP/1.1 request on a connection of its own, headers exactly as given.

    ``body`` bytes are sent as they are (the caller sets any ``Content-Length``, and may
    declare more than it sends); an iterable is sent in chunked framing, each item one
    chunk, with no last chunk (the body never ends: only a relay that stops reading
    early can answer).  The answer is read whatever happened to the sending.
    """
    url = urlsplit(relay.url)
    connection_type = (
        http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(url.hostname or "localhost", url.port, timeout=TIMEOUT)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        try:
            if isinstance(body, bytes):
                if body:
                    connection.send(body)
            else:
                for chunk in body:
                    connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:  # the relay answered and closed early; its answer is still to be read
            pass
        answer = connection.getresponse()
        return httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read())
    finally:
        connection.close()


def oversized_chunks(limit: int) -> Iterable[bytes]:
    """Chunks of zeros adding up to one byte more than ``limit``."""
    sent = 0
    while sent <= limit:
        size = min(CHUNK, limit + 1 - sent)
        yield bytes(size)
        sent += size


# -- envelopes ------------------------------------------------------------------------------


def stranger() -> PrivateIdentity:
    """A principal the directory does not list (fresh random keys)."""
    return PrivateIdentity(
        "QZ.ncb-unlisted", SigningKeyPair(os.urandom(32)), [EncryptionKeyPair(os.urandom(32))]
    )


def fixed_key(content_key: bytes) -> Callable[[int], bytes]:
    """An ``rng`` for :func:`seal` whose first draw (the content key) is ``content_key``.

    The message id is the commitment to the content key, so two envelopes sealed with
    the same first draw share their message id while their bytes differ.
    """
    draws = 0

    def rng(size: int) -> bytes:
        nonlocal draws
        draws += 1
        return content_key if draws == 1 else os.urandom(size)

    return rng


def seal_with_key(
    relay: RelaySession, sender: str, recipient: str, body: bytes, content_key: bytes
) -> SealedEnvelope:
    return seal(
        body,
        sender=relay.ids[sender],
        recipients=[relay.ids[recipient].public],
        now=relay.now(),
        seq=int.from_bytes(os.urandom(4), "big"),
        rng=fixed_key(content_key),
    )


def reheader(data: bytes, field: int, value: Any) -> bytes:
    """The envelope ``data`` with header field ``field`` replaced (its signature no longer fits)."""
    outer = codec.decode(data)
    assert isinstance(outer, list)
    assert len(outer) == 3
    assert isinstance(outer[0], bytes)
    header = codec.decode(outer[0])
    assert isinstance(header, list)
    header[field] = value
    return codec.encode([codec.encode(header), outer[1], outer[2]])


# -- checks ---------------------------------------------------------------------------------


def mailbox_ids(relay: RelaySession, who: str) -> list[str]:
    """The ids of every message handed out to ``who`` now (wait 0), in order."""
    return [m["messageId"] for m in relay.batch(who)["messages"]]


def assert_stored_nothing(relay: RelaySession, recipient: str) -> None:
    """API-20: the refusal stored nothing for ``recipient`` (drained before the submission)."""
    assert mailbox_ids(relay, recipient) == [], "a refused envelope was stored"


def log_size(relay: RelaySession) -> int:
    response = relay.request("GET", "/v1/log/checkpoint")
    assert response.status_code == 200, response.text[:300]
    return int(response.text.split("\n")[1])


def accepted_with(relay: RelaySession, envelope: SealedEnvelope, credentials: str) -> None:
    """The very credentials of a refused request, now with the envelope right: accepted.

    A request refused before its signature was checked left its nonce unused (API-3).
    """
    again = relay.request(
        "POST",
        "/v1/messages",
        body=envelope.data,
        content_type=OCTETS,
        headers={"authorization": credentials},
    )
    relay.accepted(again, envelope)
    settle(relay, envelope)


def settle(relay: RelaySession, *submitted: SealedEnvelope) -> None:
    """Acknowledge ``submitted`` at every recipient (the sender's quota is freed)."""
    for envelope in submitted:
        for entry in envelope.header.recipients:
            done = relay.ack(entry.principal, [envelope.message_id.hex()])
            assert done.status_code == 204, done.text[:300]


def octets_headers(authorization: str | None, length: int | None) -> list[tuple[str, str]]:
    headers = [("Content-Type", OCTETS)]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    if length is not None:
        headers.append(("Content-Length", str(length)))
    return headers


# -- API-3: the cheap checks first ----------------------------------------------------------


@pytest.mark.req("API-3", "API-2", "API-20", "API-19")
def test_a_bad_authorization_is_refused_before_an_oversized_declared_length(
    relay: RelaySession,
) -> None:
    sender = CHARLIE
    limit = relay.profile["maxEnvelopeBytes"]
    stale = relay.authorization(sender, "POST", "/v1/messages", now=relay.now() - 3600)
    response = raw_exchange(
        relay, "POST", "/v1/messages", octets_headers(stale, limit + 1)
    )  # the body is never sent: only a relay that does not wait for it answers
    refused = problem(response, 401, "stale")
    assert refused.headers.get("www-authenticate", "").split(" ")[0] == "NCBR1"


@pytest.mark.req("API-3", "API-4", "API-21", "API-19", "API-20", "AUTH-15")
def test_a_declared_length_over_the_limit_is_refused_before_the_body_and_the_nonce_stays_unused(
    relay: RelaySession,
) -> None:
    sender, recipient = CHARLIE, DELTA
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient])
    credentials = relay.authorization(sender, "POST", "/v1/messages", envelope.data)
    limit = relay.profile["maxEnvelopeBytes"]
    response = raw_exchange(relay, "POST", "/v1/messages", octets_headers(credentials, limit + 1))
    problem(response, 413, "limit-exceeded")
    # (2) before (3): an oversized declaration with a wrong media type is still 413
    headers = [("Content-Type", "text/plain"), ("Authorization", credentials)]
    headers.append(("Content-Length", str(limit + 1)))
    problem(raw_exchange(relay, "POST", "/v1/messages", headers), 413, "limit-exceeded")
    assert_stored_nothing(relay, recipient)
    # refused before step 5: the very same credentials are still good for the signed request
    again = raw_exchange(
        relay,
        "POST",
        "/v1/messages",
        octets_headers(credentials, len(envelope.data)),
        envelope.data,
    )
    relay.accepted(again, envelope)
    settle(relay, envelope)


@pytest.mark.req("API-3", "API-4", "API-19", "API-20", "AUTH-15")
@pytest.mark.parametrize("media", ["text/plain", "application/json", None])
def test_another_media_type_is_refused_and_the_nonce_stays_unused(
    relay: RelaySession, media: str | None
) -> None:
    sender, recipient = DELTA, ECHO
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient])
    credentials = relay.authorization(sender, "POST", "/v1/messages", envelope.data)
    headers = {"authorization": credentials}
    if media is not None:
        headers["content-type"] = media
    response = relay.request("POST", "/v1/messages", body=envelope.data, headers=headers)
    problem(response, 415, "malformed")
    assert_stored_nothing(relay, recipient)
    # the media type is not signed: the same credentials with the right one are accepted
    accepted_with(relay, envelope, credentials)


@pytest.mark.req("API-3", "API-21", "API-19", "API-20", "AUTH-15")
def test_a_body_over_the_limit_is_refused_as_it_arrives_before_the_signature(
    relay: RelaySession,
) -> None:
    sender, recipient = ECHO, ALPHA
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient])
    credentials = relay.authorization(sender, "POST", "/v1/messages", envelope.data)
    headers = [("Content-Type", OCTETS), ("Authorization", credentials)]
    headers.append(("Transfer-Encoding", "chunked"))
    # no length declared; the body (which the credentials do not sign) never ends
    chunks = oversized_chunks(relay.profile["maxEnvelopeBytes"])
    problem(raw_exchange(relay, "POST", "/v1/messages", headers, chunks), 413, "limit-exceeded")
    assert_stored_nothing(relay, recipient)
    accepted_with(relay, envelope, credentials)


@pytest.mark.req("API-3", "API-2", "API-19", "API-20", "AUTH-14", "AUTH-15")
def test_the_signature_is_checked_before_the_envelope_and_a_failure_uses_no_nonce(
    relay: RelaySession,
) -> None:
    sender, recipient = ALPHA, BRAVO
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient])
    credentials = relay.authorization(sender, "POST", "/v1/messages", envelope.data)
    # another body under these credentials: not an envelope at all, yet 401, not 400
    response = relay.request(
        "POST",
        "/v1/messages",
        body=b"not an envelope",
        content_type=OCTETS,
        headers={"authorization": credentials},
    )
    refused = problem(response, 401, "bad-signature")
    assert refused.headers.get("www-authenticate", "").split(" ")[0] == "NCBR1"
    assert_stored_nothing(relay, recipient)
    accepted_with(relay, envelope, credentials)


@pytest.mark.req("API-3", "API-2", "API-24", "API-19")
@pytest.mark.parametrize("query", ["known=1", "bogus=1", "known=x"])
def test_authentication_comes_before_the_query(relay: RelaySession, query: str) -> None:
    envelope = relay.seal(BRAVO, [CHARLIE])
    response = relay.request(
        "POST", f"/v1/messages?{query}", body=envelope.data, content_type=OCTETS
    )  # anonymous: refused at step 1, whatever the query says
    problem(response, 401, "malformed")


# -- API-5: the routing checks --------------------------------------------------------------


@pytest.mark.req("API-5", "API-19", "API-20")
def test_an_unlisted_recipient_is_an_unknown_key(relay: RelaySession) -> None:
    sender, recipient = CHARLIE, DELTA
    relay.drain(recipient)
    envelope = seal(
        b"to a stranger",
        sender=relay.ids[sender],
        recipients=[relay.ids[recipient].public, stranger().public],
        now=relay.now(),
        seq=1,
        rng=os.urandom,
    )
    problem(relay.post_envelope(sender, envelope.data), 422, "unknown-key")
    assert_stored_nothing(relay, recipient)


@pytest.mark.req("API-5", "API-19", "API-20", "ROT-5")
def test_a_suspended_recipient_is_an_unknown_key(relay: RelaySession) -> None:
    sender, recipient = CHARLIE, DELTA
    suspended = next(p.id for p in relay.fixture.principals.values() if not p.active)
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient, suspended])
    problem(relay.post_envelope(sender, envelope.data), 422, "unknown-key")
    assert_stored_nothing(relay, recipient)


@pytest.mark.req("API-5", "API-19", "API-20")
def test_an_envelope_from_an_unlisted_sender_is_an_unknown_key(relay: RelaySession) -> None:
    sender, recipient = DELTA, ECHO
    relay.drain(recipient)
    forged = stranger()
    envelope = seal(
        b"from a stranger",
        sender=forged,
        recipients=[relay.ids[recipient].public],
        now=relay.now(),
        seq=1,
        rng=os.urandom,
    )
    # authenticated as a listed bureau, the envelope is checked before its sender (API-6)
    problem(relay.post_envelope(sender, envelope.data), 422, "unknown-key")
    assert_stored_nothing(relay, recipient)


@pytest.mark.req("API-5", "API-19", "API-20")
@pytest.mark.parametrize(
    ("shift", "ttl", "code"),
    [(-7 * 24 * 3600, 3600, "stale"), (24 * 3600, 3600, "future-dated")],
)
def test_an_envelope_out_of_its_time_is_refused(
    relay: RelaySession, shift: int, ttl: int, code: str
) -> None:
    sender, recipient = DELTA, ECHO
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient], now=relay.now() + shift, ttl=ttl)
    problem(relay.post_envelope(sender, envelope.data), 422, code)
    assert_stored_nothing(relay, recipient)


@pytest.mark.req("API-5", "API-19", "API-20")
def test_a_flipped_bit_in_the_outer_signature_is_a_bad_signature(relay: RelaySession) -> None:
    sender, recipient = ECHO, ALPHA
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient])
    data = bytearray(envelope.data)
    data[-1] ^= 0x01  # the outer signature is the envelope's last field, bin(64)
    problem(relay.post_envelope(sender, bytes(data)), 422, "bad-signature")
    assert_stored_nothing(relay, recipient)
    # the envelope itself is still good (nothing of it was taken)
    relay.accepted(relay.post_envelope(sender, envelope.data), envelope)
    settle(relay, envelope)


def _undecodable(relay: RelaySession, sender: str, recipient: str) -> dict[str, tuple[bytes, str]]:
    data = relay.seal(sender, [recipient]).data
    created = relay.now()
    return {
        "garbage": (b"not an envelope", "malformed"),
        "empty": (b"", "malformed"),
        "truncated": (data[:-10], "malformed"),
        "trailing": (data + b"\x00", "malformed"),
        "version": (reheader(data, 0, 2), "unsupported-version"),
        "suite": (reheader(data, 1, 2), "unsupported-suite"),
        "ephemeral": (reheader(data, 9, bytes(32)), "invalid-peer-key"),
        "window": (
            reheader(reheader(data, 6, created), 7, created + 10 * 365 * 24 * 3600),
            "limit-exceeded",
        ),
    }


@pytest.mark.req("API-5", "API-19", "API-20")
@pytest.mark.parametrize(
    "case", ["garbage", "empty", "truncated", "trailing", "version", "suite", "ephemeral", "window"]
)
def test_an_envelope_that_does_not_decode_is_400(relay: RelaySession, case: str) -> None:
    sender, recipient = ALPHA, BRAVO
    relay.drain(recipient)
    data, code = _undecodable(relay, sender, recipient)[case]
    problem(relay.post_envelope(sender, data), 400, code)
    assert_stored_nothing(relay, recipient)


# -- API-6: the sender is the authenticated principal ---------------------------------------


@pytest.mark.req("API-6", "API-19", "API-20")
def test_an_envelope_another_bureau_signed_is_a_binding_mismatch(relay: RelaySession) -> None:
    author, submitter, recipient = CHARLIE, DELTA, ECHO
    relay.drain(recipient)
    envelope = relay.seal(author, [recipient])
    problem(relay.post_envelope(submitter, envelope.data), 403, "binding-mismatch")
    # a recipient submitting a message it was sent is no different
    problem(relay.post_envelope(recipient, envelope.data), 403, "binding-mismatch")
    assert_stored_nothing(relay, recipient)
    # nothing of it was kept: its author may still submit it
    relay.accepted(relay.post_envelope(author, envelope.data), envelope)
    settle(relay, envelope)


# -- API-7: the acceptance, an identical resubmission and a conflict ------------------------


def _hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX


@pytest.mark.req("API-7", "API-24", "LOG-19")
def test_the_acceptance_and_an_identical_resubmission(relay: RelaySession) -> None:
    sender, recipient = ALPHA, BRAVO
    relay.drain(recipient)
    envelope = relay.seal(sender, [recipient])
    first = relay.accepted(relay.post_envelope(sender, envelope.data), envelope)
    assert first.body.keys() == ACCEPTANCE | EVIDENCE, sorted(first.body)
    assert first.body["sender"] == sender
    assert _hex64(first.body["messageId"])
    assert _hex64(first.body["messageHash"])
    accepted_at = first.body["acceptedAt"]
    assert type(accepted_at) is int
    assert accepted_at >= 0
    assert abs(accepted_at - relay.now()) <= relay.profile["requestSkew"], "the relay's time"
    size = log_size(relay)

    time.sleep(1.1)  # a later second: acceptedAt must still be the first acceptance's
    second = relay.accepted(relay.post_envelope(sender, envelope.data), envelope)
    for name in (*ACCEPTANCE, "logIndex"):
        assert second.body[name] == first.body[name], f"{name} changed on resubmission"
    assert log_size(relay) == size, "an identical resubmission appended to the log"

    deliveries = relay.batch(recipient)["messages"]
    assert [d["messageId"] for d in deliveries] == [envelope.message_id.hex()], "delivered once"
    settle(relay, envelope)
    # after the acknowledgement too, the same bytes get the same answer and nothing new
    third = relay.accepted(relay.post_envelope(sender, envelope.data), envelope)
    for name in (*ACCEPTANCE, "logIndex"):
        assert third.body[name] == first.body[name], f"{name} changed on resubmission"


@pytest.mark.req("API-7", "API-19", "API-20")
def test_a_message_id_held_for_other_bytes_is_a_replay(relay: RelaySession) -> None:
    sender, recipient = CHARLIE, DELTA
    relay.drain(recipient)
    content_key = os.urandom(32)
    original = seal_with_key(relay, sender, recipient, b"the original", content_key)
    other = seal_with_key(relay, sender, recipient, b"other bytes", content_key)
    assert original.message_id == other.message_id
    assert original.data != other.data
    relay.accepted(relay.post_envelope(sender, original.data), original)
    problem(relay.post_envelope(sender, other.data), 409, "replay")
    assert mailbox_ids(relay, recipient) == [original.message_id.hex()], "the other was stored"
    settle(relay, original)


@pytest.mark.req("API-7", "API-19", "API-20")
def test_a_message_id_held_for_another_sender_is_a_replay(relay: RelaySession) -> None:
    sender, other_sender, recipient = DELTA, ECHO, ALPHA
    relay.drain(recipient)
    content_key = os.urandom(32)
    original = seal_with_key(relay, sender, recipient, b"the original", content_key)
    taken = seal_with_key(relay, other_sender, recipient, b"the original", content_key)
    assert original.message_id == taken.message_id
    relay.accepted(relay.post_envelope(sender, original.data), original)
    problem(relay.post_envelope(other_sender, taken.data), 409, "replay")
    assert mailbox_ids(relay, recipient) == [original.message_id.hex()], "the other was stored"
    settle(relay, original)
