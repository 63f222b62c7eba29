"""The transport of a bureau to its relay: signed requests, retries, bounded answers.

Theory of operation.  :class:`RelayClient` speaks the relay API (spec/relay-api.md)
over one ``httpx.AsyncClient``; it uses anyio only, so it runs unchanged under
trio and asyncio.  Every request but the public directory fetch is signed with
:func:`ncb_relay.request_auth.sign_request` over the method, the target exactly
as httpx sends it, and the exact body bytes, anew for every attempt (AUTH-4).

Retries.  A connection failure, a timeout and an answer ``429``, ``500``,
``502``, ``503`` or ``504`` are retried up to ``RetryPolicy.attempts`` times,
with exponential backoff and jitter drawn from the injected ``rng``, waiting at
least what ``Retry-After`` asks (a longer ``Retry-After`` than the policy allows
ends the retries).  A submission is retried with the identical bytes: the
relay's dedupe (API-7) answers a copy it holds with the original acceptance.
When the budget is spent, a submission that may have reached the relay (a
timeout or a broken connection after the request went out, a ``5xx`` other
than ``503``) raises :class:`~ncb_relay.errors.SubmissionUnknown`, never a
failure; anything else raises :class:`~ncb_relay.errors.RelayUnavailable`.

Refusals.  Any other answer that is not the expected success is a refusal.  Its
``application/problem+json`` ``code`` is raised as the library's class of that
code (``replay`` is :class:`~ncb_relay.errors.Replay`, ...); a code the library
does not know, or a refusal without a problem body, as
:class:`~ncb_relay.errors.RelayRefused`.  No httpx exception leaves the client.

Bounds.  No answer is read past a limit derived from the relay's limits: a
batch at most ``limit`` envelopes of ``max_envelope_bytes`` in base64url plus
their fields, a directory at most a signed directory's size, anything else a
few KiB.  A long-poll's read timeout is the wait plus ``long_poll_margin``,
never httpx's default 5 seconds.

The log.  An acceptance carries the relay's evidence (spec/relay-api.md): a
signed receipt, the signed checkpoint it is proven against, the inclusion
proof and, when the caller said which tree size it holds (``known``), a
consistency proof.  The read methods of the log (:meth:`RelayClient.checkpoint`,
``checkpoints``, ``inclusion``, ``consistency``, ``entries``) are public
requests; :meth:`RelayClient.cosign` is a witness's signed one.  Each is read
strictly and within its bounds (a note at most 16 KiB, a proof at most 64
hashes, a receipt at most 512 bytes); an evidence field of an acceptance
that is missing or malformed makes the acceptance unusable
(:class:`~ncb_relay.errors.SubmissionUnknown`), a malformed answer of a read
method raises :class:`~ncb_relay.errors.RelayUnavailable`.

What this layer does not do: open or verify the envelopes it fetches (the
caller must, with :func:`ncb_relay.open_envelope`, before anything else sees
them), verify the log's receipts, checkpoints and proofs (the caller must,
with :func:`ncb_relay.receipt.verify_receipt` and
:class:`~ncb_relay.checkpoint.LogView`), or persist cursors.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Self

import anyio
import httpx

from .. import primitives
from ..anchor import AnchorChain
from ..envelope import SealedEnvelope
from ..errors import (
    MalformedInput,
    NcbRelayError,
    RelayUnavailable,
    SubmissionUnknown,
    UsageError,
)
from ..header import DEFAULT_LIMITS
from ..identity import PrivateIdentity
from ..request_auth import MAX_REQUEST_SKEW, sign_request
from ..signatures import DIRECTORY_KIND
from ..verified_directory import VerifiedDirectory, verify_directory
from .answers import (
    MAX_LOG_INDEX,
    MAX_NOTE_BYTES,
    MAX_PROOF_HASHES,
    MAX_RECEIPT_BYTES,
    Acceptance,
    Batch,
    Delivery,
    LogEntry,
    RetryPolicy,
    _Answer,
    _b64decode,
    _consistency,
    _hex32,
    _json_object,
    _log_entry,
    _log_size,
    _message_id_hex,
    _note,
    _Oversized,
    _problem_code,
    _proof,
    _refusal,
    _retry_after,
    _text,
    _uint,
    _wall_clock,
)

__all__ = ["RelayClient"]

MAX_BATCH = 1000  # API-21: the largest batch limit a relay may set
MAX_ACK_IDS = 1000  # API-21: ids in one acknowledgement
MAX_WAIT = 300  # API-21: the longest long-poll a relay may allow
SMALL_ANSWER = 16 * 1024  # a problem, an empty answer
MAX_LOG_BATCH = 1000  # checkpoints or entries in one answer (spec/relay-api.md)
PROOF_ANSWER = 2 * MAX_PROOF_HASHES * 70 + 1024  # one or two proofs in hex, and their fields
NOTE_ANSWER = 2 * MAX_NOTE_BYTES + 1024  # a note as a JSON string (newlines escaped)
ACCEPTANCE_ANSWER = NOTE_ANSWER + PROOF_ANSWER + 2 * MAX_RECEIPT_BYTES + 1024
ENTRY_ANSWER = 160  # one log entry's JSON
DELIVERY_OVERHEAD = 1024  # the JSON fields of one delivery besides its envelope
DEFAULT_TIMEOUT = httpx.Timeout(10.0, read=30.0)

_RETRIED = frozenset({429, 500, 502, 503, 504})
_REFUSED_UNCHANGED = frozenset({429, 503})  # a refusal that stored nothing (API-20)


class _OneChunk:
    """An async iterator over one chunk: nothing to finalise if it is dropped half-read."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


