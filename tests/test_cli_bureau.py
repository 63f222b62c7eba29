"""``ncb-relay bureau send|watch|show`` against a real relay on a loopback port.

Each test makes a throw-away deployment (:func:`ncb_relay.demo.deployment.make_deployment`:
root keys, anchor, a directory listing the coordinator, NCB Seoul and NCB Rabat) dated
by the system clock, since the commands use it, and runs its relay with
:func:`~ncb_relay.demo.deployment.running_relay` on trio in a thread of its own.  The
commands run in the main thread through :func:`ncb_relay.cli.main`, which runs the
bureau client on its own trio loop, as an operator's shell would.  The bureaus' keys
are in keystores locked with the ``interactive`` Argon2id profile (the lowest the
default bounds accept), so no test-only code path is needed.  ``--timeout`` and
``--count`` only bound how long a watch runs; nothing measures time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from ncb_relay import seal
from ncb_relay.admin_keystores import KDF_PROFILES
from ncb_relay.bureau_cli import load_body
from ncb_relay.cli import main
from ncb_relay.client import RelayClient
from ncb_relay.demo.deployment import Deployment, Member, make_deployment, running_relay
from ncb_relay.errors import InvalidBody
from ncb_relay.keyring import HeldEncryptionKey, Keyring
from ncb_relay.keystore import write_keystore
from ncb_relay.messages import AssistanceResponse, Body
from ncb_relay.walkthrough import REQUEST, RESPONSE

PASS_ENV = "NCB_RELAY_TEST_BUREAU_PASSPHRASE"
WRONG_ENV = "NCB_RELAY_TEST_BUREAU_WRONG"
PASSPHRASE = "bureau passphrase, never printed"
GS, SEOUL, RABAT, PARIS = "XP.interpol-gs", "KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris"
GUARD = 20.0  # seconds; a guard against hangs, never an expectation
DAY = 24 * 3600
HANDLING = '{"code": "H0", "source_reliability": "A", "information_accuracy": 1}'
WITHDRAWAL = (
    f'{{"schema": "ncbr.withdrawal", "content": {{"handling": {HANDLING}, "reason": "done"}}}}'
)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@dataclass
class World:
    deployment: Deployment
    url: str
    dir: Path

    def keystore(self, who: str) -> Path:
        return self.dir / f"{who}.keys"

    def journal(self, who: str) -> Path:
        return self.dir / f"{who}.journal.db"

    def connection(self, who: str, *, passphrase_env: str = PASS_ENV) -> list[str]:
        """The options that put ``who`` on this world's relay."""
        return [
            "--keystore",
            str(self.keystore(who)),
            "--passphrase-env",
            passphrase_env,
            "--relay",
            self.url,
            "--relay-id",
            self.deployment.relay_id,
            "--anchor",
            str(self.deployment.anchor_file),
            "--coordinator",
            self.deployment.coordinator,
            "--journal",
            str(self.journal(who)),
        ]

    def send(self, who: str, body: Path, *options: str, expect: int = 0) -> Run:
        return run("bureau", "send", str(body), *self.connection(who), *options, expect=expect)

    def watch(self, who: str, *options: str, expect: int = 0) -> Run:
        return run("bureau", "watch", *self.connection(who), *options, expect=expect)

    def show(self, who: str, *options: str, expect: int = 0) -> Run:
        journal = ["--journal", str(self.journal(who)), "--principal", who]
        return run("bureau", "show", *journal, *options, expect=expect)


def run(*argv: str, expect: int = 0) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    result = Run(code, out.getvalue(), err.getvalue())
    assert code == expect, result
    assert PASSPHRASE not in result.out + result.err
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def body_file(path: Path, body: Body) -> Path:
    """``body`` as the JSON file ``bureau send`` reads."""
    content = _plain(body.model_dump(mode="python"))
    path.write_text(json.dumps({"schema": body.schema_id, "content": content}), encoding="utf-8")
    return path


