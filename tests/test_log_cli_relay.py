"""``ncb-relay log audit|witness`` against a real relay node on a loopback port.

As in ``test_cli_bureau.py``: a throw-away deployment dated by the system clock
(the commands use it), which lists the relay with role ``relay``; the relay runs
on trio in a thread of its own; the commands run in the main thread through
:func:`ncb_relay.cli.main`.  Envelopes are submitted with
:class:`~ncb_relay.client.RelayClient` to grow the log.  Nothing measures time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from ncb_relay import seal
from ncb_relay.admin_keystores import KDF_PROFILES
from ncb_relay.cli import main
from ncb_relay.client import RelayClient
from ncb_relay.demo.deployment import Deployment, Member, make_deployment, running_relay
from ncb_relay.keyring import HeldEncryptionKey, Keyring
from ncb_relay.keystore import write_keystore

PASS_ENV = "NCB_RELAY_TEST_WITNESS_PASSPHRASE"
PASSPHRASE = "witness passphrase, never printed"
GS, SEOUL, RABAT, RELAY = "XP.interpol-gs", "KR.ncb-seoul", "MA.ncb-rabat", "XP.relay-lyon"
GUARD = 20.0  # seconds; a guard against hangs, never an expectation
DAY = 24 * 3600


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(*argv: str, expect: int = 0) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    result = Run(code, out.getvalue(), err.getvalue())
    assert code == expect, result
    assert PASSPHRASE not in result.out + result.err
    return result


@dataclass
class World:
    deployment: Deployment
    url: str
    dir: Path

    def audit(self, *options: str, expect: int = 0) -> Run:
        anchor = str(self.deployment.anchor_file)
        return run("log", "audit", "--relay", self.url, "--anchor", anchor, *options, expect=expect)

    def witness(self, who: str, *options: str, expect: int = 0) -> Run:
        return run(
            "log",
            "witness",
            "--relay",
            self.url,
            "--anchor",
            str(self.deployment.anchor_file),
            "--keystore",
            str(self.dir / f"{who}.keys"),
            "--passphrase-env",
            PASS_ENV,
            "--state",
            str(self.dir / f"{who}.witness.json"),
            *options,
            expect=expect,
        )

    def submit(self, count: int) -> None:
        """``count`` envelopes from Seoul to Rabat, accepted by the relay."""
        ids = self.deployment.identities

        async def submit() -> None:
            async with RelayClient(self.url, relay_id=RELAY, identity=ids[SEOUL]) as client:
                for seq in range(count):
                    envelope = seal(
                        b"log me %d" % seq,
                        sender=ids[SEOUL],
                        recipients=[ids[RABAT].public],
                        now=int(time.time()),
                        seq=seq + 1,
                        rng=os.urandom,
                    )
                    await client.submit(envelope.data)

        trio.run(submit)


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
    now = int(time.time())
    members = [Member(GS, "General Secretariat", "coordinator")]
    members += [Member(SEOUL, "NCB Seoul"), Member(RABAT, "NCB Rabat")]
    (tmp_path / "deployment").mkdir()
    deployment = make_deployment(tmp_path / "deployment", members, now=now, relay_id=RELAY)
    for who in (GS, SEOUL):
        identity = deployment.identities[who]
        held = [HeldEncryptionKey(k, now - 60, now + 30 * DAY) for k in identity.encryption_keys]
        keyring = Keyring(who, identity.signer, held)  # type: ignore[arg-type]
        write_keystore(
            tmp_path / f"{who}.keys", keyring, PASSPHRASE, kdf=KDF_PROFILES["interactive"]
        )
    with relay_in_a_thread(deployment) as url:
        yield World(deployment, url, tmp_path)


@pytest.mark.req("LOG-31")
def test_the_audit_of_a_real_relay(world: World) -> None:
    world.submit(5)
    report = json.loads(world.audit("--json").out)
    assert report["ok"] is True
    assert report["relay"] == RELAY
    assert report["log"] == f"{RELAY}/log"
    assert report["size"] == 6
    assert report["entries"] == {"envelope": 5, "directory": 1}
    assert report["checkpointsChecked"] == report["checkpoints"] >= 2
    assert report["inclusionProofs"] >= 2
    assert report["problems"] == []
    text = world.audit("--sample", "3").out
    assert f"log {RELAY}/log: OK" in text
    assert "entries     6 (5 envelope, 1 directory)" in text


@pytest.mark.req("LOG-30", "LOG-31")
def test_witnesses_cosign_and_the_audit_counts_them(world: World) -> None:
    world.submit(2)
    first = world.witness(SEOUL, "--once")
    assert first.out.strip().endswith("cosigned size 3")
    state = json.loads((world.dir / f"{SEOUL}.witness.json").read_text())
    assert state["log"] == f"{RELAY}/log"
    assert world.witness(SEOUL, "--once").out.strip().endswith("size 3 already cosigned")
    world.witness(GS, "--once")
    world.submit(3)
    assert world.witness(SEOUL, "--once").out.strip().endswith("cosigned size 6")
    report = json.loads(world.audit("--json").out)
    assert report["ok"] is True
    assert report["cosignatures"] == {GS: 1, SEOUL: 2}


@pytest.mark.req("LOG-31")
def test_the_audit_finds_a_rewritten_entry_and_exits_1(world: World) -> None:
    world.submit(4)
    database = world.deployment.config.database
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("UPDATE log_entries SET entry = ? WHERE idx = 2", (bytes(32),))
    found = world.audit("--json", expect=1)
    codes = {p["code"] for p in json.loads(found.out)["problems"]}
    assert "checkpoint-root" in codes
    assert "PROBLEMS FOUND" in world.audit(expect=1).out


def test_usage_errors_exit_2_and_an_untrusted_directory_1(world: World, tmp_path: Path) -> None:
    assert world.audit("--sample", "-1", expect=2).err
    assert "relay" in world.audit("--relay-id", "XP.relay-other", expect=2).err
    other = make_deployment(
        tmp_path, [Member(GS, "General Secretariat", "coordinator")], now=int(time.time())
    )
    anchor = str(other.anchor_file)
    failed = run("log", "audit", "--relay", world.url, "--anchor", anchor, expect=1)
    assert "the relay's directory" in failed.err
    missing = run("log", "audit", "--relay", world.url, "--anchor", "no-such.anchor", expect=2)
    assert "no-such.anchor" in missing.err
    with pytest.raises(SystemExit) as exited:
        run("log", "audit", "--relay", world.url)
    assert exited.value.code == 2
