"""``ncb-relay demo``: the SkyManga case on a real relay, in-process and as a command.

The play runs the relay, the coordinator and five bureaus over loopback HTTP
under trio (the backend the command uses).  The core-only walkthrough, no
longer the demo, stays as a self-check of the properties the relay-backed
demo does not show (an outsider, a tampered copy, a replay, a misbound reply).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import NOW, seeded_rng
from ncb_relay.cli import main
from ncb_relay.demo import scenario
from ncb_relay.demo.play import STEPS, WIDTH, DemoFailed, DemoStep, _failures, play
from ncb_relay.errors import NcbRelayError, NoAnswer
from ncb_relay.walkthrough import run_core_walkthrough

ACTIONS = [
    "relay started",
    "connected",
    "request for assistance",
    "permission to pass the request on",
    "forward to NCB Paris refused",
    "forward with provenance",
    "acknowledgement",
    "status update",
    "status update",
    "response with findings",
    "diffusion held at the review gate",
    "diffusion approved",
    "diffusion forwarded",
    "journals checked",
    "receipts for every message",
    "cosigned and audited the log",
]


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.mark.anyio
async def test_the_play_runs_every_step_over_the_relay(tmp_path: Path) -> None:
    said: list[DemoStep] = []
    transcript = await play(say=said.append, root=tmp_path)

    assert list(transcript.steps) == said
    assert [s.action for s in said] == ACTIONS
    assert [(s.number, s.total) for s in said] == [(i, STEPS) for i in range(1, STEPS + 1)]
    assert transcript.relay_url.startswith("http://127.0.0.1:")
    assert transcript.principals == tuple(m.principal for m in scenario.CAST)
    assert transcript.request_state == "answered"
    assert transcript.diffusion_reached == tuple(sorted(scenario.LINKED_SITES_TO))
    assert transcript.refused == 0

    by_action = {s.action: s for s in said}
    asked = by_action["request for assistance"]
    assert (asked.actor, asked.to) == (scenario.SEOUL, (scenario.COORDINATOR,))
    assert "Ministry of Culture, Sports and Tourism" in asked.what
    assert asked.message is not None
    forwarded = by_action["forward with provenance"]
    assert forwarded.to == (scenario.RABAT, scenario.SEOUL)
    assert f"original author {scenario.SEOUL}" in forwarded.verified
    answer = by_action["response with findings"]
    assert answer.actor == scenario.RABAT
    assert "Moroccan national" in answer.what
    assert f"bound to request {asked.message[:12]}" in answer.verified
    assert "request now answered" in answer.verified
    assert "dissemination-forbidden" in by_action["forward to NCB Paris refused"].verified
    held = by_action["diffusion held at the review gate"]
    assert held.to == (scenario.COORDINATOR,)
    circulated = by_action["diffusion forwarded"]
    assert set(circulated.to) == set(scenario.LINKED_SITES_TO)
    assert f"original author {scenario.RABAT}" in circulated.verified

    logged = by_action["receipts for every message"]
    assert "signed by XP.relay-lyon" in logged.what
    assert "inclusion proof" in logged.verified
    audited = by_action["cosigned and audited the log"]
    assert audited.actor == scenario.COORDINATOR
    assert "no problem found" in audited.verified

    # the deployment was made in root: the relay's store and every principal's journal
    assert (tmp_path / "relay.db").exists()
    assert all((tmp_path / f"{m.principal}.db").exists() for m in scenario.CAST)


@pytest.mark.anyio
async def test_a_play_that_cannot_finish_in_time_fails_with_a_typed_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(DemoFailed, match="did not finish within 0 s") as caught:
        await play(timeout=0, root=tmp_path)
    assert caught.value.code == "demo-failed"
    assert isinstance(caught.value, NcbRelayError)


def test_every_line_fits_the_width() -> None:
    step = DemoStep(
        12,
        14,
        scenario.COORDINATOR,
        "diffusion forwarded",
        tuple(sorted(scenario.LINKED_SITES_TO)),
        "x " * 120,
        "y " * 120,
    )
    lines = step.lines()
    assert lines[0].startswith("[12/14] XP.interpol-gs -> ES.ncb-madrid")
    assert all(len(line) <= WIDTH for line in lines)
    assert "KR.ncb-seoul" in " ".join(lines)  # ids are never split at their hyphen


def test_demo_json_prints_one_transcript_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["demo"] == "skymanga"
    assert [s["action"] for s in document["steps"]] == ACTIONS
    assert document["steps"][2]["actor"] == scenario.SEOUL
    summary = document["summary"]
    assert summary["ok"] is True
    assert summary["request_state"] == "answered"
    assert summary["diffusion_reached"] == sorted(scenario.LINKED_SITES_TO)
    assert summary["refused"] == 0
    assert summary["messages_sent"] > 0


def test_the_demo_command_exits_zero_in_its_own_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ncb_relay.cli", "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert sum(line.startswith("[") for line in lines) == STEPS
    assert lines[-1].startswith("demo: the SkyManga case played through relay XP.relay-lyon")


def test_the_core_walkthrough_still_holds() -> None:
    said: list[str] = []
    assert run_core_walkthrough(now=NOW, rng=seeded_rng(b"walkthrough"), say=said.append) == 8
    assert "  ok  NCB Paris, not a recipient, cannot read it" in said


def _fail_inside(exc: BaseException) -> DemoFailed | NcbRelayError:
    with pytest.raises(NcbRelayError) as caught, _failures(lambda: "the answer", 45):
        raise exc
    return caught.value


def test_failures_inside_task_groups_come_out_as_one_typed_error() -> None:
    # what trio's strict task groups raise around an error in the play
    failed = DemoFailed("expected the request to be Seoul's")
    assert _fail_inside(ExceptionGroup("tasks", [ExceptionGroup("inner", [failed])])) is failed
    unanswered = NoAnswer("no answer")
    assert _fail_inside(ExceptionGroup("tasks", [ValueError("x"), unanswered])) is unanswered
    other = _fail_inside(ExceptionGroup("tasks", [ValueError("x")]))
    assert isinstance(other, DemoFailed)
    assert other.message == "the demo failed while waiting for the answer"
    refused = _fail_inside(ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(refused, DemoFailed)
    assert refused.message == "network or file error: Connection refused"
    late = _fail_inside(TimeoutError())
    assert late.message == "the demo did not finish within 45 s (waiting for the answer)"


def test_a_cancellation_in_a_group_is_not_turned_into_an_error() -> None:
    with pytest.raises(BaseExceptionGroup), _failures(lambda: "the answer", 45):
        raise BaseExceptionGroup("tasks", [KeyboardInterrupt()])