@contextlib.contextmanager
def relay_in_a_thread(deployment: Deployment) -> Iterator[str]:
    """The deployment's relay on trio in another thread; yields its URL, stops it on exit."""
    started: queue.Queue[tuple[str, trio.lowlevel.TrioToken, trio.Event] | BaseException] = (
        queue.Queue()
    )

    async def serve() -> None:
        stop = trio.Event()
        try:
            async with running_relay(deployment) as relay:
                started.put((relay.api.url, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
        except BaseException as exc:  # reported to the test's thread, which raises it
            started.put(exc)

    thread = threading.Thread(target=trio.run, args=(serve,), name="relay")
    thread.start()
    try:
        answer = started.get(timeout=GUARD)
        if isinstance(answer, BaseException):
            raise answer
        url, token, stop = answer
        try:
            yield url
        finally:
            trio.from_thread.run_sync(stop.set, trio_token=token)
    finally:
        thread.join(GUARD)
        assert not thread.is_alive(), "the relay did not stop"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv(PASS_ENV, PASSPHRASE)
    monkeypatch.setenv(WRONG_ENV, "not the passphrase")
    now = int(time.time())
    members = [Member(GS, "General Secretariat", "coordinator")]
    members += [Member(SEOUL, "NCB Seoul"), Member(RABAT, "NCB Rabat")]
    (tmp_path / "deployment").mkdir()
    deployment = make_deployment(tmp_path / "deployment", members, now=now)
    for who in (SEOUL, RABAT):
        identity = deployment.identities[who]
        held = [HeldEncryptionKey(k, now - 60, now + 30 * DAY) for k in identity.encryption_keys]
        keyring = Keyring(who, identity.signer, held)  # type: ignore[arg-type]
        write_keystore(
            tmp_path / f"{who}.keys", keyring, PASSPHRASE, kdf=KDF_PROFILES["interactive"]
        )
    with relay_in_a_thread(deployment) as url:
        yield World(deployment, url, tmp_path)


def _field(line: str, name: str) -> str:
    words = line.split()
    return words[words.index(name) + 1]


def test_a_request_sent_watched_answered_and_shown(world: World, tmp_path: Path) -> None:
    request = body_file(tmp_path / "request.json", REQUEST)
    sent = world.send(SEOUL, request, "--to", RABAT)
    assert sent.lines[0] == f"sent ncbr.assistance-request to {RABAT}: accepted"
    request_hash = _field(sent.lines[2], "hash")
    assert _field(sent.lines[1], "id")
    assert len(request_hash) == 64

    # Rabat's inbox: the verified request, as one JSON line
    watched = world.watch(RABAT, "--count", "1", "--json", "--timeout", str(GUARD))
    (line,) = watched.lines
    seen = json.loads(line)
    assert seen["sender"] == seen["author"] == SEOUL
    assert seen["schema"] == "ncbr.assistance-request"
    assert seen["hash"] == seen["request"] == request_hash
    assert seen["replyTo"] is None
    assert seen["conversation"] == "sent"
    assert "body" not in seen

    # Rabat answers it by a prefix of its hash; the reply goes to the sender by default
    response = body_file(tmp_path / "response.json", RESPONSE)
    answered = world.send(RABAT, response, "--reply-to", request_hash[:12], "--json")
    reply = json.loads(answered.out)
    assert reply["state"] == "accepted"
    assert reply["to"] == [SEOUL]
    assert reply["replyTo"] == request_hash
    assert reply["resubmitted"] == []

    # Seoul's inbox, as text, with what the answer says
    watched = world.watch(SEOUL, "--count", "1", "--body", "--timeout", str(GUARD))
    line, content = watched.lines
    assert f"from {RABAT}  ncbr.assistance-response" in line
    assert _field(line, "reply-to") == request_hash
    assert _field(line, "conversation") == "answered"
    assert json.loads(content)["findings"] == RESPONSE.findings
    assert "watched: 1 message" in watched.err

    # the journals, offline: one request and its answer on each side
    shown = world.show(SEOUL)
    assert shown.lines[0] == f"journal of {SEOUL}: 2 messages, 0 refused (kept as evidence)"
    assert "out" in shown.lines[1]
    assert "ncbr.assistance-request  accepted" in shown.lines[1]
    assert "in " in shown.lines[2]
    assert "ncbr.assistance-response  handled" in shown.lines[2]
    conversation = json.loads(world.show(RABAT, "--request", request_hash[:8], "--json").out)
    assert conversation["request"] == request_hash
    rows = [(m["direction"], m["schema"], m["state"]) for m in conversation["messages"]]
    assert rows == [
        ("in", "ncbr.assistance-request", "handled"),
        ("out", "ncbr.assistance-response", "accepted"),
    ]
    assert conversation["messages"][1]["hash"] == reply["hash"]


def test_watch_with_nothing_to_receive_stops_at_its_timeout(world: World) -> None:
    watched = world.watch(RABAT, "--timeout", "0.2")
    assert watched.out == ""
    assert "watched: 0 messages" in watched.err
    assert world.show(RABAT).lines == [
        f"journal of {RABAT}: 0 messages, 0 refused (kept as evidence)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "not a JSON object"),
        ('{"schema": "ncbr.assistance-request"}', "content: is required"),
        ('{"schema": "xx.unknown-body", "content": {}}', "is not a body this command knows"),
        ('{"schema": "ncbr.withdrawal", "content": {}, "extra": 1}', "extra: is not a key"),
        ('{"schema": "ncbr.withdrawal", "content": {"reason": "done"}}', "content.handling"),
        (WITHDRAWAL.replace('"done"', "7"), "content.reason: has the wrong type"),
        (WITHDRAWAL.replace('"H0"', '"H9"'), "content.handling.code"),
    ],
)
def test_a_bad_body_file_is_refused_naming_the_field(
    world: World, tmp_path: Path, text: str, expected: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    refused = world.send(SEOUL, bad, "--to", RABAT, expect=1)
    assert refused.out == ""
    assert refused.err.startswith(f"ncb-relay bureau send: {bad}: ")
    assert expected in refused.err
    assert "(malformed)" in refused.err or "(invalid-body)" in refused.err
    assert not world.journal(SEOUL).exists()  # refused before the keystore or the relay


def test_a_wrong_passphrase_opens_nothing(world: World, tmp_path: Path) -> None:
    request = body_file(tmp_path / "request.json", REQUEST)
    options = world.connection(SEOUL, passphrase_env=WRONG_ENV)
    refused = run("bureau", "send", str(request), *options, "--to", RABAT, expect=1)
    assert refused.err.startswith(f"ncb-relay bureau send: {world.keystore(SEOUL)}: ")
    assert "(keystore-locked)" in refused.err
    assert "not the passphrase" not in refused.err
    watched = run("bureau", "watch", *options, "--timeout", "0.2", expect=1)
    assert "(keystore-locked)" in watched.err
    assert not world.journal(SEOUL).exists()


def test_a_recipient_missing_from_the_directory_is_refused(world: World, tmp_path: Path) -> None:
    request = body_file(tmp_path / "request.json", REQUEST)
    refused = world.send(SEOUL, request, "--to", RABAT, "--to", PARIS, expect=1)
    assert refused.err.startswith("ncb-relay bureau send: ")
    assert f"principal {PARIS} is not in the directory (unknown-key)" in refused.err
    assert world.show(SEOUL).lines[0].startswith(f"journal of {SEOUL}: 0 messages")
    malformed = world.send(SEOUL, request, "--to", "not a principal", expect=1)
    assert "--to: " in malformed.err
    assert "(usage)" not in malformed.err


def test_usage_errors_of_send_and_show(world: World, tmp_path: Path) -> None:
    missing = world.show(SEOUL, expect=1)
    assert "is not a bureau journal (no such file)" in missing.err
    request = body_file(tmp_path / "request.json", REQUEST)
    no_recipient = world.send(SEOUL, request, expect=1)
    assert "name the recipients with --to" in no_recipient.err
    unknown_hash = world.send(SEOUL, request, "--reply-to", "abcdef0123", expect=1)
    assert "no message in the journal has a hash starting abcdef0123" in unknown_hash.err
    world.send(SEOUL, request, "--to", RABAT)
    other = run(
        "bureau", "show", "--journal", str(world.journal(SEOUL)), "--principal", RABAT, expect=1
    )
    assert "is the store of another principal" in other.err
    nothing = world.show(SEOUL, "--request", "0" * 64)
    assert nothing.lines == [f"request {'0' * 64}: 0 messages, 0 refused (kept as evidence)"]


class _InterruptAfterFirstLine(io.StringIO):
    """Standard output that presses Ctrl-C (SIGINT to this process) once a line is printed."""

    def write(self, text: str) -> int:
        written = super().write(text)
        if "\n" in text:
            signal.raise_signal(signal.SIGINT)
        return written


def test_ctrl_c_stops_a_watch_gracefully_with_status_0(world: World, tmp_path: Path) -> None:
    request = body_file(tmp_path / "request.json", REQUEST)
    world.send(SEOUL, request, "--to", RABAT)
    out, err = _InterruptAfterFirstLine(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        # no --count: only Ctrl-C ends it (the timeout guards against a hang)
        code = main(["bureau", "watch", *world.connection(RABAT), "--timeout", str(GUARD)])
    assert code == 0, err.getvalue()
    (line,) = out.getvalue().splitlines()
    assert f"from {SEOUL}  ncbr.assistance-request" in line
    assert "watched: 1 message" in err.getvalue()
    assert "handled" in world.show(RABAT).lines[1]


def test_a_message_that_fails_verification_is_reported_not_printed(
    world: World, tmp_path: Path
) -> None:
    # Seoul's own keys, but what it seals is no body: the relay carries it (it cannot
    # read it); Rabat's client refuses it after opening it, and keeps it as evidence
    seoul, rabat = world.deployment.identities[SEOUL], world.deployment.identities[RABAT]
    garbage = seal(
        b"not a body",
        sender=seoul,
        recipients=[rabat.public],
        now=int(time.time()),
        seq=1000,
        rng=os.urandom,
    )

    async def submit() -> None:
        relay_id = world.deployment.relay_id
        async with RelayClient(world.url, relay_id=relay_id, identity=seoul) as client:
            await client.submit(garbage.data)

    trio.run(submit)
    world.send(SEOUL, body_file(tmp_path / "request.json", REQUEST), "--to", RABAT)
    watched = world.watch(RABAT, "--count", "1", "--timeout", str(GUARD))
    (line,) = watched.lines  # the refused message is not among them
    assert "ncbr.assistance-request" in line
    assert f"warning: message-refused (code invalid-body, sender {SEOUL})" in watched.err
    shown = world.show(RABAT)
    assert shown.lines[0] == f"journal of {RABAT}: 1 message, 1 refused (kept as evidence)"
    assert shown.lines[-1].split()[-3:] == ["from", SEOUL, "invalid-body"]
    refused = json.loads(world.show(RABAT, "--json").out)["refused"]
    assert [(r["sender"], r["code"]) for r in refused] == [(SEOUL, "invalid-body")]


def test_byte_strings_in_a_body_file_are_hex(tmp_path: Path) -> None:
    handling = json.loads(HANDLING)
    evidence = {"reference": "E-1", "description": "disk image", "sha256": "ab" * 32}
    content = {"handling": handling, "outcome": "completed", "findings": "done"}
    path = tmp_path / "response.json"
    path.write_text(
        json.dumps(
            {"schema": "ncbr.assistance-response", "content": {**content, "evidence": [evidence]}}
        ),
        encoding="utf-8",
    )
    body = load_body(path)
    assert isinstance(body, AssistanceResponse)
    assert body.evidence[0].sha256 == bytes.fromhex("ab" * 32)
    path.write_text(
        json.dumps(
            {
                "schema": "ncbr.assistance-response",
                "content": {**content, "evidence": [{**evidence, "sha256": "not hex"}]},
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(InvalidBody, match=r"content\.evidence\[0\]\.sha256: .* in hex") as caught:
        load_body(path)
    assert caught.value.field == "content.evidence[0].sha256"
