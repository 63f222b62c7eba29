"""The benchmark suite (bench/, issue #9) in its smoke mode: files and round trips, never timing.

``python -m bench --smoke`` calls everything a handful of times; the figures
it writes mean nothing, so these tests only check that the JSON result and the
Markdown page have every row and every target, that the notes block survives
a rewrite, and that each candidate (our envelope, the lower bound and the JOSE
baseline) gives back the body it sealed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc.errors import JoseError

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `pytest` rather than `python -m pytest`
    sys.path.insert(0, str(ROOT))

from bench.__main__ import PAYLOADS, RECIPIENTS, main, profile_text  # noqa: E402
from bench.envelope import EnvelopeWorld  # noqa: E402
from bench.jose import JoseWorld  # noqa: E402
from bench.lower_bound import LowerBound  # noqa: E402
from bench.report import NOTES_BEGIN, NOTES_END, TARGETS, write_markdown  # noqa: E402

CASES = [(size, count) for count in RECIPIENTS for size in PAYLOADS]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    json_path, markdown_path = out / "result.json", out / "benchmarks.md"
    argv = ["--smoke", "--quiet", "--json", str(json_path), "--markdown", str(markdown_path)]
    assert main(argv) == 0  # whatever the targets say
    return json.loads(json_path.read_text()), markdown_path


def test_json_has_every_row_and_target(smoke: tuple[dict[str, Any], Path]) -> None:
    result, _ = smoke
    rows = {(r["operation"], r["payload_bytes"], r["recipients"]): r for r in result["envelope"]}
    assert set(rows) == {(op, size, count) for op in ("seal", "open") for size, count in CASES}
    for row in rows.values():
        assert set(row["times"]) == {"ours", "lower_bound", "jose"}
        assert all(stats["median_ns"] > 0 for stats in row["times"].values())
        assert set(row["checks"]) == {"vs_lower_bound", "vs_jose"}
        assert all(isinstance(c["pass"], bool) for c in row["checks"].values())
    sizes = {(r["payload_bytes"], r["recipients"]): r for r in result["sizes"]}
    assert set(sizes) == set(CASES)
    for (size, _count), row in sizes.items():
        assert row["sizes"]["ours"] > size
        assert row["sizes"]["jose"] > size
        assert isinstance(row["check"]["pass"], bool)
    assert result["relay"]["measured"] is False
    assert result["machine"]["python"]
    assert {p["name"] for p in result["primitives"]} >= {"X25519", "Ed25519 sign (96 B)"}
    missed = sum(not c["pass"] for r in rows.values() for c in r["checks"].values())
    profiled = {p["case"] for p in result["profiles"]}
    assert len(profiled) <= missed  # one profile per row with a missed timing target


def test_markdown_has_every_row_and_target(smoke: tuple[dict[str, Any], Path]) -> None:
    _, markdown_path = smoke
    text = markdown_path.read_text()
    lines = text.splitlines()
    for op in ("seal", "open"):
        for size, count in CASES:
            prefix = f"| {op} | {size // 1024} KiB | {count} |"
            (row,) = [line for line in lines if line.startswith(prefix)]
            assert row.count("PASS") + row.count("MISS") == 2
    for size, count in CASES:
        (row,) = [line for line in lines if line.startswith(f"| {size // 1024} KiB | {count} |")]
        assert row.count("PASS") + row.count("MISS") == 1
    for target in TARGETS.values():
        assert target["text"] in text
    assert "not measured yet" in text
    assert "## Machine" in text
    assert NOTES_BEGIN in text
    assert NOTES_END in text


def test_notes_survive_a_rewrite(smoke: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    result, markdown_path = smoke
    page = tmp_path / "page.md"
    text = markdown_path.read_text()
    start = text.index(NOTES_BEGIN) + len(NOTES_BEGIN)
    page.write_text(text[:start] + "\nThe header parse is O(n).\n" + text[text.index(NOTES_END) :])
    write_markdown(result, page)
    rewritten = page.read_text()
    assert "The header parse is O(n)." in rewritten
    assert rewritten.count(NOTES_BEGIN) == 1


@pytest.mark.parametrize("count", [1, 3])
def test_every_candidate_round_trips(count: int) -> None:
    world = EnvelopeWorld.build(count)
    secrets = [r.encryption_keys[-1].secret for r in world.recipients]
    body = os.urandom(1500)
    envelope = world.sealer(body)()
    assert world.opener_of(envelope)() == body

    lower = LowerBound(world.signing_seed, secrets, header_length=200)
    sealed = lower.seal(body)
    assert lower.open(sealed) == body
    assert len(sealed.wrapped) == count

    jose = JoseWorld(
        world.signing_seed, [(r.principal, r.encryption_keys[-1].secret) for r in world.recipients]
    )
    token = jose.seal(body)
    assert jose.open(token) == body
    assert body not in token


def test_jose_baseline_refuses_a_tampered_token() -> None:
    world = EnvelopeWorld.build(1)
    jose = JoseWorld(
        world.signing_seed, [("AA.ncb-bench", world.recipients[0].encryption_keys[-1].secret)]
    )
    token = bytearray(jose.seal(b"x" * 100))
    token[-30] = ord("A") if token[-30] != ord("A") else ord("B")
    with pytest.raises(JoseError):
        jose.open(bytes(token))


def test_profile_text_names_the_profiled_code() -> None:
    profiler, text = profile_text(lambda: sorted(range(1000)), 2_000_000)
    assert profiler
    assert text.strip()
