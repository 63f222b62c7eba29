"""The relay's log over HTTP (spec/relay-api.md, "The log"; spec/log.md), on a real node.

Each test starts :func:`ncb_relay.relay.launch.run_relay` on a loopback port
(``relay_node_world``) and talks to it over TCP; every piece of evidence the
relay gives is checked with the sans-IO verifiers a bureau uses
(:func:`ncb_relay.receipt.verify_receipt`, :class:`ncb_relay.checkpoint.LogView`).
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from directory_world import CHAIN, COORDINATOR, member
from ncb_relay import merkle
from ncb_relay.checkpoint import LogView, cosign_checkpoint, parse_note
from ncb_relay.errors import StorageError, UsageError
from ncb_relay.log_keys import relay_log_key, witness_key
from ncb_relay.receipt import verify_receipt
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.launch import run_relay
from ncb_relay.relay.sqlite_log import SqliteLog
from ncb_relay.relay.sqlite_schema import open_database
from ncb_relay.relay.storage_conformance import CHECKPOINT_SIGNER
from ncb_relay.verified_directory import load_directory
from relay_app_world import relay_world
from relay_node_world import (
    GUARD,
    PARIS,
    RABAT,
    RELAY,
    SEOUL,
    START,
    Bureaus,
    Clock,
    node_config,
    running_node,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def _directory(tmp_path: Path) -> Any:
    return load_directory((tmp_path / "directory.signed").read_bytes(), anchors=CHAIN)


def _receipt(answer: dict[str, Any]) -> bytes:
    text = str(answer["receipt"])
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _proof(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def _check_evidence(tmp_path: Path, answer: dict[str, Any]) -> Any:
    directory = _directory(tmp_path)
    log = relay_log_key(directory, RELAY, START)
    return verify_receipt(
        _receipt(answer),
        answer["checkpoint"].encode(),
        _proof(answer["inclusion"]),
        relay_id=RELAY,
        relay_key=log.public_key,
        log=log,
        message_id=bytes.fromhex(answer["messageId"]),
        message_hash=bytes.fromhex(answer["messageHash"]),
    )


async def _submit(b: Bureaus, who: str, data: bytes, query: str = "") -> Any:
    target = "/v1/messages" + (f"?{query}" if query else "")
    headers = {"content-type": "application/octet-stream", **b.sign(who, "POST", target, data)}
    return await b.client.post(target, content=data, headers=headers)


@pytest.mark.req("API-24", "API-30", "LOG-1", "LOG-11", "LOG-18")
async def test_every_acceptance_carries_a_receipt_and_a_proof_a_bureau_verifies(
    tmp_path: Path,
) -> None:
    config = node_config(tmp_path)
    async with running_node(config) as node:
        b = node.bureaus
        view = LogView(relay_log_key(_directory(tmp_path), RELAY, START))
        held: int | None = None
        for n in range(6):
            query = "" if held is None else f"known={held}"
            response = await _submit(b, SEOUL, b.seal(SEOUL, RABAT, PARIS), query)
            assert response.status_code == 202, response.text
            answer = response.json()
            verified = _check_evidence(tmp_path, answer)
            assert verified.receipt.log_index == answer["logIndex"] == n + 1  # leaf 0: directory
            consistency = answer.get("consistency")
            if held is None:
                assert consistency is None
                view.check(answer["checkpoint"].encode(), ())
            else:
                assert (consistency["from"], consistency["to"]) == (held, verified.checkpoint.size)
                view.check(answer["checkpoint"].encode(), _proof(consistency["proof"]))
            assert view.latest is not None
            held = view.latest.size
        assert held == 7
        bad = await _submit(b, SEOUL, b.seal(SEOUL, RABAT), "known=x")
        assert (bad.status_code, bad.json()["code"]) == (400, "malformed")


@pytest.mark.req("API-25", "API-26", "API-27", "API-28", "LOG-1")
async def test_the_log_reads_agree_with_each_other_and_with_the_entries(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    async with running_node(config) as node:
        b = node.bureaus
        client = b.client
        directory = await client.get("/v1/directory")
        assert directory.headers["ncbr-log-index"] == "0"
        accepted = [(await _submit(b, SEOUL, b.seal(SEOUL, RABAT))).json() for _ in range(5)]
        entries = (await client.get("/v1/log/entries?start=0&limit=1000")).json()["entries"]
        digest = _directory(tmp_path).hash
        assert entries[0] == {"index": 0, "kind": "directory", "hash": digest.hex()}
        assert [e["hash"] for e in entries[1:]] == [a["messageHash"] for a in accepted]
        assert all(e["kind"] == "envelope" for e in entries[1:])
        leaves = [merkle.leaf_hash(bytes.fromhex(e["hash"])) for e in entries]

        latest = await client.get("/v1/log/checkpoint")
        assert latest.headers["content-type"] == "text/plain; charset=utf-8"
        assert latest.text == accepted[-1]["checkpoint"]
        notes = (await client.get("/v1/log/checkpoints?after=0&limit=1000")).json()["checkpoints"]
        assert notes[-1] == latest.text
        assert {a["checkpoint"] for a in accepted} <= set(notes)  # every one given out is listed
        page = (await client.get("/v1/log/checkpoints?after=3&limit=2")).json()["checkpoints"]
        assert page == [n for n in notes if LogView(_log(tmp_path)).update(n.encode()).size > 3][:2]

        view = LogView(_log(tmp_path))
        previous = 0
        for note in notes:
            size = LogView(_log(tmp_path)).update(note.encode()).size
            assert LogView(_log(tmp_path)).update(note.encode()).root == merkle.tree_root(
                leaves[:size]
            )
            answer = (await client.get(f"/v1/log/consistency?from={previous}&to={size}")).json()
            view.update(note.encode(), _proof(answer["proof"]))
            previous = size
        root = merkle.tree_root(leaves)
        for index in range(len(leaves)):
            answer = (await client.get(f"/v1/log/inclusion?index={index}&size=6")).json()
            assert (answer["index"], answer["size"]) == (index, 6)
            merkle.verify_inclusion(leaves[index], index, 6, _proof(answer["proof"]), root)

        for target in (
            "/v1/log/inclusion?index=6&size=6",  # index >= size
            "/v1/log/inclusion?index=0&size=7",  # beyond the log
            "/v1/log/inclusion?index=0",  # size required
            "/v1/log/consistency?from=4&to=3",
            "/v1/log/consistency?from=0&to=99",
            "/v1/log/entries?start=0&limit=0",
            "/v1/log/entries?start=0&start=1",
            "/v1/log/checkpoints?limit=1001",
            "/v1/log/checkpoint?cosigned=32",
            "/v1/log/checkpoint?other=1",
        ):
            refused = await client.get(target)
            assert (refused.status_code, refused.json()["code"]) == (400, "malformed"), target
        assert (await client.get("/v1/log/checkpoint?cosigned=1")).status_code == 404


def _log(tmp_path: Path) -> Any:
    return relay_log_key(_directory(tmp_path), RELAY, START)


@pytest.mark.req("API-29", "LOG-10")
async def test_a_witness_cosignature_is_verified_kept_and_served(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    async with running_node(config) as node:
        b = node.bureaus
        await _submit(b, SEOUL, b.seal(SEOUL, RABAT))
        note = (await b.client.get("/v1/log/checkpoint")).content
        directory = _directory(tmp_path)

        async def post(who: str, body: bytes) -> Any:
            headers = {
                "content-type": "text/plain",
                **b.sign(who, "POST", "/v1/log/cosignature", body),
            }
            return await b.client.post("/v1/log/cosignature", content=body, headers=headers)

        witness = witness_key(directory, COORDINATOR, START)
        cosigned = cosign_checkpoint(
            note, witness=witness, signer=member(COORDINATOR).signer, now=node.clock()
        )
        assert (await post(COORDINATOR, cosigned)).status_code == 204
        served = await b.client.get("/v1/log/checkpoint?cosigned=1")
        assert served.content == cosigned
        view = LogView(_log(tmp_path), witnesses=[witness], threshold=1)
        view.update(served.content)

        # another principal's cosignature posted by the coordinator: not the caller's
        seoul = witness_key(directory, SEOUL, START)
        by_seoul = cosign_checkpoint(
            note, witness=seoul, signer=member(SEOUL).signer, now=node.clock()
        )
        refused = await post(COORDINATOR, by_seoul)
        assert (refused.status_code, refused.json()["code"]) == (422, "below-threshold")
        # a checkpoint the relay never signed, with a valid log signature forged? no: a text
        # it did not sign fails the log signature; a mangled note does not parse
        mangled = await post(COORDINATOR, cosigned.replace(b"\n\n", b"\n"))
        assert mangled.status_code == 400
        other = parse_note(cosigned)
        assert other.signatures  # the note parses; its lines are what the relay keeps
        unsigned = await b.client.post(
            "/v1/log/cosignature", content=cosigned, headers={"content-type": "text/plain"}
        )
        assert unsigned.status_code == 401


@pytest.mark.req("API-30")
async def test_a_relay_refuses_to_start_with_a_key_the_directory_does_not_list(
    tmp_path: Path,
) -> None:
    config = node_config(tmp_path)
    with pytest.raises(UsageError, match="not the signing key"):
        await run_relay(config, clock=Clock(), signer=member(SEOUL).signer)
    assert not config.database.exists()


@pytest.mark.req("API-30", "LOG-11")
async def test_the_log_is_rebuilt_after_a_restart_and_a_damaged_one_refused(
    tmp_path: Path,
) -> None:
    config = node_config(tmp_path)
    async with running_node(config) as node:
        b = node.bureaus
        first = [(await _submit(b, SEOUL, b.seal(SEOUL, RABAT))).json() for _ in range(5)]
    async with running_node(config, Clock(START + 120)) as node:
        b = node.bureaus
        b.seq = 100  # a new message, not one of the first run's seeds
        held = LogView(_log(tmp_path))
        held.update(first[-1]["checkpoint"].encode())
        response = await _submit(b, SEOUL, b.seal(SEOUL, PARIS), "known=6")
        assert response.status_code == 202, response.text
        answer = response.json()
        assert answer["logIndex"] == 6  # the directory is logged once, numbering goes on
        assert answer["consistency"]["from"] == 6
        held.check(answer["checkpoint"].encode(), _proof(answer["consistency"]["proof"]))
        assert held.latest is not None
        assert held.latest.size == 7

    damage = {
        "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0": "tree is damaged",
        "UPDATE log_entries SET entry = zeroblob(32) WHERE idx = 6": "last signed checkpoint",
        "DELETE FROM log_entries WHERE idx = 3": "gap",
    }
    pristine = config.database.read_bytes()  # the relay closed its store: no WAL left
    for statement, reason in damage.items():  # the operator's disk rots one row
        config.database.write_bytes(pristine)
        connection = sqlite3.connect(config.database)
        with connection:
            connection.execute(statement)
        connection.close()
        with pytest.raises(StorageError, match=reason), trio.fail_after(GUARD):
            await run_relay(config, clock=Clock(START + 240), signer=member(RELAY).signer)


@pytest.mark.req("API-25")
def test_the_latest_cosigned_checkpoint_is_found_without_scanning(tmp_path: Path) -> None:
    """A look-up per cosignature count, never a scan over the cosigned checkpoints."""
    connection = open_database(tmp_path / "store.db")
    log = SqliteLog(connection, CHECKPOINT_SIGNER)
    connection.execute("BEGIN")
    for n in range(3000):
        log.append(0, n.to_bytes(32, "big"))
        log.seal()
        log.committed()
    connection.execute("UPDATE log_checkpoints SET cosigned = 1 + size % 3")
    connection.execute("COMMIT")
    before = connection.total_changes
    steps: list[int] = []

    def count() -> int:
        steps.append(1)
        return 0  # go on

    connection.set_progress_handler(count, 100)
    note = log.latest(cosigned=2)
    connection.set_progress_handler(None, 100)
    assert note is not None
    assert note == log.checkpoint_note(2999)  # the largest with at least 2 (2999 % 3 == 2)
    assert len(steps) < 20, "the look-up walked over the checkpoints"
    assert connection.total_changes == before
    connection.close()


@pytest.mark.req("API-21")
async def test_public_log_reads_are_rate_limited_together(tmp_path: Path) -> None:
    settings = AppSettings(log_read_rate=2, log_read_burst=3)
    async with relay_world(tmp_path, settings=settings) as w:
        answers = [(await w.client.get("/v1/log/entries")).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        refused = await w.client.get("/v1/log/checkpoint")
        assert (refused.status_code, refused.json()["code"]) == (429, "limit-exceeded")
        assert refused.headers["retry-after"] == "1"
        w.clock.now += 5
        assert (await w.client.get("/v1/log/entries")).status_code == 200
