"""The relay benchmark (bench/relay.py, issue #9 item 2) in smoke mode: rows and targets, no timing.

``python -m bench --smoke --relay`` starts a relay node in a child process and
sends a few hundred requests from 1 and 2 senders; the figures mean nothing,
so this only checks that every row, target and verdict is written and that no
request got an unexpected answer.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `pytest` rather than `python -m pytest`
    sys.path.insert(0, str(ROOT))

from bench.__main__ import log_audit, main  # noqa: E402
from bench.relay import RELAY_PLANS  # noqa: E402
from bench.relay_fill import fill_store  # noqa: E402
from bench.relay_node import UnloggedLog, with_bare_endpoint  # noqa: E402
from bench.report import TARGETS, render_markdown  # noqa: E402

from ncb_relay.demo.deployment import Member, make_deployment  # noqa: E402
from ncb_relay.relay.sqlite_store import open_sqlite_store  # noqa: E402
from ncb_relay.relay.storage_conformance import T0  # noqa: E402

LEVELS = RELAY_PLANS["smoke"].levels


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench-relay")
    json_path, markdown_path = out / "result.json", out / "benchmarks.md"
    argv = ["--smoke", "--relay", "--quiet", "--json", str(json_path)]
    assert main([*argv, "--markdown", str(markdown_path)]) == 0  # whatever the targets say
    return json.loads(json_path.read_text()), markdown_path.read_text()


def test_smoke_levels_are_one_and_two_senders() -> None:
    assert LEVELS == (1, 2)


def test_json_has_every_relay_row_and_target(smoke: tuple[dict[str, Any], str]) -> None:
    result, _ = smoke
    relay = result["relay"]
    assert relay["measured"] is True
    assert relay["load_generator"]
    rows = {row["senders"]: row for row in relay["rows"]}
    assert set(rows) == set(LEVELS)
    for senders, row in rows.items():
        for kind in ("bare", "submit", "e2e"):
            figures = row[kind]
            assert figures["errors"] == 0
            assert figures["rate"] > 0
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        expected = {"relay_vs_bare"} | ({"e2e_p99_ms"} if senders == max(LEVELS) else set())
        assert set(row["checks"]) == expected
        assert all(isinstance(c["pass"], bool) for c in row["checks"].values())
    missed = sum(not c["pass"] for row in rows.values() for c in row["checks"].values())
    relay_profiles = [p for p in result["profiles"] if p["case"].startswith("relay node serving")]
    assert len(relay_profiles) == (1 if missed else 0)


def test_json_has_the_uvicorn_variant_beside_anycorn(smoke: tuple[dict[str, Any], str]) -> None:
    result, text = smoke
    relay = result["relay"]
    for row in relay["rows"]:
        uvicorn = row["uvicorn"]
        for kind in ("bare", "submit", "e2e"):
            assert uvicorn[kind]["errors"] == 0
            assert uvicorn[kind]["rate"] > 0
        expected = {"relay_vs_bare"} | (
            {"uvicorn_per_core"} if row["senders"] == max(LEVELS) else set()
        )
        assert set(uvicorn["checks"]) == expected
        assert row["submit"]["per_core"] > 0
    assert set(relay["nodes"]) == {"anycorn", "uvicorn"}
    for node in relay["nodes"].values():
        assert node["peak_bytes"] > 0
        assert node["start_s"] > 0
    per_core = relay["rows"][-1]["uvicorn"]["checks"]["uvicorn_per_core"]
    uvicorn_profiles = [p for p in result["profiles"] if "uvicorn" in p["case"]]
    assert len(uvicorn_profiles) == (0 if per_core["pass"] else 2)
    assert TARGETS["uvicorn_per_core"]["text"] in text
    lines = text.splitlines()
    for senders in LEVELS:
        label = f"{senders} sender{'s' if senders != 1 else ''}"
        for server in ("anycorn", "uvicorn"):
            (row,) = [line for line in lines if line.startswith(f"| {server}, {label} |")]
            verdicts = row.count("PASS") + row.count("MISS")
            top = server == "uvicorn" and senders == max(LEVELS)
            assert verdicts == (2 if top else 1)


def test_json_has_the_diffusion_and_the_scaling(smoke: tuple[dict[str, Any], str]) -> None:
    result, text = smoke
    plan = RELAY_PLANS["smoke"]
    diffusion = result["relay"]["diffusion"]
    width = plan.diffusion["width"]
    assert diffusion["width"] == width
    for name in ("one", "many"):
        assert diffusion[name]["errors"] == 0
        assert diffusion[name]["rate"] > 0
    for fanout in diffusion["fanout"].values():
        assert fanout["errors"] == 0
        assert fanout["cycles"] == plan.diffusion["fanouts"]
        assert 0 < fanout["submitted_p50_ms"] <= fanout["p50_ms"] <= fanout["acknowledged_p50_ms"]
    assert set(diffusion["fanout"]) == {"1", str(width)}
    scaling = result["relay"]["scaling"]
    rows = {row["stored"]: row for row in scaling["rows"]}
    assert list(rows) == list(plan.scaling["sizes"])
    smallest = min(rows)
    for stored, row in rows.items():
        assert row["submit"]["errors"] == row["e2e"]["errors"] == 0
        assert row["peak_bytes"] > 0
        assert len(row["e2e"]["steps_p50_ms"]) == 3  # submit, fetch, acknowledge
        assert set(row["checks"]) == (set() if stored == smallest else {"submit", "e2e"})
    assert TARGETS["scaling"]["text"] in text
    assert "## Diffusion to 195 bureaus" in text
    for stored in rows:
        (line,) = [line for line in text.splitlines() if line.startswith(f"| {stored:,} |")]
        assert line.count("PASS") + line.count("MISS") == (0 if stored == smallest else 2)


def test_a_store_filled_for_the_scaling_holds_its_messages_and_their_log(tmp_path: Path) -> None:
    deployment = make_deployment(
        tmp_path, [Member("XP.ncb-coordination", "Coordination", "coordinator")], now=T0
    )
    path = tmp_path / "filled.db"
    fill_store(path, relay_id="XP.relay", signer=deployment.relay_key, count=250)
    connection = sqlite3.connect(path)
    try:
        for table in ("messages", "deliveries", "log_entries"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (250,)
        assert connection.execute("SELECT max(size) FROM log_checkpoints").fetchone() == (250,)
    finally:
        connection.close()

    async def reopen() -> int:  # the store replays and checks the log it finds
        async with open_sqlite_store(path) as store:
            return await store.log_size()

    assert trio.run(reopen) == 250


def test_json_has_the_log_cost_at_every_level(smoke: tuple[dict[str, Any], str]) -> None:
    result, _ = smoke
    cost = result["relay"]["log_cost"]
    rows = {row["senders"]: row for row in cost["rows"]}
    assert set(rows) == set(LEVELS)
    for row in rows.values():
        for variant in ("with_log", "without_log"):
            figures = row[variant]
            assert figures["errors"] == 0
            assert figures["rate"] > 0
            assert figures["jobs_per_commit"] >= 1  # the writer thread's clock ran
            assert figures["writer_cpu_us"] > 0
        assert len(row["ratios"]) == RELAY_PLANS["smoke"].log_rounds
        assert row["check"]["bound"] == TARGETS["log_cost"]["bound"]
        assert isinstance(row["check"]["pass"], bool)
    missed = any(not row["check"]["pass"] for row in rows.values())
    log_profiles = [p for p in result["profiles"] if p["case"].startswith("log cost")]
    assert len(log_profiles) == (1 if missed else 0)


def test_markdown_has_the_log_cost_table(smoke: tuple[dict[str, Any], str]) -> None:
    _, text = smoke
    assert TARGETS["log_cost"]["text"] in text
    lines = text.splitlines()
    for senders in LEVELS:
        label = f"| {senders} sender{'s' if senders != 1 else ''} |"
        (row,) = [line for line in lines if line.startswith(label)]
        assert row.count("PASS") + row.count("MISS") == 1


def test_markdown_has_the_relay_table(smoke: tuple[dict[str, Any], str]) -> None:
    _, text = smoke
    assert "not measured yet" not in text
    for name in ("relay_vs_bare", "e2e_p99_ms"):
        assert TARGETS[name]["text"] in text
    lines = text.splitlines()
    for senders in LEVELS:
        (row,) = [line for line in lines if line.startswith(f"| {senders} | ")]
        verdicts = row.count("PASS") + row.count("MISS")
        assert verdicts == (2 if senders == max(LEVELS) else 1)


def test_bare_endpoint_answers_without_the_app() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the relay app was called")

    chunks = [b"x" * 10, b"y" * 5]

    async def receive() -> dict[str, Any]:  # the body, dropped before the answer
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    bare = with_bare_endpoint(app)
    trio.run(bare, {"type": "http", "path": "/bench/bare", "method": "POST"}, receive, send)
    assert sent[0]["status"] == 202
    assert sent[-1] == {"type": "http.response.body", "body": b""}
    assert chunks == []  # read to its end, so the connection stays open


def test_the_unlogged_log_writes_and_signs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"

    async def create() -> None:  # the schema, as a relay makes it
        async with open_sqlite_store(path):
            pass

    trio.run(create)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        log = UnloggedLog(connection, lambda size, root: b"never signed")
        connection.execute("BEGIN IMMEDIATE")
        assert [log.append(0, bytes(32)), log.append(0, bytes([1]) * 32)] == [0, 1]
        assert log.seal() is None
        connection.execute("COMMIT")
        log.committed()
        for table in ("log_entries", "log_nodes", "log_checkpoints"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        assert log.latest() is None
    finally:
        connection.close()


def test_log_audit_is_wired_in(smoke: tuple[dict[str, Any], str]) -> None:
    said: list[str] = []
    audit = log_audit("smoke", said.append)
    assert audit["ok"] is True
    assert audit["entries"] == audit["filled"] + 1  # and the directory version the relay logs
    assert audit["checkpointsChecked"] >= audit["checkpointsSigned"]
    assert audit["check"]["bound"] == TARGETS["log_audit_s"]["bound"]
    assert audit["check"]["pass"] is True  # 500 entries: far under a minute
    assert said
    result, _ = smoke
    text = render_markdown({**result, "json_name": "r.json", "log_audit": audit}, "notes")
    assert TARGETS["log_audit_s"]["text"] in text
    (row,) = [line for line in text.splitlines() if line.startswith(f"| {audit['entries']:,} |")]
    assert "PASS" in row
