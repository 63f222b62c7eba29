"""The kill -9 check: a relay killed during a burst of submissions keeps exactly what it accepted.

The relay node runs in a child process (``relay_node_child.py``, the venv's
python) on a TOML configuration in ``tmp_path`` with its clock fixed.  The test
sends a burst of signed submissions over many connections, kills the child with
SIGKILL as soon as some have been answered 202 (while the rest are in flight),
starts a new child on the same database and fetches every mailbox: each message
answered 202 is there, with its exact bytes, and nothing that was never
submitted is.  Waits are bounded by generous guards; nothing here measures time.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from directory_world import ANCHOR_FILE, genesis, signed
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW
from relay_node_world import PARIS, RABAT, RELAY, SEOUL, START, Bureaus, write_relay_keystore

CHILD = Path(__file__).with_name("relay_node_child.py")
GUARD = 60.0  # seconds; a guard against hangs, never an expectation
PER_SENDER = 120  # within one bureau's burst allowance (the child's clock never advances)
KILL_AFTER = 40  # acceptances seen before the SIGKILL
WORKERS = 24
SENDERS: dict[str, tuple[str, ...]] = {
    SEOUL: (RABAT, PARIS),
    RABAT: (PARIS, SEOUL),
    PARIS: (SEOUL, RABAT),
}


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _write_config(tmp_path: Path) -> Path:
    (tmp_path / "anchor.signed").write_bytes(ANCHOR_FILE)
    (tmp_path / "directory.signed").write_bytes(signed(genesis()[0]))
    config = tmp_path / "relay.toml"
    config.write_text(
        f'relay_id = "{RELAY}"\n'
        'database = "relay.db"\n'
        'keystore = "relay.keystore"\n'
        'directory = "directory.signed"\n'
        'anchors = ["anchor.signed"]\n'
        "[listen]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n",
        encoding="utf-8",
    )
    return config


@asynccontextmanager
async def child_relay(config: Path, log: Path) -> AsyncIterator[tuple[trio.Process, str]]:
    """Start the child relay; yield it and its API's URL; kill it at the end if still alive."""
    with log.open("ab") as stderr:
        process = await trio.lowlevel.open_process(
            [sys.executable, str(CHILD), str(config), str(START)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **write_relay_keystore(config.parent / "relay.keystore")},
        )
    try:
        assert process.stdout is not None
        received = b""
        with trio.fail_after(GUARD):
            while b"\n" not in received:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"the child relay exited: {log.read_text(errors='replace')}"
                received += chunk
        words = received.split(b"\n", 1)[0].decode().split()
        assert words[0] == "listening", received
        yield process, words[1]
    finally:
        if process.returncode is None:
            process.kill()
        with trio.fail_after(GUARD):
            await process.wait()


def _message_id(accepted: httpx.Response) -> str:
    message_id: str = accepted.json()["messageId"]
    return message_id


async def _mailbox(bureaus: Bureaus, who: str) -> dict[str, bytes]:
    """Every message held for ``who``, by id (batch after batch, by cursor)."""
    held: dict[str, bytes] = {}
    after = 0
    for _ in range(100):  # bounded: 3 * PER_SENDER messages fit in far fewer batches
        answer = await bureaus.fetch(who, f"after={after}")
        assert answer.status_code == 200, answer.text
        batch = answer.json()
        if not batch["messages"]:
            return held
        for delivery in batch["messages"]:
            text = delivery["envelope"]
            held[delivery["messageId"]] = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        after = batch["cursor"]
    raise AssertionError("the mailbox never ran dry")


# a request cut off by the kill leaves httpx's body iterator unfinished; trio reports it
# when the iterator is collected, which is expected here and nothing else
@pytest.mark.filterwarnings("ignore:Async generator 'httpx._content.ByteStream:ResourceWarning")
@pytest.mark.req("API-7")
@pytest.mark.anyio
async def test_a_relay_killed_mid_burst_keeps_every_accepted_message_and_no_other(
    tmp_path: Path,
) -> None:
    config = _write_config(tmp_path)
    log = tmp_path / "child.log"
    request_time = START + DEFAULT_REQUEST_SKEW  # past the child's restart window (AUTH-12)
    sealer = Bureaus(httpx.AsyncClient(), lambda: request_time)  # never sends: no connection
    burst: list[tuple[str, tuple[str, ...], bytes]] = []
    async with sealer.client:
        for n in range(PER_SENDER):
            for sender, recipients in SENDERS.items():
                body = f"burst message {n} from {sender}".encode()
                data = sealer.seal(sender, *recipients, body=body, now=START)
                burst.append((sender, recipients, data))
    envelopes = {data: (sender, recipients) for sender, recipients, data in burst}
    accepted: dict[str, bytes] = {}  # message id -> envelope, answered 202
    unanswered = 0

    async with child_relay(config, log) as (process, url):
        killed = trio.Event()
        queue = list(reversed(burst))

        async with httpx.AsyncClient(base_url=url, timeout=GUARD) as client:
            bureaus = Bureaus(client, lambda: request_time)

            async def worker() -> None:
                nonlocal unanswered
                while queue:
                    sender, _, data = queue.pop()
                    try:
                        answer = await bureaus.submit(sender, data)
                    except httpx.TransportError:  # the child is gone
                        unanswered += 1
                        continue
                    assert answer.status_code == 202, answer.text
                    accepted[_message_id(answer)] = data
                    if len(accepted) >= KILL_AFTER and not killed.is_set():
                        process.send_signal(signal.SIGKILL)
                        killed.set()

            with trio.fail_after(GUARD):
                async with trio.open_nursery() as nursery:
                    for _ in range(WORKERS):
                        nursery.start_soon(worker)
    assert killed.is_set()
    assert process.returncode == -signal.SIGKILL
    assert unanswered > 0, "the burst ended before the kill"  # the kill came mid-burst
    assert len(accepted) < len(burst)

    async with (
        child_relay(config, log) as (_, url),
        httpx.AsyncClient(base_url=url, timeout=GUARD) as client,
    ):
        bureaus = Bureaus(client, lambda: request_time)
        held = {who: await _mailbox(bureaus, who) for who in (SEOUL, RABAT, PARIS)}

    for message_id, data in accepted.items():
        sender, recipients = envelopes[data]
        for recipient in recipients:
            assert held[recipient].get(message_id) == data, (message_id, recipient)
    for recipient, messages in held.items():
        for data in messages.values():
            assert data in envelopes, "a message that was never submitted"
            sender, recipients = envelopes[data]
            assert recipient in recipients
            assert sender != recipient