class _Body(httpx.AsyncByteStream):
    """A request body for httpx that is not an async generator.

    httpx's own byte stream iterates through an async generator, which trio
    reports when a request is cancelled in the middle of its upload and the
    generator is collected unfinished (encode/httpx#3686).
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> _OneChunk:
        return _OneChunk(self._data)


class RelayClient:
    """One bureau's connection to one relay: submit, fetch, acknowledge, directory.

    ``base_url`` is the relay's origin (``https://relay.example``, no path: the
    relay serves at the root, AUTH-3).  ``clock`` and ``rng`` sign requests and
    jitter retries; ``timeout`` applies to every request (a fetch's read
    timeout is raised to its wait plus ``long_poll_margin``).  ``transport``
    replaces httpx's network transport (tests, proxies).
    """

    def __init__(
        self,
        base_url: str,
        *,
        relay_id: str,
        identity: PrivateIdentity,
        clock: Callable[[], int] = _wall_clock,
        rng: primitives.RandomSource = os.urandom,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        long_poll_margin: float = 10.0,
        retry: RetryPolicy | None = None,
        max_envelope_bytes: int = DEFAULT_LIMITS.max_envelope_bytes,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        try:
            url = httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UsageError("base_url is not a URL") from exc
        if url.scheme not in ("http", "https") or url.path not in ("", "/") or url.query:
            raise UsageError("base_url is the relay's origin: http(s)://host[:port], no path")
        if not isinstance(identity, PrivateIdentity):
            raise UsageError("identity is the bureau's PrivateIdentity")
        if not 0 < long_poll_margin <= MAX_REQUEST_SKEW:
            raise UsageError("long_poll_margin is a positive number of seconds")
        self.relay_id = relay_id
        self.identity = identity
        self.retry = retry or RetryPolicy()
        self.max_envelope_bytes = max_envelope_bytes
        self._clock = clock
        self._rng = rng
        self._timeout = timeout
        self._margin = long_poll_margin
        self._http = httpx.AsyncClient(
            base_url=url, timeout=timeout, transport=transport, follow_redirects=False
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the endpoints -------------------------------------------------------------------------

    async def submit(self, envelope: bytes, known: int | None = None) -> Acceptance:
        """Submit an envelope (API-4 to API-7); return the relay's acceptance of it.

        ``known`` is the size of the relay's log in the checkpoint the caller
        holds: the acceptance then carries a consistency proof between it and
        the new checkpoint (unless the relay's log is smaller).  The evidence
        is not verified here.  Raises :class:`SubmissionUnknown` when the relay
        may have accepted it (also when its acceptance or evidence is
        malformed), the error of the refusal's code when it refused,
        :class:`RelayUnavailable` when it was never reached or stayed busy.
        """
        if not isinstance(envelope, bytes):
            raise UsageError("an envelope is bytes")
        target = "/v1/messages"
        if known is not None:
            target += f"?known={_size_argument(known, 'known')}"
        answer = await self._request(
            "POST",
            target,
            envelope,
            "application/octet-stream",
            max_bytes=ACCEPTANCE_ANSWER,
            submission=True,
        )
        if answer.status != 202:
            raise _refusal(answer, "submission")
        try:
            return self._check_acceptance(envelope, answer.body)
        except NcbRelayError as exc:
            unknown = SubmissionUnknown(f"the relay's acceptance is unusable: {exc.message}")
            raise unknown from exc

    async def fetch(self, *, after: int = 0, limit: int = 10, wait: int = 0) -> Batch:
        """Fetch the mailbox after ``after`` (API-8), holding up to ``wait`` s (API-9)."""
        if type(after) is not int or not 0 <= after < 2**63:
            raise UsageError("after is a cursor: a non-negative integer")
        if type(limit) is not int or not 1 <= limit <= MAX_BATCH:
            raise UsageError(f"limit is an integer between 1 and {MAX_BATCH}")
        if type(wait) is not int or not 0 <= wait <= MAX_WAIT:
            raise UsageError(f"wait is a whole number of seconds between 0 and {MAX_WAIT}")
        read = max(self._timeout.read or 0.0, wait + self._margin)
        envelope_chars = math.ceil(self.max_envelope_bytes * 4 / 3)
        answer = await self._request(
            "GET",
            f"/v1/mailbox?after={after}&limit={limit}&wait={wait}",
            max_bytes=limit * (envelope_chars + DELIVERY_OVERHEAD) + DELIVERY_OVERHEAD,
            timeout=httpx.Timeout(
                connect=self._timeout.connect,
                read=read,
                write=self._timeout.write,
                pool=self._timeout.pool,
            ),
        )
        if answer.status != 200:
            raise _refusal(answer, "fetch")
        try:
            return self._parse_batch(answer.body, limit)
        except MalformedInput as exc:
            raise RelayUnavailable(f"the relay's batch is unusable: {exc.message}") from exc

    async def acknowledge(self, message_ids: Iterable[bytes]) -> None:
        """Acknowledge (delete) messages of the own mailbox (API-12), 1,000 ids a request."""
        ids = [_message_id_hex(m) for m in message_ids]
        for start in range(0, len(ids), MAX_ACK_IDS):
            body = json.dumps({"messageIds": ids[start : start + MAX_ACK_IDS]}).encode()
            answer = await self._request("POST", "/v1/mailbox/ack", body, "application/json")
            if answer.status != 204:
                raise _refusal(answer, "acknowledgement")

    async def directory(self) -> bytes:
        """The relay's current signed directory file (API-14), unverified."""
        answer = await self._request(
            "GET", "/v1/directory", max_bytes=DIRECTORY_KIND.outer_limits.max_bytes, signed=False
        )
        if answer.status != 200:
            raise _refusal(answer, "directory fetch")
        return answer.body

    async def verified_directory(
        self, *, anchors: AnchorChain, previous: VerifiedDirectory | None = None
    ) -> VerifiedDirectory:
        """The relay's directory, verified now against ``anchors`` and the version held before.

        A version older than ``previous`` raises :class:`~ncb_relay.errors.Rollback`;
        the same serial with other bytes :class:`~ncb_relay.errors.Fork`.
        """
        return verify_directory(
            await self.directory(), anchors=anchors, now=self._clock(), previous=previous
        )

    # --- the log (public reads, and a witness's cosignature) -----------------------------------

    async def checkpoint(self, cosigned: int = 0) -> bytes | None:
        """The relay's latest signed checkpoint with its cosignatures, unverified.

        With ``cosigned`` above 0, the latest one the relay holds with at least
        that many witness cosignatures (``?cosigned=``).  ``None`` when the relay
        has signed none yet, or none with that many (``404``, ``not-found``).
        """
        if type(cosigned) is not int or not 0 <= cosigned <= 31:  # 32 signature lines a note
            raise UsageError("cosigned is an integer between 0 and 31")
        path = "/v1/log/checkpoint" + (f"?cosigned={cosigned}" if cosigned else "")
        answer = await self._request("GET", path, max_bytes=MAX_NOTE_BYTES, signed=False)
        if answer.status == 404 and _problem_code(answer) == "not-found":
            return None
        if answer.status != 200:
            raise _refusal(answer, "checkpoint fetch")
        try:
            return _note(_utf8(answer.body))
        except NcbRelayError as exc:
            raise RelayUnavailable(f"the relay's checkpoint is unusable: {exc.message}") from exc

    async def checkpoints(self, after: int = 0, limit: int = 100) -> tuple[bytes, ...]:
        """The signed checkpoints of sizes above ``after``, in increasing size, unverified."""
        after = _size_argument(after, "after")
        if type(limit) is not int or not 1 <= limit <= MAX_LOG_BATCH:
            raise UsageError(f"limit is an integer between 1 and {MAX_LOG_BATCH}")
        value = await self._log_read(
            f"/v1/log/checkpoints?after={after}&limit={limit}",
            limit * NOTE_ANSWER,
            "checkpoints",
        )
        try:
            items = value.get("checkpoints")
            if not isinstance(items, list) or len(items) > limit:
                raise MalformedInput("the relay's answer holds no list of at most limit notes")
            return tuple(_note(item) for item in items)
        except NcbRelayError as exc:
            raise RelayUnavailable(f"the relay's checkpoints are unusable: {exc.message}") from exc

    async def inclusion(self, index: int, size: int) -> tuple[bytes, ...]:
        """The proof of the entry at ``index`` in the tree of ``size`` entries, unverified."""
        index, size = _size_argument(index, "index"), _size_argument(size, "size")
        if index >= size:
            raise UsageError("the index is below the tree size")
        value = await self._log_read(
            f"/v1/log/inclusion?index={index}&size={size}", PROOF_ANSWER, "inclusion proof"
        )
        try:
            if (value.get("index"), value.get("size")) != (index, size):
                raise MalformedInput("the relay's proof is for another index or size")
            return _proof(value.get("proof"), "inclusion proof")
        except NcbRelayError as exc:
            raise RelayUnavailable(f"the relay's proof is unusable: {exc.message}") from exc

    async def consistency(self, old: int, new: int) -> tuple[bytes, ...]:
        """The proof that the tree of ``new`` entries extends the one of ``old``, unverified."""
        old, new = _size_argument(old, "old"), _size_argument(new, "new")
        if old > new:
            raise UsageError("the old size is at most the new size")
        value = await self._log_read(
            f"/v1/log/consistency?from={old}&to={new}", PROOF_ANSWER, "consistency proof"
        )
        try:
            proof = _consistency(value)
            if (proof.old_size, proof.new_size) != (old, new):
                raise MalformedInput("the relay's proof is for other sizes")
            return proof.proof
        except NcbRelayError as exc:
            raise RelayUnavailable(f"the relay's proof is unusable: {exc.message}") from exc

    async def entries(self, start: int = 0, limit: int = 1000) -> tuple[LogEntry, ...]:
        """Up to ``limit`` log entries from index ``start`` on, consecutive, unverified."""
        start = _size_argument(start, "start")
        if type(limit) is not int or not 1 <= limit <= MAX_LOG_BATCH:
            raise UsageError(f"limit is an integer between 1 and {MAX_LOG_BATCH}")
        value = await self._log_read(
            f"/v1/log/entries?start={start}&limit={limit}",
            limit * ENTRY_ANSWER + 1024,
            "log entries",
        )
        try:
            items = value.get("entries")
            if not isinstance(items, list) or len(items) > limit:
                raise MalformedInput("the relay's answer holds no list of at most limit entries")
            entries = tuple(_log_entry(item) for item in items)
            if [e.index for e in entries] != list(range(start, start + len(entries))):
                raise MalformedInput("the relay's entries are not consecutive from start")
            return entries
        except NcbRelayError as exc:
            raise RelayUnavailable(f"the relay's entries are unusable: {exc.message}") from exc

    async def cosign(self, note: bytes) -> None:
        """Give the relay a checkpoint with this principal's cosignature line(s) (a witness).

        The caller has verified the checkpoint and its consistency with the
        latest one it cosigned before it cosigned it.
        """
        if not isinstance(note, bytes) or not 0 < len(note) <= MAX_NOTE_BYTES:
            raise UsageError(f"a cosigned note is at most {MAX_NOTE_BYTES} bytes")
        answer = await self._request(
            "POST", "/v1/log/cosignature", note, "text/plain; charset=utf-8"
        )
        if answer.status != 204:
            raise _refusal(answer, "cosignature")

    async def _log_read(self, target: str, max_bytes: int, what: str) -> dict[str, object]:
        """A public GET of the log: its JSON object, or the refusal raised."""
        answer = await self._request("GET", target, max_bytes=max_bytes, signed=False)
        if answer.status != 200:
            raise _refusal(answer, f"{what} fetch")
        try:
            return _json_object(answer.body, what)
        except MalformedInput as exc:
            raise RelayUnavailable(f"the relay's {what} is unusable: {exc.message}") from exc

    # --- the exchange --------------------------------------------------------------------------

    def _check_acceptance(self, envelope: bytes, body: bytes) -> Acceptance:
        value = _json_object(body, "acceptance")
        index = value.get("logIndex")
        acceptance = Acceptance(
            sender=_text(value.get("sender"), "sender"),
            message_id=_hex32(value.get("messageId"), "message id"),
            message_hash=_hex32(value.get("messageHash"), "message hash"),
            accepted_at=_uint(value.get("acceptedAt"), "acceptance time"),
            log_index=None if index is None else _log_size(index, "log index"),
        )
        if "receipt" in value:  # the evidence comes whole
            if index is None:
                raise MalformedInput("the relay's receipt comes without a log index")
            consistency = value.get("consistency")
            acceptance = replace(
                acceptance,
                receipt=_receipt(value.get("receipt")),
                checkpoint=_note(value.get("checkpoint")),
                inclusion=_proof(value.get("inclusion"), "inclusion proof"),
                consistency=None if consistency is None else _consistency(consistency),
            )
        elif any(name in value for name in ("checkpoint", "inclusion", "consistency")):
            raise MalformedInput("the relay's evidence comes without its receipt")
        own = SealedEnvelope.from_bytes(envelope)
        if (acceptance.sender, acceptance.message_id, acceptance.message_hash) != (
            self.identity.principal,
            own.message_id,
            own.message_hash,
        ):
            raise MalformedInput("the acceptance names another message than the one sent")
        return acceptance

    def _parse_batch(self, body: bytes, limit: int) -> Batch:
        value = _json_object(body, "batch")
        items = value.get("messages")
        if not isinstance(items, list) or len(items) > limit:
            raise MalformedInput("the relay's batch holds no list of at most limit messages")
        messages = []
        for item in items:
            if not isinstance(item, dict):
                raise MalformedInput("the relay's delivery is not a JSON object")
            messages.append(
                Delivery(
                    position=_uint(item.get("position"), "position"),
                    sender=_text(item.get("sender"), "sender"),
                    message_id=_hex32(item.get("messageId"), "message id"),
                    message_hash=_hex32(item.get("messageHash"), "message hash"),
                    accepted_at=_uint(item.get("acceptedAt"), "acceptance time"),
                    expires=_uint(item.get("expires"), "expiry"),
                    attempt=_uint(item.get("attempt"), "attempt"),
                    envelope=_b64decode(item.get("envelope"), self.max_envelope_bytes),
                )
            )
        return Batch(_uint(value.get("cursor"), "cursor"), tuple(messages))

    def _delay(self, attempt: int, retry_after: float) -> float:
        policy = self.retry
        ceiling = min(policy.max_delay, policy.base_delay * 2.0**attempt)
        jitter = int.from_bytes(self._rng(2), "big") / 0xFFFF  # equal jitter: [ceiling/2, ceiling]
        return max(retry_after, ceiling / 2 + jitter * ceiling / 2)

    async def _request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        content_type: str | None = None,
        *,
        max_bytes: int = SMALL_ANSWER,
        timeout: httpx.Timeout | None = None,
        signed: bool = True,
        submission: bool = False,
    ) -> _Answer:
        """Send a request, retrying per the policy; return the first answer not retried."""
        ambiguous = False
        last: _Answer | None = None
        reason = "no attempt"
        for attempt in range(self.retry.attempts):
            retry_after = 0.0
            try:
                answer = await self._exchange(
                    method, target, body, content_type, max_bytes, timeout, signed
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                reason = f"cannot connect ({type(exc).__name__})"  # nothing was sent
            except (httpx.RequestError, _Oversized) as exc:
                ambiguous = True  # the request may have reached the relay
                reason = f"no complete answer ({type(exc).__name__})"
            else:
                if answer.status not in _RETRIED:
                    return answer
                last = answer
                ambiguous = ambiguous or answer.status not in _REFUSED_UNCHANGED
                reason = f"the relay answered {answer.status}"
                retry_after = _retry_after(answer)
                if retry_after > self.retry.max_retry_after:
                    break
            if attempt + 1 < self.retry.attempts:
                await anyio.sleep(self._delay(attempt, retry_after))
        path = target.split("?", maxsplit=1)[0]
        message = f"{method} {path}: {reason}, after {self.retry.attempts} attempts"
        if submission and ambiguous:
            raise SubmissionUnknown(message)
        raise RelayUnavailable(
            message,
            status=last.status if last else None,
            remote_code=_problem_code(last) if last else None,
        )

    async def _exchange(  # noqa: PLR0917
        self,
        method: str,
        target: str,
        body: bytes,
        content_type: str | None,
        max_bytes: int,
        timeout: httpx.Timeout | None,
        signed: bool,
    ) -> _Answer:
        headers = {"content-type": content_type} if content_type else {}
        request = self._http.build_request(
            method, target, content=body, headers=headers, timeout=timeout or self._timeout
        )
        request.stream = _Body(body)  # its Content-Length is already set from ``body``
        if signed:  # over the target exactly as httpx puts it on the request line
            credentials = sign_request(
                principal=self.identity.principal,
                signer=self.identity.signer,
                relay=self.relay_id,
                method=method,
                target=request.url.raw_path.decode("ascii"),
                body=body,
                now=self._clock(),
                rng=self._rng,
            )
            request.headers["authorization"] = credentials.authorization
        response = await self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _Oversized
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _Oversized
                chunks.append(chunk)
        finally:
            await response.aclose()
        return _Answer(response.status_code, response.headers, b"".join(chunks))


def _size_argument(value: object, what: str) -> int:
    """A tree size or index the caller passes: an integer from 0 to 2**63 - 1."""
    if type(value) is not int or not 0 <= value <= MAX_LOG_INDEX:
        raise UsageError(f"{what} is an integer from 0 to 2**63 - 1")
    return value


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("the relay's note is not UTF-8") from None


def _receipt(value: object) -> bytes:
    receipt = _b64decode(value, MAX_RECEIPT_BYTES, "receipt")
    if not receipt:
        raise MalformedInput("the relay's receipt is empty")
    return receipt
