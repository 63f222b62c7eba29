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
  (202 at once, see bench/relay_node.py): the same bytes, the same server.
- ``submit``: ``POST /v1/messages`` of a fresh envelope to one recipient (the
  sender's sink, a mailbox nobody reads).
- ``e2e``: a cycle of three requests: the sender submits, the recipient fetches
  its mailbox (``GET /v1/mailbox``) and acknowledges the message; the latency
  is the whole cycle's.  Every sender has its own recipient, whose mailbox
  holds nothing else, so a fetch returns just the message submitted.
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
    ) -> None:
        self.relay, self.host, self.sender, self.to, self.sink = relay, host, sender, to, sink
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
            now=now,
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
        """The requests of one submission (``bare``, ``submit``) or one cycle (``e2e``)."""
        self.seq += 1
        sealed = seal(
            os.urandom(BODY_BYTES),
            sender=self.sender,
            recipients=[(self.to if kind == "e2e" else self.sink).public],
            now=now,
            seq=self.seq,
            rng=os.urandom,
        )
        octets = "application/octet-stream"
        submit = self._request(self.sender, "POST", SUBMIT, body=sealed.data, media=octets, now=now)
        if kind == "bare":
            return [Step(submit.replace(SUBMIT.encode(), BARE.encode(), 1), 202)]
        if kind == "submit":
            return [Step(submit, 202)]
        message_id = sealed.message_id.hex()
        ack_body = json.dumps({"messageIds": [message_id]}).encode()
        return [
            Step(submit, 202),
            Step(
                self._request(self.to, "GET", FETCH, body=b"", media="", now=now),
                200,
                message_id.encode(),
            ),
            Step(
                self._request(
                    self.to, "POST", ACK, body=ack_body, media="application/json", now=now
                ),
                204,
            ),
        ]


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
    host: str, port: int, cycles: Sequence[Sequence[Step]], latencies: list[int]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        for steps in cycles:
            start = time.perf_counter_ns()
            for step in steps:
                if not await _exchange(reader, writer, step):
                    errors += 1
            latencies.append(time.perf_counter_ns() - start)
    finally:
        writer.close()
    return errors


async def _run(host: str, port: int, plans: Sequence[Sequence[Sequence[Step]]]) -> dict[str, Any]:
    latencies: list[int] = []
    start, cpu = time.monotonic_ns(), time.process_time_ns()
    errors = await asyncio.gather(*(_run_sender(host, port, p, latencies) for p in plans))
    end, cpu = time.monotonic_ns(), time.process_time_ns() - cpu
    return {
        "start_ns": start,
        "end_ns": end,
        "cpu_ns": cpu,
        "latencies_ns": latencies,
        "errors": sum(errors),
    }


def worker(
    conn: Connection,
    relay: str,
    host: str,
    port: int,
    pairs: Sequence[tuple[PrivateIdentity, PrivateIdentity, PrivateIdentity]],
) -> None:
    """A load process: for each job ``(kind, senders, cycles each)``, build, say ready, run.

    The parent sends a job, waits for ``"ready"`` from every worker of the run,
    then sends ``"go"``; the worker answers with its latencies (ns, one per
    cycle), its first start and last end (``time.monotonic_ns``, comparable
    across processes on Linux), the CPU time it used meanwhile and its count of
    unexpected answers.
    """
    senders = [_Sender(relay, f"{host}:{port}", *triple) for triple in pairs]
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, indices, count = job
        now = int(time.time())
        plans = [[senders[i].cycle(kind, now) for _ in range(count)] for i in indices]
        conn.send("ready")
        if conn.recv() != "go":
            return
        conn.send(asyncio.run(_run(host, port, plans)))
