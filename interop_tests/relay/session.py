"""The suite's side of a relay black-box test: signed HTTP requests to the relay under test.

:class:`RelaySession` holds the fixture's principals (their private keys are
published test keys, ``ncb_relay.conformance.relay_fixture``) and one HTTP
client per thread.  It seals envelopes and signs requests with the reference
library, sends them over real sockets to ``--relay URL``, and checks what
comes back only through the helpers below, which say exactly what was
expected.  Every request is signed anew with a fresh nonce (AUTH-4), at the
suite's wall clock: the relay under test must run on a clock within its
request skew of this machine's.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ncb_relay import PrivateIdentity, seal, sign_request
from ncb_relay.checkpoint import LogKey
from ncb_relay.conformance.relay_fixture import RelayFixture
from ncb_relay.envelope import DEFAULT_TTL, SealedEnvelope
from ncb_relay.receipt import VerifiedReceipt, log_origin, verify_receipt

__all__ = ["Problem", "RelaySession", "Submitted", "b64url_decode"]

TIMEOUT = 20.0  # seconds; a guard against a hung relay, never an expectation
PROBLEM_MEMBERS = {"type", "title", "status", "code"}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Problem:
    """A refusal as API-18 shapes it."""

    status: int
    code: str
    headers: httpx.Headers


def problem(response: httpx.Response, status: int, code: str) -> Problem:
    """Assert ``response`` is the refusal ``status`` / ``code`` of API-18 and API-19."""
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.text[:300]}"
    )
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == "application/problem+json", f"content type {media!r}, not problem+json"
    body = response.json()
    assert isinstance(body, dict), "a problem is a JSON object"
    assert set(body) == PROBLEM_MEMBERS, f"a problem has exactly {PROBLEM_MEMBERS}: {sorted(body)}"
    assert body["code"] == code, f"code {body['code']!r}, not {code!r}"
    assert body["status"] == status, f"status member {body['status']!r}, not {status}"
    assert body["type"] == f"urn:ncbr1:error:{code}", f"type {body['type']!r}"
    assert isinstance(body["title"], str), "a problem's title is a text"
    assert body["title"], "a problem has a title"
    return Problem(status, code, response.headers)


@dataclass(frozen=True)
class Submitted:
    """An envelope the relay accepted (202), with its evidence verified."""

    envelope: SealedEnvelope
    body: dict[str, Any]
    receipt: VerifiedReceipt

    @property
    def message_id(self) -> str:
        return self.envelope.message_id.hex()


@dataclass
class RelaySession:
    url: str
    fixture: RelayFixture
    ids: dict[str, PrivateIdentity] = field(init=False)
    _local: threading.local = field(init=False, default_factory=threading.local)
    _clients: list[httpx.Client] = field(init=False, default_factory=list)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.ids = {p.id: p.identity for p in self.fixture.principals.values()}
        self.ids[self.fixture.relay.id] = self.fixture.relay.identity

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """This thread's client (one keep-alive connection pool per thread)."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.url, timeout=TIMEOUT)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    @property
    def relay_id(self) -> str:
        return self.fixture.relay.id

    @property
    def bureaus(self) -> list[str]:
        return self.fixture.bureaus

    @property
    def profile(self) -> Mapping[str, int]:
        return self.fixture.profile

    def now(self) -> int:
        return int(time.time())

    def authorization(
        self,
        who: str,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        now: int | None = None,
        claim: str | None = None,
        relay: str | None = None,
    ) -> str:
        """``who`` signs the request (``claim``: in another's name, a forgery)."""
        return sign_request(
            principal=claim or who,
            signer=self.ids[who].signer,
            relay=relay or self.relay_id,
            method=method,
            target=target,
            body=body,
            now=self.now() if now is None else now,
            rng=os.urandom,
        ).authorization

    def request(
        self,
        method: str,
        target: str,
        *,
        who: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; signed by ``who`` if given, else anonymous."""
        sent: dict[str, str] = {}
        if content_type is not None:
            sent["content-type"] = content_type
        if who is not None:
            sent["authorization"] = self.authorization(who, method, target, body)
        sent.update(headers or {})
        return self.client.request(method, target, content=body or None, headers=sent)

    # -- the bureau's operations ------------------------------------------------------------

    def seal(
        self,
        sender: str,
        recipients: Iterable[str],
        *,
        body: bytes = b"conformance message",
        ttl: int = DEFAULT_TTL,
        now: int | None = None,
    ) -> SealedEnvelope:
        with self._lock:
            self._seq += 1
            seq = self._seq
        return seal(
            body,
            sender=self.ids[sender],
            recipients=[self.ids[r].public for r in recipients],
            now=self.now() if now is None else now,
            seq=seq,
            rng=os.urandom,
            ttl=ttl,
        )

    def post_envelope(self, who: str, data: bytes, *, query: str = "") -> httpx.Response:
        target = "/v1/messages" + (f"?{query}" if query else "")
        return self.request(
            "POST", target, who=who, body=data, content_type="application/octet-stream"
        )

    def submit(self, sender: str, *recipients: str, **options: Any) -> Submitted:
        """Seal from ``sender`` to ``recipients``, submit, and verify the 202 and its receipt."""
        envelope = self.seal(sender, recipients, **options)
        response = self.post_envelope(sender, envelope.data)
        return self.accepted(response, envelope)

    def accepted(self, response: httpx.Response, envelope: SealedEnvelope) -> Submitted:
        """Assert ``response`` accepts ``envelope`` (API-7, API-24) and verify its receipt."""
        assert response.status_code == 202, (
            f"expected 202, got {response.status_code}: {response.text[:300]}"
        )
        body = response.json()
        assert body["sender"] == envelope.header.sender
        assert body["messageId"] == envelope.message_id.hex()
        assert body["messageHash"] == envelope.message_hash.hex()
        receipt = self.verify_evidence(body, envelope)
        return Submitted(envelope, body, receipt)

    def verify_evidence(self, body: Mapping[str, Any], envelope: SealedEnvelope) -> VerifiedReceipt:
        """The receipt, checkpoint and inclusion proof of a 202 (API-24, LOG-17)."""
        relay_key = self.ids[self.relay_id].signer.public_key
        receipt = verify_receipt(
            b64url_decode(body["receipt"]),
            body["checkpoint"].encode(),
            [bytes.fromhex(h) for h in body["inclusion"]],
            relay_id=self.relay_id,
            relay_key=relay_key,
            log=LogKey(log_origin(self.relay_id), relay_key),
            message_id=envelope.message_id,
            message_hash=envelope.message_hash,
        )
        assert receipt.log_index == body["logIndex"], "the receipt's leaf is the 202's logIndex"
        assert receipt.receipt.accepted_at == body["acceptedAt"], "the receipt's time is acceptedAt"
        return receipt

    def fetch(self, who: str, query: str = "") -> httpx.Response:
        target = "/v1/mailbox" + (f"?{query}" if query else "")
        return self.request("GET", target, who=who)

    def batch(self, who: str, query: str = "") -> dict[str, Any]:
        response = self.fetch(who, query)
        assert response.status_code == 200, f"fetch: {response.status_code} {response.text[:300]}"
        batch: dict[str, Any] = response.json()
        return batch

    def ack(self, who: str, message_ids: Iterable[str]) -> httpx.Response:
        body = json.dumps({"messageIds": list(message_ids)}).encode()
        return self.request(
            "POST", "/v1/mailbox/ack", who=who, body=body, content_type="application/json"
        )

    def drain(self, who: str) -> None:
        """Fetch and acknowledge everything handed out of ``who``'s mailbox now.

        A copy fetched and not acknowledged stays leased (invisible) until its
        lease runs out: a test acknowledges by id what it fetched (``finally``).
        """
        for _ in range(100):
            batch = self.batch(who)
            if not batch["messages"]:
                return
            done = self.ack(who, [m["messageId"] for m in batch["messages"]])
            assert done.status_code == 204, f"ack: {done.status_code} {done.text[:300]}"
        raise AssertionError(f"{who}'s mailbox did not drain")

    def receive(self, who: str, message_id: str, *, wait: int = 5) -> dict[str, Any]:
        """Fetch until the delivery of ``message_id`` arrives; return it (not acknowledged)."""
        deadline = time.monotonic() + TIMEOUT
        after = 0
        while time.monotonic() < deadline:
            batch = self.batch(who, f"after={after}&wait={wait}")
            for delivery in batch["messages"]:
                if delivery["messageId"] == message_id:
                    return dict(delivery)
            after = batch["cursor"]
        raise AssertionError(f"{message_id} never reached {who}")
