"""Setting up a relay from nothing with the command line, as README's operator section shows.

The README's commands run in order through ``main([...])`` in ``tmp_path``: two root
keys and a 2-of-2 trust anchor, a bureau's keys, directory version 1 signed by both
roots, ``relay init``, the signed files copied next to ``relay.toml``.  The starter
configuration then loads unchanged (port 0 from the environment, as an operator would
override it) and the relay node answers ``/v1/health`` and ``/v1/ready`` over a socket.
The command line takes its times from ``--issued``, ``--not-before`` and ``--now``, and
the node from an injected clock, so nothing reads the real clock; ``ncb-relay serve``
itself (which reads it) is run in a child process by the last test.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trio

from ncb_relay.cli import main
from ncb_relay.relay.config import load_config
from ncb_relay.relay.launch import RunningRelay, run_relay
from ncb_relay.request_auth import DEFAULT_REQUEST_SKEW

PASS_ENV = "NCB_RELAY_TEST_SETUP_PASSPHRASE"
GUARD = 30.0  # seconds; a guard against hangs, never an expectation
T_ANCHOR = "2027-01-14T08:00:00Z"
T1 = "2027-01-15T08:00:00Z"
T1_EPOCH = 1_800_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _run(*argv: str | Path) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(word) for word in argv])
    assert code == 0, (argv, err.getvalue())
    return out.getvalue()


def set_up_relay(base: Path, *, anchor_issued: str, issued: str, now: int) -> Path:
    """The README's operator steps in ``base``; returns the relay's ``relay.toml``."""
    secret = ["--passphrase-env", PASS_ENV]
    cheap = ["--kdf-profile", "interactive"]
    for i in (1, 2):
        _run(
            "root",
            "generate",
            "--keystore",
            base / f"root{i}.keys",
            "--name",
            f"Root {i}",
            "--out",
            base / f"root{i}.json",
            *secret,
            *cheap,
        )
    _run(
        "anchor",
        "create",
        "--root",
        base / "root1.json",
        "--root",
        base / "root2.json",
        "--threshold",
        "2",
        "--issued",
        anchor_issued,
        "--out",
        base / "anchor.signed",
    )
    for i in (1, 2):
        _run("sign", base / "anchor.signed", "--keystore", base / f"root{i}.keys", *secret)
    relay = base / "relay"
    _run(
        "relay",
        "init",
        "--dir",
        relay,
        "--relay-id",
        "XP.relay-lyon",
        "--now",
        str(now),
        *secret,
        *cheap,
    )
    keystore = relay / "relay.keystore"
    _run("keys", "export", "--keystore", keystore, "--out", base / "relay.json", *secret)
    _run(
        "directory",
        "init",
        "--anchor",
        base / "anchor.signed",
        "--issued",
        issued,
        "--out",
        base / "directory.signed",
    )
    _run(
        "keys",
        "generate",
        "--keystore",
        base / "seoul.keys",
        "--principal",
        "KR.ncb-seoul",
        "--not-before",
        issued,
        *secret,
        *cheap,
    )
    _run("keys", "export", "--keystore", base / "seoul.keys", "--out", base / "seoul.json", *secret)
    for identity, name, role in (
        ("seoul", "NCB Seoul", "bureau"),
        ("relay", "Relay Lyon", "relay"),
    ):
        _run(
            "directory",
            "add",
            base / "directory.signed",
            "--identity",
            base / f"{identity}.json",
            "--name",
            name,
            "--role",
            role,
        )
    for i in (1, 2):
        _run(
            "sign",
            base / "directory.signed",
            "--keystore",
            base / f"root{i}.keys",
            "--anchor",
            base / "anchor.signed",
            *secret,
        )
    shutil.copy(base / "anchor.signed", relay / "anchor.signed")
    shutil.copy(base / "directory.signed", relay / "directory.signed")
    return relay / "relay.toml"


@pytest.mark.anyio
@pytest.mark.req("AUTH-12")
async def test_the_readme_steps_give_a_relay_that_is_healthy_and_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASS_ENV, "a setup passphrase")
    monkeypatch.setenv("NCB_RELAY_PASSPHRASE", "a setup passphrase")  # the relay's keystore
    config_path = set_up_relay(tmp_path, anchor_issued=T_ANCHOR, issued=T1, now=T1_EPOCH)
    monkeypatch.setenv("NCB_RELAY_LISTEN__PORT", "0")
    config = load_config(config_path)
    now = T1_EPOCH + 60

    def clock() -> int:
        return now

    stop = trio.Event()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            running: RunningRelay = await nursery.start(
                lambda task_status: run_relay(
                    config, clock=clock, task_status=task_status, shutdown_trigger=stop.wait
                )
            )
            async with httpx.AsyncClient(base_url=running.api.url, timeout=GUARD) as client:
                assert (await client.get("/v1/health")).json() == {"status": "ok"}
                # a new store: the relay never accepted a request, so it has no window
                ready = await client.get("/v1/ready")
                assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
                served = await client.get("/v1/directory")
                assert served.content == (tmp_path / "directory.signed").read_bytes()
            stop.set()
    assert config.database.is_file()

    stop = trio.Event()  # a restart on the same store: it may have accepted requests before
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            running = await nursery.start(
                lambda task_status: run_relay(
                    config, clock=clock, task_status=task_status, shutdown_trigger=stop.wait
                )
            )
            async with httpx.AsyncClient(base_url=running.api.url, timeout=GUARD) as client:
                early = await client.get("/v1/ready")  # within the restart window (AUTH-12)
                assert early.status_code == 503
                assert early.json()["code"] == "not-ready"
                now += DEFAULT_REQUEST_SKEW
                ready = await client.get("/v1/ready")
                assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            stop.set()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_ncb_relay_serve_runs_from_the_starter_config_and_stops_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `serve` reads the real clock: the directory is issued an hour ago
    issued = int(time.time()) - 3600
    monkeypatch.setenv(PASS_ENV, "a setup passphrase")
    monkeypatch.setenv("NCB_RELAY_PASSPHRASE", "a setup passphrase")  # the relay's keystore
    config_path = set_up_relay(
        tmp_path, anchor_issued=_iso(issued - 3600), issued=_iso(issued), now=issued
    )
    script = Path(sys.executable).with_name("ncb-relay")
    env = {**os.environ, "NCB_RELAY_LISTEN__PORT": "0", "NCB_RELAY_METRICS__PORT": "0"}
    process = subprocess.Popen(
        [str(script), "serve", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the relay serves, or it exits
        assert "serving on http://127.0.0.1:" in line, (
            line,
            process.stderr and process.stderr.read(),
        )
        url = line.split("serving on ", 1)[1].split(";", 1)[0]
        metrics = line.split("metrics on ", 1)[1].split(";", 1)[0]
        assert httpx.get(f"{url}/v1/health", timeout=GUARD).json() == {"status": "ok"}
        assert httpx.get(f"{url}/v1/ready", timeout=GUARD).status_code in (200, 503)
        assert httpx.get(metrics, timeout=GUARD).status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=GUARD)
    assert process.returncode == 0, err
    assert "stopped" in out
    events = [line for line in err.splitlines() if line.startswith("{")]
    assert any('"event":"started"' in line for line in events), err
    assert "a setup passphrase" not in err + out
