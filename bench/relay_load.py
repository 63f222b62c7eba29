"""The load generator of the relay benchmark: worker processes replaying pre-built requests.

Each worker process owns some senders; each sender is one asyncio task on its
own keep-alive HTTP/1.1 connection, sending one request at a time (a closed
loop: the concurrency is the number of senders).  Every request of a run is
built before the run starts: envelopes sealed with :func:`ncb_relay.seal`,
requests signed with :func:`ncb_relay.sign_request` and laid out as raw HTTP
bytes, so that during the timed part a request costs the client only a socket
write and the parsing of a status line, a ``content-length`` and a body.  No
HTTP library is used: httpx tops out near 1k requests/s per process.

Kinds of run:

- ``bare``: the submit request of the relay run, sent to ``POST /bench/bare``
  (202 once the body is read, see bench/relay_node.py): the same bytes, the same server.
- ``submit``: ``POST /v1/messages`` of a fresh envelope to one recipient (the
  sender's sink, a mailbox nobody reads).
- ``e2e``: a cycle of three requests: the sender submits, the recipient fetches
  its mailbox (``GET /v1/mailbox``) and acknowledges the message; the latency
  is the whole cycle's (each step's is kept too).  Every sender has its own
  recipient, whose mailbox holds nothing else, so a fetch returns just the
  message submitted.
- ``diffusion``: ``submit`` of an envelope addressed to every bureau of the
  *archive* (195 mailboxes nobody reads).
- ``fanout``: one sender submits an envelope to the first ``width`` bureaus of
  the *audience*, then every one of them, each on its own connection, all at
  once, fetches its mailbox and acknowledges the message: the time until the
  last recipient has it (:func:`_run_fanout`).

A job may date its requests ``dated`` seconds ahead (never beyond the
relay's allowed skew): a relay restarted on an existing store refuses requests
dated before its start plus the skew (AUTH-12).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ncb_relay import PrivateIdentity, seal, sign_request

SUBMIT, FETCH, ACK = "/v1/messages", "/v1/mailbox", "/v1/mailbox/ack"
BARE = "/bench/bare"
KINDS = ("bare", "submit", "e2e")
BODY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker runs: ``count`` cycles of ``kind`` for each of its ``senders``."""

    kind: str
    senders: tuple[int, ...]
    count: int
    dated: int = 0  # seconds added to the requests' dates (never to the envelopes')
    width: int = 0  # fanout: recipients of each envelope


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a sender: its bytes, the status it must get and a text the body holds."""

    data: bytes
    status: int
    expect: bytes = b""


class _Sender:
    def __init__(
        self,
        relay: str,
        host: str,
        sender: PrivateIdentity,
        to: PrivateIdentity,
        sink: PrivateIdentity,
        *,
        archive: Sequence[PrivateIdentity] = (),
    ) -> None:
        self.relay, self.host, self.sender, self.to, self.sink = relay, host, sender, to, sink
        self.archive = archive
        self.dated = 0
        self.seq = 0

    def _request(
        self, who: PrivateIdentity, method: str, target: str, *, body: bytes, media: str, now: int
    ) -> bytes:
        credentials = sign_request(
            principal=who.principal,
            signer=who.signer,
            relay=self.relay,
            method=method,
            target=target,
            body=body,
            now=now + self.dated,
            rng=os.urandom,
        )
        lines = [
            f"{method} {target} HTTP/1.1",
            f"host: {self.host}",
            f"authorization: {credentials.authorization}",
        ]
        if method == "POST":
            lines += [f"content-type: {media}", f"content-length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def cycle(self, kind: str, now: int) -> list[Step]:
        """The requests of one submission (``bare``, ``submit``, ``diffusion``) or ``e2e`` cycle."""
        self.seq += 1
        if kind == "diffusion":
            recipients = [member.public for member in self.archive]
        else:
            recipients = [(self.to if kind == "e2e" else self.sink).public]
        sealed = seal(
            os.urandom(BODY_BYTES),
            sender=self.sender,
            recipients=recipients,
            now=now,
            seq=self.seq,
            rng=os.urandom,
        )
        octets = "application/octet-stream"
        submit = self._request(self.sender, "POST", SUBMIT, body=sealed.data, media=octets, now=now)
        if kind == "bare":
            return [Step(submit.replace(SUBMIT.encode(), BARE.encode(), 1), 202)]
        if kind in ("submit", "diffusion"):
            return [Step(submit, 202)]
        return [Step(submit, 202), *self.receive(self.to, sealed.message_id, now)]

    def receive(self, who: PrivateIdentity, message_id: bytes, now: int) -> list[Step]:
        """``who`` fetches its mailbox, which must hold ``message_id``, and acknowledges it."""
        ack_body = json.dumps({"messageIds": [message_id.hex()]}).encode()
        return [
            Step(
                self._request(who, "GET", FETCH, body=b"", media="", now=now),
                200,
                message_id.hex().encode(),
            ),
            Step(
                self._request(who, "POST", ACK, body=ack_body, media="application/json", now=now),
                204,
            ),
        ]

    def fanout(self, audience: Sequence[PrivateIdentity], now: int) -> list[Step]:
        """A submission to ``audience``, then each member's fetch and acknowledgement, in turn."""
        self.seq += 1
        sealed = seal(
            os.urandom(BODY_BYTES),
            sender=self.sender,
            recipients=[member.public for member in audience],
            now=now,
            seq=self.seq,
            rng=os.urandom,
        )
        octets = "application/octet-stream"
        submit = self._request(self.sender, "POST", SUBMIT, body=sealed.data, media=octets, now=now)
        steps = [Step(submit, 202)]
        for member in audience:
            steps += self.receive(member, sealed.message_id, now)
        return steps


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, step: Step) -> bool:
    writer.write(step.data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status == step.status and step.expect in body


async def _run_sender(
    host: str,
    port: int,
    cycles: Sequence[Sequence[Step]],
    latencies: list[int],
    steps_ns: list[list[int]],
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        for steps in cycles:
            start = mark = time.perf_counter_ns()
            for index, step in enumerate(steps):
                if not await _exchange(reader, writer, step):
                    errors += 1
                now = time.perf_counter_ns()
                if len(steps) > 1:
                    steps_ns[index].append(now - mark)
                mark = now
            latencies.append(mark - start)
    finally:
        writer.close()
    return errors


async def _run(host: str, port: int, plans: Sequence[Sequence[Sequence[Step]]]) -> dict[str, Any]:
    latencies: list[int] = []
    steps_ns: list[list[int]] = [[] for _ in range(max(len(c) for p in plans for c in p))]
    start, cpu = time.monotonic_ns(), time.process_time_ns()
    errors = await asyncio.gather(*(_run_sender(host, port, p, latencies, steps_ns) for p in plans))
    end, cpu = time.monotonic_ns(), time.process_time_ns() - cpu
    return {
        "start_ns": start,
        "end_ns": end,
        "cpu_ns": cpu,
        "latencies_ns": latencies,
        "steps_ns": steps_ns if len(steps_ns) > 1 else [],
        "errors": sum(errors),
    }


async def _run_fanout(host: str, port: int, cycles: Sequence[Sequence[Step]]) -> dict[str, Any]:
    """Each cycle: the submission, then every recipient's fetch and acknowledgement at once.

    The sender and every recipient have their own connection, opened before
    the clock starts.  Per cycle: the submission's latency, and the time from
    its start until the last recipient had its fetch answered (``fetched``)
    and its acknowledgement (``acknowledged``).
    """
    width = (len(cycles[0]) - 1) // 2
    connections = [await asyncio.open_connection(host, port) for _ in range(width + 1)]
    submitted: list[int] = []
    fetched: list[int] = []
    acknowledged: list[int] = []
    errors = 0

    async def receive(index: int, fetch: Step, ack: Step) -> tuple[int, int, int]:
        reader, writer = connections[index + 1]
        wrong = not await _exchange(reader, writer, fetch)
        got = time.perf_counter_ns()
        wrong |= not await _exchange(reader, writer, ack)
        return got, time.perf_counter_ns(), int(wrong)

    start_all, cpu = time.monotonic_ns(), time.process_time_ns()
    try:
        for steps in cycles:
            start = time.perf_counter_ns()
            errors += not await _exchange(*connections[0], steps[0])
            submitted.append(time.perf_counter_ns() - start)
            pairs = [(steps[1 + 2 * i], steps[2 + 2 * i]) for i in range(width)]
            answers = await asyncio.gather(*(receive(i, *pair) for i, pair in enumerate(pairs)))
            fetched.append(max(got for got, _, _ in answers) - start)
            acknowledged.append(max(done for _, done, _ in answers) - start)
            errors += sum(wrong for _, _, wrong in answers)
    finally:
        for _, writer in connections:
            writer.close()
    return {
        "start_ns": start_all,
        "end_ns": time.monotonic_ns(),
        "cpu_ns": time.process_time_ns() - cpu,
        "latencies_ns": fetched,
        "submitted_ns": submitted,
        "acknowledged_ns": acknowledged,
        "steps_ns": [],
        "errors": errors,
    }


def worker(
    conn: Connection,
    relay: str,
    host: str,
    port: int,
    pairs: Sequence[tuple[PrivateIdentity, PrivateIdentity, PrivateIdentity]],
    *,
    audience: Sequence[PrivateIdentity] = (),
    archive: Sequence[PrivateIdentity] = (),
) -> None:
    """A load process: for each :class:`Job`, build its requests, say ready, run.

    The parent sends a job, waits for ``"ready"`` from every worker of the run,
    then sends ``"go"``; the worker answers with its latencies (ns, one per
    cycle), its first start and last end (``time.monotonic_ns``, comparable
    across processes on Linux), the CPU time it used meanwhile and its count of
    unexpected answers.
    """
    senders = [_Sender(relay, f"{host}:{port}", *triple, archive=archive) for triple in pairs]
    while True:
        job: Job | None = conn.recv()
        if job is None:
            return
        for sender in senders:
            sender.dated = job.dated
        now = int(time.time())
        if job.kind == "fanout":
            (first,) = job.senders
            cycles = [senders[first].fanout(audience[: job.width], now) for _ in range(job.count)]
            conn.send("ready")
            if conn.recv() != "go":
                return
            conn.send(asyncio.run(_run_fanout(host, port, cycles)))
            continue
        plans = [[senders[i].cycle(job.kind, now) for _ in range(job.count)] for i in job.senders]
        conn.send("ready")
        if conn.recv() != "go":
            return
        conn.send(asyncio.run(_run(host, port, plans)))
